"""Recovery: pg_dump backups restored only into a new database (`dumps`), restore drills (`drills`), Neon branches (`neon`), and the
PostgreSQL client programs they run (`pgtools`).

Example:
    >>> from copythat_ops import recovery
    >>> list(recovery.backups("no-such-folder").columns)[:3]
    ['file', 'database', 'revision']
"""

from .drills import drill  # and the module `drills`: drills.drills() lists past drills
from .dumps import backup, backup_dir, backups, drop_database, is_dump, prune_backups, restore

__all__ = ["backup", "backup_dir", "backups", "drill", "drop_database", "is_dump", "prune_backups", "restore"]
