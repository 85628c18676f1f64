"""`copythat-ops serve` and its app on a real server: db-test, health, auth, the pool under load, uvicorn itself."""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import subprocess
import sys
import time
import uuid
from pathlib import Path

import asyncpg
import httpx
import pytest
from sqlalchemy import text

from copythat_ops import migrations
from copythat_ops.api.app import TOKEN_VAR, create_app
from copythat_ops.config import URL_VAR
from copythat_ops.database import _connect_args, asyncpg_url
from copythat_ops.engine import get_engine
from copythat_ops.errors import ConfigError
from copythat_ops.seed import seed_database

CLI = Path(sys.executable).parent / "copythat-ops"
SECRET = "s3cret-Never-Shown"
TOKEN = "test-token-0123456789abcdef"
GUIDE_KEYS = ["database", "provider", "projects_count", "message"]


@pytest.fixture(scope="module")
def migrated(db_url):
    migrations.upgrade(url=db_url)
    seed_database(6, 3, seed=1, engine=get_engine(db_url))
    return db_url


@pytest.fixture(autouse=True)
def no_token(monkeypatch):
    monkeypatch.delenv(TOKEN_VAR, raising=False)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


async def get(app, path: str, headers: dict | None = None, *, dispose: bool = True) -> httpx.Response:
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://test") as client:
        response = await client.get(path, headers=headers or {})
    if dispose:
        await app.state.engine.dispose()
    return response


def test_db_test_answers_the_guides_json_with_exactly_its_keys(migrated):
    response = asyncio.run(get(create_app(migrated), "/api/v1/db-test"))
    assert response.status_code == 200
    body = response.json()
    assert list(body) == GUIDE_KEYS
    assert body == {"database": "connected", "provider": "PostgreSQL", "projects_count": 3, "message": "Database connection successful! 🎉"}


def test_db_test_on_a_database_without_the_schema_says_to_migrate(db_url, server):
    bare = server.create_database("serve_bare")
    try:
        body = asyncio.run(get(create_app(bare), "/api/v1/db-test")).json()
    finally:
        server.drop_database(bare)
    assert list(body) == GUIDE_KEYS and body["database"] == "connected" and body["projects_count"] is None
    assert "copythat-ops migrate upgrade" in body["message"]


def test_provider_is_neon_for_a_neon_host():
    app = create_app(f"postgresql+asyncpg://app:{SECRET}@ep-cool-1.us-east-2.aws.neon.tech/neondb?ssl=require")
    assert app.state.url == "postgresql+asyncpg://app:***@ep-cool-1.us-east-2.aws.neon.tech/neondb?ssl=require"


def test_an_unreachable_database_is_503_with_the_reason_and_no_secret():
    port = free_port()
    response = asyncio.run(get(create_app(f"postgresql+asyncpg://app:{SECRET}@127.0.0.1:{port}/neondb"), "/api/v1/db-test"))
    assert response.status_code == 503 and response.headers["retry-after"]
    body = response.json()
    assert body["database"] == "unreachable" and body["error"].startswith(f"cannot reach 127.0.0.1:{port}") and body["fix"]
    assert SECRET not in response.text and "Traceback" not in response.text and "File \"" not in response.text


def test_health_is_200_with_a_verdict_on_a_healthy_database(migrated):
    response = asyncio.run(get(create_app(migrated), "/api/v1/health"))
    body = response.json()
    assert response.status_code == 200 and body["verdict"] in ("OK", "WARN", "UNKNOWN")
    assert {check["check"] for check in body["checks"]} >= {"connection_headroom", "sequences"}
    assert set(body["checks"][0]) == {"check", "status", "value", "threshold", "detail", "action"}


def test_health_is_503_when_a_check_is_crit(server):
    url = server.create_database("serve_crit")
    try:
        with get_engine(url).begin() as conn:  # an integer id 99.99 % of the way to its maximum
            conn.execute(text("CREATE TABLE counters (id serial PRIMARY KEY)"))
            conn.execute(text("SELECT setval('counters_id_seq', 2147483000)"))
        response = asyncio.run(get(create_app(url), "/api/v1/health"))
    finally:
        server.drop_database(url)
    body = response.json()
    assert response.status_code == 503 and body["verdict"] == "CRIT"
    assert [c["status"] for c in body["checks"] if c["check"] == "sequences"] == ["CRIT"]


def test_health_of_an_unreachable_database_is_503_crit_without_a_secret():
    response = asyncio.run(get(create_app(f"postgresql+asyncpg://app:{SECRET}@127.0.0.1:{free_port()}/neondb"), "/api/v1/health"))
    assert response.status_code == 503 and response.json()["verdict"] == "CRIT" and "cannot reach" in response.json()["error"]
    assert SECRET not in response.text and "Traceback" not in response.text


def test_metrics_route_serves_the_exposition(migrated, monkeypatch):
    monkeypatch.setenv(URL_VAR, migrated.render_as_string(hide_password=False))
    response = asyncio.run(get(create_app(), "/metrics"))
    assert response.status_code == 200 and response.headers["content-type"].startswith("text/plain")
    assert b"pg_up" in response.content


def test_a_configured_token_is_required_on_every_route(migrated):
    async def calls():
        app = create_app(migrated, token=TOKEN)
        responses = [
            await get(app, "/api/v1/db-test", dispose=False),
            await get(app, "/metrics", dispose=False),
            await get(app, "/api/v1/db-test", {"Authorization": "Bearer wrong-token-0123456789"}, dispose=False),
            await get(app, "/api/v1/db-test", {"Authorization": f"Basic {TOKEN}"}, dispose=False),
            await get(app, "/api/v1/db-test", {"Authorization": f"Bearer {TOKEN}"}),
        ]
        return responses

    *refused, allowed = asyncio.run(calls())
    assert [r.status_code for r in refused] == [401, 401, 401, 401]
    assert refused[0].headers["www-authenticate"].startswith("Bearer") and TOKEN not in refused[2].text
    assert allowed.status_code == 200 and allowed.json()["database"] == "connected"


def test_the_token_comes_from_the_environment_and_a_short_one_is_refused(monkeypatch):
    monkeypatch.setenv(TOKEN_VAR, TOKEN)
    app = create_app("postgresql+asyncpg://app@127.0.0.1:1/neondb")
    assert asyncio.run(get(app, "/api/v1/health")).status_code == 401
    with pytest.raises(ConfigError, match="COPYTHAT_SERVE_TOKEN is too short"):
        create_app("postgresql+asyncpg://app@127.0.0.1:1/neondb", token="short")


def test_a_full_pool_answers_503_pool_exhausted_with_the_fix_and_never_holds_more_than_its_size(migrated):
    """The benchmark's correctness (benchmarks/pool.py) with a small pool: 2 + 1 connections, each request holding one 1 s."""
    name = f"ct-pool-{uuid.uuid4().hex[:8]}"
    url = asyncpg_url(migrated).update_query_dict({"application_name": name})

    async def load():
        app = create_app(url, pool_size=2, max_overflow=1, pool_timeout=0.3, hold=1.0)
        dsn, kwargs = _connect_args(asyncpg_url(migrated))
        watcher = await asyncpg.connect(dsn, **kwargs)
        peak = 0
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://test") as client:
            requests = asyncio.gather(*(client.get("/api/v1/db-test") for _ in range(10)))
            while not requests.done():
                count = await watcher.fetchval("SELECT count(*) FROM pg_stat_activity WHERE application_name = $1", name)
                peak = max(peak, count)
                await asyncio.sleep(0.02)
            responses = await asyncio.wait_for(requests, timeout=60)  # nothing hangs
            scrape = (await client.get("/metrics")).text
        await app.state.engine.dispose()
        await watcher.close()
        return responses, peak, scrape

    responses, peak, scrape = asyncio.run(load())
    ok = [r for r in responses if r.status_code == 200]
    exhausted = [r for r in responses if r.status_code == 503]
    assert len(ok) + len(exhausted) == 10 and ok and exhausted
    assert 1 <= peak <= 3
    body = exhausted[0].json()
    assert body["database"] == "pool exhausted"
    assert body["error"] == "pool exhausted: all 3 connections (pool_size 2 + max_overflow 1) stayed in use for 0.3s"
    assert "raise pool_size / max_overflow" in body["fix"] and f"application_name '{name}'" in body["fix"]
    metrics = dict(line.rsplit(" ", 1) for line in scrape.splitlines() if line.startswith("copythat_api_"))
    assert metrics["copythat_api_pool_limit"] == "3.0" and metrics["copythat_api_pool_checked_out"] == "0.0"
    assert float(metrics["copythat_api_pool_exhausted_total"]) == len(exhausted)
    assert float(metrics['copythat_api_requests_total{code="503",route="/api/v1/db-test"}']) == len(exhausted)


def serve(*args: str, url, env: dict | None = None) -> subprocess.Popen:
    environment = {**os.environ, URL_VAR: url.render_as_string(hide_password=False), **(env or {})}
    return subprocess.Popen([str(CLI), "serve", *args], env=environment, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def wait_until_up(process: subprocess.Popen, port: int, headers: dict | None = None) -> httpx.Response:
    for _ in range(600):
        if process.poll() is not None:
            raise AssertionError(f"serve exited {process.returncode}: {process.stderr.read()}")
        try:
            return httpx.get(f"http://127.0.0.1:{port}/api/v1/db-test", headers=headers or {}, timeout=10)
        except httpx.TransportError:
            time.sleep(0.1)
    raise AssertionError("serve did not answer")


def stop(process: subprocess.Popen) -> tuple[int, str, str]:
    process.send_signal(signal.SIGINT)
    out, err = process.communicate(timeout=30)
    return process.returncode, out, err


def test_serve_runs_uvicorn_on_loopback_by_default(migrated):
    port = free_port()
    process = serve("--port", str(port), url=migrated)
    try:
        response = wait_until_up(process, port)
    finally:
        code, out, err = stop(process)
    assert response.status_code == 200 and list(response.json()) == GUIDE_KEYS and response.json()["projects_count"] == 3
    assert code == 0 and f"http://127.0.0.1:{port}" in err and "no token" in err
    assert "server" not in response.headers


def test_serve_on_another_address_needs_the_token_and_then_requires_it(migrated):
    refused = subprocess.run([str(CLI), "serve", "--host", "0.0.0.0", "--port", str(free_port())], capture_output=True, text=True, timeout=60,
                             env={k: v for k, v in os.environ.items() if k != TOKEN_VAR})  # fmt: skip
    assert refused.returncode == 2 and "COPYTHAT_SERVE_TOKEN is not set" in refused.stderr and "Traceback" not in refused.stderr
    on_the_command_line = subprocess.run([str(CLI), "serve", "--token", TOKEN], capture_output=True, text=True, timeout=60)
    assert on_the_command_line.returncode == 2 and TOKEN not in on_the_command_line.stdout

    port = free_port()
    process = serve("--host", "0.0.0.0", "--port", str(port), url=migrated, env={TOKEN_VAR: TOKEN})
    try:
        without = wait_until_up(process, port)
        with_token = httpx.get(f"http://127.0.0.1:{port}/api/v1/db-test", headers={"Authorization": f"Bearer {TOKEN}"}, timeout=10)
    finally:
        code, out, err = stop(process)
    assert without.status_code == 401 and with_token.status_code == 200
    assert code == 0 and "bearer token required" in err and TOKEN not in out + err


def test_the_parsers_copies_of_library_constants_agree_with_the_library():
    from copythat_ops import database
    from copythat_ops.api import app
    from copythat_ops.cli import serve as command

    assert command.app.TOKEN_VAR == app.TOKEN_VAR
    assert (command.database.POOL_SIZE, command.database.MAX_OVERFLOW, command.database.POOL_TIMEOUT) == (
        database.POOL_SIZE, database.MAX_OVERFLOW, database.POOL_TIMEOUT)  # fmt: skip


def test_metrics_pass_the_targets_file_on_and_an_unknown_target_is_400(migrated, tmp_path):
    targets = tmp_path / "targets.env"
    targets.write_text(f"main={migrated.render_as_string(hide_password=False)}\n")

    async def scrape():
        app = create_app(migrated, targets_file=targets)
        return await get(app, "/metrics?target=main", dispose=False), await get(app, "/metrics?target=nosuch")

    named, unknown = asyncio.run(scrape())
    assert named.status_code == 200 and b"pg_up 1.0" in named.content
    assert unknown.status_code == 400 and "nosuch" in unknown.json()["error"] and unknown.json()["fix"]


def test_db_test_behind_a_lock_answers_503_within_its_lock_timeout_naming_the_lock(migrated):
    holder = get_engine(migrated).connect()
    transaction = holder.begin()
    try:
        holder.execute(text("LOCK TABLE projects IN ACCESS EXCLUSIVE MODE"))
        response = asyncio.run(asyncio.wait_for(get(create_app(migrated), "/api/v1/db-test"), timeout=60))  # nothing hangs
    finally:
        transaction.rollback()
        holder.close()
    body = response.json()
    assert response.status_code == 503 and body["database"] == "error"
    assert body["error"] == "the projects count waited 1s for a lock another session holds on projects"
    assert "copythat-ops monitor activity locks" in body["fix"]


def test_health_that_overruns_its_time_is_503_unknown(migrated):
    response = asyncio.run(get(create_app(migrated, health_timeout=0.001), "/api/v1/health"))
    assert response.status_code == 503 and response.json()["verdict"] == "UNKNOWN"
    assert response.json()["error"] == "the health checks did not finish within 0.001s"


def test_live_answers_without_a_database():
    response = asyncio.run(get(create_app(f"postgresql+asyncpg://app:{SECRET}@127.0.0.1:{free_port()}/neondb"), "/api/v1/live"))
    assert (response.status_code, response.json()) == (200, {"status": "alive"})
