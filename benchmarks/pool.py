"""Benchmark the guide's pool under `copythat-ops serve` (not a test): 200 concurrent db-test requests against 5 + 10 connections.

The setup guide promises "Max Connections: 15 (5 base + 10 overflow)" and has a
"Pool Exhausted" section. This starts the app under uvicorn in a child process
(as `copythat-ops serve` runs it) on a scratch database it creates and drops,
with a benchmark-only option that makes every db-test hold its connection
(`pg_sleep(hold)`), and fires the requests at once with httpx.AsyncClient while
a watcher counts the server's connections in pg_stat_activity by the app's
application_name every 10 ms.

Two rounds, each printing requests per second, p50 / p99 latency, the most
connections seen and the answers:

1. within the pool: each request holds 50 ms (200 x 50 ms / 15 connections, about
   0.7 s of work, well inside the 5 s pool timeout): every request should get 200;
2. beyond it: each request holds 2 s and the pool timeout is 1 s: 15 requests get
   a connection, the rest wait the pool timeout and get 503 "pool exhausted" with
   the fix. The slowest 503 is compared with the pool timeout: nothing hangs.

Both rounds must show at most pool_size + max_overflow connections.

Usage:
    .venv/bin/python benchmarks/pool.py                 # the embedded PostgreSQL
    .venv/bin/python benchmarks/pool.py --url URL       # any server where the role may CREATE DATABASE (TLS: ?ssl=require)
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import socket
import statistics
import subprocess
import sys
import time
import uuid

import asyncpg
import httpx
from sqlalchemy import create_engine, text
from sqlalchemy.pool import NullPool

from copythat_ops import embedded
from copythat_ops.config import mask_url, normalize_url
from copythat_ops.database import _connect_args, asyncpg_url

# The child: the app as `serve` builds it, plus the benchmark-only hold; its settings come as JSON in argv[1].
CHILD = """
import json, sys, uvicorn
from copythat_ops.api.app import create_app
o = json.loads(sys.argv[1])
app = create_app(o["url"], token=None, pool_size=o["pool_size"], max_overflow=o["max_overflow"], pool_timeout=o["pool_timeout"], hold=o["hold"])
uvicorn.run(app, host="127.0.0.1", port=o["port"], log_level="warning", access_log=False)
"""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_server(url: str, port: int, *, pool_size: int, max_overflow: int, pool_timeout: float, hold: float) -> subprocess.Popen:
    options = {"url": url, "port": port, "pool_size": pool_size, "max_overflow": max_overflow, "pool_timeout": pool_timeout, "hold": hold}
    process = subprocess.Popen([sys.executable, "-c", CHILD, json.dumps(options)], stderr=subprocess.PIPE, text=True)
    for _ in range(300):
        if process.poll() is not None:
            raise SystemExit(f"the server did not start: {process.stderr.read()}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                return process
        except OSError:
            time.sleep(0.1)
    process.kill()
    raise SystemExit("the server did not listen within 30 s")


async def fire(port: int, requests: int, watch_url, app_name: str) -> dict:
    dsn, kwargs = _connect_args(watch_url)
    watcher = await asyncpg.connect(dsn, **kwargs)
    peak, stop = 0, asyncio.Event()

    async def watch():
        nonlocal peak
        while not stop.is_set():
            peak = max(peak, await watcher.fetchval("SELECT count(*) FROM pg_stat_activity WHERE application_name = $1", app_name))
            await asyncio.sleep(0.01)

    async def one(client: httpx.AsyncClient) -> tuple[int, float, dict]:
        started = time.perf_counter()
        response = await client.get("/api/v1/db-test")
        server_ms = float(response.headers["server-timing"].split("dur=")[1])  # the app's own time, queueing in the client left out
        return response.status_code, time.perf_counter() - started, {**response.json(), "server_seconds": server_ms / 1000}

    limits = httpx.Limits(max_connections=requests, max_keepalive_connections=requests)
    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", limits=limits, timeout=120) as client:
        await client.get("/api/v1/db-test")  # one warm-up request: the pool's first connection and the app's imports
        watcher_task = asyncio.create_task(watch())
        started = time.perf_counter()
        results = await asyncio.wait_for(asyncio.gather(*(one(client) for _ in range(requests))), timeout=300)
        elapsed = time.perf_counter() - started
        stop.set()
        await watcher_task
    await watcher.close()
    latencies = sorted(seconds for _, seconds, _ in results)
    in_app = sorted(body["server_seconds"] for _, _, body in results)
    exhausted = [body for status, _, body in results if status == 503 and body.get("database") == "pool exhausted"]
    return {
        "elapsed": elapsed,
        "rps": requests / elapsed,
        "p50": statistics.median(latencies),
        "p99": percentile(latencies, 0.99),
        "app_p50": statistics.median(in_app),
        "app_p99": percentile(in_app, 0.99),
        "slowest_503_in_app": max((body["server_seconds"] for status, _, body in results if status == 503), default=None),
        "ok": sum(1 for status, _, _ in results if status == 200),
        "exhausted": len(exhausted),
        "other": sum(1 for status, _, body in results if status != 200 and body.get("database") != "pool exhausted"),
        "slowest_503": max((seconds for status, seconds, _ in results if status == 503), default=None),
        "peak": peak,
        "sample": exhausted[0] if exhausted else None,
    }


def percentile(values: list[float], fraction: float) -> float:
    return values[min(len(values) - 1, max(0, round(fraction * len(values)) - 1))]


def run_round(title: str, url, *, requests: int, pool_size: int, max_overflow: int, pool_timeout: float, hold: float) -> dict:
    app_name = f"copythat-bench-pool-{uuid.uuid4().hex[:6]}"
    app_url = url.update_query_dict({"application_name": app_name})
    port = free_port()
    server = start_server(app_url.render_as_string(hide_password=False), port, pool_size=pool_size, max_overflow=max_overflow, pool_timeout=pool_timeout, hold=hold)
    try:
        figures = asyncio.run(fire(port, requests, url, app_name))
    finally:
        server.terminate()
        server.wait(timeout=30)
    limit = pool_size + max_overflow
    print(f"\n{title}: {requests} requests at once, each holding its connection {hold * 1000:.0f} ms; pool {pool_size} + {max_overflow}, timeout {pool_timeout:g} s")
    print(f"  {figures['rps']:.0f} requests/s ({figures['elapsed']:.2f} s in all); latency p50 {figures['p50'] * 1000:.0f} ms, p99 {figures['p99'] * 1000:.0f} ms")
    print(f"  in the app (Server-Timing): p50 {figures['app_p50'] * 1000:.0f} ms, p99 {figures['app_p99'] * 1000:.0f} ms; the rest is the client's queue and the network")
    print(f"  answers: {figures['ok']} x 200, {figures['exhausted']} x 503 pool exhausted, {figures['other']} other")
    print(f"  most connections seen in pg_stat_activity ({app_name}): {figures['peak']} (limit {limit}: {'held' if figures['peak'] <= limit else 'EXCEEDED'})")
    if figures["slowest_503"] is not None:
        print(f"  slowest 503: {figures['slowest_503']:.2f} s at the client, {figures['slowest_503_in_app']:.2f} s in the app "
              f"({figures['slowest_503_in_app'] / pool_timeout:.2f}x the pool timeout)")
    if figures["sample"]:
        sample = {k: v for k, v in figures["sample"].items() if k != "server_seconds"}
        print(f"  503 body: {json.dumps(sample, ensure_ascii=False)}")
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--url", help="admin URL of the server (default: the embedded PostgreSQL)")
    parser.add_argument("--requests", type=int, default=200)
    parser.add_argument("--pool-size", type=int, default=5)
    parser.add_argument("--max-overflow", type=int, default=10)
    args = parser.parse_args()

    admin_url = normalize_url(args.url) if args.url else embedded.start().set(database="postgres")
    admin = create_engine(admin_url, poolclass=NullPool, isolation_level="AUTOCOMMIT")
    name = f"copythat_bench_pool_{uuid.uuid4().hex[:8]}"
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
        max_connections = conn.scalar(text("SHOW max_connections"))
    url = asyncpg_url(admin_url.set(database=name))
    print(f"server: {mask_url(admin_url)} (max_connections {max_connections}); scratch database {name}; {os.cpu_count()} CPUs")
    try:
        scratch = create_engine(normalize_url(url), poolclass=NullPool)
        with scratch.begin() as conn:  # the guide's projects table, ten rows: what db-test counts
            conn.execute(text("CREATE TABLE projects (id serial PRIMARY KEY, name varchar(255) NOT NULL, description text, "
                              "created_at timestamp NOT NULL DEFAULT now(), updated_at timestamp NOT NULL DEFAULT now())"))  # fmt: skip
            conn.execute(text("INSERT INTO projects (name) SELECT 'project ' || g FROM generate_series(1, 10) AS g"))
        scratch.dispose()
        pool = {"pool_size": args.pool_size, "max_overflow": args.max_overflow}
        within = run_round("within the pool", url, requests=args.requests, pool_timeout=5.0, hold=0.05, **pool)
        beyond = run_round("beyond the pool", url, requests=args.requests, pool_timeout=1.0, hold=2.0, **pool)
        limit = args.pool_size + args.max_overflow
        print(f"\nmost connections: {within['peak']} and {beyond['peak']} of {limit} allowed; "
              f"beyond the pool {beyond['exhausted']} of {args.requests} got 503 pool exhausted, none spent more than "
              f"{beyond['slowest_503_in_app'] or 0:.2f} s in the app (pool timeout 1 s); p99 beyond / within: {beyond['p99'] / within['p99']:.1f}x")
    finally:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


if __name__ == "__main__":
    main()
