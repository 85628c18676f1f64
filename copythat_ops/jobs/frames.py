"""Extraction jobs as typed DataFrames: the bulk read (ADBC, binary COPY straight into Arrow columns).

`jobs_frame` and `iter_jobs_frames` stream rows with the ADBC PostgreSQL
driver: about as fast as COPY itself, and many times faster than
`pandas.read_sql`. They read the replica when DATABASE_REPLICA_URL is set.

Example:
    >>> from copythat_ops import jobs
    >>> len(jobs.jobs_frame(status="failed"))
    38
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime, timedelta

import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
from sqlalchemy.engine import Engine
from tqdm.auto import tqdm

from ..engine import APP_NAME, CONNECT_TIMEOUT, LOCK_TIMEOUT, connect_error, explain_lock_waits, get_engine
from ..errors import schema_required
from ..validate import duration, number
from .filters import AT_UTC, categorised, job_filters

BULK_TIMEOUT = "10min"


def jobs_frame(
    status: str | list[str] | None = None,
    extraction_type: str | list[str] | None = None,
    project_id: int | list[int] | None = None,
    since: str | timedelta | datetime | None = None,
    until: str | timedelta | datetime | None = None,
    limit: int | None = None,
    *,
    with_project: bool = False,
    parse_results: bool = False,
    engine: Engine | None = None,
    timeout: str = BULK_TIMEOUT,
    lock_timeout: str = LOCK_TIMEOUT,
) -> pd.DataFrame:
    """Return extraction jobs, oldest id first, as a typed DataFrame (the bulk path: ADBC, binary COPY to Arrow).

    Filters: `status`, `extraction_type`, `project_id` (one or a list), created
    `since` / `until` (a duration back from now such as "24h", or a timestamp),
    `limit`. Columns: id, project_id (Int64), organization_id (Int64) and
    organization (its slug) once the schema has organizations (revision
    ef6a8e0d2805; left out before it), [project_name with `with_project`],
    extraction_type, status (categories with every known value), source_url,
    created_at, completed_at (UTC), duration (timedelta: completed_at - created_at),
    error_message, result_data; with `parse_results` also result (the parsed JSON,
    None when absent or malformed) and result_malformed (True when result_data is
    not valid JSON). A lock held on the tables is waited on for `lock_timeout`
    (default 3s) at most, then a LockWaitError names its holder.

    Example:
        >>> failed = jobs_frame(status="failed", project_id=2, with_project=True)
        >>> failed[["id", "project_name", "extraction_type"]].head(3)
            id      project_name extraction_type
        0   20  Hooli campaign 2         spacing
        1   61  Hooli campaign 2           color
        2  108  Hooli campaign 2           color
    """
    sql, params = _jobs_query(status, extraction_type, project_id, since, until, limit, with_project)
    with _reader(engine, timeout, lock_timeout, "jobs_frame", sql) as cursor:
        if not _has_organizations(cursor):
            sql, params = _jobs_query(status, extraction_type, project_id, since, until, limit, with_project, organization=False)
        cursor.execute(f"/* {APP_NAME}:jobs_frame */ {sql}", params)
        return _typed(cursor.fetch_arrow_table(), parse_results)


def iter_jobs_frames(
    chunk_rows: int = 100_000,
    *,
    progress: bool | None = None,
    parse_results: bool = False,
    engine: Engine | None = None,
    timeout: str = BULK_TIMEOUT,
    lock_timeout: str = LOCK_TIMEOUT,
    **filters,
) -> Iterator[pd.DataFrame]:
    """Yield the DataFrames of `jobs_frame` (same filters and columns) `chunk_rows` rows at a time, in bounded memory.

    `filters` are jobs_frame's: status, extraction_type, project_id, since,
    until, limit, with_project. One streamed query; a progress bar (tqdm) shows
    when there is more than one chunk, unless `progress=False` (`True` forces it).

    Example:
        >>> sum(len(chunk) for chunk in iter_jobs_frames(200, status="completed", progress=False))
        459
    """
    number(chunk_rows, name="chunk_rows", minimum=1, integer=True)
    sql, params = _jobs_query(**filters)
    with _reader(engine, timeout, lock_timeout, "iter_jobs_frames", sql) as cursor:
        if not _has_organizations(cursor):
            sql, params = _jobs_query(**filters, organization=False)
        cursor.execute(f"/* {APP_NAME}:iter_jobs_frames */ SELECT count(*) FROM ({sql}) AS matching", params)
        total = cursor.fetchone()[0]
        cursor.execute(f"/* {APP_NAME}:iter_jobs_frames */ {sql}", params)
        reader = cursor.fetch_record_batch()
        show = total > chunk_rows if progress is None else progress
        with tqdm(total=total, unit="jobs", desc="extraction_jobs", disable=not show) as bar:
            batches, rows = [], 0
            for batch in reader:
                batches.append(batch)
                rows += batch.num_rows
                while rows >= chunk_rows:
                    table = pa.Table.from_batches(batches, schema=reader.schema)
                    batches, rows = table.slice(chunk_rows).to_batches(), rows - chunk_rows
                    bar.update(chunk_rows)
                    yield _typed(table.slice(0, chunk_rows), parse_results)
            if rows:
                bar.update(rows)
                yield _typed(pa.Table.from_batches(batches, schema=reader.schema), parse_results)


def _jobs_query(
    status=None, extraction_type=None, project_id=None, since=None, until=None, limit=None, with_project=False, organization=True
) -> tuple[str, tuple]:
    """jobs_frame's SQL with positional ($n) parameters for the ADBC driver; `organization` adds the project's organization (id and slug)."""
    where, params = job_filters(status, extraction_type, project_id, since, until)
    if limit is not None:
        params["limit"] = number(limit, name="limit", minimum=1, integer=True)
    sql = f"""
        SELECT j.id,
               j.project_id,{" p.organization_id, o.slug AS organization," if organization else ""}{" p.name AS project_name," if with_project else ""}
               j.extraction_type,
               j.status,
               j.source_url,
               {AT_UTC.format("j.created_at")} AS created_at,
               {AT_UTC.format("j.completed_at")} AS completed_at,
               j.error_message,
               j.result_data
        FROM extraction_jobs j
        {"LEFT JOIN projects p ON p.id = j.project_id" if with_project or organization else ""}
        {"LEFT JOIN organizations o ON o.id = p.organization_id" if organization else ""}
        {where}
        ORDER BY j.id
        {"LIMIT :limit" if limit is not None else ""}
    """
    order = []

    def positional(match: re.Match) -> str:
        order.append(match.group(1))
        return f"${len(order)}"

    sql = re.sub(r"(?<!:):([a-z_0-9]+)", positional, sql)
    return sql, tuple(params[name] for name in order)


@contextmanager
def adbc_connection(engine: Engine | None = None) -> Iterator:
    """Yield an ADBC PostgreSQL connection (Arrow in and out, binary COPY) to `engine`'s database, in a transaction.

    Rolled back and closed after, unless committed; connect failures become a ConnectError, password masked.

    Example:
        >>> with adbc_connection() as conn, conn.cursor() as cursor:
        ...     _ = cursor.execute("SELECT 1 AS one")
        ...     cursor.fetch_arrow_table().to_pylist()
        [{'one': 1}]
    """
    import adbc_driver_postgresql.dbapi as adbc
    from adbc_driver_manager import Error as AdbcError

    url = (engine or get_engine(replica=True)).url
    query = {"application_name": APP_NAME, "connect_timeout": str(CONNECT_TIMEOUT)} | dict(url.query)
    try:
        conn = adbc.connect(url.set(drivername="postgresql", query=query).render_as_string(hide_password=False))
    except AdbcError as exc:
        raise connect_error(exc, url) from None
    try:
        with schema_required("the job analyses"):
            yield conn
    finally:
        conn.rollback()
        conn.close()


def _has_organizations(cursor) -> bool:
    """Whether the schema has organizations and projects.organization_id (revision ef6a8e0d2805 on), asked on the reader's own transaction."""
    cursor.execute(
        "SELECT to_regclass('organizations') IS NOT NULL"
        " AND EXISTS (SELECT FROM pg_attribute WHERE attrelid = to_regclass('projects') AND attname = 'organization_id' AND NOT attisdropped)"
    )
    return bool(cursor.fetchone()[0])


@contextmanager
def _reader(engine: Engine | None, timeout: str, lock_timeout: str, name: str, sql: str) -> Iterator:
    """An ADBC cursor in a read-only transaction under `timeout`, waiting `lock_timeout` at most for a lock (then naming its holder)."""
    millis = int(duration(timeout, name="timeout") / timedelta(milliseconds=1))
    lock_millis = int(duration(lock_timeout, name="lock_timeout") / timedelta(milliseconds=1))
    engine = engine or get_engine(replica=True)
    with explain_lock_waits(name, sql, engine=engine, lock_timeout=lock_timeout), adbc_connection(engine) as conn, conn.cursor() as cursor:
        cursor.execute("SET TRANSACTION READ ONLY")
        cursor.execute(f"SET LOCAL statement_timeout = {millis}")
        cursor.execute(f"SET LOCAL lock_timeout = {lock_millis}")
        yield cursor


def _typed(table: pa.Table, parse_results: bool) -> pd.DataFrame:
    """Arrow columns to the frame's dtypes: Int64 ids, categories with every known value, UTC times, duration."""
    for column in ("status", "extraction_type"):
        table = table.set_column(table.schema.get_field_index(column), column, pc.dictionary_encode(table[column]))
    frame = categorised(table.to_pandas(types_mapper={pa.int32(): pd.Int64Dtype(), pa.int64(): pd.Int64Dtype()}.get))
    for column in ("created_at", "completed_at"):
        frame[column] = frame[column].astype("datetime64[us, UTC]")
    frame.insert(frame.columns.get_loc("completed_at") + 1, "duration", frame["completed_at"] - frame["created_at"])
    if parse_results:
        parsed = [_parse(text) for text in frame["result_data"]]
        frame["result"] = pd.Series([value for value, _ in parsed], index=frame.index, dtype=object)
        frame["result_malformed"] = pd.Series([bad for _, bad in parsed], index=frame.index, dtype=bool)
    return frame


def _parse(text: str | None) -> tuple[object, bool]:
    if text is None or (isinstance(text, float) and pd.isna(text)):
        return None, False
    try:
        return json.loads(text), False
    except ValueError:
        return None, True
