"""Trends: what changed over time, from the snapshots `capture()` recorded.

`growth()` compares each table now with N days ago; `query_trends()` and
`query_changes()` follow each statement's calls and mean time per interval and
around a deploy; `job_trends()` counts jobs finished per interval with the
failure rate against its usual range. Each reads the history of one source
(default: the monitored database) in one query and refuses, in one line,
when there is too little of it.

Example:
    >>> from copythat_ops import monitor
    >>> monitor.growth(days=0)
    Traceback (most recent call last):
    ...
    copythat_ops.errors.InputError: days must be above 0, not 0. Fix: give e.g. days=7
"""

from __future__ import annotations

from datetime import datetime, timedelta
from numbers import Real

import pandas as pd
from sqlalchemy.engine import Engine

from .. import validate
from ..errors import CopythatError, InputError
from .history import EPOCH, RECENT_SNAPSHOTS, SCHEMA, current_source, days_duration, read_history, validate_source
from .snapshot import snapshot



def positive_days(days: float, *, name: str = "days") -> float:
    """Return `days` when it is a number of days above 0.

    Example:
        >>> positive_days(7)
        7
    """
    if isinstance(days, bool) or not isinstance(days, Real) or pd.isna(days) or days <= 0:
        raise InputError(f"{name} must be above 0, not {days!r}", fix=f"give e.g. {name}=7", params=name)
    return days


def resolve_source(source: str | None, engine: Engine | None = None) -> str:
    """Return the history source to read: `source`, else the monitored database's name.

    Example:
        >>> isinstance(resolve_source(None), str)
        True
    """
    return validate_source(source) if source is not None else current_source(engine=engine)


def not_enough_history(source: str, what: str, found: int, span_days: float | None, need: str) -> CopythatError:
    """The error of a trend or forecast that has too little history to go on.

    Example:
        >>> print(not_enough_history("copythat", "growth", 1, 0.0, "two snapshots").problem)
        growth() needs two snapshots of history for 'copythat'; there is 1 snapshot
    """
    have = f"{found} snapshot{'s' if found != 1 else ''}" + (f" over {span_days:.2f} days" if span_days is not None and found > 1 else "")
    return CopythatError(
        f"{what}() needs {need} of history for {source!r}; there {'is' if found == 1 else 'are'} {have}",
        fix="capture snapshots over time: copythat-ops monitor capture from cron every few minutes (or --every 5min), then ask again",
    )


def growth(days: float = 7, *, source: str | None = None, engine: Engine | None = None) -> pd.DataFrame:
    """Return each table's size and rows now and `days` ago (the snapshot nearest that time), and its growth per day; fastest growing first.

    `days_apart` says how far apart the two snapshots really are; a table
    created since has no earlier size. Refuses with fewer than two snapshots.

    Example:
        >>> from copythat_ops.seed import seed_history
        >>> seed_history(days=7, every="1d")["snapshots"]      # demo history, a snapshot a day
        8
        >>> growth(days=7).columns.tolist()[:4]
        ['schema', 'table', 'size_bytes_then', 'size_bytes_now']
    """
    positive_days(days)
    with snapshot(engine):
        name = resolve_source(source)
        found = read_history(
            f"""
            WITH s AS (
                SELECT id, bucket
                FROM {SCHEMA}.snapshots
                WHERE source = :source
            ),
            latest AS (
                SELECT id, bucket
                FROM s
                ORDER BY bucket DESC
                LIMIT 1
            ),
            past AS (
                SELECT s.id, s.bucket
                FROM s, latest AS l
                WHERE s.id <> l.id
                ORDER BY abs(extract(epoch FROM s.bucket - (l.bucket - make_interval(secs => :seconds)))), s.bucket
                LIMIT 1
            ),
            pair AS (
                SELECT l.id AS now_id, p.id AS then_id, extract(epoch FROM l.bucket - p.bucket) / 86400 AS days_apart
                FROM latest AS l, past AS p
            ),
            n AS (
                SELECT *
                FROM {SCHEMA}.table_sizes
                WHERE snapshot_id = (SELECT now_id FROM pair)
            ),
            t AS (
                SELECT *
                FROM {SCHEMA}.table_sizes
                WHERE snapshot_id = (SELECT then_id FROM pair)
            )
            SELECT coalesce(n."schema", t."schema") AS schema,
                   coalesce(n."table", t."table") AS "table",
                   t.total_bytes AS size_bytes_then,
                   n.total_bytes AS size_bytes_now,
                   n.total_bytes - t.total_bytes AS growth_bytes,
                   round(((n.total_bytes - t.total_bytes) / pair.days_apart)::numeric)::float8 AS bytes_per_day,
                   t.live_rows AS rows_then,
                   n.live_rows AS rows_now,
                   round(((n.live_rows - t.live_rows) / pair.days_apart)::numeric, 1)::float8 AS rows_per_day,
                   pg_size_pretty(n.total_bytes) AS size_now,
                   round(pair.days_apart::numeric, 2)::float8 AS days_apart
            FROM n
            FULL JOIN t ON t."schema" = n."schema" AND t."table" = n."table"
            CROSS JOIN pair
            ORDER BY bytes_per_day DESC NULLS LAST, schema, "table"
            """,
            {"source": name, "seconds": float(days) * 86400},
            name="growth",
        )
        if found.empty:
            count = _snapshot_count(name)
            if count < 2:
                raise not_enough_history(name, "growth", count, None, "two snapshots")
    return found.astype({c: "Int64" for c in ("size_bytes_then", "size_bytes_now", "growth_bytes", "rows_then", "rows_now")})


def query_trends(
    since: str | datetime | None = None,
    *,
    interval: str | timedelta = "1h",
    days: float = 7,
    top: int = 10,
    source: str | None = None,
    engine: Engine | None = None,
) -> pd.DataFrame:
    """Return the `top` statements' calls and mean time per `interval` over the last `days`, with `period` "before" / "after" `since` (e.g. a deploy at "2026-11-25 14:05").

    Calls and time are what each interval added (a reset of the statistics
    starts the count again). Top means most total time in the window. Refuses
    with fewer than two snapshots that hold statement statistics.

    Example:
        >>> query_trends(days=0)
        Traceback (most recent call last):
        ...
        copythat_ops.errors.InputError: days must be above 0, not 0. Fix: give e.g. days=7
    """
    positive_days(days)
    step = days_duration(interval, name="interval")
    validate.number(top, name="top", minimum=1, integer=True)
    cut = _timestamp(since, name="since")
    with snapshot(engine):
        name = resolve_source(source)
        deltas = _statement_deltas(name, days, step)
    if deltas.empty:
        return pd.DataFrame(columns=["query_id", "query", "bucket", "calls", "total_ms", "mean_ms", "period"])
    leaders = deltas.groupby("query_id")["total_ms"].sum().nlargest(top).index
    trend = deltas[deltas["query_id"].isin(leaders)].copy()
    trend["mean_ms"] = (trend["total_ms"] / trend["calls"].where(trend["calls"] > 0)).round(3)
    trend["period"] = None if cut is None else trend["bucket"].map(lambda b: "after" if b >= cut else "before")
    return trend[["query_id", "query", "bucket", "calls", "total_ms", "mean_ms", "period"]].sort_values(["query_id", "bucket"], ignore_index=True)


def query_changes(since: str | datetime, *, days: float = 7, top: int = 20, source: str | None = None, engine: Engine | None = None) -> pd.DataFrame:
    """Return each statement's calls and mean time before and after `since` (over the last `days`), and the change in %, the most slowed first.

    Example:
        >>> query_changes("yesterday")
        Traceback (most recent call last):
        ...
        copythat_ops.errors.InputError: since 'yesterday' is not a time. Fix: give a time such as '2026-11-25 14:05' (UTC unless it says otherwise)
    """
    positive_days(days)
    validate.number(top, name="top", minimum=1, integer=True)
    cut = _timestamp(since, name="since")
    with snapshot(engine):
        name = resolve_source(source)
        deltas = _statement_deltas(name, days, timedelta(seconds=1))
    columns = ["query_id", "query", "calls_before", "mean_ms_before", "calls_after", "mean_ms_after", "change_percent"]
    if deltas.empty:
        return pd.DataFrame(columns=columns)
    deltas["period"] = deltas["bucket"].map(lambda b: "after" if b >= cut else "before")
    sums = deltas.groupby(["query_id", "query", "period"], dropna=False)[["calls", "total_ms"]].sum().unstack("period", fill_value=0)
    out = pd.DataFrame(index=sums.index)
    for period in ("before", "after"):
        calls = sums["calls"][period] if period in sums["calls"] else 0
        ms = sums["total_ms"][period] if period in sums["total_ms"] else 0
        out[f"calls_{period}"] = calls
        out[f"mean_ms_{period}"] = (ms / pd.Series(calls, index=out.index).where(lambda c: c > 0)).round(3)
    out["change_percent"] = (100 * (out["mean_ms_after"] / out["mean_ms_before"] - 1)).round(1)
    out = out.reset_index().sort_values(["change_percent", "calls_after"], ascending=False, na_position="last", ignore_index=True)
    return out[columns].head(top)


def job_trends(interval: str | timedelta = "1h", *, days: float = 7, source: str | None = None, engine: Engine | None = None) -> pd.DataFrame:
    """Return per `interval` the jobs completed and failed in it, the pending and processing at its end, the failure rate and its usual band.

    Finished counts are the growth of the completed and failed totals between
    snapshots. `usual_low` / `usual_high` bound the usual failure rate: the
    window's quartiles widened by 1.5 times their distance (Tukey's fences),
    and never narrower than 3 binomial standard deviations of the median rate
    for the jobs that interval finished; `unusual` marks an interval outside.

    Example:
        >>> job_trends(days=-1)
        Traceback (most recent call last):
        ...
        copythat_ops.errors.InputError: days must be above 0, not -1. Fix: give e.g. days=7
    """
    positive_days(days)
    step = days_duration(interval, name="interval")
    with snapshot(engine):
        name = resolve_source(source)
        out = read_history(
            f"""
            WITH levels AS (
                SELECT s.bucket,
                       coalesce(sum(j.jobs) FILTER (WHERE j.status = 'completed'), 0) AS completed,
                       coalesce(sum(j.jobs) FILTER (WHERE j.status = 'failed'), 0) AS failed,
                       coalesce(sum(j.jobs) FILTER (WHERE j.status = 'pending'), 0) AS pending,
                       coalesce(sum(j.jobs) FILTER (WHERE j.status = 'processing'), 0) AS processing
                FROM {SCHEMA}.snapshots AS s
                JOIN {SCHEMA}.jobs AS j ON j.snapshot_id = s.id
                WHERE s.source = :source
                  AND s.bucket >= (SELECT max(bucket) FROM {SCHEMA}.snapshots WHERE source = :source) - make_interval(secs => :seconds)
                GROUP BY s.bucket
            ),
            changes AS (
                SELECT bucket,
                       greatest(completed - lag(completed) OVER w, 0) AS completed,
                       greatest(failed - lag(failed) OVER w, 0) AS failed,
                       pending,
                       processing,
                       row_number() OVER w AS n
                FROM levels
                WINDOW w AS (ORDER BY bucket)
            )
            SELECT date_bin(make_interval(secs => :step), bucket, :epoch) AS bucket,
                   (sum(completed) FILTER (WHERE n > 1))::bigint AS completed,
                   (sum(failed) FILTER (WHERE n > 1))::bigint AS failed,
                   ((array_agg(pending ORDER BY bucket DESC))[1])::bigint AS pending,
                   ((array_agg(processing ORDER BY bucket DESC))[1])::bigint AS processing
            FROM changes
            GROUP BY 1
            HAVING count(*) FILTER (WHERE n > 1) > 0
            ORDER BY 1
            """,
            {"source": name, "seconds": float(days) * 86400, "step": step.total_seconds(), "epoch": EPOCH},
            name="job_trends",
        )
        if out.empty:
            raise not_enough_history(name, "job_trends", _snapshot_count(name), None, "two snapshots with job counts")
    columns = ["bucket", "completed", "failed", "pending", "processing", "failure_rate", "usual_low", "usual_high", "unusual"]
    out["bucket"] = pd.to_datetime(out["bucket"], utc=True)
    total = out["completed"] + out["failed"]
    out["failure_rate"] = (out["failed"] / total.where(total > 0)).round(4)
    # The usual range: Tukey's fences around the window's quartiles, widened to 3 binomial standard
    # deviations of the median rate for the jobs the interval finished (few jobs, wide range).
    q1, median, q3 = (out["failure_rate"].quantile(q) for q in (0.25, 0.5, 0.75))
    noise = 3 * (median * (1 - median) / total.where(total > 0)) ** 0.5
    out["usual_low"] = pd.concat([pd.Series(q1 - 1.5 * (q3 - q1), index=out.index), median - noise], axis=1).min(axis=1).clip(lower=0).round(4)
    out["usual_high"] = pd.concat([pd.Series(q3 + 1.5 * (q3 - q1), index=out.index), median + noise], axis=1).max(axis=1).clip(upper=1).round(4)
    out["unusual"] = ((out["failure_rate"] < out["usual_low"]) | (out["failure_rate"] > out["usual_high"])).fillna(False).astype(bool)
    return out[columns].astype({"completed": "int64", "failed": "int64", "pending": "int64", "processing": "int64"})


def _statement_deltas(source: str, days: float, step: timedelta) -> pd.DataFrame:
    """Calls and milliseconds each statement added per `step`, over the last `days` of the source's history."""
    rows = read_history(
        f"""
        WITH {RECENT_SNAPSHOTS},
        d AS (
            SELECT s.bucket,
                   x.query_id,
                   CASE WHEN x.calls < lag(x.calls) OVER w THEN x.calls ELSE x.calls - lag(x.calls) OVER w END AS calls,
                   CASE WHEN x.calls < lag(x.calls) OVER w THEN x.total_ms ELSE x.total_ms - lag(x.total_ms) OVER w END AS total_ms
            FROM s
            JOIN {SCHEMA}.statements AS x ON x.snapshot_id = s.id
            WINDOW w AS (PARTITION BY x.query_id, x.user_name ORDER BY s.bucket)
        )
        SELECT date_bin(make_interval(secs => :step), d.bucket, :epoch) AS bucket,
               d.query_id,
               t.query,
               sum(d.calls)::bigint AS calls,
               round(sum(d.total_ms)::numeric, 3)::float8 AS total_ms
        FROM d
        LEFT JOIN {SCHEMA}.statement_texts AS t ON t.source = :source AND t.query_id = d.query_id
        WHERE d.calls IS NOT NULL
        GROUP BY 1, d.query_id, t.query
        ORDER BY 1, d.query_id
        """,
        {"source": source, "seconds": float(days) * 86400, "step": step.total_seconds(), "epoch": EPOCH},
        name="statement_deltas",
    )
    if not rows.empty:
        rows["bucket"] = pd.to_datetime(rows["bucket"], utc=True)
    return rows


def _snapshot_count(source: str) -> int:
    return int(read_history(f"SELECT count(*) AS n FROM {SCHEMA}.snapshots WHERE source = :source", {"source": source}, name="count")["n"][0])


def _timestamp(value: str | datetime | None, *, name: str) -> pd.Timestamp | None:
    """`value` as a UTC timestamp (naive times are UTC), or None."""
    if value is None:
        return None
    try:
        stamp = pd.Timestamp(value)
    except (ValueError, TypeError):
        stamp = None
    if stamp is None or pd.isna(stamp):
        raise InputError(f"{name} {value!r} is not a time", fix="give a time such as '2026-11-25 14:05' (UTC unless it says otherwise)", params=name)
    return stamp.tz_localize("UTC") if stamp.tzinfo is None else stamp.tz_convert("UTC")


def connection_history(*, days: float = 7, source: str | None = None, engine: Engine | None = None) -> pd.DataFrame:
    """Return the connections of each captured snapshot of the last `days`, by state: one row per snapshot and state.

    Example:
        >>> connection_history().columns.tolist()
        ['bucket', 'state', 'connections']
    """
    positive_days(days)
    with snapshot(engine):
        return _series(
            f"""
            SELECT s.bucket,
                   coalesce(c.state, '(none)') AS state,
                   sum(c.connections)::bigint AS connections
            FROM {SCHEMA}.snapshots AS s
            JOIN {SCHEMA}.connections AS c ON c.snapshot_id = s.id
            WHERE s.source = :source
              AND s.bucket >= (SELECT max(bucket) FROM {SCHEMA}.snapshots WHERE source = :source) - make_interval(secs => :seconds)
            GROUP BY s.bucket, 2
            ORDER BY s.bucket, 2
            """,
            resolve_source(source),
            days,
            "connection_history",
        )


def size_history(*, days: float = 30, top: int = 5, source: str | None = None, engine: Engine | None = None) -> pd.DataFrame:
    """Return the total size of the `top` largest tables (largest in the latest snapshot) at each snapshot of the last `days`.

    Example:
        >>> size_history().columns.tolist()
        ['bucket', 'schema', 'table', 'total_bytes']
    """
    positive_days(days)
    validate.number(top, name="top", minimum=1, integer=True)
    with snapshot(engine):
        return _series(
            f"""
            WITH {RECENT_SNAPSHOTS},
            largest AS (
                SELECT "schema", "table"
                FROM {SCHEMA}.table_sizes
                WHERE snapshot_id = (SELECT id FROM s ORDER BY bucket DESC LIMIT 1)
                ORDER BY total_bytes DESC, "schema", "table"
                LIMIT :top
            )
            SELECT s.bucket,
                   t."schema" AS schema,
                   t."table",
                   t.total_bytes
            FROM s
            JOIN {SCHEMA}.table_sizes AS t ON t.snapshot_id = s.id
            JOIN largest AS l ON l."schema" = t."schema" AND l."table" = t."table"
            ORDER BY s.bucket, t."schema", t."table"
            """,
            resolve_source(source),
            days,
            "size_history",
            {"top": top},
        )


def sequence_history(*, days: float = 30, source: str | None = None, engine: Engine | None = None) -> pd.DataFrame:
    """Return each sequence's last value and its column type's maximum at each snapshot of the last `days`.

    Example:
        >>> sequence_history().columns.tolist()
        ['bucket', 'schema', 'sequence', 'last_value', 'max_value', 'percent_used']
    """
    positive_days(days)
    with snapshot(engine):
        return _series(
            f"""
            SELECT s.bucket,
                   q."schema" AS schema,
                   q."sequence",
                   q.last_value::text AS last_value,
                   q.max_value::text AS max_value,
                   round(100.0 * q.last_value / nullif(q.max_value, 0), 6)::float8 AS percent_used
            FROM {SCHEMA}.snapshots AS s
            JOIN {SCHEMA}.sequences AS q ON q.snapshot_id = s.id
            WHERE s.source = :source
              AND s.bucket >= (SELECT max(bucket) FROM {SCHEMA}.snapshots WHERE source = :source) - make_interval(secs => :seconds)
            ORDER BY s.bucket, q."schema", q."sequence"
            """,
            resolve_source(source),
            days,
            "sequence_history",
            whole=("last_value", "max_value"),
        )


def _series(sql: str, source: str, days: float, name: str, params: dict | None = None, *, whole: tuple[str, ...] = ()) -> pd.DataFrame:
    """A time series read from the history: `bucket` as UTC times, `whole` columns (read as text) as whole numbers."""
    rows = read_history(sql, {"source": source, "seconds": float(days) * 86400, **(params or {})}, name=name)
    rows["bucket"] = pd.to_datetime(rows["bucket"], utc=True)
    for column in whole:
        rows[column] = pd.array([None if v is None or pd.isna(v) else int(v) for v in rows[column]], dtype="Int64")
    return rows
