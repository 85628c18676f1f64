"""copythat-ops: operate the Copy That PostgreSQL database from notebooks, a terminal or CI.

Example:
    >>> import copythat_ops as ops
    >>> ops.check_connection()["database"]
    'connected'
    >>> ops.migrations.upgrade()
    'c1a36d61036a'
"""

from . import config, embedded, migrations
from .check import check_connection
from .config import mask_url, normalize_url, settings
from .engine import database_url, get_db, get_engine, run_query, session_scope
from .errors import ConfigError, ConnectError, CopythatError, EmbeddedError, MigrationError
from .models import EXTRACTION_TYPES, JOB_STATUSES, ExtractionJob, ExtractionType, JobStatus, Project

__all__ = [
    "EXTRACTION_TYPES",
    "JOB_STATUSES",
    "ConfigError",
    "ConnectError",
    "CopythatError",
    "EmbeddedError",
    "ExtractionJob",
    "ExtractionType",
    "JobStatus",
    "MigrationError",
    "Project",
    "check_connection",
    "config",
    "database_url",
    "embedded",
    "get_db",
    "get_engine",
    "mask_url",
    "migrations",
    "normalize_url",
    "run_query",
    "session_scope",
    "settings",
]
