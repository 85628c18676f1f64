"""The analyses on-call needs of extraction jobs: summary, throughput, failures, stuck jobs.

Their cost does not grow with the table. They read the rollups of revision
9e4b2c7d1f60 (schema `copythat_rollups`, kept by triggers on extraction_jobs,
exact at every commit) and the indexes it adds; a window (`since`) reads only
the jobs created in it, through an index. `docs/jobs.md` ("How each answer is
computed") says which function reads what. On a database before that revision,
or while its rollups are still filling, they answer from the table itself (the
same numbers, read slower) and a `RollupsUnavailable` warning says so, once
per process.

Durations are counted in buckets 10 % wide (`copythat_rollups.duration_bucket`),
so p50 / p95 / max are the nearest-rank value's bucket, reported as its
geometric middle: within 4.9 % of the exact value.

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

import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime, timedelta

import pandas as pd
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.exc import DBAPIError

from ..engine import connection, get_engine, run_query
from ..errors import InputError, schema_required
from ..models import FAILURE_REASON
from ..validate import choices, duration, number
from .filters import AT_UTC, categorised, job_filters, time_bound

SUMMARY_GROUPS = {"status": ["status"], "extraction_type": ["extraction_type"], "project": ["project_id", "project_name"]}
MAX_BUCKETS = 100_000
ROLLUPS_REVISION = "9e4b2c7d1f60"
UNFINISHED_BUCKET = -32768  # duration_bucket of a job without completed_at
ZERO_BUCKET = -32767  # duration_bucket of a job done in a millisecond or less (reported as 0 s)
BUCKET_ERROR = 1.1**0.5 - 1  # a bucket's middle is within 4.88 % of any duration in it

# Where an answer comes from.
ROLLUPS = "rollups"  # the rollups are complete: counts from copythat_rollups, probes on its indexes
FILLING = "filling"  # the revision is there, its fill is not done: the table, with the revision's functions
MISSING = "missing"  # before the revision (or a role that may not read it): the table, with the same functions inline

# One look per call, in its own read: a database before the revision has no such table (nor schema).
_FILL = """
    SELECT coalesce(bool_and(f.complete), false) AS complete,
           max(f.filled_to) AS filled_to
    FROM copythat_rollups.fill_state f
"""
_UNDEFINED = {"42P01", "3F000"}  # undefined_table, invalid_schema_name: no rollups
_DENIED = "42501"  # insufficient_privilege: a role that may not read them (as copythat_app)

# The revision's functions, as SQL over an expression: the database's own where the revision is there
# (so a window and the rollups bucket and fold exactly alike), the same definitions inline before it.
_DATABASE_SQL = {
    "bucket": "copythat_rollups.duration_bucket({})",
    "seconds": "copythat_rollups.bucket_seconds({})",
    "reason": "copythat_rollups.failure_reason({})",
}
_INLINE_SQL = {
    "bucket": f"""(CASE
                       WHEN ({{0}}) IS NULL THEN {UNFINISHED_BUCKET}
                       WHEN ({{0}}) <= 0.001 THEN {ZERO_BUCKET}
                       ELSE floor(ln({{0}}) / ln(1.1::float8))::smallint
                   END)""",
    "seconds": f"(CASE WHEN ({{0}}) = {UNFINISHED_BUCKET} THEN NULL WHEN ({{0}}) = {ZERO_BUCKET} THEN 0 ELSE 1.1::float8 ^ (({{0}}) + 0.5::float8) END)",
    # the models' folding, the message's column as {0}
    "reason": FAILURE_REASON.replace("{", "{{").replace("}", "}}").replace("error_message", "({0})"),
}
_DURATION = "date_part('epoch', j.completed_at - j.created_at)"
_SEEN_AT = "coalesce(j.completed_at, j.created_at)"

_warned: set[str] = set()


class RollupsUnavailable(UserWarning):
    """An analysis answered from extraction_jobs itself (its cost grows with the table): no rollups yet, or still filling. Said once per process."""


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
    completed_at over the jobs that have one). Largest group first; `since`
    counts only jobs created since then.

    Counts and failure_rate are exact. Durations are counted in 10 % buckets:
    a percentile is the nearest-rank job's bucket (max the longest one's),
    reported as the bucket's geometric middle, within 4.9 % of the exact value
    (0 for a millisecond or less). Without `since` it reads the rollup
    copythat_rollups.job_counts (cost grows with the groups, not the jobs); with
    `since`, the jobs created in the window, from an index.

    Example:
        >>> job_summary(by=["extraction_type", "status"]).head(3)[["extraction_type", "status", "jobs"]]
          extraction_type     status  jobs
        0           color  completed   164
        1             all  completed   106
        2      typography  completed   101
        >>> done = job_summary(by="status").set_index("status").loc["completed"]
        >>> bool(0 < done["p50_seconds"] <= done["p95_seconds"] <= done["max_seconds"])
        True
    """
    groups = [column for name in choices(by, SUMMARY_GROUPS, name="by") for column in SUMMARY_GROUPS[name]]
    where, params = job_filters(since=since)
    keys = [c for c in groups if c != "project_name"]
    cell_keys = list(dict.fromkeys([*keys, "status"]))
    with _reading(engine) as (conn, source):
        sql = _functions(source)
        if source == ROLLUPS and since is None:
            cells = f"""
            SELECT {", ".join(f"c.{k}" for k in cell_keys)}, c.duration_bucket AS bucket, sum(c.jobs) AS jobs
            FROM copythat_rollups.job_counts c
            WHERE c.jobs > 0
            GROUP BY {", ".join(f"c.{k}" for k in cell_keys)}, c.duration_bucket"""
        else:
            cells = f"""
            SELECT {", ".join(f"j.{k}" for k in cell_keys)}, {sql["bucket"].format(_DURATION)} AS bucket, count(*) AS jobs
            FROM extraction_jobs j
            {where}
            GROUP BY {", ".join(str(i) for i in range(1, len(cell_keys) + 2))}"""
        partition = ", ".join(keys)
        finished = f"FILTER (WHERE bucket <> {UNFINISHED_BUCKET})"
        named = ["p.name AS project_name" if c == "project_name" else f"g.{c}" for c in groups]
        join = "LEFT JOIN projects p ON p.id = g.project_id" if "project_id" in groups else ""
        frame = run_query(
            f"""
            WITH cells AS MATERIALIZED ({cells}  -- aggregated by hashing, no sort of the jobs
            ),
            running AS (
                SELECT cells.*,
                       sum(jobs) {finished} OVER (PARTITION BY {partition} ORDER BY bucket) AS up_to,
                       sum(jobs) {finished} OVER (PARTITION BY {partition}) AS finished
                FROM cells
            ),
            g AS (
                SELECT {partition},
                       sum(jobs) AS jobs,
                       coalesce(sum(jobs) FILTER (WHERE status = 'pending'), 0) AS pending,
                       coalesce(sum(jobs) FILTER (WHERE status = 'processing'), 0) AS processing,
                       coalesce(sum(jobs) FILTER (WHERE status = 'completed'), 0) AS completed,
                       coalesce(sum(jobs) FILTER (WHERE status = 'failed'), 0) AS failed,
                       min(bucket) FILTER (WHERE bucket <> {UNFINISHED_BUCKET} AND up_to >= ceil(0.5 * finished)) AS p50_bucket,
                       min(bucket) FILTER (WHERE bucket <> {UNFINISHED_BUCKET} AND up_to >= ceil(0.95 * finished)) AS p95_bucket,
                       max(bucket) {finished} AS max_bucket
                FROM running
                GROUP BY {partition}
            )
            SELECT {", ".join(named)},
                   g.jobs,
                   g.pending,
                   g.processing,
                   g.completed,
                   g.failed,
                   g.failed::float8 / nullif(g.completed + g.failed, 0) AS failure_rate,
                   {sql["seconds"].format("g.p50_bucket")} AS p50_seconds,
                   {sql["seconds"].format("g.p95_bucket")} AS p95_seconds,
                   {sql["seconds"].format("g.max_bucket")} AS max_seconds
            FROM g
            {join}
            ORDER BY g.jobs DESC, {", ".join(f"g.{k}" for k in keys)}
            """,
            params,
            name="job_summary",
            conn=conn,
        )
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
    last one holding now. A `freq` of whole minutes reads the per-minute rollup
    copythat_rollups.job_minutes (exact; cost grows with the minutes in the
    window); any other `freq` counts the jobs themselves.

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
    with _reading(engine) as (conn, source):
        if source == ROLLUPS and step % timedelta(minutes=1) == timedelta(0):
            counted = """
                SELECT date_bin((SELECT step FROM bounds), m.minute, TIMESTAMP '2000-01-01') AS bucket,
                       sum(m.created) AS created,
                       sum(m.completed) AS completed,
                       sum(m.failed) AS failed
                FROM copythat_rollups.job_minutes m
                WHERE m.minute >= (SELECT first_bucket FROM bounds)
                GROUP BY 1"""
        else:
            counted = """
                SELECT bucket, sum(created) AS created, sum(completed) AS completed, sum(failed) AS failed
                FROM events
                GROUP BY bucket"""
        frame = run_query(
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
            counted AS ({counted}
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
            name="job_throughput",
            conn=conn,
        )
    if frame.empty:
        raise InputError(
            f"freq {freq!r} since {since!r} makes more than {MAX_BUCKETS:,} buckets",
            fix="use a larger freq or a later since",
            params=("freq", "since"),
        )
    frame["bucket"] = pd.to_datetime(frame["bucket"], utc=True)
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
    completed_at, else created_at), example_job_id (the job last seen, the
    highest id among ties). Most frequent first; `since` counts only jobs
    created since then.

    Without `since`, the counts come from the rollup
    copythat_rollups.failure_reasons and the times and example from two probes
    per reason shown into an index (cost grows with the reasons, not the
    jobs); with `since`, from the failed jobs created in the window.

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
    with _reading(engine) as (conn, source):
        reason = _functions(source)["reason"].format("j.error_message")
        if source == ROLLUPS and since is None:
            sql = f"""
            WITH counted AS (
                SELECT r.reason,
                       r.jobs,
                       r.jobs::float8 / sum(r.jobs) OVER () AS share
                FROM copythat_rollups.failure_reasons r
                WHERE r.jobs > 0
                ORDER BY r.jobs DESC, r.reason
                LIMIT :top
            )
            SELECT c.reason,
                   c.jobs,
                   c.share,
                   {AT_UTC.format("first_job.seen_at")} AS first_seen,
                   {AT_UTC.format("last_job.seen_at")} AS last_seen,
                   last_job.id AS example_job_id
            FROM counted c
            LEFT JOIN LATERAL (
                SELECT {_SEEN_AT} AS seen_at
                FROM extraction_jobs j
                WHERE j.status = 'failed'
                  AND {reason} = c.reason
                ORDER BY {reason}, {_SEEN_AT}
                LIMIT 1
            ) AS first_job ON TRUE
            LEFT JOIN LATERAL (
                SELECT j.id,
                       {_SEEN_AT} AS seen_at
                FROM extraction_jobs j
                WHERE j.status = 'failed'
                  AND {reason} = c.reason
                ORDER BY {reason} DESC, {_SEEN_AT} DESC, j.id DESC
                LIMIT 1
            ) AS last_job ON TRUE
            ORDER BY c.jobs DESC, c.reason
            """
        else:
            sql = f"""
            WITH failed AS (
                SELECT j.id,
                       {_SEEN_AT} AS seen_at,
                       {reason} AS reason
                FROM extraction_jobs j
                {where}
            )
            SELECT reason,
                   count(*) AS jobs,
                   count(*)::float8 / sum(count(*)) OVER () AS share,
                   {AT_UTC.format("min(seen_at)")} AS first_seen,
                   {AT_UTC.format("max(seen_at)")} AS last_seen,
                   -- the latest (seen_at, id) in one pass, no sort: the largest [microseconds, id] pair
                   (max(ARRAY[(extract(epoch FROM seen_at) * 1000000)::bigint, id]))[2] AS example_job_id
            FROM failed
            GROUP BY reason
            ORDER BY jobs DESC, reason
            LIMIT :top
            """
        frame = run_query(sql, params, name="failure_reasons", conn=conn)
    for column in ("first_seen", "last_seen"):
        frame[column] = pd.to_datetime(frame[column], utc=True)
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
    It reads the partial index of unfinished jobs (ix_extraction_jobs_unfinished,
    on status and updated_at): its cost grows with the stuck jobs, not the table.

    Example:
        >>> stuck_jobs("30 min")[["id", "status"]]
            id      status
        0  402     pending
        1  452     pending
        2  182  processing
    """
    changed = "coalesce(j.updated_at, CAST(j.created_at AS timestamptz))"
    params = {"processing": duration(older_than, name="older_than").total_seconds()}
    waiting = [("processing", "processing")]
    if pending_older_than is not None:
        params["pending"] = duration(pending_older_than, name="pending_older_than").total_seconds()
        waiting.append(("pending", "pending"))
    # One range of the index per status, and the rare row without updated_at: each arm implies the index's
    # predicate (status IN ('pending', 'processing')) and is a range of (status, updated_at).
    arms = []
    for status, threshold in waiting:
        arms.append(f"(j.status = '{status}' AND j.updated_at < now() - make_interval(secs => :{threshold}))")
        arms.append(
            f"(j.status = '{status}' AND j.updated_at IS NULL AND CAST(j.created_at AS timestamptz) < now() - make_interval(secs => :{threshold}))"
        )
    with _reading(engine, state=False) as (conn, _source):
        frame = run_query(
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
            WHERE {(chr(10) + "               OR ").join(arms)}
            ORDER BY {changed}, j.id
            """,
            params,
            name="stuck_jobs",
            conn=conn,
        )
    frame["created_at"] = pd.to_datetime(frame["created_at"], utc=True)
    frame["updated_at"] = pd.to_datetime(frame["updated_at"], utc=True)
    frame = frame.astype({"id": "Int64", "project_id": "Int64", "age_seconds": "float64"})
    frame.insert(frame.columns.get_loc("age_seconds") + 1, "age", pd.to_timedelta(frame["age_seconds"], unit="s").dt.floor("s"))
    return categorised(frame)


@contextmanager
def _reading(engine: Engine | None, *, state: bool = True) -> Iterator[tuple[Connection, str]]:
    """A connection of the analytics engine (the replica when configured) and where to answer from; a missing table says to migrate.

    The warning that an answer came from the table is given once it came (an unmigrated database gets the MigrationError alone).
    """
    with schema_required("the job analyses"), connection(engine or get_engine(replica=True)) as conn:
        source, why = _state(conn) if state else (ROLLUPS, "")
        yield conn, source
    kind = why.split(" (")[0]  # once per kind of reason, whatever the count it gives
    if source != ROLLUPS and kind not in _warned:
        _warned.add(kind)
        warnings.warn(why, RollupsUnavailable, stacklevel=4)


def _state(conn: Connection) -> tuple[str, str]:
    """(ROLLUPS, FILLING or MISSING, and if not ROLLUPS what to say about it)."""
    slow = "the job analyses count extraction_jobs itself, so they slow down as it grows"
    try:
        fill = run_query(_FILL, name="job_rollups_state", conn=conn).iloc[0]
    except DBAPIError as exc:
        code = getattr(exc.orig, "pgcode", None)
        if code in _UNDEFINED:
            return MISSING, f"{slow}: the database has no rollups yet (revision {ROLLUPS_REVISION}). Fix: run `copythat-ops migrate upgrade`"
        if code == _DENIED:
            role = conn.exec_driver_sql("SELECT current_user").scalar()
            conn.rollback()
            return MISSING, (
                f"{slow}: this role may not read the rollups ({role} in schema copythat_rollups). "
                "Fix: connect as the database's owner (DATABASE_URL, or DATABASE_REPLICA_URL for analytics reads)"
            )
        raise
    if fill["complete"]:
        return ROLLUPS, ""
    counted = "no jobs yet" if pd.isna(fill["filled_to"]) else f"jobs up to id {int(fill['filled_to']):,}"
    return FILLING, (
        f"{slow}: its rollups are still filling ({counted} counted). "
        "Fix: let `copythat-ops migrate upgrade` finish, or run it again if it stopped (the fill resumes)"
    )


def _functions(source: str) -> dict[str, str]:
    """The revision's functions as SQL templates: the database's own when it has them, else inline."""
    return _INLINE_SQL if source == MISSING else _DATABASE_SQL
