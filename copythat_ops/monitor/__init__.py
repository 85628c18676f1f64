"""Monitoring: every check on-call needs, as DataFrames, version-aware for PostgreSQL 14-18, and a health verdict.

Each function is one named, read-only query under a short statement timeout,
tagged `/* copythat-ops:monitor.NAME */`; `snapshot()` runs many on one
connection, as `health()` does. A role with pg_monitor sees everything; one
without sees `<insufficient privilege>` where it may not look.

Example:
    >>> from copythat_ops import monitor
    >>> report = monitor.health()
    >>> monitor.verdict(report) in ("OK", "UNKNOWN", "WARN", "CRIT")
    True
    >>> monitor.table_sizes().head()         # doctest: +SKIP
"""

from .activity import blocked_queries, cancel_query, long_running_queries, terminate_backend
from .connections import connection_headroom, connections, idle_in_transaction, pool_status
from .health import health, verdict
from .indexes import duplicate_indexes, index_usage, invalid_indexes, missing_indexes, unused_indexes
from .locks import relation_locks
from .maintenance import cache_hit_ratio, vacuum_progress, vacuum_stats, wraparound_risk
from .queries import query_stats, query_stats_status, slow_queries
from .sequences import sequences
from .server import checkpoints, replica_lag, replication, replication_slots, server_info
from .snapshot import snapshot
from .space import database_size, index_sizes, table_sizes

__all__ = [
    "blocked_queries",
    "cache_hit_ratio",
    "cancel_query",
    "checkpoints",
    "connection_headroom",
    "connections",
    "database_size",
    "duplicate_indexes",
    "health",
    "idle_in_transaction",
    "index_sizes",
    "index_usage",
    "invalid_indexes",
    "long_running_queries",
    "missing_indexes",
    "pool_status",
    "query_stats",
    "query_stats_status",
    "relation_locks",
    "replica_lag",
    "replication",
    "replication_slots",
    "sequences",
    "server_info",
    "slow_queries",
    "snapshot",
    "table_sizes",
    "terminate_backend",
    "unused_indexes",
    "vacuum_progress",
    "vacuum_stats",
    "verdict",
    "wraparound_risk",
]
