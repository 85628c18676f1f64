"""Connections: who is connected and doing what, the headroom left, and the toolkit's own pool.

Example:
    >>> from copythat_ops import monitor
    >>> monitor.connection_headroom().columns.tolist()
    ['max_connections', 'reserved_connections', 'used_connections', 'available_connections', 'percent_used']
"""

from __future__ import annotations

from datetime import timedelta

import pandas as pd
from sqlalchemy.engine import Engine

from .. import validate
from ..engine import POOL, get_engine
from .snapshot import query, snapshot

# Who a session is, shared by the lists of sessions (pg_stat_activity columns).
SESSION = """pid,
               usename AS user_name,
               application_name,
               host(client_addr) AS client_addr,
               state"""


def connections(*, engine: Engine | None = None) -> pd.DataFrame:
    """Return this database's client connections counted by state, application, user and client (the setup guide's query).

    A role without pg_read_all_stats (pg_monitor) sees other roles' sessions with state `<insufficient privilege>`
    (and cannot tell them from background workers, which are then counted too).

    Example:
        >>> connections().columns.tolist()
        ['state', 'application_name', 'user_name', 'client_addr', 'connections']
    """
    return query(
        """
        SELECT coalesce(state, '<insufficient privilege>') AS state,
               application_name,
               usename AS user_name,
               host(client_addr) AS client_addr,
               count(*) AS connections
        FROM pg_stat_activity
        WHERE datname = current_database()
          AND coalesce(backend_type, 'client backend') = 'client backend'
        GROUP BY 1, 2, 3, 4
        ORDER BY connections DESC, state, application_name, user_name, client_addr
        """,
        name="connections",
        engine=engine,
    )


def connection_headroom(*, engine: Engine | None = None) -> pd.DataFrame:
    """Return the server's max_connections, the slots reserved for superusers (and pg_use_reserved_connections on 16+), client connections in use, what is left and the % used.

    Example:
        >>> int(connection_headroom()["max_connections"][0]) > 0
        True
    """
    with snapshot(engine) as snap:
        reserved = "current_setting('superuser_reserved_connections')::int"
        if snap.major >= 16:
            reserved += " + current_setting('reserved_connections')::int"
        return query(
            f"""
            SELECT max_connections,
                   reserved_connections,
                   used_connections,
                   max_connections - reserved_connections - used_connections AS available_connections,
                   round(100.0 * used_connections / nullif(max_connections - reserved_connections, 0), 1)::float8 AS percent_used
            FROM (
                SELECT current_setting('max_connections')::int AS max_connections,
                       {reserved} AS reserved_connections,
                       count(*) AS used_connections
                FROM pg_stat_activity
                WHERE coalesce(backend_type, 'client backend') = 'client backend'
            ) AS usage
            ORDER BY max_connections
            """,
            name="connection_headroom",
        )


def idle_in_transaction(min_duration: str | timedelta = "0s", *, engine: Engine | None = None) -> pd.DataFrame:
    """Return this database's sessions idle inside an open transaction for at least `min_duration`, longest first.

    They hold locks and stop vacuum from removing dead rows; end them with `terminate_backend(pid)`.

    Example:
        >>> idle_in_transaction("5 min").columns.tolist()[:4]
        ['pid', 'user_name', 'application_name', 'client_addr']
    """
    seconds = validate.duration(min_duration, name="min_duration").total_seconds()
    return query(
        f"""
        SELECT {SESSION},
               extract(epoch FROM now() - state_change)::float8 AS idle_seconds,
               date_trunc('second', now() - state_change) AS idle,
               date_trunc('second', now() - xact_start) AS transaction_age,
               query AS last_query
        FROM pg_stat_activity
        WHERE datname = current_database()
          AND state IN ('idle in transaction', 'idle in transaction (aborted)')
          AND now() - state_change >= make_interval(secs => :seconds)
        ORDER BY state_change, pid
        """,
        {"seconds": seconds},
        name="idle_in_transaction",
        engine=engine,
    )


def pool_status(engine: Engine | None = None) -> pd.DataFrame:
    """Return the toolkit's own connection pool: its size, connections checked in and out, overflow in use and capacity.

    Example:
        >>> int(pool_status()["capacity"][0])
        15
    """
    pool = (engine or get_engine()).pool
    return pd.DataFrame(
        [
            {
                "pool_size": pool.size(),
                "checked_in": pool.checkedin(),
                "checked_out": pool.checkedout(),
                "overflow": max(pool.overflow(), 0),
                "capacity": POOL["pool_size"] + POOL["max_overflow"],
            }
        ]
    )
