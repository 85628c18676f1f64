"""Engines, sessions and the one query runner every read goes through.

The pool is the setup guide's (5 + 10 overflow, pre-ping). Connections say
`application_name=copythat-ops`, give up after `connect_timeout` seconds, and
the first connect of an engine is retried with backoff while a suspended
Neon compute wakes up.

Example:
    >>> from copythat_ops.engine import get_engine, run_query
    >>> run_query("SELECT 1 AS one", name="example")["one"].tolist()
    [1]
"""

from __future__ import annotations

import os
import re
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager, nullcontext
from datetime import timedelta

import pandas as pd
import psycopg2
from sqlalchemy import create_engine, event, text
from sqlalchemy.engine import URL, Connection, Engine
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import Session

from . import embedded, validate
from .config import mask_text, normalize_url, settings
from .errors import ConnectError

APP_NAME = "copythat-ops"
POOL = {"pool_size": 5, "max_overflow": 10, "pool_pre_ping": True}
CONNECT_TIMEOUT = 10
CONNECT_RETRIES = 3
RETRY_BACKOFF = 0.25
# libpq errors that retrying cannot fix.
_PERMANENT = re.compile(
    r"password authentication failed|no password supplied|does not exist|no pg_hba\.conf entry|"
    r"not support SSL|permission denied|could not translate host name|invalid|channel binding",
    re.IGNORECASE,
)
_NAME = re.compile(r"^[\w.:-]{1,60}$")

_engines: dict[str, Engine] = {}
_announced = False


def database_url(*, replica: bool = False) -> URL:
    """Return the URL in use: DATABASE_URL (environment, then .env), else the embedded server's.

    With `replica=True`, DATABASE_REPLICA_URL when it is set.

    Example:
        >>> database_url().drivername
        'postgresql+psycopg2'
    """
    global _announced
    configured = settings()
    if replica and configured.replica_url is not None:
        return configured.replica_url
    if configured.url is not None:
        return configured.url
    url = embedded.start()
    if not _announced and not os.environ.get("COPYTHAT_EMBEDDED_ANNOUNCED"):  # set by `notebooks run` for its kernels
        _announced = True
        print(
            f"copythat-ops: using the embedded PostgreSQL in {embedded.data_dir()}, as nothing is configured "
            "(no DATABASE_URL, no .env); set DATABASE_URL in .env to use your own database",
            file=sys.stderr,
        )
    return url


def get_engine(url: URL | str | None = None, *, replica: bool = False) -> Engine:
    """Return the engine for `url` (default: `database_url()`), one per URL, cached.

    Example:
        >>> get_engine() is get_engine()
        True
    """
    url = normalize_url(url) if url is not None else database_url(replica=replica)
    key = url.render_as_string(hide_password=False)
    if key not in _engines:
        _engines[key] = _create_engine(url)
    return _engines[key]


def dispose_engines() -> None:
    """Close every cached engine's connections (e.g. before dropping a database).

    Example:
        >>> dispose_engines()
    """
    for engine in _engines.values():
        engine.dispose()
    _engines.clear()


def _create_engine(url: URL) -> Engine:
    connect_args = {}
    if "application_name" not in url.query:
        connect_args["application_name"] = APP_NAME
    if "connect_timeout" not in url.query:
        connect_args["connect_timeout"] = CONNECT_TIMEOUT
    engine = create_engine(url, connect_args=connect_args, **POOL)
    state = {"connected": False}

    @event.listens_for(engine, "do_connect")
    def _connect_with_retry(dialect, conn_rec, cargs, cparams):
        attempts = 1 if state["connected"] else CONNECT_RETRIES + 1
        for attempt in range(attempts):
            try:
                conn = psycopg2.connect(*cargs, **cparams)
            except psycopg2.OperationalError as exc:
                if attempt + 1 == attempts or _PERMANENT.search(str(exc)):
                    raise
                time.sleep(RETRY_BACKOFF * 2**attempt)
            else:
                state["connected"] = True
                return conn

    return engine


def connect_error(exc: BaseException, url: URL) -> ConnectError:
    """Return a ConnectError that says what failed for `url` and how to fix it, password masked.

    Example:
        >>> import psycopg2
        >>> str(connect_error(psycopg2.OperationalError("Connection refused"), URL.create("postgresql", host="db")))[:26]
        'cannot reach db:5432 (Conn'
    """
    detail = str(getattr(exc, "orig", None) or exc).strip()
    first = mask_text(detail.splitlines()[0] if detail else type(exc).__name__)
    where = f"{url.host or url.query.get('host', 'localhost')}:{url.port or url.query.get('port', 5432)}"
    lowered = detail.lower()
    if "password authentication failed" in lowered or "no password supplied" in lowered:
        return ConnectError(
            f"{where} refused the login of user '{url.username}': wrong or missing password",
            fix="check the password in DATABASE_URL (.env); percent-encode characters such as @ : / as %40 %3A %2F",
        )
    if "database" in lowered and "does not exist" in lowered:
        return ConnectError(f"{where} has no database '{url.database}'", fix="create it, or correct the database name in DATABASE_URL")
    if "role" in lowered and "does not exist" in lowered:
        return ConnectError(f"{where} has no user '{url.username}'", fix="correct the user name in DATABASE_URL")
    if "translate host name" in lowered:
        return ConnectError(f"unknown host '{url.host}'", fix="check the host name in DATABASE_URL and your DNS/network")
    if "ssl" in lowered and ("not support" in lowered or "required" in lowered):
        return ConnectError(f"{where}: TLS mismatch ({first})", fix="use sslmode=require for Neon, or sslmode=disable for a local server without TLS")
    return ConnectError(
        f"cannot reach {where} ({first})",
        fix="check host and port in DATABASE_URL and that the server is up; a suspended Neon compute wakes within seconds, so retry",
    )


@contextmanager
def connection(engine: Engine | None = None) -> Iterator[Connection]:
    """Yield a pooled connection; connect failures become a ConnectError.

    Example:
        >>> with connection() as conn:
        ...     conn.scalar(text("SELECT 1"))
        1
    """
    engine = engine or get_engine()
    try:
        conn = engine.connect()
    except DBAPIError as exc:
        raise connect_error(exc, engine.url) from None
    with conn:
        yield conn


def run_query(
    sql: str,
    params: dict | None = None,
    *,
    name: str = "query",
    engine: Engine | None = None,
    timeout: str = "30s",
    read_only: bool = True,
    conn: Connection | None = None,
    settings: dict[str, str] | None = None,
) -> pd.DataFrame:
    """Return the rows of `sql` as a DataFrame, run under a statement timeout and tagged `/* copythat-ops:NAME */`.

    Values go in `params` as bound parameters (`:name`), never into the SQL text.
    Reads run in a read-only transaction unless `read_only=False`.
    With `conn`, the query runs in a transaction of its own on that open connection instead of a pooled one.
    `settings` (e.g. `{"work_mem": "128MB"}`) hold for this query's transaction only.

    Example:
        >>> run_query("SELECT :n + 1 AS two", {"n": 1}, name="example")["two"].tolist()
        [2]
    """
    if not _NAME.match(name):
        raise ValueError(f"query name {name!r} must be letters, digits, '.', ':', '-' or '_'")
    statement_timeout = f"{validate.duration(timeout, name='timeout') // timedelta(milliseconds=1)}ms"
    with nullcontext(conn) if conn is not None else connection(engine) as conn, conn.begin():
        if read_only:
            conn.execute(text("SET TRANSACTION READ ONLY"))
        for setting, value in {"statement_timeout": statement_timeout, **(settings or {})}.items():
            conn.execute(text("SELECT set_config(:name, :value, true)"), {"name": setting, "value": value})
        result = conn.execute(text(f"/* {APP_NAME}:{name} */ {sql}"), params or {})
        return pd.DataFrame(result.fetchall(), columns=list(result.keys()))


@contextmanager
def session_scope(engine: Engine | None = None) -> Iterator[Session]:
    """Yield an ORM session in one transaction: committed on success, rolled back on error.

    Example:
        >>> from copythat_ops.models import Project
        >>> with session_scope() as session:
        ...     session.add(Project(name="Brand refresh"))
    """
    with Session(engine or get_engine()) as session, session.begin():
        yield session


def get_db() -> Iterator[Session]:
    """Yield a session and close it after: the setup guide's FastAPI dependency.

    Example:
        >>> from fastapi import Depends                       # doctest: +SKIP
        >>> async def get_projects(db: Session = Depends(get_db)): ...  # doctest: +SKIP
    """
    with Session(get_engine()) as session:
        yield session

