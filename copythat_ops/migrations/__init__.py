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

from typing import TYPE_CHECKING

from ..faces import lazy_face

# Each name's module, imported on first use: `current` (as `copythat-ops db status` reads it) loads no pandas.
_MODULES = {"compare", "plans", "rehearsal", "revisions", "scripts", "squawk", "verbs"}
_NAMES = {
    "check": "compare", "schema_columns": "compare", "schema_status": "compare",
    "lint": "squawk",
    "MigrationPlan": "plans", "downgrade_plan": "plans", "history": "plans", "pending": "plans", "upgrade_plan": "plans",
    "rehearse": "rehearsal",
    "revision": "revisions",
    "CHECKOUT": "scripts", "INI_VAR": "scripts", "alembic_config": "scripts", "current": "scripts", "heads": "scripts",
    "MIGRATION_LOCK_KEY": "verbs", "downgrade": "verbs", "lock_timeout": "verbs", "locked_for_migration": "verbs",
    "sql": "verbs", "stamp": "verbs", "upgrade": "verbs",
}  # fmt: skip


__getattr__, __dir__ = lazy_face(__name__, _MODULES, _NAMES)

if TYPE_CHECKING:  # what editors and type checkers see
    from .compare import check, schema_columns, schema_status  # noqa: F401
    from .squawk import lint  # noqa: F401
    from .plans import MigrationPlan, downgrade_plan, history, pending, upgrade_plan  # noqa: F401
    from .rehearsal import rehearse  # noqa: F401
    from .revisions import revision  # noqa: F401
    from .scripts import CHECKOUT, INI_VAR, alembic_config, current, heads  # noqa: F401
    from .verbs import MIGRATION_LOCK_KEY, downgrade, lock_timeout, locked_for_migration, sql, stamp, upgrade  # noqa: F401

__all__ = [
    "CHECKOUT", "INI_VAR", "MIGRATION_LOCK_KEY", "MigrationPlan", "alembic_config", "check", "current", "downgrade",
    "downgrade_plan", "heads", "history", "lint", "lock_timeout", "locked_for_migration", "pending", "rehearse",
    "revision", "schema_columns", "schema_status", "sql", "stamp", "upgrade", "upgrade_plan",
]
