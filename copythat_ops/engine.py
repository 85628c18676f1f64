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
from typing import TYPE_CHECKING

import psycopg2
from sqlalchemy import create_engine, event, text
from sqlalchemy.engine import URL, Connection, Engine
from sqlalchemy.exc import DBAPIError

from . import embedded, validate
from .config import mask_text, normalize_url, settings
from .errors import ConnectError, CopythatError, LockTimeout

if TYPE_CHECKING:  # pandas and the ORM load where they are used: finding the database (`copythat-ops db url`) needs neither
    import pandas as pd
    from sqlalchemy.orm import Session

APP_NAME = "copythat-ops"
POOL = {"pool_size": 5, "max_overflow": 10, "pool_pre_ping": True}
CONNECT_TIMEOUT = 10
CONNECT_RETRIES = 3
UNENDABLE_WAIT = 10.0  # seconds drop_database_forced waits out a server process this role may not end
LOCK_TIMEOUT = "3s"  # how long any statement waits for a lock before it gives up and names who holds it
LOCK_NOT_AVAILABLE = "55P03"
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

    With `replica=True` (analytics reads): the engine of DATABASE_REPLICA_URL when it is set,
    reachable and no further behind its primary than $COPYTHAT_REPLICA_MAX_LAG (default 30s);
    otherwise the primary's, and a `ReplicaFallback` warning says why, once per process until
    the replica is back (see `replica_engine`).

    Example:
        >>> get_engine() is get_engine()
        True
    """
    if replica and url is None and settings().replica_url is not None:
        return replica_engine()
    url = normalize_url(url) if url is not None else database_url(replica=replica)
    key = url.render_as_string(hide_password=False)
    if key not in _engines:
        _engines[key] = _create_engine(url)
    return _engines[key]


REPLICA_MAX_LAG_VAR = "COPYTHAT_REPLICA_MAX_LAG"
REPLICA_MAX_LAG = "30s"  # how far behind its primary the replica may be and still take analytics reads
REPLICA_RECHECK_SECONDS = 10.0  # how long one look at the replica's reachability and lag holds
_replica_state: dict = {"checked": 0.0, "use": None, "said": None}


class ReplicaFallback(UserWarning):
    """Analytics reads went to the primary because the replica is unreachable or too far behind (said once, not per query)."""


def replica_engine(*, max_lag: str | timedelta | None = None) -> Engine:
    """Return the engine analytics reads use: DATABASE_REPLICA_URL's when it is reachable and within `max_lag` of its primary, else the primary's.

    `max_lag` defaults to $COPYTHAT_REPLICA_MAX_LAG, else 30s. The replica is looked at (one
    connection, one query, read-only) at most every 10 s; while it is away or behind, the
    primary takes the reads and a `ReplicaFallback` warning says so once, and again only
    after the replica was back in between. The replica's sessions are read-only
    (default_transaction_read_only): nothing writes to it.

    Example:
        >>> replica_engine() is get_engine()   # no DATABASE_REPLICA_URL: the primary
        True
    """
    configured = settings()
    primary = get_engine(configured.url) if configured.url is not None else get_engine()
    if configured.replica_url is None:
        return primary
    limit = validate.duration(max_lag or os.environ.get(REPLICA_MAX_LAG_VAR) or REPLICA_MAX_LAG, name="max_lag")
    replica = _replica(configured.replica_url)
    now = time.monotonic()
    if max_lag is None and _replica_state["use"] is not None and now - _replica_state["checked"] < REPLICA_RECHECK_SECONDS:
        return replica if _replica_state["use"] else primary
    reason = _replica_problem(replica, limit)
    _replica_state.update(checked=now, use=reason is None)
    if reason is None:
        _replica_state["said"] = None
        return replica
    if _replica_state["said"] is None:  # once, until the replica is back
        import warnings

        _replica_state["said"] = reason
        warnings.warn(f"analytics reads go to the primary: the replica {reason}", ReplicaFallback, stacklevel=3)
    return primary


def _replica(url: URL) -> Engine:
    key = "replica:" + url.render_as_string(hide_password=False)
    if key not in _engines:
        engine = _create_engine(url)

        @event.listens_for(engine, "connect")
        def _read_only(dbapi_connection, record):
            with dbapi_connection.cursor() as cursor:
                cursor.execute("SET default_transaction_read_only = on")
            dbapi_connection.commit()

        _engines[key] = engine
    return _engines[key]


def _replica_problem(replica: Engine, limit: timedelta) -> str | None:
    """Why the replica may not take analytics reads now (unreachable, too far behind), or None."""
    where = f"{replica.url.host or replica.url.query.get('host', 'localhost')}:{replica.url.port or 5432}"
    try:
        with replica.connect() as conn:
            conn.execute(text("SET LOCAL statement_timeout = '5s'"))
            lag = conn.scalar(
                text(
                    f"""/* {APP_NAME}:replica_lag */
                    SELECT CASE
                               WHEN NOT pg_is_in_recovery() THEN 0
                               WHEN pg_last_wal_receive_lsn() IS NOT DISTINCT FROM pg_last_wal_replay_lsn() THEN 0
                               ELSE coalesce(extract(epoch FROM now() - pg_last_xact_replay_timestamp()), 0)
                           END::float8"""
                )
            )
            conn.rollback()
    except DBAPIError as exc:
        first = mask_text(str(getattr(exc, "orig", None) or exc).strip().splitlines()[0])
        return f"at {where} cannot be reached ({first})"
    if lag > limit.total_seconds():
        return f"at {where} is {lag:.0f} s behind its primary (more than {limit.total_seconds():g} s, ${REPLICA_MAX_LAG_VAR})"
    return None


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


def drop_database_forced(conn: Connection, name: str, *, wait: float = UNENDABLE_WAIT) -> None:
    """DROP DATABASE IF EXISTS `name` WITH (FORCE), on an autocommit connection to another database of its server.

    FORCE ends the sessions on it. A server process this role may not end (an autovacuum worker that has just
    started there) makes PostgreSQL refuse (42501) until it is gone: that is waited out for `wait` seconds.

    Example:
        >>> with get_engine().execution_options(isolation_level="AUTOCOMMIT").connect() as conn:
        ...     drop_database_forced(conn, "copythat_no_such_database")
    """
    deadline = time.monotonic() + wait
    while True:
        try:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{validate.database_name(name)}" WITH (FORCE)'))
            return
        except DBAPIError as exc:
            if getattr(exc.orig, "pgcode", None) != "42501" or time.monotonic() > deadline:
                raise
            time.sleep(0.2)


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
    lock_timeout: str = LOCK_TIMEOUT,
    read_only: bool = True,
    conn: Connection | None = None,
    settings: dict[str, str] | None = None,
) -> pd.DataFrame:
    """Return the rows of `sql` as a DataFrame, run under a statement timeout and tagged `/* copythat-ops:NAME */`.

    Values go in `params` as bound parameters (`:name`), never into the SQL text.
    Reads run in a read-only transaction unless `read_only=False`.
    With `conn`, the query runs in a transaction of its own on that open connection instead of a pooled one.
    `settings` (e.g. `{"work_mem": "128MB"}`) hold for this query's transaction only.
    A lock another session holds is waited on for `lock_timeout` (default 3s) at most; then a
    LockWaitError names the relation, the holder's pid, what it is doing and since when. A caller
    that sets `lock_timeout` in `settings` handles the driver's error itself.

    Example:
        >>> run_query("SELECT :n + 1 AS two", {"n": 1}, name="example")["two"].tolist()
        [2]
    """
    from .display import exact_frame

    if not _NAME.match(name):
        raise ValueError(f"query name {name!r} must be letters, digits, '.', ':', '-' or '_'")
    statement_timeout = _millis(timeout, "timeout")
    own_lock_timeout = "lock_timeout" not in (settings or {})
    values = {"statement_timeout": statement_timeout, "lock_timeout": _millis(lock_timeout, "lock_timeout"), **(settings or {})}
    given = conn
    with explain_lock_waits(name, sql, engine=engine, conn=given, lock_timeout=lock_timeout, read_only=read_only, enabled=own_lock_timeout):
        with nullcontext(given) if given is not None else connection(engine) as conn, conn.begin():
            if read_only:
                conn.execute(text("SET TRANSACTION READ ONLY"))
            for setting, value in values.items():
                conn.execute(text("SELECT set_config(:name, :value, true)"), {"name": setting, "value": value})
            result = conn.execute(text(f"/* {APP_NAME}:{name} */ {sql}"), params or {})
            return exact_frame(result.fetchall(), list(result.keys()))


def _millis(value: str, name: str) -> str:
    return f"{validate.duration(value, name=name) // timedelta(milliseconds=1)}ms"


class LockWaitError(LockTimeout):
    """A statement waited its whole `lock_timeout` for a lock another session holds (or queues for) and gave up.

    `holders` are the sessions in the way: a DataFrame with relation, pid, mode,
    granted, state, state_seconds, query_start, query (empty when they were gone
    by the time it looked).
    """

    def __init__(self, problem: str, *, fix: str, holders: pd.DataFrame, name: str = "query"):
        super().__init__(problem, fix=fix)
        self.holders = holders
        self.name = name

    @property
    def pids(self) -> list[int]:
        """The pids of the sessions in the way, holders first."""
        return list(dict.fromkeys(int(pid) for pid in self.holders["pid"]))


# Relation locks of other sessions in this database, held or queued for, with what those sessions do.
# `conflicts` lists the modes that make this statement wait: a read (ACCESS SHARE) waits only behind
# ACCESS EXCLUSIVE; a write (ROW EXCLUSIVE) also behind SHARE, SHARE ROW EXCLUSIVE and EXCLUSIVE.
_HOLDERS = """
    SELECT coalesce(owner.oid, c.oid)::regclass::text AS relation,
           l.pid,
           l.mode,
           l.granted,
           a.usename AS user_name,
           a.state,
           date_part('epoch', now() - coalesce(a.state_change, a.backend_start)) AS state_seconds,
           date_part('epoch', now() - a.xact_start) AS transaction_seconds,
           a.query_start,
           left(regexp_replace(a.query, '\\s+', ' ', 'g'), 100) AS query,
           CASE WHEN NOT l.granted THEN pg_blocking_pids(l.pid) END AS waits_for
    FROM pg_locks AS l
    JOIN pg_class AS c ON c.oid = l.relation
    LEFT JOIN pg_index AS i ON i.indexrelid = c.oid
    LEFT JOIN pg_class AS owner ON owner.oid = coalesce(i.indrelid, (SELECT t.oid FROM pg_class AS t WHERE t.reltoastrelid = c.oid))
    LEFT JOIN pg_stat_activity AS a ON a.pid = l.pid
    WHERE l.locktype = 'relation'
      AND l.database = (SELECT oid FROM pg_database WHERE datname = current_database())
      AND l.pid <> pg_backend_pid()
      AND l.mode = ANY(:conflicts)
    ORDER BY l.granted DESC, a.xact_start NULLS LAST, l.pid
"""
_READ_CONFLICTS = ["AccessExclusiveLock"]
_WRITE_CONFLICTS = ["ShareLock", "ShareRowExclusiveLock", "ExclusiveLock", "AccessExclusiveLock"]


def is_lock_timeout(exc: BaseException) -> bool:
    """True when `exc` (SQLAlchemy, psycopg2 or ADBC) is PostgreSQL's "canceling statement due to lock timeout" (55P03).

    Example:
        >>> is_lock_timeout(ValueError("no"))
        False
    """
    orig = getattr(exc, "orig", None) or exc
    return (getattr(orig, "pgcode", None) or getattr(orig, "sqlstate", None)) == LOCK_NOT_AVAILABLE


@contextmanager
def explain_lock_waits(
    name: str,
    sql: str = "",
    *,
    engine: Engine | None = None,
    conn: Connection | None = None,
    lock_timeout: str = LOCK_TIMEOUT,
    read_only: bool = True,
    enabled: bool = True,
) -> Iterator[None]:
    """Turn a lock timeout inside the block into a LockWaitError naming the relation, the holder's pid, its state, since when and its query.

    `sql` (the statement that waited) narrows the holders to the relations it
    names; `read_only` says whether it waited as a read (only ACCESS EXCLUSIVE is
    in its way) or a write. The holders are read on `conn` (its transaction
    already ended) or a fresh connection of `engine`.

    Example:
        >>> with explain_lock_waits("example"):
        ...     pass
    """
    try:
        yield
    except Exception as exc:
        if not enabled or not is_lock_timeout(exc):
            raise
        raise lock_wait_error(name, sql, engine=engine, conn=conn, lock_timeout=lock_timeout, read_only=read_only) from None


def lock_wait_error(
    name: str,
    sql: str = "",
    *,
    engine: Engine | None = None,
    conn: Connection | None = None,
    lock_timeout: str = LOCK_TIMEOUT,
    read_only: bool = True,
) -> LockWaitError:
    """Return the LockWaitError for the query tagged `name` that gave up after `lock_timeout`: who was in its way, and what to do.

    Example:
        >>> str(lock_wait_error("example", "SELECT 1"))[:36]
        'gave up after waiting 3s for a lock '
    """
    import pandas as pd

    try:
        holders = _lock_holders(conn, engine, _WRITE_CONFLICTS if not read_only else _READ_CONFLICTS)
    except Exception:  # the connection went away meanwhile: say what is known
        holders = pd.DataFrame(columns=["relation", "pid", "mode", "granted", "user_name", "state", "state_seconds", "transaction_seconds", "query_start", "query", "waits_for"])
    named = {word.lower() for word in re.findall(r"\w+", sql)}
    bare = holders["relation"].astype(str).str.split(".").str[-1].str.strip('"').str.lower() if len(holders) else holders["relation"]
    mentioned = holders[bare.isin(named)] if len(holders) else holders
    holders = (mentioned if len(mentioned) else holders).reset_index(drop=True)
    if holders.empty:
        return LockWaitError(
            f"gave up after waiting {lock_timeout} for a lock another session held (it is released now)",
            fix="run the command again; if it keeps happening, see who takes the lock with `copythat-ops monitor activity locks`",
            holders=holders,
            name=name,
        )
    relations = ", ".join(dict.fromkeys(holders["relation"]))
    who = "; ".join(_holder(row) for row in holders.head(3).itertuples())
    more = f" and {len(holders) - 3} more" if len(holders) > 3 else ""
    pids = list(dict.fromkeys(int(p) for p in holders["pid"]))
    first = pids[0]
    return LockWaitError(
        f"gave up after waiting {lock_timeout} for a lock on {relations}: {who}{more}",
        fix=(
            "see it with `copythat-ops monitor activity locks`; wait for it to end and run again, "
            f"or stop it: SELECT pg_cancel_backend({first}) cancels its query, pg_terminate_backend({first}) ends its session"
        ),
        holders=holders,
        name=name,
    )


def _lock_holders(conn: Connection | None, engine: Engine | None, conflicts: list[str]) -> pd.DataFrame:
    import pandas as pd

    with nullcontext(conn) if conn is not None else connection(engine) as db, db.begin():
        db.execute(text("SELECT set_config('statement_timeout', '5s', true), set_config('lock_timeout', '100ms', true)"))
        result = db.execute(text(f"/* {APP_NAME}:lock_holders */ {_HOLDERS}"), {"conflicts": conflicts})
        return pd.DataFrame(result.fetchall(), columns=list(result.keys()))


def _holder(row) -> str:
    """'pid 4242 holds AccessExclusiveLock on extraction_jobs (idle in transaction for 12 s, in a transaction open 40 s; query started 2026-11-30 20:01:02 UTC: LOCK TABLE ...)'."""
    import pandas as pd

    verb = "holds" if row.granted else "queues for"
    if pd.isna(row.state) or row.state is None:  # another role's session: pg_stat_activity hides what it does
        owner = f"a session of {row.user_name}" if isinstance(row.user_name, str) else "a session"
        return f"pid {row.pid} {verb} {row.mode} on {row.relation} ({owner}; what it runs is visible only to its role or to pg_read_all_stats)"
    state = f"{row.state} for {_seconds(row.state_seconds)}" if pd.notna(row.state_seconds) else row.state
    open_for = f", in a transaction open {_seconds(row.transaction_seconds)}" if pd.notna(row.transaction_seconds) else ""
    started = f"; query started {pd.Timestamp(row.query_start).tz_convert('UTC'):%Y-%m-%d %H:%M:%S} UTC: {row.query}" if pd.notna(row.query_start) else ""
    behind = f"; it waits itself for pid {', '.join(map(str, row.waits_for))}" if isinstance(row.waits_for, list) and row.waits_for else ""
    return f"pid {row.pid} {verb} {row.mode} on {row.relation} ({state}{open_for}{started}{behind})"


def _seconds(value: float) -> str:
    value = float(value)
    if value < 120:
        return f"{value:.0f} s"
    if value < 7200:
        return f"{value / 60:.0f} min"
    return f"{value / 3600:.1f} h"


@contextmanager
def session_scope(engine: Engine | None = None) -> Iterator[Session]:
    """Yield an ORM session in one transaction: committed on success, rolled back on error.

    Example:
        >>> from copythat_ops.models import Project
        >>> with session_scope() as session:
        ...     session.add(Project(name="Brand refresh", organization_id=1))
    """
    from sqlalchemy.orm import Session

    with Session(engine or get_engine()) as session, session.begin():
        yield session


def get_db() -> Iterator[Session]:
    """Yield a session and close it after: the setup guide's FastAPI dependency.

    Example:
        >>> from fastapi import Depends                       # doctest: +SKIP
        >>> async def get_projects(db: Session = Depends(get_db)): ...  # doctest: +SKIP
    """
    from sqlalchemy.orm import Session

    with Session(get_engine()) as session:
        yield session

