"""Transactions: prepared transactions and their age, the open transactions longest first, and the commit ratio.

check_postgres's `prepared_txns`, `txn_time` and `commitratio`, each one read-only query.

Example:
    >>> from copythat_ops import monitor
    >>> monitor.prepared_transactions().empty
    True
"""

from __future__ import annotations

import pandas as pd
from sqlalchemy.engine import Engine

from .snapshot import query


def prepared_transactions(*, engine: Engine | None = None) -> pd.DataFrame:
    """Return the server's prepared (two-phase) transactions, oldest first, with their age: each holds its locks and keeps vacuum from cleaning up until committed or rolled back.

    Example:
        >>> prepared_transactions().columns.tolist()
        ['gid', 'database', 'owner', 'prepared', 'age_seconds', 'xid_age']
    """
    return query(
        """
        SELECT gid,
               database,
               owner,
               prepared,
               round(extract(epoch FROM now() - prepared)::numeric, 1)::float8 AS age_seconds,
               age(transaction) AS xid_age
        FROM pg_prepared_xacts
        ORDER BY prepared, gid
        """,
        name="prepared_transactions",
        engine=engine,
    )


def open_transactions(*, engine: Engine | None = None) -> pd.DataFrame:
    """Return the server's client sessions inside a transaction, longest open first, whatever they are doing (active, idle in transaction, waiting).

    The monitoring session itself is left out. A role without pg_monitor sees
    only its own sessions' times.

    Example:
        >>> open_transactions().columns.tolist()[:4]
        ['pid', 'user_name', 'application_name', 'database']
    """
    return query(
        """
        SELECT pid,
               usename AS user_name,
               application_name,
               datname AS database,
               state,
               xact_start,
               round(extract(epoch FROM now() - xact_start)::numeric, 1)::float8 AS transaction_seconds,
               wait_event_type,
               left(query, 200) AS query
        FROM pg_stat_activity
        WHERE xact_start IS NOT NULL
          AND pid <> pg_backend_pid()
          AND coalesce(backend_type, 'client backend') = 'client backend'
        ORDER BY xact_start, pid
        """,
        name="open_transactions",
        engine=engine,
    )


def commit_ratio(*, engine: Engine | None = None) -> pd.DataFrame:
    """Return this database's committed and rolled back transactions since the statistics were reset, and the % committed.

    A low ratio means the application rolls back a lot: failed statements, retries, or a driver that rolls back by default.

    Example:
        >>> commit_ratio().columns.tolist()
        ['database', 'commits', 'rollbacks', 'commit_percent', 'stats_reset']
    """
    return query(
        """
        SELECT datname AS database,
               xact_commit AS commits,
               xact_rollback AS rollbacks,
               round(100.0 * xact_commit / nullif(xact_commit + xact_rollback, 0), 2)::float8 AS commit_percent,
               stats_reset
        FROM pg_stat_database
        WHERE datname = current_database()
        ORDER BY database
        """,
        name="commit_ratio",
        engine=engine,
    )
