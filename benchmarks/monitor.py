"""Benchmark the monitoring checks on a large catalog (not a test): time and statements of each check and of health().

Builds, in a scratch database it creates and drops, 2,000 tables with 5,000
indexes (a primary key and an index on every table, a covering index on every
other one) and 2,000 serial sequences, a few rows each. Then runs every
check and `health()` (median of --repeat runs) and counts the statements each
sends, with a SQLAlchemy `before_cursor_execute` listener. `health()` is also
measured on the empty database first: its statement count must not grow with
the catalog. Target: `health()` under 2 s.

Then the same `health()` during an incident: another session holds ACCESS
EXCLUSIVE on one table (LOCK TABLE in an open transaction) and an application
query waits behind it. The figure to compare is its time against the one
without the lock; every check must still report (none "could not run").

Last, the monitoring history: the scratch database is migrated (the history
tables), `capture()` is measured on the 2,000-table catalog (target under
1 s, with a fixed number of statements) and the history's
storage per snapshot printed in bytes; then 90 days of 5-minute snapshots of
a Copy That-sized database (HISTORY_TABLES tables, HISTORY_SEQUENCES
sequences: 25,920 snapshots) are written in SQL, and `growth()`,
`sequence_forecast()` and `job_trends()` timed over them (target under 1 s).

Usage:
    .venv/bin/python benchmarks/monitor.py                      # the embedded PostgreSQL
    .venv/bin/python benchmarks/monitor.py --url URL     # any server where the role may CREATE DATABASE
"""

from __future__ import annotations

import argparse
import statistics
import time
import uuid
from contextlib import contextmanager

import psycopg2
import psycopg2.extras
from sqlalchemy import create_engine, event, text
from sqlalchemy.pool import NullPool

from copythat_ops import embedded, monitor
from copythat_ops.config import mask_url, normalize_url
from copythat_ops.engine import dispose_engines, get_engine
from copythat_ops.errors import CopythatError

TARGET_SECONDS = 2.0
BATCH = 100  # tables per transaction: keeps the lock table within max_locks_per_transaction
CHECKS = [name for name in monitor.__all__ if name not in {"health", "verdict", "snapshot", "cancel_query", "terminate_backend", "pool_status",
                                                           "capture", "capture_loop", "prune_history"}]  # fmt: skip
HISTORY_TARGET_SECONDS = 1.0
HISTORY_TABLES, HISTORY_SEQUENCES, HISTORY_DAYS, HISTORY_EVERY_MINUTES = 10, 5, 90, 5


def build_catalog(engine, tables: int) -> None:
    conn = engine.raw_connection()  # plain psycopg2: the DO blocks' format() strings keep their %
    try:
        with conn.cursor() as cur:
            for first in range(1, tables + 1, BATCH):
                last = min(first + BATCH - 1, tables)
                cur.execute(
                    f"""
                    DO $$
                    BEGIN
                        FOR i IN {first}..{last} LOOP
                            EXECUTE format('CREATE TABLE %I (id serial PRIMARY KEY, a int, b int, note text)', 'bench_' || i);
                            EXECUTE format('CREATE INDEX ON %I (a)', 'bench_' || i);
                            IF i % 2 = 0 THEN
                                EXECUTE format('CREATE INDEX ON %I (a, b)', 'bench_' || i);
                            END IF;
                            EXECUTE format('INSERT INTO %I (a, b, note) SELECT g, mod(g, 7), md5(g::text) FROM generate_series(1, 5) AS g', 'bench_' || i);
                        END LOOP;
                    END
                    $$
                    """
                )
                conn.commit()
            cur.execute("SELECT setval('bench_1_id_seq', 2000000000)")  # one sequence past 90 % of its INTEGER ceiling
            cur.execute("ANALYZE")
            conn.commit()
    finally:
        conn.close()


def enable_statements(engine) -> bool:
    """Create pg_stat_statements where the role may, so query_stats and slow_queries are measured too."""
    conn = engine.raw_connection()
    try:
        with conn.cursor() as cur:
            cur.execute("CREATE EXTENSION IF NOT EXISTS pg_stat_statements")
        conn.commit()
        return True
    except psycopg2.Error as exc:
        print(f"pg_stat_statements not enabled ({str(exc).splitlines()[0]}): query_stats and slow_queries are skipped")
        return False
    finally:
        conn.close()


def measure(engine, func, repeat: int) -> tuple[float, int]:
    """Median seconds of `repeat` calls and the statements one call sends."""
    counter = {"statements": 0}

    def count(*_):
        counter["statements"] += 1

    event.listen(engine, "before_cursor_execute", count)
    try:
        times = []
        for _ in range(repeat):
            counter["statements"] = 0
            started = time.perf_counter()
            func(engine=engine)
            times.append(time.perf_counter() - started)
    finally:
        event.remove(engine, "before_cursor_execute", count)
    return statistics.median(times), counter["statements"]


@contextmanager
def exclusive_lock(url, table: str):
    """Another session holds ACCESS EXCLUSIVE on `table` in an open transaction, and an application query waits behind it."""
    args = {**url.translate_connect_args(username="user", database="dbname"), **url.query}
    holder = psycopg2.connect(**args, application_name="bench-lock-holder")
    waiter = psycopg2.connect(**args, application_name="bench-waiter", async_=True)
    try:
        psycopg2.extras.wait_select(waiter)
        with holder.cursor() as cur:
            cur.execute(f"LOCK TABLE {table} IN ACCESS EXCLUSIVE MODE")  # psycopg2 opened the transaction
        waiter.cursor().execute(f"SELECT count(*) FROM {table}")
        while monitor.blocked_queries(engine=get_engine(url)).empty:
            time.sleep(0.05)
        yield holder.info.backend_pid
    finally:
        holder.close()  # ends the transaction: the waiter's query then finishes
        try:
            psycopg2.extras.wait_select(waiter)
        except psycopg2.Error:
            pass
        waiter.close()


def history_benchmark(url, engine, repeat: int) -> None:
    """Capture on the large catalog, storage per snapshot, then trends and forecasts over 90 days of 5-minute snapshots."""
    from copythat_ops import migrations

    migrations.upgrade(url=url)
    sources = iter(range(10**6))
    capture = lambda engine: monitor.capture(source=f"bench-{next(sources)}", engine=engine)  # a new source: never a skipped bucket
    sizes = "SELECT coalesce(sum(pg_total_relation_size(c.oid)), 0) AS bytes FROM pg_class AS c WHERE c.relnamespace = 'copythat_history'::regnamespace AND c.relkind = 'r'"
    before = int(engine.connect().execute(text(sizes)).scalar())
    seconds, statements = measure(engine, capture, repeat)
    after = int(engine.connect().execute(text(sizes)).scalar())
    rows = engine.connect().execute(
        text(
            "SELECT (SELECT sum(pg_column_size(t.*)) FROM copythat_history.table_sizes AS t WHERE snapshot_id = m.id) "
            "+ (SELECT coalesce(sum(pg_column_size(t.*)), 0) FROM copythat_history.index_sizes AS t WHERE snapshot_id = m.id) "
            "+ (SELECT coalesce(sum(pg_column_size(t.*)), 0) FROM copythat_history.sequences AS t WHERE snapshot_id = m.id) "
            "+ (SELECT coalesce(sum(pg_column_size(t.*)), 0) FROM copythat_history.connections AS t WHERE snapshot_id = m.id) "
            "+ (SELECT coalesce(sum(pg_column_size(t.*)), 0) FROM copythat_history.statements AS t WHERE snapshot_id = m.id) "
            "+ (SELECT coalesce(sum(pg_column_size(t.*)), 0) FROM copythat_history.jobs AS t WHERE snapshot_id = m.id) AS bytes "
            "FROM (SELECT max(id) AS id FROM copythat_history.snapshots) AS m"
        )
    ).scalar()
    result = monitor.capture(source="bench-counts", engine=engine)
    print(f"\ncapture() on this catalog: {seconds:.3f} s, {statements} statements ({result['tables']:,} tables, {result['indexes']:,} indexes, "
          f"{result['sequences']:,} sequences, {result['statements']:,} statements); target < {HISTORY_TARGET_SECONDS} s: "
          f"{'met' if seconds < HISTORY_TARGET_SECONDS else 'MISSED'}")
    print(f"history storage per snapshot of this catalog: {int(rows):,} bytes of rows, {(after - before) / repeat:,.0f} bytes on disk with indexes")

    every, days = HISTORY_EVERY_MINUTES, HISTORY_DAYS
    started = time.perf_counter()
    with engine.begin() as conn:
        conn.execute(text("SET LOCAL synchronous_commit = off"))
        conn.execute(
            text(
                """
                INSERT INTO copythat_history.snapshots (source, bucket, interval_seconds, database_bytes, synthetic)
                SELECT 'bench-90d', date_bin(make_interval(mins => :every), now(), TIMESTAMPTZ '2000-01-01') - g * make_interval(mins => :every),
                       :every * 60, 5e9::bigint - g * 1000, true
                FROM generate_series(0, :snapshots - 1) AS g
                """
            ),
            {"every": every, "snapshots": days * 24 * 60 // every},
        )
        ids = "SELECT id, row_number() OVER (ORDER BY bucket DESC) AS age FROM copythat_history.snapshots WHERE source = 'bench-90d'"
        conn.execute(
            text(
                f"""
                INSERT INTO copythat_history.table_sizes (snapshot_id, "schema", "table", table_bytes, index_bytes, toast_bytes, total_bytes, live_rows, dead_rows)
                SELECT s.id, 'public', 'table_' || t, 1e8::bigint * t - s.age * 100 * t, 0, 0, 1e8::bigint * t - s.age * 100 * t, 1e6::bigint * t - s.age * t, 0
                FROM ({ids}) AS s, generate_series(1, :tables) AS t
                """
            ),
            {"tables": HISTORY_TABLES},
        )
        conn.execute(
            text(
                f"""
                INSERT INTO copythat_history.sequences (snapshot_id, "schema", "sequence", "table", "column", column_type, last_value, max_value)
                SELECT s.id, 'public', 'table_' || q || '_id_seq', 'table_' || q, 'id', 'integer', 2e9::bigint - s.age * 50 * q, 2147483647
                FROM ({ids}) AS s, generate_series(1, :sequences) AS q
                """
            ),
            {"sequences": HISTORY_SEQUENCES},
        )
        conn.execute(
            text(
                f"""
                INSERT INTO copythat_history.jobs (snapshot_id, status, extraction_type, jobs)
                SELECT s.id, st, 'color', CASE st WHEN 'completed' THEN 10e6::bigint - s.age * 90 ELSE 1e6::bigint - s.age * 8 END
                FROM ({ids}) AS s, unnest(ARRAY['completed', 'failed']) AS st
                """
            )
        )
    with engine.begin() as conn:
        conn.execute(text("ANALYZE copythat_history.snapshots, copythat_history.table_sizes, copythat_history.sequences, copythat_history.jobs"))
    print(f"\n{days} days of {every}-minute snapshots ({days * 24 * 60 // every:,}, {HISTORY_TABLES} tables and {HISTORY_SEQUENCES} sequences each) "
          f"written in {time.perf_counter() - started:.1f} s")
    print(f"{'over that history':<24}{'median s':>10}{'statements':>12}")
    for label, func in [
        ("growth(days=7)", lambda engine: monitor.growth(days=7, source="bench-90d", engine=engine)),
        ("sequence_forecast(90d)", lambda engine: monitor.sequence_forecast(days=90, source="bench-90d", engine=engine)),
        ("job_trends('1d', 90d)", lambda engine: monitor.job_trends("1d", days=90, source="bench-90d", engine=engine)),
    ]:
        seconds, statements = measure(engine, func, repeat)
        print(f"{label:<24}{seconds:>10.3f}{statements:>12}  target < {HISTORY_TARGET_SECONDS} s: {'met' if seconds < HISTORY_TARGET_SECONDS else 'MISSED'}")
    soonest = monitor.sequence_forecast(days=90, source="bench-90d", engine=engine).iloc[0]
    print(f"soonest to run out: {soonest['sequence']} in {soonest['days_left']} days at {soonest['ids_per_day']:,.0f} ids/day "
          f"(from {soonest['history_days']} days, {soonest['snapshots']:,} snapshots)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--url", help="admin URL of the server (default: the embedded PostgreSQL)")
    parser.add_argument("--tables", type=int, default=2000)
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()

    admin_url = normalize_url(args.url) if args.url else embedded.start().set(database="postgres")
    admin = create_engine(admin_url, poolclass=NullPool, isolation_level="AUTOCOMMIT")
    name = f"copythat_bench_monitor_{uuid.uuid4().hex[:8]}"
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    url = admin_url.set(database=name)
    print(f"server: {mask_url(admin_url)}; scratch database {name}")
    try:
        engine = get_engine(url)
        enabled = enable_statements(engine) and monitor.query_stats_status(engine=engine)["enabled"]
        empty_time, empty_statements = measure(engine, monitor.health, args.repeat)

        started = time.perf_counter()
        build_catalog(engine, args.tables)
        counts = engine.connect().execute(
            text(
                "SELECT (SELECT count(*) FROM pg_class WHERE relkind = 'r' AND relname LIKE 'bench\\_%') AS tables, "
                "(SELECT count(*) FROM pg_class WHERE relkind = 'i' AND relname LIKE 'bench\\_%') AS indexes, "
                "(SELECT count(*) FROM pg_class WHERE relkind = 'S') AS sequences"
            )
        ).one()
        print(f"catalog: {counts.tables:,} tables, {counts.indexes:,} indexes, {counts.sequences:,} sequences, built in {time.perf_counter() - started:.1f} s\n")

        print(f"{'check':<24}{'median s':>10}{'statements':>12}")
        for check in [c for c in CHECKS if enabled or c not in ("query_stats", "slow_queries")]:
            try:
                seconds, statements = measure(engine, getattr(monitor, check), args.repeat)
            except (CopythatError, TypeError) as exc:  # not a check of this catalog (it needs arguments or other tables)
                print(f"{check:<24}{'skipped':>10}  ({str(exc).splitlines()[0][:60]})")
                continue
            print(f"{check:<24}{seconds:>10.3f}{statements:>12}")
        seconds, statements = measure(engine, monitor.health, args.repeat)
        report = monitor.health(engine=engine)
        print(f"{'health()':<24}{seconds:>10.3f}{statements:>12}")
        print(f"\nhealth() on the empty database: {empty_time:.3f} s, {empty_statements} statements")
        print(f"health() on {counts.tables:,} tables: {seconds:.3f} s, {statements} statements "
              f"({seconds / empty_time:.1f}x the time, {statements - empty_statements:+d} statements)")
        print(f"target < {TARGET_SECONDS} s: {'met' if seconds < TARGET_SECONDS else 'MISSED'}; verdict {monitor.verdict(report)}: "
              + ", ".join(f"{row.check} {row.status}" for row in report.itertuples() if row.status != "OK"))

        with exclusive_lock(url, "bench_2") as holder:
            locked_seconds, locked_statements = measure(engine, monitor.health, args.repeat)
            during = monitor.health(engine=engine).set_index("check")
        failed = during[during["detail"].str.startswith("could not run")]
        print(f"\nhealth() during a lock (pid {holder} holds ACCESS EXCLUSIVE on bench_2, a query waits): "
              f"{locked_seconds:.3f} s, {locked_statements} statements (without the lock: {seconds:.3f} s, {statements})")
        print(f"target < {TARGET_SECONDS} s: {'met' if locked_seconds < TARGET_SECONDS else 'MISSED'}; "
              f"checks that could not run: {', '.join(failed.index) or 'none'}")
        for check in ("blocked_queries", "duplicate_indexes", "sequences", "database_size"):
            print(f"  {check:<18} {during.loc[check, 'status']:<8} {during.loc[check, 'detail'][-150:]}")

        history_benchmark(url, engine, args.repeat)
    finally:
        dispose_engines()
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


if __name__ == "__main__":
    main()
