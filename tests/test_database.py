"""The application's async layer (copythat_ops.database) on a real server: the guide's snippet, URLs, errors, the pool."""

from __future__ import annotations

import asyncio
import os
import socket
import subprocess
import sys
import textwrap
from contextlib import asynccontextmanager

import pytest
from sqlalchemy import func, make_url, select, text

from copythat_ops import database, migrations
from copythat_ops.config import URL_VAR
from copythat_ops.database import PoolExhaustedError, _connect_args, asyncpg_url, make_engine
from copythat_ops.engine import get_engine
from copythat_ops.errors import ConfigError, ConnectError
from copythat_ops.models import Project
from copythat_ops.seed import seed_database

SECRET = "s3cret-Never-Shown"
# The setup guide's "Via Python Shell" snippet, as written, with the module names of this project.
GUIDE_SNIPPET = textwrap.dedent(
    """
    import asyncio
    from sqlalchemy import select
    from copythat_ops.database import AsyncSessionLocal
    from copythat_ops.models import Project

    async def test_db():
        async with AsyncSessionLocal() as session:
            result = await session.execute(select(Project))
            projects = result.scalars().all()
            print(f"Found {len(projects)} projects")

    asyncio.run(test_db())
    """
)


@pytest.fixture(scope="module")
def migrated(db_url):
    migrations.upgrade(url=db_url)
    seed_database(6, 3, seed=1, engine=get_engine(db_url))
    return db_url


@pytest.fixture(autouse=True)
def fresh_module_engine():
    database.reset()
    yield
    database.reset()


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def run_snippet(url, tmp_path, code: str = GUIDE_SNIPPET) -> subprocess.CompletedProcess:
    env = {**os.environ, URL_VAR: url if isinstance(url, str) else url.render_as_string(hide_password=False)}
    return subprocess.run([sys.executable, "-c", code], env=env, cwd=tmp_path, capture_output=True, text=True, timeout=120)


def test_the_guides_python_shell_snippet_runs_as_written(migrated, tmp_path):
    done = run_snippet(asyncpg_url(migrated).render_as_string(hide_password=False), tmp_path)
    assert done.returncode == 0, done.stderr
    assert done.stdout == "Found 3 projects\n"


def test_the_snippet_takes_the_libpq_url_of_the_toolkit_too(migrated, tmp_path):
    done = run_snippet(migrated, tmp_path)
    assert (done.returncode, done.stdout) == (0, "Found 3 projects\n"), done.stderr


def test_importing_the_module_connects_to_nothing(tmp_path):
    url = f"postgresql+asyncpg://app:{SECRET}@127.0.0.1:{closed_port()}/neondb"
    code = "import copythat_ops.database as d; e = d.engine; print(type(e).__name__, e.pool.size(), e.pool._max_overflow)"
    done = run_snippet(url, tmp_path, code)
    assert (done.returncode, done.stdout) == (0, "AsyncEngine 5 10\n"), done.stderr


def test_the_snippet_against_a_closed_port_fails_in_one_clear_line_without_the_password(tmp_path):
    url = f"postgresql+asyncpg://app:{SECRET}@127.0.0.1:{closed_port()}/neondb?ssl=require"
    done = run_snippet(url, tmp_path)
    assert done.returncode == 1
    last = done.stderr.strip().splitlines()[-1]
    assert last.startswith("copythat_ops.errors.ConnectError: cannot reach 127.0.0.1:") and "Fix: check host and port" in last
    assert SECRET not in done.stderr + done.stdout


def test_the_module_engine_is_the_guides_pool_on_the_configured_url(migrated, monkeypatch):
    monkeypatch.setenv(URL_VAR, migrated.render_as_string(hide_password=False))
    engine = database.engine
    assert engine is database.engine
    assert (engine.pool.size(), engine.pool._max_overflow, engine.pool._pre_ping, engine.pool.timeout()) == (5, 10, True, 5.0)
    assert engine.url.drivername == "postgresql+asyncpg" and engine.url.database == migrated.database


def test_sessions_get_db_and_application_name(migrated, monkeypatch):
    monkeypatch.setenv(URL_VAR, migrated.render_as_string(hide_password=False))

    async def facts():
        async for db in database.get_db():
            names = (await db.scalars(select(Project.name).order_by(Project.name))).all()
            app_name = await db.scalar(text("SELECT application_name FROM pg_stat_activity WHERE pid = pg_backend_pid()"))
        async with database.AsyncSessionLocal() as session:
            count = await session.scalar(select(func.count()).select_from(Project))
        await database.dispose()
        return names, app_name, count

    with get_engine(migrated).connect() as conn:
        names = conn.scalars(select(Project.name).order_by(Project.name)).all()
    assert len(names) == 3
    assert asyncio.run(facts()) == (names, "copythat-ops-api", 3)


def test_an_application_name_in_the_url_wins(migrated):
    async def name():
        engine = make_engine(asyncpg_url(migrated).update_query_dict({"application_name": "copy-that-web"}))
        async with engine.connect() as conn:
            value = await conn.scalar(text("SELECT application_name FROM pg_stat_activity WHERE pid = pg_backend_pid()"))
        await engine.dispose()
        return value

    assert asyncio.run(name()) == "copy-that-web"


def test_dispose_forgets_the_engine_so_the_next_run_uses_the_url_configured_then(migrated, server, monkeypatch):
    other = server.create_database("async_other")
    try:
        monkeypatch.setenv(URL_VAR, migrated.render_as_string(hide_password=False))

        async def current():
            async with database.AsyncSessionLocal() as session:
                value = await session.scalar(text("SELECT current_database()"))
            await database.dispose()
            return value

        assert asyncio.run(current()) == migrated.database
        monkeypatch.setenv(URL_VAR, other.render_as_string(hide_password=False))
        assert asyncio.run(current()) == other.database
    finally:
        server.drop_database(other)


@pytest.mark.parametrize(
    ("given", "expected"),
    [
        ("postgresql+asyncpg://u:pw@ep-x.us-east-2.aws.neon.tech/neondb?ssl=require", "postgresql+asyncpg://u:***@ep-x.us-east-2.aws.neon.tech/neondb?ssl=require"),
        ("postgresql://u:pw@ep-x.neon.tech/neondb?sslmode=require&channel_binding=require", "postgresql+asyncpg://u:***@ep-x.neon.tech/neondb?ssl=require"),
        ("postgres://u:pw@db:5433/app?ssl=true&connect_timeout=3", "postgresql+asyncpg://u:***@db:5433/app?connect_timeout=3&ssl=require"),
        ("postgresql+asyncpg://u:pw@pooler.example.com/app?ssl=require&statement_cache_size=0", "postgresql+asyncpg://u:***@pooler.example.com/app?ssl=require&statement_cache_size=0"),
    ],
)
def test_urls_become_the_applications_asyncpg_form(given, expected):
    assert str(asyncpg_url(given)) == expected


def test_asyncpg_is_given_ssl_and_server_settings_never_libpq_only_options():
    dsn, kwargs = _connect_args(asyncpg_url("postgresql://u:p%40ss@h.neon.tech/neondb?sslmode=require&channel_binding=require&connect_timeout=4&statement_cache_size=0"))
    parsed = make_url(dsn)
    assert (parsed.drivername, parsed.password, parsed.host, parsed.database) == ("postgresql", "p@ss", "h.neon.tech", "neondb")
    assert dict(parsed.query) == {"sslmode": "require", "application_name": "copythat-ops-api"}
    assert kwargs == {"timeout": 4.0, "statement_cache_size": 0}


def test_a_url_the_toolkit_cannot_read_is_a_config_error():
    with pytest.raises(ConfigError, match="unknown ssl value 'maybe'"):
        asyncpg_url("postgresql+asyncpg://u@h/db?ssl=maybe")
    with pytest.raises(ConfigError, match="pool_size must be a number of at least 1"):
        make_engine("postgresql+asyncpg://u@h/db", pool_size=0)


def test_an_unreachable_server_is_a_connect_error_without_the_password():
    async def connect():
        engine = make_engine(f"postgresql+asyncpg://app:{SECRET}@127.0.0.1:{closed_port()}/neondb")
        try:
            async with engine.connect():
                pass
        finally:
            await engine.dispose()

    with pytest.raises(ConnectError) as raised:
        asyncio.run(connect())
    assert str(raised.value).startswith("cannot reach 127.0.0.1:") and SECRET not in str(raised.value)
    assert raised.value.__cause__ is None and raised.value.__suppress_context__


def test_a_wrong_password_says_so_without_showing_it(server, db_url):
    if server.password_url == server.admin:
        pytest.skip("the test server's login needs no password to refuse")

    async def connect():
        engine = make_engine(server.password_url.set(password=SECRET, database=db_url.database))
        try:
            async with engine.connect():
                pass
        finally:
            await engine.dispose()

    with pytest.raises(ConnectError, match="wrong or missing password") as raised:
        asyncio.run(connect())
    assert SECRET not in str(raised.value)


def test_a_full_pool_says_pool_exhausted_and_the_fix(migrated):
    async def exhaust():
        engine = make_engine(asyncpg_url(migrated), pool_size=1, max_overflow=1, pool_timeout=0.2)
        try:
            async with engine.connect() as first, engine.connect() as second:
                await first.scalar(text("SELECT 1"))
                await second.scalar(text("SELECT 1"))
                async with engine.connect():
                    pass
        finally:
            await engine.dispose()

    with pytest.raises(PoolExhaustedError) as raised:
        asyncio.run(exhaust())
    message = str(raised.value)
    assert message.startswith("pool exhausted: all 2 connections (pool_size 1 + max_overflow 1) stayed in use for 0.2s")
    assert "raise pool_size / max_overflow" in message and "application_name 'copythat-ops-api'" in message


def test_a_second_asyncio_run_gets_a_fresh_engine_instead_of_the_closed_loops(migrated, monkeypatch):
    monkeypatch.setenv(URL_VAR, migrated.render_as_string(hide_password=False))

    async def backend():
        async with database.AsyncSessionLocal() as session:
            return await session.scalar(text("SELECT pg_backend_pid()")), database.engine

    first_pid, first_engine = asyncio.run(backend())
    second_pid, second_engine = asyncio.run(backend())  # no dispose() between: the first loop's connection cannot serve this one
    assert second_engine is not first_engine and second_pid != first_pid
    third_pid, third_engine = asyncio.run(backend())
    assert third_engine is not second_engine


@asynccontextmanager
async def tcp_proxy(server, *, drop_first: int = 0):
    """A TCP port in front of the test server (its Unix socket or its host): the first `drop_first` connections are dropped."""
    admin = server.admin
    socket_dir, port = admin.query.get("host"), int(admin.query.get("port", admin.port or 5432))
    seen: list[int] = []

    async def pipe(source, target):
        try:
            while data := await source.read(65536):
                target.write(data)
                await target.drain()
        finally:
            target.close()

    async def handle(reader, writer):
        seen.append(len(seen) + 1)
        if len(seen) <= drop_first:
            writer.close()
            return
        if socket_dir and socket_dir.startswith("/"):
            upstream = await asyncio.open_unix_connection(f"{socket_dir}/.s.PGSQL.{port}")
        else:
            upstream = await asyncio.open_connection(admin.host, port)
        await asyncio.gather(pipe(reader, upstream[1]), pipe(upstream[0], writer), return_exceptions=True)

    proxy = await asyncio.start_server(handle, "127.0.0.1", 0)
    try:
        yield proxy.sockets[0].getsockname()[1], seen
    finally:
        proxy.close()


def through(proxy_port: int, server, database: str, ssl: str):
    return asyncpg_url(server.admin).set(host="127.0.0.1", port=proxy_port, database=database, query={"ssl": ssl})


def test_the_first_connect_is_retried_while_the_server_wakes(server, migrated):
    """A Neon compute waking from suspend drops the first connection attempts: a proxy that drops its first one shows the retry."""

    async def scenario():
        async with tcp_proxy(server, drop_first=1) as (port, seen):
            tls = "disable" if server.admin.query.get("host", "").startswith("/") else "require"  # TLS passes through the proxy
            engine = make_engine(through(port, server, migrated.database, tls))
            try:
                async with engine.connect() as conn:
                    return await conn.scalar(text("SELECT current_database()")), list(seen)
            finally:
                await engine.dispose()

    value, seen = asyncio.run(scenario())
    assert value == migrated.database and seen[:2] == [1, 2]


def test_a_tls_url_against_a_server_without_tls_names_the_mismatch_and_is_not_retried(server, migrated):
    if not server.admin.query.get("host", "").startswith("/"):
        pytest.skip("the test server is reached over TCP and may speak TLS; the proxy speaks to a Unix socket, which never does")

    async def scenario():
        async with tcp_proxy(server) as (port, seen):
            engine = make_engine(through(port, server, migrated.database, "require"))
            try:
                async with engine.connect():
                    pass
            except ConnectError as exc:
                return exc, list(seen)
            finally:
                await engine.dispose()

    error, seen = asyncio.run(scenario())
    assert str(error).startswith("127.0.0.1:") and "TLS mismatch" in str(error) and "ssl=disable" in str(error)
    assert seen == [1]
