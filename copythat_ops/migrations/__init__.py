"""Schema migrations: Alembic's commands as functions, plus what the schema is now.

Every function takes an optional `url` (default: the configured database) and
behaves as the `alembic` command line does with the project's alembic.ini.
The modules, each importing only those above it in this list:

- `scripts`: Alembic's config, the scripts, heads, the database's current revision
- `plans`: what an upgrade or downgrade to a target would do; history, pending
- `verbs`: upgrade, downgrade, stamp, offline SQL, under the migration lock
- `compare`: the models against the database (check, schema_status, schema_columns)
- `squawk`, `revisions`, `rehearsal`: lint each revision with squawk, new safe revisions, a rehearsal on a copy

Example:
    >>> from copythat_ops import migrations
    >>> migrations.upgrade() == migrations.heads()[0]   # to head; returns the revision now applied
    True
    >>> migrations.pending().empty
    True
"""

from .compare import check, schema_columns, schema_status
from .squawk import lint
from .plans import MigrationPlan, downgrade_plan, history, pending, upgrade_plan
from .rehearsal import rehearse
from .revisions import revision
from .scripts import CHECKOUT, INI_VAR, alembic_config, current, heads
from .verbs import MIGRATION_LOCK_KEY, downgrade, lock_timeout, locked_for_migration, sql, stamp, upgrade

__all__ = [
    "CHECKOUT", "INI_VAR", "MIGRATION_LOCK_KEY", "MigrationPlan", "alembic_config", "check", "current", "downgrade",
    "downgrade_plan", "heads", "history", "lint", "lock_timeout", "locked_for_migration", "pending", "rehearse",
    "revision", "schema_columns", "schema_status", "sql", "stamp", "upgrade", "upgrade_plan",
]
