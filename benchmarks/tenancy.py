"""Benchmark revision ef6a8e0d2805 (projects.organization_id) on a big live table (not a test): its time and the writer's worst stall.

In a scratch database it creates and drops: --projects projects (default 1,000,000)
at revision a41f008744a3, upgraded to b7bee60badb4 (organizations), kept as a
template so every run starts from the same data. Then, each on its own copy:

1. a writer inserts a project and updates another every 10 ms for --seconds, no migration (baseline);
2. the same writer while `migrations.upgrade("ef6a8e0d2805")` runs (nullable column,
   foreign key NOT VALID, index CONCURRENTLY, batched backfill into 'before-organizations',
   validated CHECK, SET NOT NULL);
3. the same upgrade with no writer (its wall time).

Printed: the writer's p50 / p99 / max round latency in 1 and 2 (and the ratio of the p99s),
the revision's wall time with and without the writer. Target: max writer stall under 1 s.

Usage:
    .venv/bin/python benchmarks/tenancy.py                          # the embedded PostgreSQL
    .venv/bin/python benchmarks/tenancy.py --url URL --projects 200000   # any server where the role may CREATE DATABASE
"""

from __future__ import annotations

import argparse
import random
import statistics
import threading
import time

import psycopg2
from sqlalchemy import create_engine, text
from sqlalchemy.pool import NullPool

from scratch import Scratch

from copythat_ops import migrations
from copythat_ops.config import libpq_url, mask_url

BEFORE = "a41f008744a3"
ORGANIZATIONS = "b7bee60badb4"
REVISION = "ef6a8e0d2805"
INTERVAL = 0.010  # the writer's pace
STALL_TARGET = 1.0
HAS_COLUMN = "SELECT EXISTS (SELECT FROM pg_attribute WHERE attrelid = 'projects'::regclass AND attname = 'organization_id' AND NOT attisdropped)"


class Writer(threading.Thread):
    """Every INTERVAL: insert a project (with an organization once the column exists) and update a random one; record each round's latency."""

    def __init__(self, url, projects: int) -> None:
        super().__init__(daemon=True)
        self.url, self.projects, self.latencies, self.errors, self.stop = url, projects, [], [], threading.Event()

    def run(self) -> None:
        rng = random.Random(7)
        conn = psycopg2.connect(libpq_url(self.url), password=self.url.password)
        conn.autocommit = True
        try:
            with conn.cursor() as cur:
                due = time.perf_counter()
                while not self.stop.is_set():
                    began = time.perf_counter()
                    try:
                        cur.execute(HAS_COLUMN)
                        if cur.fetchone()[0]:
                            cur.execute("INSERT INTO projects (name, organization_id) SELECT 'Written live', id FROM organizations WHERE slug = 'acme-studio'")
                        else:
                            cur.execute("INSERT INTO projects (name) VALUES ('Written live')")
                        cur.execute("UPDATE projects SET description = 'edited live', updated_at = now() WHERE id = %s", (rng.randint(1, self.projects),))
                    except psycopg2.Error as exc:
                        self.errors.append(str(exc).splitlines()[0])
                    self.latencies.append(time.perf_counter() - began)
                    due += INTERVAL
                    time.sleep(max(0.0, due - time.perf_counter()))
        finally:
            conn.close()


def percentiles(values: list[float]) -> str:
    if not values:
        return "no rounds"
    ordered = sorted(values)
    return f"p50 {statistics.median(ordered) * 1000:7.1f} ms   p99 {p99(ordered) * 1000:7.1f} ms   max {ordered[-1] * 1000:8.1f} ms   ({len(ordered)} rounds)"


def p99(values: list[float]) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--url", help="admin URL of the server (default: the embedded PostgreSQL)")
    parser.add_argument("--projects", type=int, default=1_000_000)
    parser.add_argument("--seconds", type=float, default=10, help="how long the baseline writer runs")
    args = parser.parse_args()

    scratch = Scratch(args.url, prefix="copythat_bench_tenancy")
    copy, drop = scratch.copy, scratch.drop_copy
    print(f"server: {mask_url(scratch.admin.url)}; scratch database {scratch.name}")
    try:
        url = scratch.url
        started = time.perf_counter()
        migrations.upgrade(BEFORE, url=url)
        filler = create_engine(url, poolclass=NullPool, isolation_level="AUTOCOMMIT")
        with filler.connect() as conn:
            conn.execute(text(f"INSERT INTO projects (name, description) SELECT 'Project ' || i, 'from before' FROM generate_series(1, {args.projects}) AS i"))
            conn.execute(text("VACUUM ANALYZE projects"))
        migrations.upgrade(ORGANIZATIONS, url=url)
        with filler.connect() as conn:
            conn.execute(text("INSERT INTO organizations (name, slug) VALUES ('Acme Studio', 'acme-studio')"))
            size = conn.scalar(text("SELECT pg_size_pretty(pg_total_relation_size('projects'))"))
        filler.dispose()
        print(f"{args.projects:,} projects ({size}) at {ORGANIZATIONS}, ready in {time.perf_counter() - started:.1f} s\n")

        baseline = Writer(copy(), args.projects)
        baseline.start()
        time.sleep(args.seconds)
        baseline.stop.set()
        baseline.join()
        drop(baseline.url)

        target = copy()
        during = Writer(target, args.projects)
        during.start()
        time.sleep(1)
        began = time.perf_counter()
        migrations.upgrade(REVISION, url=target)
        with_writer = time.perf_counter() - began
        time.sleep(1)
        during.stop.set()
        during.join()
        drop(target)

        plain_url = copy()
        began = time.perf_counter()
        migrations.upgrade(REVISION, url=plain_url)
        plain = time.perf_counter() - began
        drop(plain_url)

        stall = max(during.latencies, default=0.0)
        print(f"writer, no migration       : {percentiles(baseline.latencies)}")
        print(f"writer, during {REVISION}: {percentiles(during.latencies)}   errors {len(during.errors)}{': ' + during.errors[0] if during.errors else ''}")
        print(f"writer p99 during / without: {p99(during.latencies) / p99(baseline.latencies):.2f}x")
        print(f"revision {REVISION} on {args.projects:,} projects: {with_writer:.1f} s with the writer, {plain:.1f} s without")
        print(f"target: max stall < {STALL_TARGET:.0f} s: {'met' if stall < STALL_TARGET else 'MISSED'} ({stall:.3f} s)")
    finally:
        scratch.drop()


if __name__ == "__main__":
    main()
