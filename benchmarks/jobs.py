"""Benchmark of the jobs bulk path, the analyses and the seed against the targets of the jobs issue.

Seeds N jobs (default 1,000,000) in a scratch database, then measures in the
same run: the COPY floor (the jobs_frame query copied to a null sink in
binary format, as the ADBC driver reads it),
jobs_frame of all rows, pandas.read_sql of the same query, iter_jobs_frames,
their peak memory, job_summary and job_throughput on the full table, the seed
rate, and DataFrame.to_sql on a sample, extrapolated. The scratch database is
dropped at the end.

Each read runs in a fresh process; its peak memory is the growth of that
process's peak RSS (VmHWM, reset just before the read) over its RSS then:
it counts Arrow and libpq buffers, which tracemalloc cannot see. Times are the best of --repeat
runs, on a warm cache.

    python benchmarks/jobs.py                  # embedded server, 1,000,000 jobs
    python benchmarks/jobs.py --jobs 200000 --url "$DATABASE_URL"
"""

from __future__ import annotations

import argparse
import multiprocessing
import time

import pandas as pd
from sqlalchemy import create_engine, text
from sqlalchemy.pool import NullPool

from scratch import Scratch

from copythat_ops import jobs, migrations
from copythat_ops.config import mask_url
from copythat_ops.engine import get_engine
from copythat_ops.seed import seed_database

TARGETS = {
    "jobs_frame / COPY floor": ("<=", 1.5),
    "read_sql / jobs_frame": (">=", 4.0),
    "jobs_frame peak / deep size": ("<=", 2.0),
    "job_summary seconds": ("<", 1.0),
    "job_throughput seconds": ("<", 1.0),
    "to_sql / seed time": (">=", 8.0),
}


def rss_bytes(field: str = "VmRSS") -> int:
    """This process's resident memory (VmRSS) or its peak since the last reset (VmHWM), from /proc."""
    with open("/proc/self/status") as status:
        line = next(line for line in status if line.startswith(field + ":"))
    return int(line.split()[1]) * 1024


def reset_peak() -> None:
    with open("/proc/self/clear_refs", "w") as clear:
        clear.write("5")  # resets VmHWM to the current RSS


def measure(kind: str, url: str) -> dict:
    """One read in this (fresh) process: seconds, peak RSS growth, and the frame's deep size."""
    engine = get_engine(url)
    sql, _ = jobs.frames._jobs_query()
    jobs.jobs_frame(limit=1, engine=engine)  # load the drivers before measuring
    with engine.connect() as conn:
        pd.read_sql(text(f"{sql} LIMIT 1"), conn)
    reset_peak()
    before = rss_bytes()
    started = time.perf_counter()
    deep = None
    if kind == "copy floor":
        raw = engine.raw_connection()
        with raw.cursor() as cursor:
            cursor.copy_expert(f"COPY ({sql}) TO STDOUT (FORMAT binary)", NullSink())
        raw.close()
    elif kind == "jobs_frame":
        frame = jobs.jobs_frame(engine=engine)
        deep = int(frame.memory_usage(deep=True).sum())
    elif kind == "read_sql":
        with engine.connect() as conn:
            frame = pd.read_sql(text(sql), conn)
        deep = int(frame.memory_usage(deep=True).sum())
    elif kind == "iter_jobs_frames":
        rows = sum(len(chunk) for chunk in jobs.iter_jobs_frames(100_000, progress=False, engine=engine))
        assert rows > 0
    seconds = time.perf_counter() - started
    peak = rss_bytes("VmHWM") - before
    return {"seconds": seconds, "peak_bytes": max(peak, 0), "deep_bytes": deep}


class NullSink:
    def write(self, data: bytes) -> int:
        return len(data)


def in_fresh_process(kind: str, url: str) -> dict:
    with multiprocessing.get_context("spawn").Pool(1) as pool:
        return pool.apply(measure, (kind, url))


def best(fn, repeat: int) -> float:
    times = []
    for _ in range(repeat):
        started = time.perf_counter()
        fn()
        times.append(time.perf_counter() - started)
    return min(times)


def to_sql_rate(engine, sample: int, method: str | None) -> float:
    """Rows per second DataFrame.to_sql inserts jobs (inside a transaction that is rolled back)."""
    frame = jobs.jobs_frame(limit=sample, engine=engine)
    rows = frame[["project_id", "source_url", "extraction_type", "status", "result_data", "error_message", "created_at", "completed_at"]].copy()
    for column in ("created_at", "completed_at"):
        rows[column] = rows[column].dt.tz_localize(None)
    for column in ("extraction_type", "status"):
        rows[column] = rows[column].astype(str)
    with engine.connect() as conn:
        started = time.perf_counter()
        rows.to_sql("extraction_jobs", conn, if_exists="append", index=False, method=method, chunksize=1000)
        seconds = time.perf_counter() - started
        conn.rollback()
    return len(rows) / seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, default=1_000_000)
    parser.add_argument("--projects", type=int, default=500)
    parser.add_argument("--url", help="a server to use (default: the embedded one); a scratch database is made there")
    parser.add_argument("--sample", type=int, default=20_000, help="rows for to_sql (default 20000)")
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()

    scratch = Scratch(args.url)
    url = scratch.url
    plain = url.render_as_string(hide_password=False)
    print(f"scratch database {mask_url(url)}; {args.jobs:,} jobs; best of {args.repeat}; shared 2-core machine, figures vary run to run")
    try:
        migrations.upgrade(url=url)
        engine = get_engine(url)
        seeded = seed_database(args.jobs, args.projects, seed=1, engine=engine, tokens=False)  # the jobs alone, as to_sql writes them
        with create_engine(url, poolclass=NullPool, isolation_level="AUTOCOMMIT").connect() as conn:
            conn.execute(text("VACUUM ANALYZE extraction_jobs"))
        in_fresh_process("copy floor", plain)  # warm the cache

        reads = {}
        for kind in ("copy floor", "jobs_frame", "read_sql", "iter_jobs_frames"):
            runs = [in_fresh_process(kind, plain) for _ in range(args.repeat)]
            reads[kind] = {"seconds": min(r["seconds"] for r in runs), "peak_bytes": max(r["peak_bytes"] for r in runs), "deep_bytes": runs[0]["deep_bytes"]}
        summary = best(lambda: jobs.job_summary(engine=engine), args.repeat)
        throughput = best(lambda: jobs.job_throughput("1h", since="30 days", engine=engine), args.repeat)
        failures = best(lambda: jobs.failure_reasons(engine=engine), args.repeat)
        stuck = best(lambda: jobs.stuck_jobs(engine=engine), args.repeat)
        rates = {method or "None": to_sql_rate(engine, args.sample, method) for method in (None, "multi")}
    finally:
        scratch.drop()

    mb = 1e6
    rows = [
        ("seed", seeded["seconds"], f"{seeded['jobs_per_second']:,.0f} jobs/s"),
        *[(kind, r["seconds"], f"peak {r['peak_bytes'] / mb:,.0f} MB" + (f", frame {r['deep_bytes'] / mb:,.0f} MB deep" if r["deep_bytes"] else "")) for kind, r in reads.items()],
        ("job_summary (by status)", summary, ""),
        ("job_throughput (1h, 30 days)", throughput, ""),
        ("failure_reasons (top 20)", failures, ""),
        ("stuck_jobs", stuck, ""),
        *[(f"to_sql method={m} (extrapolated to {args.jobs:,})", args.jobs / rate, f"{rate:,.0f} rows/s on {args.sample:,}") for m, rate in rates.items()],
    ]
    print(pd.DataFrame(rows, columns=["measure", "seconds", "notes"]).to_markdown(index=False, floatfmt=".3f"))

    fastest_to_sql = args.jobs / max(rates.values())
    ratios = {
        "jobs_frame / COPY floor": reads["jobs_frame"]["seconds"] / reads["copy floor"]["seconds"],
        "read_sql / jobs_frame": reads["read_sql"]["seconds"] / reads["jobs_frame"]["seconds"],
        "jobs_frame peak / deep size": reads["jobs_frame"]["peak_bytes"] / reads["jobs_frame"]["deep_bytes"],
        "job_summary seconds": summary,
        "job_throughput seconds": throughput,
        "to_sql / seed time": fastest_to_sql / seeded["seconds"],
    }
    table = [
        (name, value, f"{op} {limit}", "met" if {"<=": value <= limit, ">=": value >= limit, "<": value < limit}[op] else "MISSED")
        for name, value in ratios.items()
        for op, limit in [TARGETS[name]]
    ]
    print()
    print(pd.DataFrame(table, columns=["ratio", "value", "target", "result"]).to_markdown(index=False, floatfmt=".2f"))


if __name__ == "__main__":
    main()
