"""Extraction jobs as typed DataFrames, and the analyses on-call needs: summary, throughput, failures, stuck jobs.

Aggregations run in SQL (read-only, under a statement timeout, tagged
`/* copythat-ops:NAME */`) on the replica when DATABASE_REPLICA_URL is set.
The bulk read (`jobs_frame`, `iter_jobs_frames`) goes through the ADBC
PostgreSQL driver, which streams rows with binary COPY straight into Arrow
columns: about as fast as COPY itself, and many times faster than
`pandas.read_sql`.

Times: the columns are `TIMESTAMP WITHOUT TIME ZONE` filled by the server's
`now()`, i.e. wall-clock time in the server's TimeZone setting (UTC on Neon).
They are read as times in that zone and returned timezone-aware in UTC;
thresholds such as `older_than` are compared on the server with
`localtimestamp`, so both agree whatever the zone.

Example:
    >>> from copythat_ops import jobs
    >>> jobs.job_summary(by="status")[["status", "jobs"]]
           status  jobs
    0   completed   459
    1      failed    38
    2     pending     2
    3  processing     1
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

from ..engine import APP_NAME, CONNECT_TIMEOUT, LOCK_TIMEOUT, connect_error, explain_lock_waits, get_engine, run_query
from ..errors import InputError, schema_required
from ..models import EXTRACTION_TYPES, JOB_STATUSES
from ..validate import choices, duration, number

SUMMARY_GROUPS = {"status": ["status"], "extraction_type": ["extraction_type"], "project": ["project_id", "project_name"]}
MAX_BUCKETS = 100_000
BULK_TIMEOUT = "10min"
SORT_WORK_MEM = "128MB"  # this query only: the sorts behind the percentiles of a million jobs stay in memory (4MB spills: 5x slower)
# Server-side wall-clock time of a job column, as a UTC instant.
_AT_UTC = "{} AT TIME ZONE current_setting('TimeZone')"
# The parts of an error message that differ between jobs failing for the same reason, folded to placeholders.
_REASON = r"""
    left(
        regexp_replace(
            regexp_replace(
                regexp_replace(
                    regexp_replace(
                        regexp_replace(
                            coalesce(nullif(btrim(j.error_message), ''), '(no error message)'),
                            '[a-z][a-z0-9+.-]*://[^\s''",;)]+', '<url>', 'gi'),
                        '[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}', '<uuid>', 'gi'),
                    '(^|[^0-9a-z])(0x)?(?=[0-9a-f]*[a-f])(?=[0-9a-f]*[0-9])[0-9a-f]{6,}(?![0-9a-z])', '\1<hex>', 'gi'),
                '[0-9]+', '<n>', 'g'),
            '\s+', ' ', 'g'),
        500)
"""


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


def job_summary(
    by: str | list[str] = "status",
    *,
    since: str | timedelta | datetime | None = None,
    engine: Engine | None = None,
) -> pd.DataFrame:
    """Return job counts per `by` ("status", "extraction_type", "project" or a list of them), computed in SQL.

    Columns: the group columns (project_id and project_name for "project"),
    jobs, pending, processing, completed, failed, failure_rate (failed /
    finished, 0-1), p50_seconds, p95_seconds, max_seconds (time from created to
    completed_at over finished jobs, percentile_cont). Largest group first;
    `since` counts only jobs created since then.

    Example:
        >>> job_summary(by=["extraction_type", "status"]).head(3)[["extraction_type", "status", "jobs"]]
          extraction_type     status  jobs
        0           color  completed   164
        1             all  completed   106
        2      typography  completed   101
    """
    groups = [column for name in choices(by, SUMMARY_GROUPS, name="by") for column in SUMMARY_GROUPS[name]]
    where, params = _filters(since=since)
    columns = ",\n               ".join(f'{"p.name" if c == "project_name" else "j." + c} AS {c}' for c in groups)
    group_by = ", ".join(str(i) for i in range(1, len(groups) + 1))
    duration_seconds = "date_part('epoch', j.completed_at - j.created_at)"
    join = "LEFT JOIN projects p ON p.id = j.project_id" if "project_id" in groups else ""
    sql = f"""
        SELECT *,
               percentiles[1] AS p50_seconds,
               percentiles[2] AS p95_seconds
        FROM (
            SELECT {columns},
                   count(*) AS jobs,
                   count(*) FILTER (WHERE j.status = 'pending') AS pending,
                   count(*) FILTER (WHERE j.status = 'processing') AS processing,
                   count(*) FILTER (WHERE j.status = 'completed') AS completed,
                   count(*) FILTER (WHERE j.status = 'failed') AS failed,
                   count(*) FILTER (WHERE j.status = 'failed')::float8
                       / nullif(count(*) FILTER (WHERE j.status IN ('completed', 'failed')), 0) AS failure_rate,
                   percentile_cont(ARRAY[0.5, 0.95]) WITHIN GROUP (ORDER BY {duration_seconds})
                       FILTER (WHERE j.completed_at IS NOT NULL) AS percentiles,
                   max({duration_seconds}) AS max_seconds
            FROM extraction_jobs j
            {join}
            {where}
            GROUP BY {group_by}
        ) AS grouped
        ORDER BY jobs DESC, {group_by}
    """
    frame = _query(sql, params, "job_summary", engine, work_mem=SORT_WORK_MEM)
    frame = frame[[*groups, "jobs", "pending", "processing", "completed", "failed", "failure_rate", "p50_seconds", "p95_seconds", "max_seconds"]]
    for column in ("jobs", "pending", "processing", "completed", "failed", "project_id"):
        if column in frame:
            frame[column] = frame[column].astype("Int64")
    for column in ("failure_rate", "p50_seconds", "p95_seconds", "max_seconds"):
        frame[column] = frame[column].astype("float64")
    return _categorised(frame)


def job_throughput(
    freq: str | timedelta = "1h",
    since: str | timedelta | datetime = "7 days",
    *,
    engine: Engine | None = None,
) -> pd.DataFrame:
    """Return jobs created, completed and failed per `freq` bucket since `since`, empty buckets as 0 (SQL generate_series).

    Columns: bucket (start, UTC), created, completed, failed (failed and
    completed count by completed_at). Buckets are contiguous, oldest first, the
    last one holding now.

    Example:
        >>> week = job_throughput("1 day", since="7 days")
        >>> week.columns.tolist(), len(week)
        (['bucket', 'created', 'completed', 'failed'], 8)
    """
    step = duration(freq, name="freq")
    if step <= timedelta(0):
        raise InputError(f"freq {freq!r} is zero", fix="give a bucket size such as '15 min', '1h' or '1 day'", params="freq")
    start, params = _time_bound(since, "since")
    params["step"] = step.total_seconds()
    frame = _query(
        f"""
        WITH bounds AS (
            SELECT date_bin(make_interval(secs => :step), {start}, TIMESTAMP '2000-01-01') AS first_bucket,
                   make_interval(secs => :step) AS step
        ),
        buckets AS (
            SELECT generate_series(b.first_bucket, localtimestamp, b.step) AS bucket
            FROM bounds b
            WHERE date_part('epoch', localtimestamp - b.first_bucket) / date_part('epoch', b.step) < {MAX_BUCKETS}
        ),
        events AS (
            SELECT date_bin(b.step, j.created_at, TIMESTAMP '2000-01-01') AS bucket,
                   1 AS created, 0 AS completed, 0 AS failed
            FROM extraction_jobs j, bounds b
            WHERE j.created_at >= b.first_bucket
            UNION ALL
            SELECT date_bin(b.step, j.completed_at, TIMESTAMP '2000-01-01'),
                   0, (j.status = 'completed')::int, (j.status = 'failed')::int
            FROM extraction_jobs j, bounds b
            WHERE j.completed_at >= b.first_bucket
        ),
        counted AS (
            SELECT bucket, sum(created) AS created, sum(completed) AS completed, sum(failed) AS failed
            FROM events
            GROUP BY bucket
        )
        SELECT {_AT_UTC.format("k.bucket")} AS bucket,
               coalesce(c.created, 0) AS created,
               coalesce(c.completed, 0) AS completed,
               coalesce(c.failed, 0) AS failed
        FROM buckets k
        LEFT JOIN counted c ON c.bucket = k.bucket
        ORDER BY k.bucket
        """,
        params,
        "job_throughput",
        engine,
    )
    if frame.empty:
        raise InputError(
            f"freq {freq!r} since {since!r} makes more than {MAX_BUCKETS:,} buckets",
            fix="use a larger freq or a later since",
            params=("freq", "since"),
        )
    return frame.astype({"created": "Int64", "completed": "Int64", "failed": "Int64"})


def failure_reasons(
    top: int = 20,
    since: str | timedelta | datetime | None = None,
    *,
    engine: Engine | None = None,
) -> pd.DataFrame:
    """Return the `top` reasons jobs failed: error messages with numbers, uuids, hex ids and URLs folded, grouped in SQL.

    Columns: reason (e.g. "Timeout after <n>s while downloading <url>"), jobs,
    share (of the failed jobs counted, 0-1), first_seen, last_seen (UTC, by
    completed_at, else created_at), example_job_id (the latest). Most frequent
    first; `since` counts only jobs created since then.

    Example:
        >>> failure_reasons(top=3)[["reason", "jobs"]]
                                               reason  jobs
        0  Timeout after <n>s while downloading <url>    11
        1  Worker worker-<n> lost connection to <url>     6
        2    HTTP <n> Not Found fetching source <url>     5
    """
    number(top, name="top", minimum=1, integer=True)
    where, params = _filters(status="failed", since=since)
    params["top"] = top
    frame = _query(
        f"""
        WITH failed AS (
            SELECT j.id,
                   coalesce(j.completed_at, j.created_at) AS seen_at,
                   {_REASON.strip()} AS reason
            FROM extraction_jobs j
            {where}
        )
        SELECT reason,
               count(*) AS jobs,
               count(*)::float8 / sum(count(*)) OVER () AS share,
               {_AT_UTC.format("min(seen_at)")} AS first_seen,
               {_AT_UTC.format("max(seen_at)")} AS last_seen,
               max(id) AS example_job_id
        FROM failed
        GROUP BY reason
        ORDER BY jobs DESC, reason
        LIMIT :top
        """,
        params,
        "failure_reasons",
        engine,
    )
    return frame.astype({"jobs": "Int64", "share": "float64", "example_job_id": "Int64"})


def stuck_jobs(
    older_than: str | timedelta = "30 min",
    pending_older_than: str | timedelta | None = "1 hour",
    *,
    engine: Engine | None = None,
) -> pd.DataFrame:
    """Return `processing` jobs in that state for more than `older_than` and `pending` ones waiting more than `pending_older_than`, longest first.

    Waiting counts from when the job last changed state (updated_at, kept by a
    trigger; created_at for a row that has none yet), so a job requeued a minute
    ago waits one minute. `pending_older_than=None` leaves pending jobs out.
    Columns: id, project_id, project_name, extraction_type, status, created_at
    and updated_at (UTC), age_seconds, age (timedelta, since updated_at), source_url.

    Example:
        >>> stuck_jobs("30 min")[["id", "status"]]
            id      status
        0  402     pending
        1  452     pending
        2  182  processing
    """
    changed = "coalesce(j.updated_at, CAST(j.created_at AS timestamptz))"
    params = {"processing": duration(older_than, name="older_than").total_seconds()}
    pending = "FALSE"
    if pending_older_than is not None:
        params["pending"] = duration(pending_older_than, name="pending_older_than").total_seconds()
        pending = f"j.status = 'pending' AND {changed} < now() - make_interval(secs => :pending)"
    frame = _query(
        f"""
        SELECT j.id,
               j.project_id,
               p.name AS project_name,
               j.extraction_type,
               j.status,
               {_AT_UTC.format("j.created_at")} AS created_at,
               {changed} AS updated_at,
               date_part('epoch', now() - {changed}) AS age_seconds,
               j.source_url
        FROM extraction_jobs j
        LEFT JOIN projects p ON p.id = j.project_id
        WHERE (j.status = 'processing' AND {changed} < now() - make_interval(secs => :processing))
           OR ({pending})
        ORDER BY {changed}, j.id
        """,
        params,
        "stuck_jobs",
        engine,
    )
    frame["updated_at"] = pd.to_datetime(frame["updated_at"], utc=True)
    frame = frame.astype({"id": "Int64", "project_id": "Int64", "age_seconds": "float64"})
    frame.insert(frame.columns.get_loc("age_seconds") + 1, "age", pd.to_timedelta(frame["age_seconds"], unit="s").dt.floor("s"))
    return _categorised(frame)


def _query(sql: str, params: dict, name: str, engine: Engine | None, *, work_mem: str | None = None) -> pd.DataFrame:
    """run_query on the analytics engine (the replica when configured), `work_mem` for this query only; times to UTC."""
    with schema_required("the job analyses"):
        frame = run_query(sql, params, name=name, engine=engine or get_engine(replica=True), settings={"work_mem": work_mem} if work_mem else None)
    for column in frame.columns:
        if column in {"bucket", "created_at", "first_seen", "last_seen"}:
            frame[column] = pd.to_datetime(frame[column], utc=True)
    return frame


def _categorised(frame: pd.DataFrame) -> pd.DataFrame:
    """status and extraction_type as categories listing every known value (then any unknown one found)."""
    for column, known in (("status", JOB_STATUSES), ("extraction_type", EXTRACTION_TYPES)):
        if column in frame:
            values = frame[column].astype("category")
            extra = sorted(set(values.cat.categories) - set(known))
            frame[column] = values.cat.set_categories([*known, *extra])
    return frame


def _time_bound(value: str | timedelta | datetime, name: str) -> tuple[str, dict]:
    """SQL for a point in time as the server's wall clock: a duration back from now, or a timestamp (naive = UTC)."""
    if isinstance(value, datetime | pd.Timestamp) or (isinstance(value, str) and _looks_like_date(value)):
        try:
            moment = pd.Timestamp(value)
        except ValueError:
            raise InputError(f"{name} {value!r} is not a time", fix="give a duration back from now ('24h') or a timestamp ('2025-01-31 12:00')", params=name) from None
        moment = moment.tz_localize("UTC") if moment.tzinfo is None else moment.tz_convert("UTC")
        return f"({_AT_UTC.format(f'CAST(:{name} AS timestamptz)')})", {name: moment.isoformat()}
    return f"(localtimestamp - make_interval(secs => :{name}))", {name: duration(value, name=name).total_seconds()}


def _looks_like_date(text: str) -> bool:
    return bool(re.match(r"^\s*\d{4}-\d{2}-\d{2}", text))


def _filters(
    status: str | list[str] | None = None,
    extraction_type: str | list[str] | None = None,
    project_id: int | list[int] | None = None,
    since: str | timedelta | datetime | None = None,
    until: str | timedelta | datetime | None = None,
) -> tuple[str, dict]:
    """A WHERE clause over `j` (extraction_jobs) with bound parameters, every value checked first."""
    clauses, params = [], {}
    projects = None if project_id is None else [project_id] if isinstance(project_id, int) else list(project_id)
    for column, values in (
        ("status", choices(status, JOB_STATUSES, name="status")),
        ("extraction_type", choices(extraction_type, EXTRACTION_TYPES, name="extraction_type")),
        ("project_id", projects and [number(v, name="project_id", minimum=1, integer=True) for v in projects]),
    ):
        if values is not None:
            names = [f"{column}_{i}" for i in range(len(values))]
            clauses.append(f"j.{column} IN ({', '.join(':' + n for n in names)})" if names else "FALSE")
            params.update(zip(names, values))
    for name, value, operator in (("since", since, ">="), ("until", until, "<")):
        if value is not None:
            bound, bound_params = _time_bound(value, name)
            clauses.append(f"j.created_at {operator} {bound}")
            params.update(bound_params)
    return ("WHERE " + "\n          AND ".join(clauses)) if clauses else "", params


def _jobs_query(
    status=None, extraction_type=None, project_id=None, since=None, until=None, limit=None, with_project=False, organization=True
) -> tuple[str, tuple]:
    """jobs_frame's SQL with positional ($n) parameters for the ADBC driver; `organization` adds the project's organization (id and slug)."""
    where, params = _filters(status, extraction_type, project_id, since, until)
    if limit is not None:
        params["limit"] = number(limit, name="limit", minimum=1, integer=True)
    sql = f"""
        SELECT j.id,
               j.project_id,{" p.organization_id, o.slug AS organization," if organization else ""}{" p.name AS project_name," if with_project else ""}
               j.extraction_type,
               j.status,
               j.source_url,
               {_AT_UTC.format("j.created_at")} AS created_at,
               {_AT_UTC.format("j.completed_at")} AS completed_at,
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
    frame = _categorised(table.to_pandas(types_mapper={pa.int32(): pd.Int64Dtype(), pa.int64(): pd.Int64Dtype()}.get))
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

