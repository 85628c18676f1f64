"""History: snapshots of sizes, rows, sequences, connections, statements and jobs, captured into tables of their own.

`capture()` reads the monitored database (read-only, on one connection, one
query per kind whatever the size of the catalog) and writes one snapshot into
the schema `copythat_history` made by the history revision: in the monitored
database by default, as pghero does, or in the database `COPYTHAT_HISTORY_URL`
names (environment, then `.env`; `embedded` means the embedded PostgreSQL).
A snapshot belongs to a source (the monitored database's name) and a time
bucket of `interval`; the bucket is unique, so captures run from cron on
several hosts in the same interval keep one. `prune_history()` deletes
snapshots older than `keep` in small batches, each its own transaction.

Example:
    >>> from copythat_ops import monitor
    >>> monitor.capture(interval="1d")["status"]
    'captured'
    >>> monitor.capture(interval="1d")["status"]     # the same bucket: kept once
    'skipped'
"""

from __future__ import annotations

import os
import re
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import pandas as pd
from dotenv import dotenv_values
from sqlalchemy import text
from sqlalchemy.engine import Connection, Engine, URL

from .. import validate
from ..config import env_file, mask_url, normalize_url
from ..engine import connection, explain_lock_waits, get_engine, run_query
from ..errors import ConfigError, ConnectError, CopythatError, InputError, MigrationError
from .connections import connections
from .queries import query_stats_status
from .sequences import sequences
from .snapshot import query, snapshot
from .locks import LOCKED
from .space import INDEX_SIZE, INDEXES, USER_SCHEMAS

HISTORY_URL_VAR = "COPYTHAT_HISTORY_URL"
SCHEMA = "copythat_history"
REVISION = "a41f008744a3"
EPOCH = datetime(2000, 1, 1, tzinfo=UTC)
# The source's snapshots in the `:seconds` before its latest one: the `s` every trend and forecast starts from.
RECENT_SNAPSHOTS = f"""s AS (
    SELECT id, bucket, database_bytes
    FROM {SCHEMA}.snapshots
    WHERE source = :source
      AND bucket >= (SELECT max(bucket) FROM {SCHEMA}.snapshots WHERE source = :source) - make_interval(secs => :seconds)
)"""
PRUNE_BATCH = 20  # snapshots per DELETE (their rows go with them)
WRITE_TIMEOUT = "30s"
APPLY_FIX = (
    "apply the history revision to it: copythat-ops migrate upgrade (with DATABASE_URL set to that database), "
    f"or set {HISTORY_URL_VAR} to a database where it is applied"
)


def history_url() -> URL | None:
    """Return the database `COPYTHAT_HISTORY_URL` names (environment, then `.env`), or None: history then lives in the monitored database.

    `COPYTHAT_HISTORY_URL=embedded` keeps it in the embedded PostgreSQL.

    Example:
        >>> history_url() is None
        True
    """
    value = os.environ.get(HISTORY_URL_VAR)
    if value is None:
        path = env_file()
        value = dotenv_values(path).get(HISTORY_URL_VAR) if path else None
    if value is None:
        return None
    if not value.strip():
        raise ConfigError(f"{HISTORY_URL_VAR} is set but empty", fix=f"set it to postgresql://USER:PASSWORD@HOST/DB or to 'embedded', or unset it to keep history in the monitored database")
    if value.strip() == "embedded":
        from .. import embedded

        return embedded.start()
    try:
        return normalize_url(value)
    except ConfigError as exc:
        raise ConfigError(f"{HISTORY_URL_VAR}: {exc.problem}", fix=exc.fix) from None


def history_engine() -> Engine | None:
    """Return the engine of the history database when `COPYTHAT_HISTORY_URL` is set, else None (the monitored database keeps it).

    Example:
        >>> history_engine() is None
        True
    """
    url = history_url()
    return None if url is None else get_engine(url)


def read_history(sql: str, params: dict | None = None, *, name: str) -> pd.DataFrame:
    """Return the rows of a read of the history tables: from the history database, else through the monitored snapshot's connection.

    A missing history revision becomes a MigrationError saying how to apply it.

    Example:
        >>> int(read_history("SELECT count(*) AS n FROM copythat_history.snapshots", name="count")["n"][0])
        0
    """
    separate = history_engine()
    try:
        if separate is None:
            return query(sql, params, name=f"history.{name}")
        try:
            return run_query(sql, params, name=f"monitor.history.{name}", engine=separate, timeout="10s")
        except ConnectError as exc:
            raise _unreachable(exc, separate.url) from None
    except CopythatError:
        raise
    except Exception as exc:
        if f'relation "{SCHEMA}.' in str(getattr(exc, "orig", exc)) or f"schema \"{SCHEMA}\"" in str(getattr(exc, "orig", exc)):
            raise _missing(separate.url if separate is not None else None, writing=False) from None
        raise


def current_source(*, engine: Engine | None = None) -> str:
    """Return the name history keeps the monitored database under: its database name.

    Example:
        >>> isinstance(current_source(), str)
        True
    """
    return str(query("SELECT current_database() AS source", name="history.source", engine=engine)["source"][0])


def capture(
    *,
    interval: str | timedelta = "5min",
    keep: str | timedelta | None = None,
    source: str | None = None,
    engine: Engine | None = None,
) -> dict:
    """Record one snapshot of the monitored database into the history tables; return what was written.

    Table and index sizes with row estimates, sequence positions, connections by
    state and application, pg_stat_statements totals (when enabled) and job
    counts by status and type. `interval` (default 5min) is the time bucket: a
    second capture of the same source in the same bucket writes nothing and
    returns status "skipped". `keep` (e.g. "90d") then deletes older snapshots in
    batches (`prune_history`); a `keep` shorter than `interval` is refused, as it
    would delete the snapshot just written. `source` names the monitored database in the
    history (default: its database name). Nothing is written when the history
    revision is missing or the history database cannot be reached.

    Returns: status, source, bucket, snapshot_id, tables, indexes, sequences,
    connections, statements, jobs, pruned, seconds.

    Example:
        >>> result = capture(interval="1h")
        >>> result["status"], result["tables"] > 0
        ('captured', True)
    """
    started = time.perf_counter()
    every = days_duration(interval, name="interval")
    if every < timedelta(seconds=1):
        raise InputError(f"interval {interval!r} is shorter than a second", fix="give e.g. 5min", params="interval")
    keep_for = days_duration(keep, name="keep")
    _keep_covers(keep, keep_for, interval, every, "interval")
    separate = history_engine()
    if separate is not None:
        _check_history(separate)
    with snapshot(engine) as snap:
        facts = query(
            f"""
            SELECT current_database() AS database,
                   now() AS now,
                   pg_database_size(current_database()) AS database_bytes,
                   current_setting('server_version_num')::int AS server_version,
                   to_regclass('{SCHEMA}.snapshots') IS NOT NULL AS has_history,
                   to_regclass('public.extraction_jobs') IS NOT NULL AS has_jobs
            ORDER BY database
            """,
            name="history.facts",
        ).iloc[0]
        if separate is None and not facts["has_history"]:
            raise _missing(None)
        name = source or str(facts["database"])
        validate_source(name)
        bucket = _bucket(pd.Timestamp(facts["now"]).to_pydatetime(), every)
        result = {"status": "skipped", "source": name, "bucket": bucket, "snapshot_id": None}
        if _bucket_taken(name, bucket, snap.conn if separate is None else None, separate):
            return result | {"pruned": prune_history(keep_for, engine=engine) if keep_for else 0, "seconds": round(time.perf_counter() - started, 3)}
        frames = _read_everything(bool(facts["has_jobs"]))
        write = {"source": name, "bucket": bucket, "every": int(every.total_seconds()), "bytes": int(facts["database_bytes"]), "version": int(facts["server_version"])}
        if separate is None:
            snapshot_id = _write(snap.conn, write, frames)
        else:
            with _HistoryConnection(separate) as conn:
                snapshot_id = _write(conn, write, frames)
    counts = {kind: len(frame) for kind, frame in frames.items() if kind != "texts"}
    status = "captured" if snapshot_id is not None else "skipped"
    pruned = prune_history(keep_for, engine=engine) if keep_for else 0
    return result | {"status": status, "snapshot_id": snapshot_id} | counts | {"pruned": pruned, "seconds": round(time.perf_counter() - started, 3)}


def capture_loop(
    every: str | timedelta = "5min",
    *,
    keep: str | timedelta | None = None,
    times: int | None = None,
    report: Callable[[dict], None] | None = None,
    interval: str | timedelta | None = None,
    source: str | None = None,
    engine: Engine | None = None,
) -> list[dict]:
    """Capture every `every` (also the bucket, unless `interval` is given) until Ctrl-C, or `times` captures; return each capture's result.

    A capture that fails (the server restarting, a timeout) is reported with
    status "failed" and its reason, and the loop goes on; Ctrl-C stops it
    cleanly between or during captures (a capture cut short writes nothing).

    Example:
        >>> [r["status"] for r in capture_loop("1h", times=1)]
        ['captured']
    """
    step = days_duration(every, name="every")
    bucket = days_duration(interval, name="interval") if interval is not None else step
    _keep_covers(keep, days_duration(keep, name="keep"), interval if interval is not None else every, bucket, "interval" if interval is not None else "every")
    if times is not None:
        validate.number(times, name="times", minimum=1, integer=True)
    results: list[dict] = []
    try:
        while times is None or len(results) < times:
            began = time.monotonic()
            try:
                result = capture(interval=interval or step, keep=keep, source=source, engine=engine)
            except (ConfigError, MigrationError, InputError):
                raise
            except CopythatError as exc:
                result = {"status": "failed", "reason": str(exc), "bucket": None}
            results.append(result)
            if report is not None:
                report(result)
            if times is not None and len(results) >= times:
                break
            time.sleep(max(0.0, step.total_seconds() - (time.monotonic() - began)))
    except KeyboardInterrupt:
        pass
    return results


def _keep_covers(keep, keep_for: timedelta | None, interval, every: timedelta, name: str) -> None:
    """Refuse a retention shorter than one bucket: the capture would delete the snapshot it just wrote."""
    if keep_for is not None and keep_for < every:
        raise InputError(
            f"keep {keep!r} is shorter than {name} {str(interval)!r}: each capture would delete the snapshot it just wrote",
            fix=f"make it at least the {name}, e.g. keep '90d'",
            params=("keep", name),
        )


def prune_history(keep: str | timedelta, *, batch: int = PRUNE_BATCH, engine: Engine | None = None) -> int:
    """Delete snapshots (with their rows) older than `keep`, `batch` snapshots per transaction; return how many were deleted.

    Every source's old snapshots go: retention is the history database's policy.

    Example:
        >>> prune_history("90d")
        0
    """
    keep_for = days_duration(keep, name="keep")
    validate.number(batch, name="batch", minimum=1, integer=True)
    separate = history_engine()
    target = separate or engine
    deleted = 0
    statement = text(
        f"""
        /* copythat-ops:monitor.history.prune */
        DELETE FROM {SCHEMA}.snapshots
        WHERE id IN (
            SELECT id
            FROM {SCHEMA}.snapshots
            WHERE bucket < now() - make_interval(secs => :seconds)
            ORDER BY bucket
            LIMIT :batch
        )
        """
    )
    waits = explain_lock_waits("monitor.history.prune", f"{SCHEMA} snapshots", engine=target, lock_timeout="1s", read_only=False)
    with waits, (_HistoryConnection(separate) if separate is not None else connection(target)) as conn:
        _require_tables(conn, None if separate is None else separate.url)
        while True:
            with conn.begin():
                conn.execute(text("SELECT set_config('statement_timeout', :t, true), set_config('lock_timeout', '1s', true)"), {"t": WRITE_TIMEOUT})
                done = conn.execute(statement, {"seconds": keep_for.total_seconds(), "batch": batch}).rowcount
            deleted += done
            if done < batch:
                return deleted


def history_summary(*, source: str | None = None, engine: Engine | None = None) -> pd.DataFrame:
    """Return how much history there is per source: snapshots, first and last capture, days covered, and whether it is synthetic demo data.

    Example:
        >>> history_summary().columns.tolist()
        ['source', 'snapshots', 'first', 'last', 'days', 'synthetic']
    """
    with snapshot(engine):
        return read_history(
            f"""
            SELECT source,
                   count(*) AS snapshots,
                   min(bucket) AS first,
                   max(bucket) AS last,
                   round((extract(epoch FROM max(bucket) - min(bucket)) / 86400)::numeric, 2)::float8 AS days,
                   bool_or(synthetic) AS synthetic
            FROM {SCHEMA}.snapshots
            WHERE (CAST(:source AS text) IS NULL OR source = :source)
            GROUP BY source
            ORDER BY source
            """,
            {"source": source},
            name="summary",
        )


def validate_source(source: str) -> str:
    """Return `source` when it is a usable name for a monitored database in the history (1-200 printable characters).

    Example:
        >>> validate_source("copythat")
        'copythat'
    """
    if not isinstance(source, str) or not source.strip() or len(source) > 200 or not source.isprintable():
        raise InputError(f"source {source!r} is not a usable name", fix="give the monitored database's name, e.g. 'copythat'", params="source")
    return source


def days_duration(value: str | timedelta | None, *, name: str) -> timedelta | None:
    """Return a positive duration, also written with a bare `d` for days ("90d"), or None for None.

    Example:
        >>> days_duration("90d", name="keep").days
        90
    """
    if value is None:
        return None
    if isinstance(value, str):
        value = re.sub(r"^\s*(\d+(?:\.\d+)?)\s*d\s*$", r"\1 days", value)
    return validate.duration(value, name=name, positive=True)


def _bucket(now: datetime, every: timedelta) -> datetime:
    """The start of the `every`-long bucket holding `now`, counted from 2000-01-01 UTC."""
    return EPOCH + ((now - EPOCH) // every) * every


def _read_everything(has_jobs: bool) -> dict[str, pd.DataFrame]:
    """Everything a snapshot records, read on the current snapshot's connection, one query per kind."""
    tables, indexes = _sizes()
    frames = {
        "tables": tables,
        "indexes": indexes,
        "sequences": sequences(),
        "connections": connections().groupby(["state", "application_name"], dropna=False, as_index=False)["connections"].sum(),
    }
    statements = pd.DataFrame(columns=["query_id", "user_name", "calls", "total_ms", "rows", "query"])
    if query_stats_status()["enabled"]:
        statements = query(
            """
            SELECT s.queryid AS query_id,
                   r.rolname AS user_name,
                   sum(s.calls)::bigint AS calls,
                   sum(s.total_exec_time + s.total_plan_time)::float8 AS total_ms,
                   sum(s.rows)::bigint AS rows,
                   min(s.query) AS query
            FROM pg_stat_statements AS s
            LEFT JOIN pg_roles AS r ON r.oid = s.userid
            WHERE s.dbid = (SELECT oid FROM pg_database WHERE datname = current_database())
              AND s.queryid IS NOT NULL
            GROUP BY s.queryid, r.rolname
            ORDER BY s.queryid, r.rolname
            """,
            name="history.statements",
        )
    frames["statements"] = statements
    frames["jobs"] = (
        query(
            """
            SELECT status,
                   extraction_type,
                   count(*) AS jobs
            FROM extraction_jobs
            GROUP BY status, extraction_type
            ORDER BY status, extraction_type
            """,
            name="history.jobs",
        )
        if has_jobs
        else pd.DataFrame(columns=["status", "extraction_type", "jobs"])
    )
    return frames


def _sizes() -> tuple[pd.DataFrame, pd.DataFrame]:
    """Every table's and index's size in one query: each index measured once (and summed for its table), each table in two calls.

    The same figures as `table_sizes()` and `index_sizes()`, with their lock
    safety: a relation another session locks gets the catalog's estimate.
    """
    found = query(
        f"""
        WITH {LOCKED},
        idx AS (
            SELECT n.nspname AS schema,
                   t.relname AS "table",
                   c.relname AS index,
                   t.oid AS table_oid,
                   {INDEX_SIZE} AS size_bytes
            FROM {INDEXES}
            LEFT JOIN locked AS lk ON lk.table_oid = t.oid
            WHERE {USER_SCHEMAS}
        ),
        tab AS (
            SELECT n.nspname AS schema,
                   c.relname AS "table",
                   CASE WHEN lk.reason IS NULL THEN pg_table_size(c.oid)
                        ELSE (c.relpages + coalesce((SELECT tc.relpages FROM pg_class AS tc WHERE tc.oid = c.reltoastrelid), 0))::bigint
                             * current_setting('block_size')::bigint
                   END AS with_toast,
                   CASE WHEN c.reltoastrelid = 0 THEN 0
                        WHEN lk.reason IS NULL THEN pg_total_relation_size(c.reltoastrelid)
                        ELSE coalesce((SELECT tc.relpages FROM pg_class AS tc WHERE tc.oid = c.reltoastrelid), 0)::bigint * current_setting('block_size')::bigint
                   END AS toast_bytes,
                   coalesce(ix.index_bytes, 0)::bigint AS index_bytes,
                   s.n_live_tup AS live_rows,
                   s.n_dead_tup AS dead_rows
            FROM pg_class AS c
            JOIN pg_namespace AS n ON n.oid = c.relnamespace
            LEFT JOIN pg_stat_user_tables AS s ON s.relid = c.oid
            LEFT JOIN locked AS lk ON lk.table_oid = c.oid
            LEFT JOIN (SELECT table_oid, sum(size_bytes) AS index_bytes FROM idx GROUP BY table_oid) AS ix ON ix.table_oid = c.oid
            WHERE c.relkind IN ('r', 'm', 'p')
              AND {USER_SCHEMAS}
        )
        SELECT 'table' AS kind, schema, "table", NULL AS index,
               greatest(with_toast - toast_bytes, 0) AS table_bytes, index_bytes, toast_bytes,
               greatest(with_toast - toast_bytes, 0) + index_bytes + toast_bytes AS total_bytes, live_rows, dead_rows
        FROM tab
        UNION ALL
        SELECT 'index', schema, "table", index, size_bytes, NULL, NULL, NULL, NULL, NULL
        FROM idx
        ORDER BY kind DESC, schema, "table", index
        """,
        name="history.sizes",
    )
    tables = found[found["kind"] == "table"].drop(columns=["kind", "index"])
    indexes = found[found["kind"] == "index"].rename(columns={"table_bytes": "size_bytes"})[["schema", "table", "index", "size_bytes"]]
    return tables, indexes


def _values(frame: pd.DataFrame, column: str, kind=str) -> list:
    """A column as plain Python values (psycopg2 adapts neither numpy numbers nor pandas' NA), missing as None."""
    if column not in frame:
        return [None] * len(frame)
    return [None if pd.isna(v) else kind(v) for v in frame[column].tolist()]


# What each child table takes from its frame: (column, SQL type, Python type).
COLUMNS = {
    "table_sizes": ("tables", [("schema", "text", str), ("table", "text", str), ("table_bytes", "bigint", int), ("index_bytes", "bigint", int),
                               ("toast_bytes", "bigint", int), ("total_bytes", "bigint", int), ("live_rows", "bigint", int), ("dead_rows", "bigint", int)]),
    "index_sizes": ("indexes", [("schema", "text", str), ("table", "text", str), ("index", "text", str), ("size_bytes", "bigint", int)]),
    "sequences": ("sequences", [("schema", "text", str), ("sequence", "text", str), ("table", "text", str), ("column", "text", str),
                                ("column_type", "text", str), ("last_value", "bigint", int), ("max_value", "bigint", int)]),
    "connections": ("connections", [("state", "text", str), ("application_name", "text", str), ("connections", "integer", int)]),
    "statements": ("statements", [("query_id", "bigint", int), ("user_name", "text", str), ("calls", "bigint", int), ("total_ms", "float8", float), ("rows", "bigint", int)]),
    "jobs": ("jobs", [("status", "text", str), ("extraction_type", "text", str), ("jobs", "bigint", int)]),
}  # fmt: skip


def insert_snapshot(conn: Connection, snap: dict, frames: dict[str, pd.DataFrame]) -> int | None:
    """Write one snapshot and its rows on `conn` in one transaction, one statement per table; None when its bucket is taken.

    `snap` holds source, bucket, every (seconds), bytes, version and optionally synthetic.

    Example:
        >>> snap = {"source": "demo", "bucket": datetime(2026, 11, 1, tzinfo=UTC), "every": 300, "bytes": 8_000_000, "version": 180000}
        >>> with connection() as conn:
        ...     insert_snapshot(conn, snap, {"jobs": pd.DataFrame({"status": ["failed"], "extraction_type": ["color"], "jobs": [3]})}) > 0
        True
    """
    with conn.begin() as tx:
        conn.execute(text("SELECT set_config('statement_timeout', :t, true), set_config('lock_timeout', '1s', true)"), {"t": WRITE_TIMEOUT})
        snapshot_id = conn.execute(
            text(
                f"""
                /* copythat-ops:monitor.history.capture */
                INSERT INTO {SCHEMA}.snapshots (source, bucket, interval_seconds, database_bytes, server_version, synthetic)
                VALUES (:source, :bucket, :every, :bytes, :version, :synthetic)
                ON CONFLICT (source, bucket) DO NOTHING
                RETURNING id
                """
            ),
            {"synthetic": False} | snap,
        ).scalar()
        if snapshot_id is None:
            tx.rollback()
            return None
        for table, (kind, columns) in COLUMNS.items():
            frame = frames.get(kind)
            if frame is None or frame.empty:
                continue
            names = ", ".join(f'"{c}"' for c, _, _ in columns)
            arrays = ", ".join(f"CAST(:{c} AS {t}[])" for c, t, _ in columns)
            conn.execute(
                text(f'INSERT INTO {SCHEMA}."{table}" (snapshot_id, {names}) SELECT :snapshot_id, * FROM unnest({arrays})'),
                {"snapshot_id": snapshot_id} | {c: _values(frame, c, kind_) for c, _, kind_ in columns},
            )
        texts = frames.get("statements")
        if texts is not None and not texts.empty and "query" in texts:
            conn.execute(
                text(
                    f"""
                    INSERT INTO {SCHEMA}.statement_texts (source, query_id, query)
                    SELECT DISTINCT ON (query_id) :source, query_id, query
                    FROM unnest(CAST(:ids AS bigint[]), CAST(:texts AS text[])) AS t (query_id, query)
                    WHERE query IS NOT NULL
                    ORDER BY query_id
                    ON CONFLICT (source, query_id) DO NOTHING
                    """
                ),
                {"source": snap["source"], "ids": _values(texts, "query_id", int), "texts": _values(texts, "query", str)},
            )
    return snapshot_id


def _write(conn: Connection, snap: dict, frames: dict[str, pd.DataFrame]) -> int | None:
    try:
        with explain_lock_waits("monitor.history.capture", f"{SCHEMA} {' '.join(COLUMNS)} snapshots", conn=conn, lock_timeout="1s", read_only=False):
            return insert_snapshot(conn, snap, frames)
    except Exception as exc:
        if f'"{SCHEMA}' in str(getattr(exc, "orig", exc)) and "does not exist" in str(getattr(exc, "orig", exc)):
            raise _missing(None) from None
        raise


def _bucket_taken(source: str, bucket: datetime, conn: Connection | None, separate: Engine | None) -> bool:
    sql = f"SELECT EXISTS (SELECT 1 FROM {SCHEMA}.snapshots WHERE source = :source AND bucket = :bucket) AS taken ORDER BY taken"
    params = {"source": source, "bucket": bucket}
    if separate is None:
        return bool(query(sql, params, name="history.bucket")["taken"][0])
    return bool(run_query(sql, params, name="monitor.history.bucket", engine=separate, timeout="10s")["taken"][0])


class _HistoryConnection:
    """A connection to the separate history database; a connect failure names COPYTHAT_HISTORY_URL."""

    def __init__(self, engine: Engine):
        self.engine = engine
        self._cm = None

    def __enter__(self) -> Connection:
        self._cm = connection(self.engine)
        try:
            return self._cm.__enter__()
        except ConnectError as exc:
            raise _unreachable(exc, self.engine.url) from None

    def __exit__(self, *exc):
        return self._cm.__exit__(*exc)


def _check_history(engine: Engine) -> None:
    """Refuse before reading anything when the history database cannot be reached or lacks the history tables."""
    with _HistoryConnection(engine) as conn:
        _require_tables(conn, engine.url)


def _require_tables(conn: Connection, url: URL | None) -> None:
    with conn.begin():
        present = conn.scalar(text(f"SELECT to_regclass('{SCHEMA}.snapshots') IS NOT NULL"))
    if not present:
        raise _missing(url)


def _missing(url: URL | None, *, writing: bool = True) -> MigrationError:
    where = f"the history database {mask_url(url)} ({HISTORY_URL_VAR})" if url is not None else "the monitored database"
    done = "; nothing was written" if writing else ""
    return MigrationError(f"{where} has no history tables ({SCHEMA}.snapshots){done}", fix=APPLY_FIX)


def _unreachable(exc: ConnectError, url: URL) -> ConnectError:
    return ConnectError(
        f"cannot use the history database of {HISTORY_URL_VAR} ({mask_url(url)}): {exc.problem}; nothing was written",
        fix=f"check {HISTORY_URL_VAR} (host, port, password) and that the server is up, or unset it to keep history in the monitored database",
    )
