"""copythat-ops: operate the Copy That PostgreSQL database from notebooks, a terminal or CI.

Example:
    >>> import copythat_ops as ops
    >>> ops.check_connection()["database"]
    'connected'
    >>> ops.migrations.upgrade() == ops.migrations.heads()[0]   # to head; returns the revision now applied
    True
"""

from . import config, embedded, jobs, migrations, monitor
from .check import check_connection
from .config import mask_url, normalize_url, settings
from .engine import database_url, get_db, get_engine, run_query, session_scope
from .errors import ConfigError, ConnectError, CopythatError, EmbeddedError, MigrationError
from .job_actions import ActionResult, audit_log, cancel_jobs, fail_stuck_jobs, requeue_jobs
from .jobs import failure_reasons, iter_jobs_frames, job_summary, job_throughput, jobs_frame, stuck_jobs
from .models import EXTRACTION_TYPES, JOB_STATUSES, ExtractionJob, ExtractionType, JobActionAudit, JobStatus, Project
from .seed import seed_database

__all__ = [
    "ActionResult",
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
