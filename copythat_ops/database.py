"""The application's async database layer: the setup guide's `database.py`, over asyncpg.

`engine` is the guide's `create_async_engine(DATABASE_URL, pool_pre_ping=True,
pool_size=5, max_overflow=10)` on the application's URL as it is (DATABASE_URL
from the environment or `.env`, else the embedded server), created on first use:
importing this module connects to nothing. `AsyncSessionLocal` is the session
factory, `get_db()` the FastAPI dependency, `Base` the models' base.

The sync engine's rules hold here too: connections say
`application_name=copythat-ops-api` (unless the URL names one), give up after
`connect_timeout` (10 s), the first connect is retried with backoff while a
suspended Neon compute wakes, and a failure is a ConnectError whose message
carries no password. libpq's `sslmode=` becomes asyncpg's `ssl`;
`channel_binding` and the other libpq-only options never reach asyncpg. A
checkout that waits `pool_timeout` (5 s) for a free connection raises
PoolExhaustedError with the guide's fix.

One engine serves one event loop. A session made after the loop the engine
served has closed (a second `asyncio.run()`) gets a fresh engine; a script
that calls `asyncio.run()` more than once should still await `dispose()` at
the end of each run, so the server sees its connections closed.

Example:
    >>> import asyncio
    >>> from sqlalchemy import func, select
    >>> from copythat_ops.database import AsyncSessionLocal, dispose
    >>> from copythat_ops.models import Project
    >>> async def count_projects():
    ...     async with AsyncSessionLocal() as session:
    ...         count = await session.scalar(select(func.count()).select_from(Project))
    ...     await dispose()
    ...     return count
    >>> asyncio.run(count_projects())
    10
"""

from __future__ import annotations

import asyncio
import socket
import ssl
from collections.abc import AsyncIterator
from typing import TYPE_CHECKING, Any

from sqlalchemy.engine import URL, make_url

from .config import libpq_url, mask_text, mask_url, normalize_url, settings  # noqa: F401 (mask_url: for the examples)
from .errors import ConfigError, ConnectError
from .models import Base

if TYPE_CHECKING:
    from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession

__all__ = ["AsyncSessionLocal", "Base", "PoolExhaustedError", "asyncpg_url", "configure", "dispose", "engine", "get_db", "make_engine", "reset"]

APP_NAME = "copythat-ops-api"
POOL_SIZE = 5
MAX_OVERFLOW = 10
POOL_TIMEOUT = 5.0
CONNECT_TIMEOUT = 10
CONNECT_RETRIES = 3
RETRY_BACKOFF = 0.25
# Options of the asyncpg driver itself (not libpq's), passed to asyncpg.connect().
ASYNCPG_OPTIONS = {"statement_cache_size": int, "command_timeout": float, "max_cached_statement_lifetime": float,
                   "max_cacheable_statement_size": int}  # fmt: skip
# libpq options that speak to the client library, not the server: asyncpg would send them as server settings.
CLIENT_ONLY = {"channel_binding", "connect_timeout", "keepalives", "keepalives_idle", "keepalives_interval", "keepalives_count",
               "tcp_user_timeout", "gssencmode", "sslcompression", "sslsni", "requirepeer", "require_auth", "load_balance_hosts",
               "fallback_application_name", "hostaddr", "replication", "gssdelegation", "sslcertmode"}  # fmt: skip
PERMANENT_WORDS = ("password authentication failed", "no password supplied", "does not exist", "no pg_hba.conf entry",
                   "rejected ssl upgrade", "permission denied", "certificate verify failed", "invalid")  # fmt: skip


class PoolExhaustedError(ConnectError):
    """Every connection of the pool (pool_size + max_overflow) stayed in use for `pool_timeout`: the guide's "Pool Exhausted"."""

    exit_code = 1


_state: dict[str, Any] = {"engine": None, "options": {}}


def asyncpg_url(url: URL | str | None = None) -> URL:
    """Return the application's URL in asyncpg form: `postgresql+asyncpg://`, `ssl=` for libpq's `sslmode=`.

    Without `url`: DATABASE_URL (the environment, then `.env`), else the embedded server's.
    libpq-only client options (`channel_binding`, keepalives...) are left out; `connect_timeout`
    (asyncpg's `timeout`) and asyncpg's own options (`statement_cache_size`, ...) are kept.

    Example:
        >>> mask_url(asyncpg_url("postgresql://app:s3cret@ep-x.neon.tech/neondb?sslmode=require&channel_binding=require"))
        'postgresql+asyncpg://app:***@ep-x.neon.tech/neondb?ssl=require'
    """
    raw = _configured() if url is None else url
    given = raw if isinstance(raw, URL) else _parse(raw)
    libpq = normalize_url(given)  # validates; ssl= -> sslmode=
    query = {k: v for k, v in libpq.query.items() if k not in CLIENT_ONLY or k == "connect_timeout"}
    if "sslmode" in query:
        query["ssl"] = query.pop("sslmode")
    query.update({k: v for k, v in given.query.items() if k in ASYNCPG_OPTIONS})
    return libpq.set(drivername="postgresql+asyncpg", query=query)


def _parse(raw: str) -> URL:
    return normalize_url(raw).set(query=_raw_query(raw))


def _raw_query(raw: str) -> dict:
    try:
        return dict(make_url(str(raw).strip().strip("'\"")).query)
    except Exception:
        return {}


def _configured() -> URL | str:
    """The configured URL as the application wrote it (asyncpg options kept), else the embedded server's."""
    import os

    from .config import URL_VAR

    configured = settings()
    if configured.url is None:
        from .engine import database_url

        return database_url()
    if configured.source == "environment":
        return os.environ[URL_VAR]
    from dotenv import dotenv_values

    return dotenv_values(configured.source).get(URL_VAR) or configured.url


def _connect_args(url: URL) -> tuple[str, dict]:
    """asyncpg.connect()'s dsn (libpq form, server settings such as application_name in it) and keyword arguments."""
    options = {k: v for k, v in url.query.items() if k in ASYNCPG_OPTIONS}
    libpq = normalize_url(url.set(query={k: v for k, v in url.query.items() if k not in ASYNCPG_OPTIONS}))
    timeout = libpq.query.get("connect_timeout", CONNECT_TIMEOUT)
    query = {k: v for k, v in libpq.query.items() if k not in CLIENT_ONLY}
    if "hostaddr" in libpq.query and not libpq.host and "host" not in query:
        query["host"] = libpq.query["hostaddr"]
    query.setdefault("application_name", libpq.query.get("fallback_application_name", APP_NAME))
    dsn = libpq_url(libpq.set(query=query), show_password=True)
    kwargs: dict[str, Any] = {"timeout": float(timeout)}
    for key, value in options.items():
        try:
            kwargs[key] = ASYNCPG_OPTIONS[key](value)
        except ValueError:
            raise ConfigError(f"DATABASE_URL has {key}={value!r}, not a number", fix=f"write {key} as a number") from None
    return dsn, kwargs


def make_engine(
    url: URL | str | None = None,
    *,
    pool_size: int = POOL_SIZE,
    max_overflow: int = MAX_OVERFLOW,
    pool_timeout: float = POOL_TIMEOUT,
    echo: bool = False,
) -> AsyncEngine:
    """Return a new async engine: the guide's pool (5 + 10 overflow, pre-ping) on `url` (default: the configured one).

    Connecting waits at most `pool_timeout` seconds (default 5) for a free connection, then
    raises PoolExhaustedError. Nothing connects until the engine is used.

    Example:
        >>> e = make_engine("postgresql+asyncpg://app:pw@db.example.com/neondb?ssl=require")
        >>> e.pool.size(), e.pool._max_overflow, e.pool.timeout()
        (5, 10, 5.0)
    """
    from sqlalchemy.ext.asyncio import create_async_engine

    url = asyncpg_url(url)
    for name, value, low in (("pool_size", pool_size, 1), ("max_overflow", max_overflow, 0), ("pool_timeout", pool_timeout, 0)):
        if isinstance(value, bool) or not isinstance(value, (int, float)) or value < low:
            raise ConfigError(f"{name} must be a number of at least {low} (got {value!r})", fix=f"give {name} a value of {low} or more", params=name)
    dsn, kwargs = _connect_args(url)
    state = {"connected": False}

    async def connect():
        return await _connect(dsn, kwargs, url, state)

    return create_async_engine(
        url,
        echo=echo,
        pool_pre_ping=True,
        pool_size=pool_size,
        max_overflow=max_overflow,
        pool_timeout=float(pool_timeout),
        poolclass=_pool_class(make_url(dsn).query.get("application_name", APP_NAME)),
        async_creator=connect,
    )


async def _connect(dsn: str, kwargs: dict, url: URL, state: dict):
    """asyncpg.connect(), the first connect of an engine retried with backoff; failures become a masked ConnectError."""
    import asyncpg

    attempts = 1 if state["connected"] else CONNECT_RETRIES + 1
    for attempt in range(attempts):
        try:
            conn = await asyncpg.connect(dsn, **kwargs)
        except Exception as exc:
            if attempt + 1 == attempts or _permanent(exc):
                raise connect_error(exc, url) from None
            await asyncio.sleep(RETRY_BACKOFF * 2**attempt)
        else:
            state["connected"] = True
            return conn
    raise AssertionError("unreachable")


def _permanent(exc: BaseException) -> bool:
    if isinstance(exc, (socket.gaierror, ssl.SSLCertVerificationError)):
        return True
    return any(word in str(exc).lower() for word in PERMANENT_WORDS)


def connect_error(exc: BaseException, url: URL | str) -> ConnectError:
    """Return a ConnectError saying why asyncpg could not connect to `url` and what to do, password masked.

    Example:
        >>> str(connect_error(ConnectionRefusedError(111, "Connect call failed"), "postgresql+asyncpg://u:pw@db:5433/x"))
        'cannot reach db:5433 ([Errno 111] Connect call failed). Fix: check host and port in DATABASE_URL ...'
    """
    from .engine import connect_error as sync_error

    url = normalize_url(url)
    detail = mask_text(str(exc).strip() or type(exc).__name__).splitlines()[0]
    where = f"{url.host or url.query.get('host', 'localhost')}:{url.port or url.query.get('port', 5432)}"
    if isinstance(exc, socket.gaierror):
        return ConnectError(f"unknown host '{url.host}' ({detail})", fix="check the host name in DATABASE_URL and your DNS/network")
    if isinstance(exc, (TimeoutError, asyncio.TimeoutError)):
        return ConnectError(
            f"cannot reach {where}: no answer within the connect timeout",
            fix="check host and port in DATABASE_URL, the network and firewall; a suspended Neon compute wakes within seconds, so retry",
        )
    if "rejected ssl upgrade" in detail.lower():
        return ConnectError(f"{where}: TLS mismatch ({detail})", fix="use ssl=require for Neon, or ssl=disable for a local server without TLS")
    if isinstance(exc, ssl.SSLError):
        return ConnectError(f"{where}: TLS failed ({detail})", fix="check ssl= / sslrootcert in DATABASE_URL; ssl=require encrypts without verifying the certificate")
    if isinstance(exc, OSError) and not str(exc).strip():
        exc = OSError(type(exc).__name__)
    return sync_error(exc, url)


def _pool_class(application_name: str):
    from sqlalchemy import exc as sa_exc
    from sqlalchemy.pool import AsyncAdaptedQueuePool

    class Pool(AsyncAdaptedQueuePool):
        """The guide's queue pool; a checkout that times out says "pool exhausted" and what to do."""

        def _do_get(self):
            try:
                return super()._do_get()
            except sa_exc.TimeoutError:
                raise pool_exhausted(self.size(), self._max_overflow, self.timeout(), application_name=application_name) from None

    return Pool


def pool_exhausted(pool_size: int, max_overflow: int, pool_timeout: float, *, application_name: str = APP_NAME) -> PoolExhaustedError:
    """Return the error for a checkout that waited `pool_timeout` seconds while every connection was in use.

    Example:
        >>> str(pool_exhausted(5, 10, 5.0))
        'pool exhausted: all 15 connections (pool_size 5 + max_overflow 10) stayed in use for 5s. Fix: raise pool_size / max_overflow ...'
    """
    return PoolExhaustedError(
        f"pool exhausted: all {pool_size + max_overflow} connections (pool_size {pool_size} + max_overflow {max_overflow}) "
        f"stayed in use for {pool_timeout:g}s",
        fix=(
            "raise pool_size / max_overflow (the setup guide's \"Pool Exhausted\": e.g. 10 + 20) within the server's max_connections, "
            f"or find who holds connections: the sessions with application_name '{application_name}' in pg_stat_activity "
            "(copythat-ops monitor connections summary), long transactions first"
        ),
        params=("pool_size", "max_overflow"),
    )


def configure(url: URL | str | None = None, **pool: Any) -> AsyncEngine:
    """Make the module's `engine` one on `url` with these pool settings (`make_engine`'s); return it.

    The engine in use is forgotten without awaiting its connections (see `reset`).

    Example:
        >>> configure(pool_timeout=1.5).pool.timeout()
        1.5
        >>> reset()
    """
    reset()
    _state["options"] = {"url": url, **pool}
    return _engine()


def _engine() -> AsyncEngine:
    loop = _running_loop()
    if _state["engine"] is not None and loop is not None:
        first = _state.setdefault("loop", loop)
        if first is not loop and first.is_closed():  # a second asyncio.run(): that loop's connections cannot serve this one
            options = _state["options"]
            reset()
            _state["options"] = options
    if _state["engine"] is None:
        _state["engine"] = make_engine(**_state["options"])
        _state["loop"] = loop
    return _state["engine"]


def _running_loop() -> asyncio.AbstractEventLoop | None:
    try:
        return asyncio.get_running_loop()
    except RuntimeError:
        return None


async def dispose() -> None:
    """Close the module engine's connections and forget it (the next use makes a fresh one, on the URL configured then).

    Example:
        >>> import asyncio
        >>> asyncio.run(dispose())
    """
    engine, _state["engine"] = _state["engine"], None
    _state["options"] = {}
    if engine is not None:
        await engine.dispose()


def reset() -> None:
    """Forget the module's engine without awaiting anything (its pooled connections are dropped, not closed): tests, a new event loop.

    Example:
        >>> reset()
    """
    engine, _state["engine"] = _state["engine"], None
    _state["options"] = {}
    if engine is not None:
        engine.sync_engine.dispose(close=False)


def __getattr__(name: str):
    if name == "engine":
        return _engine()
    if name == "AsyncSessionLocal":
        return _sessions()
    raise AttributeError(f"module '{__name__}' has no attribute '{name}'")


def _sessions():
    if "AsyncSessionLocal" in globals():
        return globals()["AsyncSessionLocal"]
    return _make_sessions()


def _make_sessions():
    """The guide's `async_sessionmaker(engine, class_=AsyncSession, expire_on_commit=False)`, bound to the module's engine when called."""
    from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

    class SessionLocal(async_sessionmaker):
        def __call__(self, **local_kw: Any) -> AsyncSession:
            local_kw.setdefault("bind", _engine())
            return super().__call__(**local_kw)

        def __repr__(self) -> str:
            return "AsyncSessionLocal (sessions on copythat_ops.database.engine)"

    factory = SessionLocal(class_=AsyncSession, expire_on_commit=False)
    globals()["AsyncSessionLocal"] = factory
    return factory


async def get_db() -> AsyncIterator[AsyncSession]:
    """Yield a session of `AsyncSessionLocal` and close it after: the guide's FastAPI dependency.

    Example:
        >>> import asyncio
        >>> from sqlalchemy import text
        >>> async def one():
        ...     async for db in get_db():
        ...         value = await db.scalar(text("SELECT 1"))
        ...     await dispose()
        ...     return value
        >>> asyncio.run(one())
        1
    """
    async with _sessions()() as session:
        yield session
