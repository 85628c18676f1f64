"""The application's HTTP face: a FastAPI app with the setup guide's db-test, the health report and Prometheus metrics.

Routes (all under the bearer token when one is configured):

- `GET /api/v1/db-test`: the guide's JSON (`database`, `provider`, `projects_count`, `message`);
  HTTP 503 with `"database": "unreachable"` (or `"pool exhausted"`), `error` and `fix` when it cannot answer.
- `GET /api/v1/health`: `monitor.health()` as JSON (`verdict`, `checks`, `unjudged`); 200 for
  OK, WARN and UNKNOWN, 503 for CRIT, an unreachable database, or checks that overran `health_timeout`.
- `GET /metrics[?target=NAME]`: Prometheus exposition (`copythat_ops.api.metrics`); the default scrape adds
  the server's own (`AppMetrics`: requests, latency, the pool).
- `GET /api/v1/live`: `{"status": "alive"}` without touching the database (a liveness probe; db-test is the readiness one).

`provider` is "Neon" for a `*.neon.tech` host, "embedded" for the toolkit's embedded server,
else "PostgreSQL" (the words of `copythat-ops db check`). No error body carries a traceback or
a password.

Example:
    >>> import httpx, asyncio
    >>> async def db_test():
    ...     app = create_app()
    ...     transport = httpx.ASGITransport(app=app)
    ...     async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
    ...         response = await client.get("/api/v1/db-test")
    ...     await app.state.engine.dispose()
    ...     return response.status_code, response.json()
    >>> asyncio.run(db_test())
    (200, {'database': 'connected', 'provider': 'PostgreSQL', 'projects_count': 10, 'message': 'Database connection successful! 🎉'})
"""

from __future__ import annotations

import asyncio
import hmac
import ipaddress
import json
import os
import sys
import time
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from fastapi import Depends, FastAPI
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse, Response
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from .. import database
from ..config import mask_text, mask_url, normalize_url, provider
from ..database import get_db
from ..errors import ConfigError, ConnectError, CopythatError, InputError

TOKEN_VAR = "COPYTHAT_SERVE_TOKEN"
TOKEN_MIN_LENGTH = 16
HEALTH_TIMEOUT = 20.0
DB_TEST_TIMEOUT = "5s"  # the db-test query's statement_timeout; it waits 1s at most for a lock
SUCCESS = "Database connection successful! 🎉"
NOT_MIGRATED = "Connected, but the schema is not migrated: run `copythat-ops migrate upgrade`"
_UNSET: Any = object()


def create_app(
    url: str | None = None,
    *,
    token: str | None = _UNSET,
    targets_file: str | os.PathLike | None = None,
    pool_size: int = database.POOL_SIZE,
    max_overflow: int = database.MAX_OVERFLOW,
    pool_timeout: float = database.POOL_TIMEOUT,
    health_timeout: float = HEALTH_TIMEOUT,
    hold: float = 0.0,
) -> FastAPI:
    """Return the FastAPI app on `url` (default: the configured database) with its own async pool.

    `token` (default: $COPYTHAT_SERVE_TOKEN) makes every route require `Authorization: Bearer TOKEN`;
    None or empty leaves them open. `targets_file` goes to the metrics' targets (`/metrics?target=NAME`).
    The pool is the guide's (`pool_size` 5 + `max_overflow` 10, `pool_timeout` 5 s). `hold` (seconds,
    for benchmarks only) makes db-test hold its connection that long. Nothing connects until a request.

    Example:
        >>> app = create_app(token="a-token-of-16-chars-or-more")
        >>> sorted(route.path for route in app.routes if route.path.startswith(("/api", "/metrics")))
        ['/api/v1/db-test', '/api/v1/health', '/api/v1/live', '/metrics']
    """
    token = os.environ.get(TOKEN_VAR) if token is _UNSET else token
    token = _checked_token(token)
    engine = database.make_engine(url, pool_size=pool_size, max_overflow=max_overflow, pool_timeout=pool_timeout)
    sessions = async_sessionmaker(engine, class_=AsyncSession, expire_on_commit=False)
    sync_url = normalize_url(engine.url)
    from .. import embedded

    where = provider(sync_url, embedded=embedded.owns(sync_url))
    targets = Path(targets_file) if targets_file is not None else None
    if not isinstance(hold, (int, float)) or hold < 0:
        raise InputError(f"hold must be a number of seconds, 0 or more (got {hold!r})", fix="give hold=0 outside benchmarks", params="hold")

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        yield
        await engine.dispose()

    app = FastAPI(title="copythat-ops", summary="The Copy That database's HTTP face", lifespan=lifespan)
    app.state.engine = engine
    app.state.url = mask_url(engine.url)
    app.state.health_run = None

    async def app_db():
        async with sessions() as session:
            yield session

    app.dependency_overrides[get_db] = app_db

    app.state.metrics = AppMetrics(engine)
    app.add_middleware(_Guard, token=token, metrics=app.state.metrics)

    @app.get("/api/v1/live")
    async def live() -> dict:
        """The process answers (a liveness probe): touches no database, so a database outage does not restart the server."""
        return {"status": "alive"}

    @app.get("/api/v1/db-test")
    async def db_test(db: AsyncSession = Depends(get_db)) -> JSONResponse:
        """The setup guide's connection test: database, provider, projects_count, message."""
        try:
            has_projects = await db.scalar(
                text("SELECT to_regclass('public.projects') IS NOT NULL FROM set_config('statement_timeout', :timeout, true) AS st, set_config('lock_timeout', '1s', true) AS lt"),
                {"timeout": DB_TEST_TIMEOUT},
            )
            if hold:
                await db.execute(text("/* copythat-ops:db-test.hold */ SELECT pg_sleep(:hold)"), {"hold": hold})
            count = await db.scalar(text("/* copythat-ops:db-test */ SELECT count(*) FROM projects")) if has_projects else None
        except database.PoolExhaustedError as exc:
            app.state.metrics.exhausted.inc()
            return _unavailable("pool exhausted", where, exc, retry_after=max(1, round(pool_timeout)))
        except CopythatError as exc:
            return _unavailable("unreachable", where, exc)
        except DBAPIError as exc:
            state = "unreachable" if exc.connection_invalidated else "error"
            return _unavailable(state, where, _query_error(exc))
        except (OSError, asyncio.TimeoutError) as exc:
            return _unavailable("unreachable", where, _plain(exc))
        return JSONResponse(
            {"database": "connected", "provider": where, "projects_count": count, "message": SUCCESS if count is not None else NOT_MIGRATED}
        )

    @app.get("/api/v1/health")
    async def health() -> JSONResponse:
        """monitor.health() as JSON with its verdict: 200 for OK / WARN / UNKNOWN, 503 for CRIT."""
        loop = asyncio.get_running_loop()
        if app.state.health_run is None or app.state.health_run.done():  # one run at a time; callers meanwhile share it
            app.state.health_run = loop.run_in_executor(None, health_report, sync_url)
        try:
            report = await asyncio.wait_for(asyncio.shield(app.state.health_run), timeout=health_timeout)
        except asyncio.TimeoutError:
            return JSONResponse(
                {"verdict": "UNKNOWN", "error": f"the health checks did not finish within {health_timeout:g}s",
                 "fix": "see what is slow with `copythat-ops monitor health`; the server may be overloaded or a catalog locked",
                 "checks": []},
                status_code=503,
            )  # fmt: skip
        except ConnectError as exc:  # the database cannot be reached: the worst there is
            return JSONResponse({"verdict": "CRIT", "error": mask_text(exc.problem), "fix": exc.fix, "checks": []}, status_code=503)
        except Exception as exc:  # the report itself could not be made
            problem = exc if isinstance(exc, CopythatError) else _plain(exc)
            return JSONResponse({"verdict": "UNKNOWN", "error": mask_text(problem.problem), "fix": problem.fix, "checks": []}, status_code=503)
        return JSONResponse(report, status_code=503 if report["verdict"] == "CRIT" else 200)

    @app.get("/metrics")
    async def metrics(target: str | None = None) -> Response:
        """Prometheus exposition of the default database, or of `target` from the targets file."""
        from . import metrics as collector  # written beside this module; loaded on the first scrape

        try:
            body, content_type = await run_in_threadpool(collector.exposition, target, targets_file=targets)
        except InputError as exc:
            return JSONResponse({"error": mask_text(exc.problem), "fix": exc.fix}, status_code=400)
        except CopythatError as exc:
            return JSONResponse({"error": mask_text(exc.problem), "fix": exc.fix}, status_code=500)
        if target is None and content_type.startswith("text/plain"):  # the server's own metrics ride on the default scrape only
            body = body + app.state.metrics.exposition()
        return Response(content=body, headers={"Content-Type": content_type})

    return app


def health_report(url) -> dict:
    """Return `monitor.health()` of `url` as a JSON-ready dict: verdict, checks (one dict per check) and unjudged.

    Example:
        >>> from copythat_ops.engine import database_url
        >>> report = health_report(database_url())
        >>> sorted(report), report["verdict"] in ("OK", "UNKNOWN", "WARN", "CRIT")
        (['checks', 'unjudged', 'verdict'], True)
    """
    from .. import monitor
    from ..engine import get_engine
    from ..monitor.health import unjudged

    report = monitor.health(engine=get_engine(url))
    return {
        "verdict": monitor.verdict(report),
        "checks": json.loads(report.to_json(orient="records")),
        "unjudged": unjudged(report),
    }


def _unavailable(state: str, where: str, exc: CopythatError, *, retry_after: int = 5) -> JSONResponse:
    return JSONResponse(
        {"database": state, "provider": where, "error": mask_text(exc.problem), "fix": mask_text(exc.fix or "")},
        status_code=503,
        headers={"Retry-After": str(retry_after)},
    )


def _query_error(exc: DBAPIError) -> CopythatError:
    """What db-test's query ran into: a lock, its timeout, or the driver's own words."""
    code = getattr(exc.orig, "sqlstate", None) or getattr(exc.orig, "pgcode", None)
    if code == "55P03":
        return CopythatError(
            "the projects count waited 1s for a lock another session holds on projects",
            fix="see who holds it: copythat-ops monitor activity locks; it ends when that transaction does",
        )
    if code == "57014":
        return CopythatError(
            f"the projects count ran longer than its {DB_TEST_TIMEOUT} statement timeout",
            fix="the server is overloaded or the table is huge: copythat-ops monitor health",
        )
    return _plain(exc)


def _plain(exc: BaseException) -> CopythatError:
    """A driver's error as one masked line, no traceback."""
    detail = str(getattr(exc, "orig", None) or exc).strip()
    first = mask_text(detail.splitlines()[0] if detail else "")
    if not isinstance(exc, DBAPIError):
        first = f"{type(exc).__name__}: {first}" if first else type(exc).__name__
    return CopythatError(first, fix="see the server's log; run `copythat-ops db check` to test the connection")


class AppMetrics:
    """The server's own Prometheus metrics, beside the database's on the default `/metrics` scrape.

    `copythat_api_requests_total{route,code}`, `copythat_api_request_duration_seconds{route}` (histogram),
    the pool as gauges (`copythat_api_pool_size`, `..._pool_limit`, `..._pool_checked_out`, `..._pool_idle`,
    `..._pool_overflow`) and `copythat_api_pool_exhausted_total`.

    Example:
        >>> metrics = AppMetrics(None)
        >>> metrics.observe("/api/v1/db-test", 200, 0.01)
        >>> b'copythat_api_requests_total{code="200",route="/api/v1/db-test"} 1.0' in metrics.exposition()
        True
    """

    def __init__(self, engine) -> None:
        from prometheus_client import CollectorRegistry, Counter, Histogram

        self.engine = engine
        self.registry = CollectorRegistry(auto_describe=True)
        self.requests = Counter("copythat_api_requests", "HTTP requests answered, by route template and status code", ["route", "code"], registry=self.registry)
        self.duration = Histogram(
            "copythat_api_request_duration_seconds", "Time the app took to answer, by route template", ["route"], registry=self.registry,
            buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30),
        )  # fmt: skip
        self.exhausted = Counter("copythat_api_pool_exhausted", "Requests answered 503 because no pooled connection came free within pool_timeout", registry=self.registry)
        self.registry.register(self)

    def observe(self, route: str, code: int, seconds: float) -> None:
        """Count one answered request."""
        self.requests.labels(route=route, code=str(code)).inc()
        self.duration.labels(route=route).observe(seconds)

    def collect(self):
        """The pool's gauges, read at scrape time."""
        from prometheus_client.core import GaugeMetricFamily

        pool = getattr(self.engine, "pool", None)
        if pool is None:
            return
        figures = {
            "size": ("Connections the pool keeps (pool_size)", pool.size()),
            "limit": ("Most connections the pool opens (pool_size + max_overflow)", pool.size() + pool._max_overflow),
            "checked_out": ("Pooled connections in use by requests now", pool.checkedout()),
            "idle": ("Pooled connections open and free now", pool.checkedin()),
            "overflow": ("Connections open beyond pool_size now (negative: pool_size not yet reached)", pool.overflow()),
        }
        for name, (help_text, value) in figures.items():
            yield GaugeMetricFamily(f"copythat_api_pool_{name}", help_text, value=value)

    def describe(self):
        return []

    def exposition(self) -> bytes:
        """The text exposition of these metrics."""
        from prometheus_client import generate_latest

        return generate_latest(self.registry)


class _Guard:
    """Pure ASGI middleware: every HTTP request says how long the app took (`Server-Timing: app;dur=MS`), and with a
    token configured, one without `Authorization: Bearer TOKEN` gets 401 (compared in constant time)."""

    def __init__(self, app, token: str | None, metrics: AppMetrics) -> None:
        self.app = app
        self.expected = token.encode() if token else None
        self.metrics = metrics

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        started = time.perf_counter()

        async def timed(message) -> None:
            if message["type"] == "http.response.start":
                took = time.perf_counter() - started
                route = getattr(scope.get("route"), "path", "other")  # the route's template, never the raw path: bounded labels
                self.metrics.observe(route, message["status"], took)
                message = {**message, "headers": [*message.get("headers", []), (b"server-timing", f"app;dur={took * 1000:.1f}".encode())]}
            await send(message)

        if self.expected is not None and not self._allowed(scope):
            response = JSONResponse(
                {"error": "missing or wrong bearer token", "fix": f"send the header Authorization: Bearer <the value of {TOKEN_VAR}>"},
                status_code=401,
                headers={"WWW-Authenticate": 'Bearer realm="copythat-ops"'},
            )
            return await response(scope, receive, timed)
        await self.app(scope, receive, timed)

    def _allowed(self, scope) -> bool:
        header = next((value for name, value in scope.get("headers", []) if name == b"authorization"), b"")
        scheme, _, given = header.partition(b" ")
        return scheme.lower() == b"bearer" and hmac.compare_digest(given.strip(), self.expected)


def _checked_token(token: str | None) -> str | None:
    if not token:
        return None
    if len(token) < TOKEN_MIN_LENGTH or token != token.strip():
        raise ConfigError(
            f"{TOKEN_VAR} is too short to guard the server ({len(token)} characters; at least {TOKEN_MIN_LENGTH}, no surrounding spaces)",
            fix=f"""set it to a random value: export {TOKEN_VAR}=$(python -c 'import secrets; print(secrets.token_urlsafe(32))')""",
        )
    return token


def is_loopback(host: str) -> bool:
    """Return True when `host` can be reached from this machine only (127.0.0.0/8, ::1, localhost).

    Example:
        >>> is_loopback("127.0.0.1"), is_loopback("localhost"), is_loopback("0.0.0.0")
        (True, True, False)
    """
    host = host.strip().strip("[]").lower()
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def serve(
    host: str = "127.0.0.1",
    port: int = 8000,
    *,
    targets_file: str | os.PathLike | None = None,
    pool_size: int = database.POOL_SIZE,
    max_overflow: int = database.MAX_OVERFLOW,
    pool_timeout: float = database.POOL_TIMEOUT,
    log_level: str = "info",
) -> None:
    """Run the app under uvicorn until interrupted: on 127.0.0.1 by default; another address needs $COPYTHAT_SERVE_TOKEN.

    The token comes from the environment only. Raises ConfigError, before anything starts,
    for a non-loopback `host` without a token, a short token or a missing targets file.

    Example:
        >>> serve("0.0.0.0")  # doctest: +ELLIPSIS
        Traceback (most recent call last):
        ...
        copythat_ops.errors.ConfigError: serving on 0.0.0.0 (reachable from other machines) needs a bearer token, and COPYTHAT_SERVE_TOKEN is not set...
    """
    import uvicorn

    token = _checked_token(os.environ.get(TOKEN_VAR))
    if not is_loopback(host) and not token:
        raise ConfigError(
            f"serving on {host} (reachable from other machines) needs a bearer token, and {TOKEN_VAR} is not set",
            fix=f"""export {TOKEN_VAR}=$(python -c 'import secrets; print(secrets.token_urlsafe(32))') and send it as Authorization: Bearer ...; or serve on host 127.0.0.1""",
            params="host",
        )
    if not isinstance(port, int) or isinstance(port, bool) or not 0 <= port <= 65535:
        raise InputError(f"port must be a whole number from 0 to 65535 (got {port!r})", fix="give a free TCP port such as 8000", params="port")
    if targets_file is not None and not Path(targets_file).is_file():
        raise ConfigError(f"targets file '{targets_file}' does not exist", fix="give the path of a targets file (NAME=URL lines or TOML)", params="targets_file")
    app = create_app(token=token, targets_file=targets_file, pool_size=pool_size, max_overflow=max_overflow, pool_timeout=pool_timeout)
    guard = "bearer token required" if token else "no token: this machine only"
    print(
        f"copythat-ops serve: http://{host}:{port} on {app.state.url} (pool {pool_size} + {max_overflow}, timeout {pool_timeout:g}s; {guard})",
        file=sys.stderr,
    )
    uvicorn.run(app, host=host, port=port, log_level=log_level, proxy_headers=False, server_header=False)
