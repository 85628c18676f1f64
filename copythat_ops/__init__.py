"""copythat-ops: operate the Copy That PostgreSQL database from notebooks, a terminal or CI.

Example:
    >>> import copythat_ops as ops
    >>> ops.check_connection()["database"]
    'connected'
    >>> ops.migrations.upgrade() == ops.migrations.heads()[0]   # to head; returns the revision now applied
    True
"""

from typing import TYPE_CHECKING

from .faces import lazy_face

# Loaded on first use, so `import copythat_ops` (and every CLI command) starts at once:
# pandas, Alembic, pyarrow and matplotlib load only for the work that needs them.
_MODULES = {"api", "charts", "check", "config", "database", "display", "embedded", "engine", "errors", "jobs", "migrations",
            "models", "monitor", "recovery", "runbooks", "seed", "tenants", "tokens", "validate"}
_NAMES = {
    "check_connection": "check",
    "mask_url": "config", "normalize_url": "config", "settings": "config",
    "database_url": "engine", "get_db": "engine", "get_engine": "engine", "run_query": "engine", "session_scope": "engine",
    "ConfigError": "errors", "ConnectError": "errors", "CopythatError": "errors", "EmbeddedError": "errors",
    "MigrationError": "errors",
    "ActionResult": "jobs", "audit_log": "jobs", "cancel_jobs": "jobs", "fail_stuck_jobs": "jobs", "requeue_jobs": "jobs",
    "failure_reasons": "jobs", "iter_jobs_frames": "jobs", "job_summary": "jobs", "job_throughput": "jobs",
    "jobs_frame": "jobs", "stuck_jobs": "jobs",
    "ArchiveResult": "jobs", "archive_jobs": "jobs", "read_archive": "jobs", "restore_archive": "jobs",
    "compact_rollups": "jobs", "rollup_drift": "jobs", "rollup_state": "jobs",
    "EXTRACTION_TYPES": "models", "JOB_STATUSES": "models", "ExtractionJob": "models", "ExtractionType": "models",
    "JobActionAudit": "models", "JobStatus": "models", "Project": "models",
    "ColorToken": "models", "Membership": "models", "Organization": "models", "SpacingToken": "models",
    "TypographyToken": "models", "User": "models",
    "seed_database": "seed",
    "tenant_isolation": "tenants", "tenant_usage": "tenants",
    "backfill_tokens": "tokens", "export_tokens": "tokens", "search": "tokens",
}


__getattr__, __dir__ = lazy_face(__name__, _MODULES, _NAMES)

if TYPE_CHECKING:  # what editors and type checkers see
    from . import api, config, database, embedded, jobs, migrations, monitor, recovery, tenants, tokens  # noqa: F401
    from .check import check_connection  # noqa: F401
    from .config import mask_url, normalize_url, settings  # noqa: F401
    from .engine import database_url, get_db, get_engine, run_query, session_scope  # noqa: F401
    from .errors import ConfigError, ConnectError, CopythatError, EmbeddedError, MigrationError  # noqa: F401
    from .jobs import (  # noqa: F401
        ActionResult, ArchiveResult, archive_jobs, audit_log, cancel_jobs, compact_rollups, fail_stuck_jobs, failure_reasons,
        iter_jobs_frames, job_summary, job_throughput, jobs_frame, read_archive, requeue_jobs, restore_archive,
        rollup_drift, rollup_state, stuck_jobs,
    )
    from .models import (  # noqa: F401
        EXTRACTION_TYPES, JOB_STATUSES, ColorToken, ExtractionJob, ExtractionType, JobActionAudit, JobStatus, Membership,
        Organization, Project, SpacingToken, TypographyToken, User,
    )
    from .seed import seed_database  # noqa: F401
    from .tenants import tenant_isolation, tenant_usage  # noqa: F401
    from .tokens import backfill_tokens, export_tokens, search  # noqa: F401

__all__ = [
    "ActionResult",
    "ArchiveResult",
    "archive_jobs",
    "read_archive",
    "restore_archive",
    "compact_rollups",
    "rollup_drift",
    "rollup_state",
    "ColorToken",
    "Membership",
    "Organization",
    "SpacingToken",
    "TypographyToken",
    "User",
    "backfill_tokens",
    "export_tokens",
    "search",
    "tenant_isolation",
    "tenant_usage",
    "tenants",
    "tokens",
    "EXTRACTION_TYPES",
    "JOB_STATUSES",
    "ConfigError",
    "ConnectError",
    "CopythatError",
    "EmbeddedError",
    "ExtractionJob",
    "ExtractionType",
    "JobActionAudit",
    "JobStatus",
    "MigrationError",
    "Project",
    "audit_log",
    "cancel_jobs",
    "check_connection",
    "config",
    "database_url",
    "embedded",
    "fail_stuck_jobs",
    "failure_reasons",
    "get_db",
    "get_engine",
    "iter_jobs_frames",
    "job_summary",
    "job_throughput",
    "jobs",
    "jobs_frame",
    "mask_url",
    "migrations",
    "monitor",
    "normalize_url",
    "requeue_jobs",
    "run_query",
    "seed_database",
    "session_scope",
    "settings",
    "stuck_jobs",
]
