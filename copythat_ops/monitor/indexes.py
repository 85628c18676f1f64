"""Indexes: how much each table uses its indexes, and the indexes that are unused, duplicated, invalid or missing.

Scan counts are this server's since the last statistics reset: on a replica
they describe the replica's own reads.

Example:
    >>> from copythat_ops import monitor
    >>> monitor.invalid_indexes().columns.tolist()
    ['schema', 'table', 'index', 'definition', 'size_bytes', 'size', 'note']
"""

from __future__ import annotations

import pandas as pd
from sqlalchemy.engine import Engine

from .. import validate
from .locks import LOCKED
from .snapshot import query, snapshot
from .space import INDEX_NOTE, INDEX_SIZE, INDEXES, USER_SCHEMAS

# An index's definition, read only when its table is not locked (pg_get_indexdef opens the table).
DEFINITION = "CASE WHEN lk.reason IS NULL THEN pg_get_indexdef(c.oid) END"
# An expression or predicate of pg_index as comparable text without opening the table (pg_get_expr would):
# the stored node tree, less the positions in the statement that created the index.
_NODES = "regexp_replace({}::text, ' [:]location -?[0-9]+', '', 'g')"
_REDUNDANT_SIZE = INDEX_SIZE.replace("c.", "rc.")  # in duplicate_indexes, c is the covering index and rc the redundant one's relation


def _index_usage_sql(major: int) -> str:
    last_seq_scan = "last_seq_scan" if major >= 16 else "NULL::timestamptz AS last_seq_scan"
    return f"""
        SELECT schemaname AS schema,
               relname AS "table",
               seq_scan,
               coalesce(idx_scan, 0) AS idx_scan,
               round(100.0 * coalesce(idx_scan, 0) / nullif(seq_scan + coalesce(idx_scan, 0), 0), 1)::float8 AS index_use_percent,
               n_live_tup AS live_rows,
               {last_seq_scan}
        FROM pg_stat_user_tables
    """


def index_usage(*, engine: Engine | None = None) -> pd.DataFrame:
    """Return, per table, sequential and index scans, the % of scans that used an index, and live rows; largest tables first.

    `last_seq_scan` is filled on PostgreSQL 16+ (NULL before).

    Example:
        >>> index_usage().columns.tolist()[:5]
        ['schema', 'table', 'seq_scan', 'idx_scan', 'index_use_percent']
    """
    with snapshot(engine) as snap:
        return query(
            f"""
            {_index_usage_sql(snap.major)}
            ORDER BY live_rows DESC, schema, "table"
            """,
            name="index_usage",
        )


def missing_indexes(*, min_rows: int = 10_000, max_index_use_percent: float = 95, engine: Engine | None = None) -> pd.DataFrame:
    """Return tables of at least `min_rows` live rows whose scans used an index less than `max_index_use_percent` % of the time.

    pghero's defaults: 10,000 rows and 95 %. Most sequential scans first.

    Example:
        >>> missing_indexes(min_rows=1_000_000).empty
        True
    """
    params = {
        "min_rows": validate.number(min_rows, name="min_rows", integer=True),
        "max_percent": validate.number(max_index_use_percent, name="max_index_use_percent", maximum=100),
    }
    with snapshot(engine) as snap:
        return query(
            f"""
            SELECT *
            FROM ({_index_usage_sql(snap.major)}) AS usage
            WHERE live_rows >= :min_rows
              AND index_use_percent < :max_percent
            ORDER BY seq_scan DESC, schema, "table"
            """,
            params,
            name="missing_indexes",
        )


def unused_indexes(*, max_scans: int = 50, engine: Engine | None = None) -> pd.DataFrame:
    """Return valid, non-unique indexes scanned at most `max_scans` times (pghero's default 50), largest first.

    Unique indexes and those behind constraints are left out: they enforce rules even when never read.
    `last_idx_scan` is filled on PostgreSQL 16+ (NULL before). An index whose table another
    session locks keeps its row, without a definition, with the catalog's size estimate and a `note` naming the lock.

    Example:
        >>> unused_indexes().columns.tolist()[:4]
        ['schema', 'table', 'index', 'index_scans']
    """
    params = {"max_scans": validate.number(max_scans, name="max_scans", integer=True)}
    with snapshot(engine) as snap:
        last_idx_scan = "s.last_idx_scan" if snap.major >= 16 else "NULL::timestamptz AS last_idx_scan"
        return query(
            f"""
            WITH {LOCKED}
            SELECT s.schemaname AS schema,
                   s.relname AS "table",
                   s.indexrelname AS index,
                   s.idx_scan AS index_scans,
                   {last_idx_scan},
                   {INDEX_SIZE} AS size_bytes,
                   pg_size_pretty({INDEX_SIZE}) AS size,
                   {DEFINITION} AS definition,
                   {INDEX_NOTE} AS note
            FROM pg_stat_user_indexes AS s
            JOIN pg_index AS i ON i.indexrelid = s.indexrelid
            JOIN pg_class AS c ON c.oid = s.indexrelid
            LEFT JOIN locked AS lk ON lk.table_oid = s.relid
            WHERE NOT i.indisunique
              AND i.indisvalid
              AND s.idx_scan <= :max_scans
              AND NOT EXISTS (SELECT 1 FROM pg_constraint AS k WHERE k.conindid = s.indexrelid)
            ORDER BY size_bytes DESC, schema, "table", index
            """,
            params,
            name="unused_indexes",
        )


def duplicate_indexes(*, engine: Engine | None = None) -> pd.DataFrame:
    """Return indexes made redundant by another on the same table: same method, expressions and predicate, and columns a prefix of the other's.

    A unique index is redundant only beside an identical unique one; of two
    identical indexes the primary key (else the older) is kept. Drop the
    `redundant_index`; `covering_index` serves its queries. Expressions and
    predicates are compared in the catalog, so a table another session locks
    is still checked; its rows come without definitions, with the catalog's
    size estimate and a `note` naming the lock.

    Example:
        >>> duplicate_indexes().columns.tolist()[:4]
        ['schema', 'table', 'redundant_index', 'covering_index']
    """
    return query(
        f"""
        WITH {LOCKED}
        SELECT n.nspname AS schema,
               t.relname AS "table",
               rc.relname AS redundant_index,
               cc.relname AS covering_index,
               CASE WHEN lk.reason IS NULL THEN pg_get_indexdef(r.indexrelid) END AS redundant_definition,
               CASE WHEN lk.reason IS NULL THEN pg_get_indexdef(c.indexrelid) END AS covering_definition,
               {_REDUNDANT_SIZE} AS size_bytes,
               pg_size_pretty({_REDUNDANT_SIZE}) AS size,
               {INDEX_NOTE} AS note
        FROM pg_index AS r
        JOIN pg_index AS c ON c.indrelid = r.indrelid AND c.indexrelid <> r.indexrelid
        JOIN pg_class AS rc ON rc.oid = r.indexrelid
        JOIN pg_class AS cc ON cc.oid = c.indexrelid
        JOIN pg_class AS t ON t.oid = r.indrelid
        JOIN pg_namespace AS n ON n.oid = t.relnamespace
        LEFT JOIN locked AS lk ON lk.table_oid = t.oid
        WHERE r.indisvalid
          AND c.indisvalid
          AND {USER_SCHEMAS}
          AND rc.relam = cc.relam
          AND (c.indkey::text || ' ') LIKE (r.indkey::text || ' %')
          AND (c.indclass::text || ' ') LIKE (r.indclass::text || ' %')
          AND {_NODES.format("r.indexprs")} IS NOT DISTINCT FROM {_NODES.format("c.indexprs")}
          AND {_NODES.format("r.indpred")} IS NOT DISTINCT FROM {_NODES.format("c.indpred")}
          AND (NOT r.indisunique OR (c.indisunique AND c.indkey::text = r.indkey::text))
          AND NOT (
              c.indkey::text = r.indkey::text
              AND c.indisunique = r.indisunique
              AND (r.indisprimary OR (NOT c.indisprimary AND r.indexrelid < c.indexrelid))
          )
        ORDER BY size_bytes DESC, schema, "table", redundant_index, covering_index
        """,
        name="duplicate_indexes",
        engine=engine,
    )


def invalid_indexes(*, engine: Engine | None = None) -> pd.DataFrame:
    """Return indexes marked invalid (a failed or running CREATE INDEX CONCURRENTLY): written to, never used.

    Drop and recreate each with `DROP INDEX CONCURRENTLY` then `CREATE INDEX CONCURRENTLY`.
    An index whose table another session locks (a CREATE INDEX CONCURRENTLY still
    running holds no such lock) comes without a definition, with a `note` naming the lock.

    Example:
        >>> invalid_indexes().empty
        True
    """
    return query(
        f"""
        WITH {LOCKED}
        SELECT n.nspname AS schema,
               t.relname AS "table",
               c.relname AS index,
               {DEFINITION} AS definition,
               {INDEX_SIZE} AS size_bytes,
               pg_size_pretty({INDEX_SIZE}) AS size,
               {INDEX_NOTE} AS note
        FROM {INDEXES}
        LEFT JOIN locked AS lk ON lk.table_oid = t.oid
        WHERE NOT i.indisvalid
          AND {USER_SCHEMAS}
        ORDER BY schema, "table", index
        """,
        name="invalid_indexes",
        engine=engine,
    )
