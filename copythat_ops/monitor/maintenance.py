"""Maintenance: dead rows and when tables were last vacuumed and analysed, vacuums running now, wraparound risk, cache hit ratio.

Example:
    >>> from copythat_ops import monitor
    >>> monitor.cache_hit_ratio()["kind"].tolist()
    ['indexes', 'tables']
"""

from __future__ import annotations

import pandas as pd
from sqlalchemy.engine import Engine

from .snapshot import query, snapshot

# pghero's ceiling: transaction ids a table may age before the server stops accepting writes (2^31 less a margin).
WRAPAROUND_LIMIT = 2_146_483_648


def vacuum_stats(*, engine: Engine | None = None) -> pd.DataFrame:
    """Return each table's live and dead rows, % dead, last manual and automatic vacuum and analyze, their counts, and whether autovacuum is enabled; most dead rows first.

    Example:
        >>> vacuum_stats().columns.tolist()[:5]
        ['schema', 'table', 'live_rows', 'dead_rows', 'dead_percent']
    """
    return query(
        """
        SELECT s.schemaname AS schema,
               s.relname AS "table",
               s.n_live_tup AS live_rows,
               s.n_dead_tup AS dead_rows,
               round(100.0 * s.n_dead_tup / nullif(s.n_live_tup + s.n_dead_tup, 0), 1)::float8 AS dead_percent,
               s.n_mod_since_analyze AS modified_since_analyze,
               s.last_vacuum,
               s.last_autovacuum,
               s.last_analyze,
               s.last_autoanalyze,
               s.vacuum_count,
               s.autovacuum_count,
               s.analyze_count,
               s.autoanalyze_count,
               NOT coalesce('autovacuum_enabled=false' = ANY (c.reloptions), false) AS autovacuum_enabled
        FROM pg_stat_user_tables AS s
        JOIN pg_class AS c ON c.oid = s.relid
        ORDER BY dead_rows DESC, schema, "table"
        """,
        name="vacuum_stats",
        engine=engine,
    )


def vacuum_progress(*, engine: Engine | None = None) -> pd.DataFrame:
    """Return the vacuums running now in this database (manual and autovacuum): phase, % of the heap scanned, index passes, dead items collected.

    Example:
        >>> vacuum_progress().columns.tolist()[:3]
        ['pid', 'table', 'phase']
    """
    with snapshot(engine) as snap:
        dead_items = "p.num_dead_item_ids" if snap.major >= 17 else "p.num_dead_tuples"
        return query(
            f"""
            SELECT p.pid,
                   p.relid::regclass::text AS "table",
                   p.phase,
                   p.heap_blks_total,
                   p.heap_blks_scanned,
                   round(100.0 * p.heap_blks_scanned / nullif(p.heap_blks_total, 0), 1)::float8 AS percent_scanned,
                   p.index_vacuum_count,
                   {dead_items} AS dead_items,
                   date_trunc('second', now() - a.xact_start) AS running_for
            FROM pg_stat_progress_vacuum AS p
            LEFT JOIN pg_stat_activity AS a ON a.pid = p.pid
            WHERE p.datname = current_database()
            ORDER BY p.pid
            """,
            name="vacuum_progress",
        )


def wraparound_risk(*, engine: Engine | None = None) -> pd.DataFrame:
    """Return each table's transaction-id age (its TOAST table's included), the ids left before wraparound, and its age as % of autovacuum_freeze_max_age; oldest first.

    pghero warns when fewer than 1.5 billion are left; past 100 % of
    autovacuum_freeze_max_age an anti-wraparound vacuum is due.

    Example:
        >>> int(wraparound_risk()["xids_left"].min()) > 1_500_000_000
        True
    """
    return query(
        """
        SELECT schema,
               "table",
               xid_age,
               :limit - xid_age AS xids_left,
               round(100.0 * xid_age / current_setting('autovacuum_freeze_max_age')::bigint, 1)::float8 AS percent_of_freeze_max_age,
               multixact_age
        FROM (
            SELECT n.nspname AS schema,
                   c.relname AS "table",
                   greatest(age(c.relfrozenxid), age(t.relfrozenxid)) AS xid_age,
                   greatest(mxid_age(c.relminmxid), mxid_age(t.relminmxid)) AS multixact_age
            FROM pg_class AS c
            JOIN pg_namespace AS n ON n.oid = c.relnamespace
            LEFT JOIN pg_class AS t ON t.oid = c.reltoastrelid
            WHERE c.relkind IN ('r', 'm')
        ) AS ages
        ORDER BY xid_age DESC, schema, "table"
        """,
        {"limit": WRAPAROUND_LIMIT},
        name="wraparound_risk",
        engine=engine,
    )


def cache_hit_ratio(*, engine: Engine | None = None) -> pd.DataFrame:
    """Return, for tables and for indexes, the blocks found in shared buffers, those read from disk, and the hit % (pghero warns below 99 %).

    `hit_percent` is empty until something has been read.

    Example:
        >>> cache_hit_ratio().columns.tolist()
        ['kind', 'hits', 'reads', 'hit_percent']
    """
    return query(
        """
        SELECT kind,
               hits,
               reads,
               round(100.0 * hits / nullif(hits + reads, 0), 2)::float8 AS hit_percent
        FROM (
            SELECT 'tables' AS kind,
                   coalesce(sum(heap_blks_hit), 0)::bigint AS hits,
                   coalesce(sum(heap_blks_read), 0)::bigint AS reads
            FROM pg_statio_user_tables
            UNION ALL
            SELECT 'indexes',
                   coalesce(sum(idx_blks_hit), 0)::bigint,
                   coalesce(sum(idx_blks_read), 0)::bigint
            FROM pg_statio_user_indexes
        ) AS blocks
        ORDER BY kind
        """,
        name="cache_hit_ratio",
        engine=engine,
    )
