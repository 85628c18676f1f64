"""Benchmark of the jobs toolkit at growing sizes: how each answer's cost grows with the table, the bulk read against the COPY floor, memory, and the archive.

For each size (default 1,000,000 jobs; `--sizes 1000000 10000000`) a scratch
database is seeded (jobs created over the last 400 days, so the archive has
old jobs to take) on the embedded server or the server `--url` names (e.g.
a PostgreSQL 15 over TLS with a password, as Neon is reached), then measured in the same run:

- job_summary, failure_reasons, stuck_jobs, job_throughput: best of --repeat, warm cache;
- the COPY floor: `psql` copying the jobs_frame query TO STDOUT into /dev/null
  over the same URL (text), and the same COPY in binary format in process (psycopg2);
- jobs_frame (automatic streams) and iter_jobs_frames: seconds, and the growth of
  the process's peak RSS (VmHWM, reset just before the read, in a fresh process:
  it counts Arrow and libpq buffers, which tracemalloc cannot see) against the
  frame's own size (memory_usage(deep=True));
- archive_jobs(older_than="180 days" or --older-than, apply=True): rows written and deleted per
  second, while a writer inserts a job every 20 ms: its insert latency p50 / p99 /
  max before the archive (the baseline, same run) and during it.

Then one table: each measure at each size and the ratio largest / smallest
size (how cost grows: 10.0 is linear for 1M -> 10M), and the targets of the
issue. The scratch databases are dropped at the end.

    python benchmarks/jobs.py                                    # embedded server, 1,000,000 jobs
    python benchmarks/jobs.py --sizes 1000000 10000000
    python benchmarks/jobs.py --url "postgresql://USER:PASSWORD@HOST:5432/DB?sslmode=require"   # PostgreSQL 15 over TLS
"""

from __future__ import annotations

import argparse
import multiprocessing
import statistics
import subprocess
import tempfile
import threading
import time
from pathlib import Path

import pandas as pd
from sqlalchemy import create_engine, text
from sqlalchemy.pool import NullPool

from scratch import Scratch

from copythat_ops import jobs, migrations
from copythat_ops.config import mask_url
from copythat_ops.engine import dispose_engines, get_engine
from copythat_ops.jobs.archive import archive_jobs
from copythat_ops.seed import seed_database

ANALYSES = ("job_summary", "failure_reasons", "stuck_jobs", "job_throughput")
READS = ("psql COPY floor", "binary COPY floor", "jobs_frame", "iter_jobs_frames")
WRITER_EVERY = 0.020  # seconds between the writer's inserts
TARGETS = {  # (measure, size or None for every size): (operator, limit)
    "job_summary seconds": ("<", 1.0),
    "failure_reasons seconds": ("<", 1.0),
    "stuck_jobs seconds": ("<", 1.0),
    "job_throughput seconds": ("<", 1.0),
    "jobs_frame / psql COPY floor": ("<=", 1.2),
    "jobs_frame peak / frame size": ("<=", 1.3),
}
AT_1M = 0.3  # the analyses' target at 1,000,000 jobs


def rss_bytes(field: str = "VmRSS") -> int:
    """This process's resident memory (VmRSS) or its peak since the last reset (VmHWM), from /proc."""
    with open("/proc/self/status") as status:
        line = next(line for line in status if line.startswith(field + ":"))
    return int(line.split()[1]) * 1024


def reset_peak() -> None:
    with open("/proc/self/clear_refs", "w") as clear:
        clear.write("5")  # resets VmHWM to the current RSS


class NullSink:
    def write(self, data: bytes) -> int:
        return len(data)


def measure(kind: str, url: str) -> dict:
    """One read in this (fresh) process: seconds, peak RSS growth, and the frame's deep size."""
    engine = get_engine(url)
    sql, _ = jobs.frames._jobs_query()
    jobs.jobs_frame(limit=1, engine=engine)  # load the drivers before measuring
    reset_peak()
    before = rss_bytes()
    started = time.perf_counter()
    deep = rows = None
    if kind == "psql COPY floor":
        plain = engine.url.set(drivername="postgresql").render_as_string(hide_password=False)
        subprocess.run(["psql", plain, "-X", "-q", "-v", "ON_ERROR_STOP=1", "-c", f"COPY ({' '.join(sql.split())}) TO STDOUT"], stdout=subprocess.DEVNULL, check=True)
    elif kind == "binary COPY floor":
        raw = engine.raw_connection()
        with raw.cursor() as cursor:
            cursor.copy_expert(f"COPY ({sql}) TO STDOUT (FORMAT binary)", NullSink())
        raw.close()
    elif kind == "jobs_frame":
        frame = jobs.jobs_frame(engine=engine)
        deep, rows = int(frame.memory_usage(deep=True).sum()), len(frame)
    elif kind == "iter_jobs_frames":
        rows = 0
        for chunk in jobs.iter_jobs_frames(100_000, progress=False, engine=engine):
            rows += len(chunk)
            deep = max(deep or 0, int(chunk.memory_usage(deep=True).sum()))  # the largest chunk's own size
    seconds = time.perf_counter() - started
    peak = rss_bytes("VmHWM") - before
    return {"seconds": seconds, "peak_bytes": max(peak, 0), "deep_bytes": deep, "rows": rows}


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


class Writer(threading.Thread):
    """Inserts a pending job every 20 ms (autocommit, as the application writes) and records each insert's latency."""

    def __init__(self, url) -> None:
        super().__init__(daemon=True)
        self.engine = create_engine(url, poolclass=NullPool, isolation_level="AUTOCOMMIT")
        self.latencies: list[float] = []
        self.marks: list[int] = []
        self.stop = threading.Event()

    def mark(self) -> None:
        self.marks.append(len(self.latencies))

    def run(self) -> None:
        with self.engine.connect() as conn:
            project = conn.scalar(text("SELECT min(id) FROM projects"))
            insert = text("INSERT INTO extraction_jobs (project_id, source_url, extraction_type) VALUES (:p, 'https://uploads.copythat.app/bench.png', 'color')")
            while not self.stop.is_set():
                started = time.perf_counter()
                conn.execute(insert, {"p": project})
                took = time.perf_counter() - started
                self.latencies.append(took)
                self.stop.wait(max(0.0, WRITER_EVERY - took))
        self.engine.dispose()


def stalls(latencies: list[float]) -> str:
    if len(latencies) < 2:
        return "n/a"
    cuts = statistics.quantiles(latencies, n=100)
    return f"p50 {cuts[49] * 1000:.1f} ms, p99 {cuts[98] * 1000:.1f} ms, max {max(latencies) * 1000:.1f} ms ({len(latencies)} inserts)"


def shown(value) -> str:
    """A figure for the table: thousands separated, three decimals under 100, none above."""
    if isinstance(value, str):
        return value
    if value is None or pd.isna(value):
        return ""
    return f"{value:,.3f}" if abs(value) < 100 else f"{value:,.0f}"


def dropped(scratch: Scratch) -> None:
    """Drop the scratch database; where a session the role cannot end is still there (autovacuum after the archive's deletes), wait for it, then say what is left."""
    for attempt in range(12):
        try:
            scratch.drop()
            return
        except Exception as exc:  # noqa: BLE001 - reported below, the figures are printed anyway
            error = exc
            time.sleep(5)
    print(f"could not drop the scratch database {scratch.name}: {str(error).splitlines()[0]}; drop it by hand", flush=True)


def run_size(size: int, args) -> dict:
    """Seed `size` jobs in a scratch database, measure everything, drop it; return the figures."""
    scratch = Scratch(args.url)
    url = scratch.url
    plain = url.render_as_string(hide_password=False)
    figures: dict = {"size": size}
    print(f"\n== {size:,} jobs: scratch database {mask_url(url)}; best of {args.repeat}", flush=True)
    started = time.perf_counter()
    try:
        migrations.upgrade(url=url)
        engine = get_engine(url)
        seeded = seed_database(size, args.projects, seed=1, window="400 days", engine=engine, tokens=False, allow_remote=True)
        figures["seed jobs/s"] = seeded["jobs_per_second"]
        with create_engine(url, poolclass=NullPool, isolation_level="AUTOCOMMIT").connect() as conn:
            conn.execute(text("VACUUM ANALYZE"))
        print(f"seeded in {seeded['seconds']:.1f} s ({seeded['jobs_per_second']:,.0f} jobs/s), vacuumed", flush=True)

        for name in ANALYSES:
            call = getattr(jobs, name)
            fn = (lambda: call("1h", since="30 days", engine=engine)) if name == "job_throughput" else (lambda: call(engine=engine))
            fn()  # warm
            figures[f"{name} seconds"] = best(fn, args.repeat)
            print(f"{name}: {figures[f'{name} seconds']:.3f} s", flush=True)

        in_fresh_process("binary COPY floor", plain)  # warm the cache
        for kind in READS:
            runs = [in_fresh_process(kind, plain) for _ in range(args.repeat)]
            fastest = min(runs, key=lambda r: r["seconds"])
            figures[f"{kind} seconds"] = fastest["seconds"]
            if kind in ("jobs_frame", "iter_jobs_frames"):
                figures[f"{kind} peak MB"] = max(r["peak_bytes"] for r in runs) / 1e6
                figures[f"{kind} {'frame' if kind == 'jobs_frame' else 'largest chunk'} MB"] = fastest["deep_bytes"] / 1e6
            print(f"{kind}: {fastest['seconds']:.3f} s, peak {max(r['peak_bytes'] for r in runs) / 1e6:,.0f} MB", flush=True)
        figures["jobs_frame / psql COPY floor"] = figures["jobs_frame seconds"] / figures["psql COPY floor seconds"]
        figures["jobs_frame / binary COPY floor"] = figures["jobs_frame seconds"] / figures["binary COPY floor seconds"]
        figures["jobs_frame peak / frame size"] = figures["jobs_frame peak MB"] / figures["jobs_frame frame MB"]
        figures["iter_jobs_frames peak / chunk size"] = figures["iter_jobs_frames peak MB"] / figures["iter_jobs_frames largest chunk MB"]

        if not args.no_archive:
            dispose_engines()
            writer = Writer(url)
            writer.start()
            time.sleep(args.baseline)
            writer.mark()
            with tempfile.TemporaryDirectory(prefix="copythat-bench-archive-", dir=args.archive_dir) as folder:
                result = archive_jobs(Path(folder), older_than=args.older_than, apply=True, progress=False, engine=engine)
                on_disk = sum(path.stat().st_size for path in Path(folder).rglob("*.parquet"))
            writer.mark()
            writer.stop.set()
            writer.join()
            baseline, during = writer.latencies[: writer.marks[0]], writer.latencies[writer.marks[0] : writer.marks[1]]
            rates = result.rows_per_second
            figures |= {
                "archive rows": result.deleted,
                "archive written rows/s": rates["written"],
                "archive deleted rows/s": rates["deleted"],
                "archive seconds": result.write_seconds + result.delete_seconds,
                "archive file MB": on_disk / 1e6,
                "writer stall, baseline": stalls(baseline),
                "writer stall, archiving": stalls(during),
                "writer p99 ms, archiving / baseline": (statistics.quantiles(during, n=100)[98] / statistics.quantiles(baseline, n=100)[98]) if len(during) > 1 and len(baseline) > 1 else float("nan"),
            }
            print(f"archive: {result.summary()}", flush=True)
            print(f"writer every {WRITER_EVERY * 1000:.0f} ms: baseline {figures['writer stall, baseline']}; archiving {figures['writer stall, archiving']}", flush=True)
    finally:
        dropped(scratch)
    figures["run seconds"] = time.perf_counter() - started
    print(f"{size:,} jobs measured in {figures['run seconds']:.0f} s", flush=True)
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[1_000_000], help="jobs per run (default 1000000)")
    parser.add_argument("--projects", type=int, default=500)
    parser.add_argument("--url", help="a server to use (default: the embedded one); a scratch database is made there")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--baseline", type=float, default=5.0, help="seconds the writer runs alone before the archive (default 5)")
    parser.add_argument("--archive-dir", help="where the archive's temporary folder goes (default: the system's)")
    parser.add_argument("--older-than", default="180 days", help="the archive's cutoff (default 180 days: about 55%% of the seeded jobs; '380 days' takes 5%%)")
    parser.add_argument("--no-archive", action="store_true", help="skip the archive measure")
    args = parser.parse_args()
    print("shared machine: figures vary run to run; times are the best of --repeat, memory the worst")

    runs = [run_size(size, args) for size in sorted(args.sizes)]
    table = pd.DataFrame(runs).set_index("size").T
    table.columns = [f"{size:,} jobs" for size in table.columns]
    if len(runs) > 1:
        first, last = table.columns[0], table.columns[-1]
        table[f"ratio {last} / {first}"] = [
            (row[last] / row[first]) if isinstance(row[first], float | int) and row[first] else "" for _, row in table.iterrows()
        ]
    print()
    print(table.map(shown).to_markdown())

    checks = []
    for run in runs:
        for name, (op, limit) in TARGETS.items():
            limit = AT_1M if name.endswith(" seconds") and run["size"] <= 1_000_000 else limit
            value = run.get(name)
            if value is not None:
                met = {"<=": value <= limit, "<": value < limit}[op]
                checks.append((f"{run['size']:,}", name, value, f"{op} {limit}", "met" if met else "MISSED"))
    print()
    print(pd.DataFrame(checks, columns=["jobs", "measure", "value", "target", "result"]).to_markdown(index=False, floatfmt=".3f"))


if __name__ == "__main__":
    main()
