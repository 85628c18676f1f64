"""Benchmark a migration on a busy table (not a test): the writer's stall, and what a rehearsal costs.

In a scratch database it creates and drops: --jobs extraction jobs (default
1,000,000) at revision 2e88296926d0, kept as a template so every run starts from
the same data. Then, each on its own copy of it:

1. a writer inserts a job every 20 ms for --seconds with no migration (baseline);
2. the same writer while `migrations.upgrade("head")` runs from 2e88296926d0;
3. a plain upgrade to head with no writer (its wall time);
4. `rehearse.rehearse("head")` (clone, upgrade, checks, downgrade / upgrade of the last revision, drop).

Printed: the writer's p50 / p99 / max insert latency in 1 and 2, and the rehearsal's wall
time against the plain upgrade. Targets: max writer stall under 1 s during the migration;
rehearsal under 2x a plain upgrade on the same data.

Usage:
    .venv/bin/python benchmarks/migrations.py                     # the embedded PostgreSQL
    .venv/bin/python benchmarks/migrations.py --url URL --jobs 200000   # any server where the role may CREATE DATABASE
"""

from __future__ import annotations

import argparse
import statistics
import threading
import time

import psycopg2
from sqlalchemy import text

from scratch import Scratch

from copythat_ops import migrations
from copythat_ops.migrations import rehearsal as rehearse
from copythat_ops.config import libpq_url, mask_url
from copythat_ops.engine import get_engine
from copythat_ops.seed import seed_database

FROM = "2e88296926d0"
INTERVAL = 0.020  # the writer's pace: one insert every 20 ms
STALL_TARGET = 1.0
REHEARSAL_TARGET = 2.0


class Writer(threading.Thread):
    """Inserts one job every INTERVAL seconds on its own connection; records each insert's latency."""

    def __init__(self, url) -> None:
        super().__init__(daemon=True)
        self.url, self.latencies, self.stop = url, [], threading.Event()

    def run(self) -> None:
        conn = psycopg2.connect(libpq_url(self.url), password=self.url.password)
        conn.autocommit = True
        try:
            with conn.cursor() as cur:
                cur.execute("SELECT min(id) FROM projects")
                project = cur.fetchone()[0]
                due = time.perf_counter()
                while not self.stop.is_set():
                    began = time.perf_counter()
                    cur.execute(
                        "INSERT INTO extraction_jobs (project_id, source_url, extraction_type, status) VALUES (%s, %s, 'pdf', 'pending')",
                        (project, f"https://example.com/bench/{began}"),
                    )
                    self.latencies.append(time.perf_counter() - began)
                    due += INTERVAL
                    time.sleep(max(0.0, due - time.perf_counter()))
        finally:
            conn.close()


def percentiles(values: list[float]) -> str:
    if not values:
        return "no inserts"
    ordered = sorted(values)
    p99 = ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))]
    return f"p50 {statistics.median(ordered) * 1000:7.1f} ms   p99 {p99 * 1000:7.1f} ms   max {ordered[-1] * 1000:8.1f} ms   ({len(ordered)} inserts)"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--url", help="admin URL of the server (default: the embedded PostgreSQL)")
    parser.add_argument("--jobs", type=int, default=1_000_000)
    parser.add_argument("--seconds", type=float, default=10, help="how long the baseline writer runs")
    args = parser.parse_args()

    scratch = Scratch(args.url, prefix="copythat_bench_migr")
    copy, drop = scratch.copy, scratch.drop_copy
    print(f"server: {mask_url(scratch.admin.url)}; scratch database {scratch.name}")
    try:
        url = scratch.url
        started = time.perf_counter()
        migrations.upgrade(url=url)  # seed at head (every column the seeder fills), then go back
        seed_database(args.jobs, 200, seed=7, engine=get_engine(url))
        migrations.downgrade(FROM, url=url)
        with get_engine(url).connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            conn.execute(text("VACUUM ANALYZE extraction_jobs"))
        print(f"{args.jobs:,} jobs at {FROM}, ready in {time.perf_counter() - started:.1f} s\n")

        baseline = Writer(copy())
        baseline.start()
        time.sleep(args.seconds)
        baseline.stop.set()
        baseline.join()
        drop(baseline.url)

        target = copy()
        during = Writer(target)
        during.start()
        time.sleep(1)
        began = time.perf_counter()
        migrations.upgrade(url=target)
        migration_seconds = time.perf_counter() - began
        time.sleep(1)
        during.stop.set()
        during.join()
        drop(target)

        plain_url = copy()
        began = time.perf_counter()
        migrations.upgrade(url=plain_url)
        plain = time.perf_counter() - began
        drop(plain_url)

        practise = copy()
        began = time.perf_counter()
        report = rehearse.rehearse(url=practise)
        rehearsal = time.perf_counter() - began

        stall = max(during.latencies, default=0.0)
        print(f"writer, no migration      : {percentiles(baseline.latencies)}")
        print(f"writer, during the upgrade: {percentiles(during.latencies)}   (upgrade {migration_seconds:.1f} s)")
        print(f"target: max stall < {STALL_TARGET:.0f} s: {'met' if stall < STALL_TARGET else 'MISSED'} ({stall:.3f} s)\n")
        print(f"plain upgrade {FROM} -> head: {plain:.1f} s")
        print(f"rehearsal ({report.attrs['method']} clone, upgrade, checks, downgrade/upgrade of {report['revision'].iloc[-1]}): "
              f"{rehearsal:.1f} s = {rehearsal / plain:.2f}x; ok {bool(report.attrs['ok'])}")
        print(f"target: rehearsal < {REHEARSAL_TARGET:.0f}x a plain upgrade: {'met' if rehearsal < REHEARSAL_TARGET * plain else 'MISSED'}")
        print(report[["revision", "seconds", "statements", "locks_taken", "longest_lock_wait_s"]].to_string(index=False))
    finally:
        scratch.drop()


if __name__ == "__main__":
    main()
