"""Activity: queries running long, queries blocked by another session's locks, and the two actions on-call takes.

A role without pg_read_all_stats (pg_monitor) sees other roles' query text as
`<insufficient privilege>`; everything else still works.

Example:
    >>> from copythat_ops import monitor
    >>> monitor.long_running_queries("1 min").columns.tolist()[:3]
    ['pid', 'user_name', 'application_name']
"""

from __future__ import annotations

from datetime import timedelta

import pandas as pd
from psycopg2.errors import InsufficientPrivilege
from sqlalchemy.engine import Engine
from sqlalchemy.exc import DBAPIError

from .. import validate
from ..errors import CopythatError, InputError
from .connections import SESSION
from .snapshot import query, snapshot

SIGNALS = {"cancel": "pg_cancel_backend", "terminate": "pg_terminate_backend"}
SIGNALLABLE = ("client backend", "autovacuum worker")


def long_running_queries(min_duration: str | timedelta = "1 min", *, engine: Engine | None = None) -> pd.DataFrame:
    """Return this database's queries (and open transactions) running for at least `min_duration` (pghero: 60 s), longest first.

    Example:
        >>> long_running_queries("30 s").columns.tolist()[-3:]
        ['duration', 'started_at', 'query']
    """
    seconds = validate.duration(min_duration, name="min_duration").total_seconds()
    return query(
        f"""
        SELECT {SESSION},
               wait_event_type,
               wait_event,
               extract(epoch FROM now() - coalesce(query_start, xact_start))::float8 AS duration_seconds,
               date_trunc('second', now() - coalesce(query_start, xact_start)) AS duration,
               coalesce(query_start, xact_start) AS started_at,
               query
        FROM pg_stat_activity
        WHERE datname = current_database()
          AND backend_type = 'client backend'
          AND state <> 'idle'
          AND pid <> pg_backend_pid()
          AND now() - coalesce(query_start, xact_start) >= make_interval(secs => :seconds)
        ORDER BY duration_seconds DESC, pid
        """,
        {"seconds": seconds},
        name="long_running_queries",
        engine=engine,
    )


def blocked_queries(*, engine: Engine | None = None) -> pd.DataFrame:
    """Return who blocks whom in this database: each waiting session, the lock it waits for, and each session in its way with the modes it holds.

    `blocking_modes` is `(queued ahead)` for a session that holds nothing yet
    but waits ahead in the same lock queue. Longest wait first.

    Example:
        >>> blocked_queries().columns.tolist()[:3]
        ['blocked_pid', 'blocked_user', 'blocked_mode']
    """
    return query(
        """
        SELECT waiting.pid AS blocked_pid,
               blocked.usename AS blocked_user,
               waiting.mode AS blocked_mode,
               coalesce(waiting.relation::regclass::text, waiting.locktype) AS locked_object,
               extract(epoch FROM now() - waiting.waitstart)::float8 AS waiting_seconds,
               date_trunc('second', now() - waiting.waitstart) AS waiting,
               blocked.query AS blocked_query,
               blocking.pid AS blocking_pid,
               blocking.usename AS blocking_user,
               blocking.state AS blocking_state,
               coalesce(held.modes, '(queued ahead)') AS blocking_modes,
               blocking.query AS blocking_query
        FROM pg_locks AS waiting
        JOIN pg_stat_activity AS blocked ON blocked.pid = waiting.pid
        CROSS JOIN LATERAL unnest(pg_blocking_pids(waiting.pid)) AS blocker(pid)
        JOIN pg_stat_activity AS blocking ON blocking.pid = blocker.pid
        LEFT JOIN LATERAL (
            SELECT string_agg(DISTINCT h.mode, ', ' ORDER BY h.mode) AS modes
            FROM pg_locks AS h
            WHERE h.pid = blocking.pid
              AND h.granted
              AND h.locktype = waiting.locktype
              AND h.database IS NOT DISTINCT FROM waiting.database
              AND h.relation IS NOT DISTINCT FROM waiting.relation
              AND h.page IS NOT DISTINCT FROM waiting.page
              AND h.tuple IS NOT DISTINCT FROM waiting.tuple
              AND h.virtualxid IS NOT DISTINCT FROM waiting.virtualxid
              AND h.transactionid IS NOT DISTINCT FROM waiting.transactionid
              AND h.classid IS NOT DISTINCT FROM waiting.classid
              AND h.objid IS NOT DISTINCT FROM waiting.objid
              AND h.objsubid IS NOT DISTINCT FROM waiting.objsubid
        ) AS held ON true
        WHERE NOT waiting.granted
          AND blocked.datname = current_database()
        ORDER BY waiting_seconds DESC, blocked_pid, blocking_pid
        """,
        name="blocked_queries",
        engine=engine,
    )


def cancel_query(pid: int, *, apply: bool = False, engine: Engine | None = None) -> pd.DataFrame:
    """Cancel the query running in session `pid` (the session stays connected); return the session and whether it was signalled.

    A dry run (only the session, `action` "would cancel") unless `apply=True`.
    A pid that is not a session of this server, or is this connection's own,
    is refused and nothing happens.

    Example:
        >>> from copythat_ops.engine import get_engine
        >>> other = get_engine().connect()          # another session
        >>> pid = other.connection.dbapi_connection.get_backend_pid()
        >>> cancel_query(pid)["action"].tolist()
        ['would cancel']
        >>> cancel_query(pid, apply=True)["action"].tolist()
        ['cancel']
        >>> other.close()
    """
    return _signal(pid, "cancel", apply=apply, engine=engine)


def terminate_backend(pid: int, *, apply: bool = False, engine: Engine | None = None) -> pd.DataFrame:
    """End session `pid` (its open transaction rolls back); return the session and whether it was signalled.

    A dry run (only the session, `action` "would terminate") unless `apply=True`.
    A pid that is not a session of this server, or is this connection's own,
    is refused and nothing happens.

    Example:
        >>> from copythat_ops.engine import get_engine
        >>> other = get_engine().connect()          # another session
        >>> pid = other.connection.dbapi_connection.get_backend_pid()
        >>> terminate_backend(pid, apply=True)["action"].tolist()
        ['terminate']
        >>> other.invalidate()
    """
    return _signal(pid, "terminate", apply=apply, engine=engine)


def _signal(pid: int, action: str, *, apply: bool, engine: Engine | None) -> pd.DataFrame:
    pid = validate.number(pid, name="pid", minimum=1, integer=True)
    with snapshot(engine):
        target = query(
            """
            SELECT pid,
                   usename AS user_name,
                   application_name,
                   datname AS database,
                   state,
                   coalesce(backend_type, 'client backend') AS backend_type,
                   query,
                   pid = pg_backend_pid() AS own
            FROM pg_stat_activity
            WHERE pid = :pid
            ORDER BY pid
            """,
            {"pid": pid},
            name=f"{action}_target",
        )
        if target.empty:
            raise InputError(f"no session has pid {pid}", fix="pick a pid from long_running_queries(), blocked_queries() or idle_in_transaction()")
        session = target.iloc[0]
        if session["own"]:
            raise InputError(f"pid {pid} is this connection's own session", fix="give the pid of another session")
        if session["backend_type"] not in SIGNALLABLE:
            raise InputError(f"pid {pid} is the server's {session['backend_type']}, not a session", fix="give the pid of a client session")
        done = False
        if apply:
            try:
                done = bool(query(f"SELECT {SIGNALS[action]}(:pid) AS done", {"pid": pid}, name=action)["done"][0])
            except DBAPIError as exc:
                if not isinstance(exc.orig, InsufficientPrivilege):
                    raise
                raise CopythatError(
                    f"this role may not {action} pid {pid} of role {session['user_name']}",
                    fix="connect as that role, or as a member of pg_signal_backend",
                ) from None
    result = target.drop(columns=["own", "backend_type"])
    result["action"] = action if apply else f"would {action}"
    result["done"] = done
    return result
