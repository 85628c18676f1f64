"""Old finished jobs moved out of the database into Parquet files any engine reads (DuckDB, Spark, Athena), and back.

Layout: `DIR/extraction_jobs/month=YYYY-MM/part-<first id>-<last id>.parquet`
(zstd; month = created_at's month in UTC); a file being written starts with
`.` and is renamed when complete, so readers never see half a file.

Example:
    >>> read_archive("no-archive-here").num_rows
    0
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.dataset as ds

from ..errors import InputError
from ..models import EXTRACTION_TYPES, JOB_STATUSES
from ..validate import choices, duration, number

TABLE = "extraction_jobs"
_TIME = pa.timestamp("us", tz="UTC")
SCHEMA = pa.schema(
    [
        ("id", pa.int64()),
        ("project_id", pa.int64()),
        ("source_url", pa.string()),
        ("extraction_type", pa.string()),
        ("status", pa.string()),
        ("result_data", pa.string()),
        ("error_message", pa.string()),
        ("created_at", _TIME),
        ("completed_at", _TIME),
        ("updated_at", _TIME),
    ]
)
_MONTH = re.compile(r"^\d{4}-(0[1-9]|1[0-2])$")


def read_archive(
    directory: str | Path,
    *,
    status: str | list[str] | None = None,
    extraction_type: str | list[str] | None = None,
    project_id: int | list[int] | None = None,
    since: str | timedelta | datetime | None = None,
    until: str | timedelta | datetime | None = None,
) -> pa.Table:
    """Return the archived jobs under `directory` (written by `archive_jobs`) as an Arrow table, ids ascending.

    Filters as jobs_frame's: `status`, `extraction_type`, `project_id` (one or a
    list), created `since` / `until` (a duration back from now such as "30 days",
    or a timestamp; naive = UTC); they are pushed down to the files (whole months
    are skipped by their folder name, row groups by their statistics). Columns:
    id, project_id, source_url, extraction_type, status, result_data,
    error_message, created_at, completed_at, updated_at (UTC). A directory with
    no archive gives no rows.

    Example:
        >>> read_archive("no-archive-here", status="failed").column_names[:5]
        ['id', 'project_id', 'source_url', 'extraction_type', 'status']
    """
    where, months = _archive_filter(status, extraction_type, project_id, since, until)
    root = Path(directory) / TABLE
    if not root.is_dir():
        return SCHEMA.empty_table()
    dataset = _dataset(root)
    if months is not None:
        where = _and(where, months)
    table = dataset.to_table(columns=SCHEMA.names, filter=where)
    return table.sort_by("id") if table.num_rows else table


def _dataset(root: Path) -> ds.Dataset:
    """The month partitions under `root` as one dataset; files starting with '.' or '_' (being written) are skipped."""
    partitioning = ds.partitioning(pa.schema([("month", pa.string())]), flavor="hive")
    return ds.dataset(root, format="parquet", partitioning=partitioning, schema=SCHEMA.append(pa.field("month", pa.string())), ignore_prefixes=[".", "_"])


def _and(left, right):
    return right if left is None else left & right


def _moment(value, name: str, now: datetime) -> pd.Timestamp:
    """A bound as a UTC instant: a timestamp (naive = UTC), or a duration back from `now`."""
    if isinstance(value, datetime | pd.Timestamp) or (isinstance(value, str) and re.match(r"^\s*\d{4}-\d{2}-\d{2}", value)):
        try:
            moment = pd.Timestamp(value)
        except ValueError:
            raise InputError(f"{name} {value!r} is not a time", fix="give a duration back from now ('30 days') or a timestamp ('2025-01-31 12:00')", params=name) from None
        return moment.tz_localize("UTC") if moment.tzinfo is None else moment.tz_convert("UTC")
    return pd.Timestamp(now - duration(value, name=name))


def _archive_filter(status, extraction_type, project_id, since, until):
    """The filters as an Arrow expression on the rows, and one on the month folders (or None)."""
    where, months = None, None
    for column, values in (
        ("status", choices(status, JOB_STATUSES, name="status")),
        ("extraction_type", choices(extraction_type, EXTRACTION_TYPES, name="extraction_type")),
    ):
        if values is not None:
            where = _and(where, pc.field(column).isin(values))
    if project_id is not None:
        projects = [project_id] if isinstance(project_id, int) else list(project_id)
        where = _and(where, pc.field("project_id").isin([int(number(v, name="project_id", minimum=1, integer=True)) for v in projects]))
    now = datetime.now(UTC)
    if since is not None:
        moment = _moment(since, "since", now)
        where = _and(where, pc.field("created_at") >= pa.scalar(moment.to_pydatetime(), _TIME))
        months = _and(months, pc.field("month") >= moment.strftime("%Y-%m"))
    if until is not None:
        moment = _moment(until, "until", now)
        where = _and(where, pc.field("created_at") < pa.scalar(moment.to_pydatetime(), _TIME))
        months = _and(months, pc.field("month") <= moment.strftime("%Y-%m"))
    return where, months
