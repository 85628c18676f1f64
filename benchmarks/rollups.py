"""Benchmark the job rollups of revision 9e4b2c7d1f60 (not a test): what their triggers cost a writer, the hot minute row, the online fill.

In a scratch database it creates and drops (on the embedded server, or the one
--url names), migrated to head, with --projects projects:

1. single-row inserts, one autocommit transaction each (--single of them), from
   one connection: rows/s with the rollup triggers and with them disabled;
2. one INSERT ... SELECT of --bulk rows (a quarter of them failed, with a
   message), then one DELETE of them (as an archive batch deletes): seconds
   of each with and without the triggers;
3. --writers concurrent connections inserting single rows for --seconds:
   total rows/s and each insert's p50 / p99 with and without the triggers, for
   each number of writers in --writers (default 1, 4 and 8). The triggers
   append deltas (no unique key: an insert never waits on another one); before
   them, counters updated in place made every insert wait on the current
   minute's job_minutes row until the previous inserter committed;
4. the online fill: --jobs jobs made at the revision before, then the upgrade
   timed while one writer inserts and finishes jobs every 10 ms (its p99 and
   worst stall).

Every pair is measured in the same run, so the ratios hold on a loaded machine.

Usage:
    .venv/bin/python benchmarks/rollups.py                      # the embedded PostgreSQL
    .venv/bin/python benchmarks/rollups.py --url URL            # e.g. a PostgreSQL 15 over TLS with a password
"""

from __future__ import annotations

import argparse
import random
import statistics
import threading
import time

import psycopg2

from copythat_ops import migrations
from copythat_ops.config import mask_url
from copythat_ops.engine import dispose_engines

from scratch import Scratch

BEFORE = "7d1e5c0a9b3f"
TRIGGERS = ["extraction_jobs_rollups_insert", "extraction_jobs_rollups_update", "extraction_jobs_rollups_delete", "extraction_jobs_rollups_truncate"]
INSERT = "INSERT INTO extraction_jobs (project_id, source_url, extraction_type) VALUES (%s, 'https://bench/x.png', 'color')"
BULK = """
    INSERT INTO extraction_jobs (project_id, source_url, extraction_type, status, error_message, created_at, completed_at)
    SELECT p.ids[1 + i %% array_length(p.ids, 1)], 'https://bench/' || i, (ARRAY['color', 'spacing', 'typography', 'all'])[1 + i %% 4],
           (ARRAY['pending', 'processing', 'completed', 'failed'])[1 + i %% 4],
           CASE WHEN i %% 4 = 3 THEN 'Timeout after ' || i %% 90 || 's while downloading https://cdn/' || i END,
           LOCALTIMESTAMP - make_interval(secs => i), CASE WHEN i %% 4 >= 2 THEN LOCALTIMESTAMP - make_interval(secs => i) + make_interval(secs => i %% 700) END
    FROM generate_series(1, %s) AS i, (SELECT array_agg(id ORDER BY id) AS ids FROM projects) AS p
"""


def connect(url):
    conn = psycopg2.connect(url.render_as_string(hide_password=False).replace("+psycopg2", "").replace("+asyncpg", ""))
    conn.autocommit = True
    return conn


def load(url, jobs: int) -> None:
    """`jobs` jobs over the projects, made in SQL, then vacuumed and analyzed."""
    conn = connect(url)
    with conn.cursor() as cur:
        cur.execute(BULK, (jobs,))
        cur.execute("VACUUM ANALYZE extraction_jobs")
    conn.close()


def projects(url, count: int) -> list[int]:
    conn = connect(url)
    with conn.cursor() as cur:
        cur.execute("INSERT INTO organizations (name, slug) VALUES ('Bench', 'bench') ON CONFLICT (slug) DO NOTHING")
        cur.execute(
            "INSERT INTO projects (name, organization_id) SELECT 'bench ' || g, (SELECT id FROM organizations WHERE slug = 'bench')"
            " FROM generate_series(1, %s) AS g",
            (count,),
        )
        cur.execute("SELECT id FROM projects ORDER BY id")
        ids = [row[0] for row in cur.fetchall()]
    conn.close()
    return ids


def triggers(url, enabled: bool) -> None:
    conn = connect(url)
    with conn.cursor() as cur:
        for name in TRIGGERS:
            cur.execute(f'ALTER TABLE extraction_jobs {"ENABLE" if enabled else "DISABLE"} TRIGGER "{name}"')
    conn.close()


def single(url, ids: list[int], rows: int) -> float:
    conn = connect(url)
    with conn.cursor() as cur:
        started = time.perf_counter()
        for i in range(rows):
            cur.execute(INSERT, (ids[i % len(ids)],))
        took = time.perf_counter() - started
    conn.close()
    return rows / took


def bulk(url, rows: int) -> tuple[float, float]:
    """Seconds of one INSERT ... SELECT of `rows` jobs, then of one DELETE of them (as an archive batch deletes)."""
    conn = connect(url)
    with conn.cursor() as cur:
        cur.execute("SELECT max(id) FROM extraction_jobs")
        top = cur.fetchone()[0]
        started = time.perf_counter()
        cur.execute(BULK, (rows,))
        inserted = time.perf_counter() - started
        started = time.perf_counter()
        cur.execute("DELETE FROM extraction_jobs WHERE id > %s", (top,))
        deleted = time.perf_counter() - started
        cur.execute("VACUUM ANALYZE extraction_jobs")
    conn.close()
    return inserted, deleted


def concurrent(url, ids: list[int], writers: int, seconds: float) -> tuple[float, float, float, float]:
    """Rows/s, p50 and p99 (ms) of single-row inserts from `writers` connections, and the share of the writers'
    samples in pg_stat_activity (every 20 ms) that were waiting on a heavyweight lock (a row, a transaction)."""
    latencies: list[list[float]] = [[] for _ in range(writers)]
    start = threading.Barrier(writers + 1)
    stop = threading.Event()
    seen = {"lock": 0, "all": 0}

    def sample() -> None:
        conn = connect(url)
        with conn.cursor() as cur:
            while not stop.is_set():
                cur.execute(
                    "SELECT count(*) FILTER (WHERE wait_event_type = 'Lock'), count(*) FROM pg_stat_activity"
                    " WHERE datname = current_database() AND pid <> pg_backend_pid() AND backend_type = 'client backend' AND state = 'active'"
                )
                lock, every = cur.fetchone()
                seen["lock"] += lock
                seen["all"] += every
                time.sleep(0.02)
        conn.close()

    def write(k: int) -> None:
        conn = connect(url)
        rng = random.Random(k)
        with conn.cursor() as cur:
            start.wait()
            while not stop.is_set():
                began = time.perf_counter()
                cur.execute(INSERT, (rng.choice(ids),))
                latencies[k].append(time.perf_counter() - began)
        conn.close()

    threads = [threading.Thread(target=write, args=(k,)) for k in range(writers)]
    for thread in threads:
        thread.start()
    start.wait()
    sampler = threading.Thread(target=sample)
    sampler.start()
    time.sleep(seconds)
    stop.set()
    for thread in threads:
        thread.join()
    sampler.join()
    every = sorted(x for each in latencies for x in each)
    return len(every) / seconds, every[len(every) // 2] * 1000, every[int(len(every) * 0.99)] * 1000, seen["lock"] / max(seen["all"], 1)


def fill(server_url: str | None, jobs: int) -> None:
    scratch = Scratch(server_url, prefix="copythat_bench_fill")
    try:
        migrations.upgrade(BEFORE, url=scratch.url)
        ids = projects(scratch.url, 200)
        load(scratch.url, jobs)
        stalls: list[float] = []
        stop = threading.Event()

        def writer() -> None:
            conn = connect(scratch.url)
            rng = random.Random(1)
            with conn.cursor() as cur:
                n = 0
                while not stop.is_set():
                    n += 1
                    began = time.perf_counter()
                    if n % 2:
                        cur.execute(INSERT, (ids[0],))
                    else:
                        cur.execute(
                            "UPDATE extraction_jobs SET status = 'failed', completed_at = LOCALTIMESTAMP, error_message = 'HTTP 500'"
                            " WHERE id = %s AND status IN ('pending', 'processing')",
                            (rng.randint(1, jobs),),
                        )
                    stalls.append(time.perf_counter() - began)
                    time.sleep(0.01)
            conn.close()

        thread = threading.Thread(target=writer)
        thread.start()
        time.sleep(1)
        started = time.perf_counter()
        migrations.upgrade(url=scratch.url)
        took = time.perf_counter() - started
        time.sleep(0.5)
        stop.set()
        thread.join()
        stalls.sort()
        print(
            f"online upgrade of {jobs:,} jobs (3 indexes built concurrently + the fill): {took:.1f} s ({jobs / took:,.0f} jobs/s); "
            f"writer every 10 ms: {len(stalls)} writes, p50 {stalls[len(stalls) // 2] * 1000:.1f} ms, "
            f"p99 {stalls[int(len(stalls) * 0.99)] * 1000:.1f} ms, worst {stalls[-1] * 1000:.0f} ms"
        )
    finally:
        scratch.drop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--url", help="a server where the role may CREATE DATABASE (default: the embedded PostgreSQL)")
    parser.add_argument("--projects", type=int, default=200)
    parser.add_argument("--single", type=int, default=3_000, help="single-row inserts timed (default 3,000)")
    parser.add_argument("--bulk", type=int, default=100_000, help="rows of the INSERT ... SELECT (default 100,000)")
    parser.add_argument("--writers", type=int, nargs="+", default=[1, 4, 8], help="concurrent inserting connections, one run each (default 1 4 8)")
    parser.add_argument("--seconds", type=float, default=5.0, help="how long the concurrent writers run (default 5)")
    parser.add_argument("--jobs", type=int, default=1_000_000, help="jobs the online fill counts (default 1,000,000; 0 skips it)")
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()

    scratch = Scratch(args.url)
    url = scratch.url
    print(f"scratch database {mask_url(url)}")
    try:
        migrations.upgrade(url=url)
        ids = projects(url, args.projects)
        load(url, 200_000)  # a table of some size, as the triggers meet it
        results: dict = {"single": {True: [], False: []}, "bulk": {True: [], False: []}}
        results.update({("concurrent", n): {True: [], False: []} for n in args.writers})
        for _ in range(args.repeat):
            for enabled in (False, True):  # alternated, so both meet the same load
                triggers(url, enabled)
                results["single"][enabled].append(single(url, ids, args.single))
                results["bulk"][enabled].append(bulk(url, args.bulk))
                for n in args.writers:
                    results[("concurrent", n)][enabled].append(concurrent(url, ids, n, args.seconds))
        triggers(url, True)
        conn = connect(url)
        with conn.cursor() as cur:
            cur.execute("SELECT (SELECT count(*) FROM copythat_rollups.job_count_deltas) + (SELECT count(*) FROM copythat_rollups.job_minute_deltas)"
                        " + (SELECT count(*) FROM copythat_rollups.failure_reason_deltas)")
            waiting = cur.fetchone()[0]
            started = time.perf_counter()
            cur.execute("SELECT copythat_rollups.compact()")
            moved, took = cur.fetchone()[0], time.perf_counter() - started
        conn.close()
        print(f"delta rows waiting after every run: {waiting:,} (the triggers compact now and then); compact() then moved {moved or 0:,} in {took * 1000:.0f} ms")
        median = statistics.median
        off, on = median(results["single"][False]), median(results["single"][True])
        print(f"single-row inserts (autocommit, one connection): {off:,.0f} rows/s without the triggers, {on:,.0f} with ({on / off:.2f}x)")
        for i, what in enumerate(("INSERT ... SELECT", "DELETE")):
            off, on = (median(r[i] for r in results["bulk"][e]) for e in (False, True))
            print(f"{what} of {args.bulk:,} rows: {off:.2f} s without the triggers, {on:.2f} s with ({on / off:.2f}x the time)")
        for n in args.writers:
            for enabled in (False, True):
                runs = results[("concurrent", n)][enabled]
                rate, p50, p99, locked = (median(r[i] for r in runs) for i in range(4))
                print(f"{n} concurrent writer{'s' if n > 1 else ''}, single-row inserts, {'with' if enabled else 'without'} the triggers: {rate:,.0f} rows/s, p50 {p50:.1f} ms, p99 {p99:.1f} ms,"
                      f" {locked:.0%} of active writers' samples waiting on a lock")
            off, on = (median(r[0] for r in results[("concurrent", n)][e]) for e in (False, True))
            print(f"{n} concurrent writer{'s' if n > 1 else ''}: {on / off:.2f}x the insert rate with the triggers")
    finally:
        scratch.drop()
    dispose_engines()
    if args.jobs:
        fill(args.url, args.jobs)


if __name__ == "__main__":
    main()
