"""One connection for a whole monitoring snapshot, and the runner every check goes through.

Each check is one named query run by `engine.run_query`: read-only, under a
short statement timeout and a shorter lock timeout, tagged
`/* copythat-ops:monitor.NAME */` so it can be recognised in pg_stat_activity.
A check never waits behind another session's lock for longer than
`LOCK_TIMEOUT`: it reads around the locks it sees (see `locks`), runs again
when one was taken meanwhile, and otherwise says who holds it. Inside `snapshot()`, every check reuses the
same connection; outside, a check opens its own for the one query. The server's
major version comes from the connection handshake, without a query.

Example:
    >>> from copythat_ops import monitor
    >>> with monitor.snapshot() as snap:
    ...     sizes, hits = monitor.table_sizes(), monitor.cache_hit_ratio()
    >>> snap.major >= 14
    True
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass

import pandas as pd
from psycopg2.errors import LockNotAvailable, QueryCanceled
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.exc import DBAPIError

from ..engine import connection, run_query
from ..errors import CopythatError

TIMEOUT = "5s"
LOCK_TIMEOUT = "100ms"
LOCK_RETRIES = 2
OLDEST, NEWEST = 14, 18


@dataclass(frozen=True)
class Snapshot:
    """An open connection, the server's major version and the statement timeout of every check."""

    conn: Connection
    major: int
    timeout: str = TIMEOUT


_active: ContextVar[Snapshot | None] = ContextVar("copythat_ops_monitor_snapshot", default=None)


@contextmanager
def snapshot(engine: Engine | None = None, *, timeout: str = TIMEOUT) -> Iterator[Snapshot]:
    """Run every check inside the block on one connection (the current snapshot's when one is open).

    Refuses servers older than PostgreSQL 14.

    Example:
        >>> from copythat_ops.monitor import connections, table_sizes
        >>> with snapshot() as snap:
        ...     by_state, sizes = connections(), table_sizes()   # one connection for both
        >>> snap.major >= 14
        True
    """
    active = _active.get()
    if active is not None:
        yield active
        return
    with connection(engine) as conn:
        snap = Snapshot(conn, major=server_major(conn), timeout=timeout)
        token = _active.set(snap)
        try:
            yield snap
        finally:
            _active.reset(token)


def server_major(conn: Connection) -> int:
    """Return the server's major version (e.g. 18) from the connection handshake; refuse versions older than 14.

    Example:
        >>> from copythat_ops.engine import connection
        >>> with connection() as conn:
        ...     server_major(conn) >= 14
        True
    """
    number = conn.connection.dbapi_connection.server_version
    major = number // 10000
    if major < OLDEST:
        raise CopythatError(
            f"the server runs PostgreSQL {major}.{number % 10000}, older than {OLDEST}, which the monitoring checks need",
            fix=f"upgrade the server to PostgreSQL {OLDEST}-{NEWEST}",
        )
    return major


def query(sql: str, params: dict | None = None, *, name: str, engine: Engine | None = None) -> pd.DataFrame:
    """Return the rows of one named monitoring query, on the snapshot's connection, never waiting long for a lock.

    A query that waits more than `LOCK_TIMEOUT` for a lock runs again (the
    checks then read around the lock they now see); one that still cannot, or
    that outlasts the statement timeout, raises a CopythatError naming the
    check and the sessions holding locks, never a driver error.

    Example:
        >>> query("SELECT 1 AS one", name="example")["one"].tolist()
        [1]
    """
    with snapshot(engine) as snap:
        for attempt in range(LOCK_RETRIES + 1):
            try:
                return run_query(sql, params, name=f"monitor.{name}", conn=snap.conn, timeout=snap.timeout, settings={"lock_timeout": LOCK_TIMEOUT})
            except DBAPIError as exc:
                if isinstance(exc.orig, LockNotAvailable) and attempt < LOCK_RETRIES:
                    continue
                if isinstance(exc.orig, (LockNotAvailable, QueryCanceled)):
                    raise _waited(snap, name, lock=isinstance(exc.orig, LockNotAvailable)) from None
                raise


def _waited(snap: Snapshot, name: str, *, lock: bool) -> CopythatError:
    """The error for a check that waited too long: for a lock (naming who holds locks here) or past its statement timeout."""
    if not lock:
        return CopythatError(
            f"monitor.{name} did not finish within its {snap.timeout} statement timeout",
            fix="run it again when the server is less busy; see long_running_queries() and blocked_queries()",
        )
    holders = run_query(
        """
        SELECT string_agg(DISTINCT format('pid %s (%s on %s)', l.pid, l.mode, l.relation::regclass::text), ', ') AS holders
        FROM pg_locks AS l
        WHERE l.locktype = 'relation'
          AND l.granted
          AND l.pid <> pg_backend_pid()
          AND l.mode IN ('ShareLock', 'ShareRowExclusiveLock', 'ExclusiveLock', 'AccessExclusiveLock')
          AND l.database = (SELECT oid FROM pg_database WHERE datname = current_database())
        """,
        name="monitor.lock_holders",
        conn=snap.conn,
        timeout=snap.timeout,
        settings={"lock_timeout": LOCK_TIMEOUT},
    )["holders"][0]
    return CopythatError(
        f"monitor.{name} waited more than {LOCK_TIMEOUT} for a lock" + (f" held by {holders}" if holders else ""),
        fix="see blocked_queries(); run the check again when the lock is released, or end the holder with cancel_query(pid)",
    )
