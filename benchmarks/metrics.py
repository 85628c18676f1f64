"""Benchmark one /metrics scrape on a big jobs table (not a test): its time per collector, against baselines of the same run.

Seeds N jobs (default 1,000,000) in a scratch database, VACUUM ANALYZEs it, and measures (median of --repeat):

- the floor: one `run_query("SELECT 1")` round trip on the same connection settings;
- one scrape (`copythat_ops.api.metrics.scrape`), the health report already made, so what every
  scrape pays; and each collector's share of it;
- the library's full `job_summary()` (percentiles over every job), `health()` and the count of every
  job by status: why the scrape counts jobs with its own index-bounded aggregates, and why the other
  two run in the background (at most once a minute, every 5 minutes) instead of in every scrape;
- one scrape while another session holds ACCESS EXCLUSIVE on extraction_jobs: it must answer within
  the budget, the jobs collectors marked unread.

The scratch database is dropped at the end.

    python benchmarks/metrics.py                   # embedded server, 1,000,000 jobs
    python benchmarks/metrics.py --jobs 200000 --url "$DATABASE_URL"
"""

from __future__ import annotations

import argparse
import statistics
import time

import pandas as pd
import psycopg2
from sqlalchemy import create_engine, text
from sqlalchemy.pool import NullPool

from scratch import Scratch

from copythat_ops import jobs, migrations, monitor
from copythat_ops.api import metrics, targets
from copythat_ops.config import libpq_url, mask_url
from copythat_ops.engine import get_engine, run_query
from copythat_ops.seed import seed_database


def median_seconds(call, repeat: int) -> float:
    runs = []
    for _ in range(repeat):
        started = time.perf_counter()
        call()
        runs.append(time.perf_counter() - started)
    return statistics.median(runs)


def collector_seconds(found: list) -> dict[str, float]:
    for family in found:
        if family.name == "copythat_scrape_collector_duration_seconds":
            return {sample.labels["collector"]: sample.value for sample in family.samples}
    return {}


def errors(found: list) -> list[str]:
    for family in found:
        if family.name == "copythat_scrape_error":
            return sorted(sample.labels["collector"] for sample in family.samples if sample.value)
    return []


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, default=1_000_000)
    parser.add_argument("--projects", type=int, default=500)
    parser.add_argument("--url", help="a server to use (default: the embedded one); a scratch database is made there")
    parser.add_argument("--repeat", type=int, default=7)
    args = parser.parse_args()

    scratch = Scratch(args.url)
    url = scratch.url
    print(f"scratch database {mask_url(url)}; {args.jobs:,} jobs; median of {args.repeat}; shared 2-core machine, figures vary run to run")
    try:
        migrations.upgrade(url=url)
        seed_database(args.jobs, args.projects, seed=1, engine=get_engine(url))
        with create_engine(url, poolclass=NullPool, isolation_level="AUTOCOMMIT").connect() as conn:
            conn.execute(text("VACUUM ANALYZE"))
        found = targets.Target("bench", url)
        engine = targets.target_engine(found)
        metrics.scrape(found)  # connects, loads the modules, makes the first health report
        floor = median_seconds(lambda: run_query("SELECT 1 AS one", name="bench.floor", engine=engine, timeout="1s", settings={"lock_timeout": "200ms"}), args.repeat)
        shares = []

        def one_scrape():
            shares.append(collector_seconds(metrics.scrape(found)))

        scrape = median_seconds(one_scrape, args.repeat)
        summary = median_seconds(lambda: jobs.job_summary(engine=engine), args.repeat)
        health = median_seconds(lambda: monitor.health(engine=engine), max(3, args.repeat // 2))
        totals = median_seconds(lambda: metrics._job_totals(found), max(3, args.repeat // 2))

        holder = psycopg2.connect(libpq_url(url, show_password=True), application_name="bench-lock-holder")
        try:
            with holder.cursor() as cur:
                cur.execute("BEGIN")
                cur.execute("LOCK TABLE extraction_jobs IN ACCESS EXCLUSIVE MODE")
            started = time.perf_counter()
            locked = metrics.scrape(found)
            locked_seconds = time.perf_counter() - started
        finally:
            holder.close()
    finally:
        targets.dispose_target_engines()
        scratch.drop()

    per_collector = {name: statistics.median(share.get(name, float("nan")) for share in shares) for name in shares[0]}
    rows = [
        ("floor: run_query('SELECT 1')", floor, ""),
        ("one scrape (health already made)", scrape, f"budget {metrics.SCRAPE_BUDGET} s"),
        *[(f"  collector {name}", seconds, "") for name, seconds in per_collector.items()],
        ("job_summary() (every job, percentiles)", summary, ""),
        ("health() (in the background, once a minute)", health, ""),
        ("every job by status (in the background, every 5 min)", totals, ""),
        ("one scrape, extraction_jobs ACCESS EXCLUSIVE locked", locked_seconds, f"unread: {', '.join(errors(locked)) or 'none'}"),
    ]
    print(pd.DataFrame(rows, columns=["measure", "seconds", "notes"]).to_markdown(index=False, floatfmt=".4f"))
    ratios = {
        "scrape / floor": scrape / floor,
        "job_summary / (jobs + stuck_jobs collectors)": summary / (per_collector["jobs"] + per_collector["stuck_jobs"]),
        "health / scrape": health / scrape,
        "locked scrape / budget": locked_seconds / metrics.SCRAPE_BUDGET,
    }
    print(pd.DataFrame(list(ratios.items()), columns=["ratio", "value"]).to_markdown(index=False, floatfmt=".2f"))


if __name__ == "__main__":
    main()
