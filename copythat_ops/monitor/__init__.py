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
    >>> monitor.table_sizes()["table"].head(1).tolist()   # largest first
    ['extraction_jobs']
"""

from .activity import blocked_queries, cancel_query, long_running_queries, terminate_backend
from .bloat import bloat
from .connections import connection_headroom, connections, idle_in_transaction, pool_status
from .forecast import parse_size, sequence_forecast, size_forecast
from .health import health, verdict
from .history import capture, capture_loop, history_summary, prune_history
from .indexes import duplicate_indexes, index_usage, invalid_indexes, missing_indexes, unused_indexes
from .locks import relation_locks
from .maintenance import cache_hit_ratio, vacuum_progress, vacuum_stats, wraparound_risk
from .queries import query_stats, query_stats_status, slow_queries
from .sequences import sequences
from .schema import disabled_triggers, schema_diff
from .tenancy import policies, rls_status, unindexed_foreign_keys
from .server import checkpoints, replica_lag, replication, replication_slots, server_info
from .snapshot import snapshot
from .space import database_size, index_sizes, table_sizes
from .transactions import commit_ratio, open_transactions, prepared_transactions
from .trends import connection_history, growth, job_trends, query_changes, query_trends, sequence_history, size_history

__all__ = [
    "bloat",
    "blocked_queries",
    "cache_hit_ratio",
    "cancel_query",
    "capture",
    "capture_loop",
    "checkpoints",
    "commit_ratio",
    "connection_headroom",
    "connection_history",
    "connections",
    "database_size",
    "disabled_triggers",
    "duplicate_indexes",
    "growth",
    "health",
    "history_summary",
    "idle_in_transaction",
    "index_sizes",
    "index_usage",
    "invalid_indexes",
    "job_trends",
    "long_running_queries",
    "missing_indexes",
    "open_transactions",
    "parse_size",
    "policies",
    "pool_status",
    "prepared_transactions",
    "prune_history",
    "query_changes",
    "query_stats",
    "query_stats_status",
    "query_trends",
    "relation_locks",
    "replica_lag",
    "rls_status",
    "replication",
    "replication_slots",
    "schema_diff",
    "sequence_forecast",
    "sequence_history",
    "sequences",
    "server_info",
    "size_forecast",
    "size_history",
    "slow_queries",
    "snapshot",
    "table_sizes",
    "terminate_backend",
    "unindexed_foreign_keys",
    "unused_indexes",
    "vacuum_progress",
    "vacuum_stats",
    "verdict",
    "wraparound_risk",
]
