"""The analyses on-call needs of extraction jobs: summary, throughput, failures, stuck jobs.

Aggregations run in SQL (read-only, under a statement timeout, tagged
`/* copythat-ops:NAME */`) on the replica when DATABASE_REPLICA_URL is set.

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

from datetime import datetime, timedelta

import pandas as pd
from sqlalchemy.engine import Engine

from ..engine import get_engine, run_query
from ..errors import InputError, schema_required
from ..validate import choices, duration, number
from .filters import AT_UTC, categorised, job_filters, time_bound

SUMMARY_GROUPS = {"status": ["status"], "extraction_type": ["extraction_type"], "project": ["project_id", "project_name"]}
MAX_BUCKETS = 100_000
SORT_WORK_MEM = "128MB"  # this query only: the sorts behind the percentiles of a million jobs stay in memory (4MB spills: 5x slower)
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
    where, params = job_filters(since=since)
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
    return categorised(frame)


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
    start, params = time_bound(since, "since")
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
        SELECT {AT_UTC.format("k.bucket")} AS bucket,
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
    where, params = job_filters(status="failed", since=since)
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
               {AT_UTC.format("min(seen_at)")} AS first_seen,
               {AT_UTC.format("max(seen_at)")} AS last_seen,
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
               {AT_UTC.format("j.created_at")} AS created_at,
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
    return categorised(frame)


def _query(sql: str, params: dict, name: str, engine: Engine | None, *, work_mem: str | None = None) -> pd.DataFrame:
    """run_query on the analytics engine (the replica when configured), `work_mem` for this query only; times to UTC."""
    with schema_required("the job analyses"):
        frame = run_query(sql, params, name=name, engine=engine or get_engine(replica=True), settings={"work_mem": work_mem} if work_mem else None)
    for column in frame.columns:
        if column in {"bucket", "created_at", "first_seen", "last_seen"}:
            frame[column] = pd.to_datetime(frame[column], utc=True)
    return frame
