"""Space: the database's size, each table's (split table / indexes / TOAST, with row estimates) and each index's.

Example:
    >>> from copythat_ops import monitor
    >>> bool(monitor.database_size()["size_bytes"][0] > 0)
    True
"""

from __future__ import annotations

import pandas as pd
from sqlalchemy.engine import Engine

from .locks import LOCKED
from .snapshot import query

# Relations of the database's own schemas (not the catalogs), shared by the size queries.
USER_SCHEMAS = "n.nspname NOT IN ('pg_catalog', 'information_schema') AND n.nspname NOT LIKE 'pg\\_toast%' AND n.nspname NOT LIKE 'pg\\_temp\\_%'"
# Every index (i, its relation c) with its table (t) and schema (n), shared by the index lists.
INDEXES = """pg_index AS i
        JOIN pg_class AS c ON c.oid = i.indexrelid
        JOIN pg_class AS t ON t.oid = i.indrelid
        JOIN pg_namespace AS n ON n.oid = c.relnamespace"""
# An index's size and the note for it, with `locked AS lk` joined on its table: the catalog's estimate when locked.
INDEX_SIZE = "CASE WHEN lk.reason IS NULL THEN pg_relation_size(c.oid) ELSE c.relpages::bigint * current_setting('block_size')::bigint END"
INDEX_NOTE = "'definition not read, size estimated from the catalog: ' || lk.reason"


def database_size(*, engine: Engine | None = None) -> pd.DataFrame:
    """Return the current database's name and size (the setup guide's query), in bytes and readable.

    Example:
        >>> database_size().columns.tolist()
        ['database', 'size_bytes', 'size']
    """
    return query(
        """
        SELECT current_database() AS database,
               pg_database_size(current_database()) AS size_bytes,
               pg_size_pretty(pg_database_size(current_database())) AS size
        ORDER BY database
        """,
        name="database_size",
        engine=engine,
    )


def table_sizes(*, engine: Engine | None = None) -> pd.DataFrame:
    """Return every table's size split into table, indexes and TOAST, with live and dead row estimates, largest first.

    `table_bytes` is the heap (with its free-space and visibility maps); `total_bytes` adds indexes and TOAST.
    A table another session locks (LOCK TABLE, VACUUM FULL, ALTER TABLE) gets the
    catalog's estimate (`pg_class.relpages`, as of its last VACUUM or ANALYZE)
    instead of waiting, and a `note` naming the lock; `note` is empty otherwise.

    Example:
        >>> table_sizes().columns.tolist()[:6]
        ['schema', 'table', 'table_bytes', 'index_bytes', 'toast_bytes', 'total_bytes']
    """
    return query(
        f"""
        WITH {LOCKED}
        SELECT schema,
               "table",
               table_bytes,
               index_bytes,
               toast_bytes,
               table_bytes + index_bytes + toast_bytes AS total_bytes,
               pg_size_pretty(table_bytes + index_bytes + toast_bytes) AS total_size,
               live_rows,
               dead_rows,
               note
        FROM (
            SELECT n.nspname AS schema,
                   c.relname AS "table",
                   CASE WHEN lk.reason IS NULL
                        THEN pg_table_size(c.oid) - coalesce(pg_total_relation_size(c.reltoastrelid), 0)
                        ELSE c.relpages::bigint * current_setting('block_size')::bigint
                   END AS table_bytes,
                   CASE WHEN lk.reason IS NULL
                        THEN pg_indexes_size(c.oid)
                        ELSE (SELECT coalesce(sum(ic.relpages), 0)::bigint * current_setting('block_size')::bigint
                              FROM pg_index AS ii
                              JOIN pg_class AS ic ON ic.oid = ii.indexrelid
                              WHERE ii.indrelid = c.oid)
                   END AS index_bytes,
                   CASE WHEN lk.reason IS NULL
                        THEN coalesce(pg_total_relation_size(c.reltoastrelid), 0)
                        ELSE coalesce((SELECT tc.relpages::bigint FROM pg_class AS tc WHERE tc.oid = c.reltoastrelid), 0)
                             * current_setting('block_size')::bigint
                   END AS toast_bytes,
                   s.n_live_tup AS live_rows,
                   s.n_dead_tup AS dead_rows,
                   'sizes estimated from the catalog: ' || lk.reason AS note
            FROM pg_class AS c
            JOIN pg_namespace AS n ON n.oid = c.relnamespace
            LEFT JOIN pg_stat_user_tables AS s ON s.relid = c.oid
            LEFT JOIN locked AS lk ON lk.table_oid = c.oid
            WHERE c.relkind IN ('r', 'm', 'p')
              AND {USER_SCHEMAS}
        ) AS sizes
        ORDER BY total_bytes DESC, schema, "table"
        """,
        name="table_sizes",
        engine=engine,
    )


def index_sizes(*, engine: Engine | None = None) -> pd.DataFrame:
    """Return every index's size, largest first.

    An index whose table another session locks gets the catalog's estimate
    (`pg_class.relpages`) and a `note` naming the lock.

    Example:
        >>> index_sizes().columns.tolist()
        ['schema', 'table', 'index', 'size_bytes', 'size', 'note']
    """
    return query(
        f"""
        WITH {LOCKED}
        SELECT schema,
               "table",
               index,
               size_bytes,
               pg_size_pretty(size_bytes) AS size,
               note
        FROM (
            SELECT n.nspname AS schema,
                   t.relname AS "table",
                   c.relname AS index,
                   {INDEX_SIZE} AS size_bytes,
                   'size estimated from the catalog: ' || lk.reason AS note
            FROM {INDEXES}
            LEFT JOIN locked AS lk ON lk.table_oid = t.oid
            WHERE {USER_SCHEMAS}
        ) AS sizes
        ORDER BY size_bytes DESC, schema, "table", index
        """,
        name="index_sizes",
        engine=engine,
    )
