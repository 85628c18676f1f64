"""Extraction jobs: the bulk read (`frames`), the analyses on-call reads (`analyses`), the actions it takes on them (`actions`), the rollups the database keeps (`rollups`) and the Parquet archive of old jobs (`archive`).

Example:
    >>> from copythat_ops import jobs
    >>> int(jobs.job_summary()["jobs"].sum())
    500
"""

from .actions import STUCK_AFTER, STUCK_REASON, ActionResult, audit_log, cancel_jobs, fail_stuck_jobs, requeue_jobs
from .analyses import failure_reasons, job_summary, job_throughput, stuck_jobs
from .archive import ArchiveResult, archive_jobs, read_archive, restore_archive
from .adbc import adbc_connection
from .frames import iter_jobs_frames, jobs_frame
from .rollups import compact_rollups, rollup_drift, rollup_state

__all__ = [
    "STUCK_AFTER", "STUCK_REASON", "ActionResult", "ArchiveResult", "adbc_connection", "archive_jobs", "audit_log", "cancel_jobs", "compact_rollups", "fail_stuck_jobs",
    "failure_reasons", "iter_jobs_frames", "job_summary", "job_throughput", "jobs_frame", "read_archive", "requeue_jobs", "restore_archive", "rollup_drift", "rollup_state",
    "stuck_jobs",
]
