"""Space: the database's size, each table's (split table / indexes / TOAST, with row estimates) and each index's.

Example:
    >>> from copythat_ops import monitor
    >>> monitor.database_size()["size_bytes"][0] > 0
    True
"""

from __future__ import annotations

import pandas as pd
from sqlalchemy.engine import Engine

from .snapshot import query

# Relations of the database's own schemas (not the catalogs), shared by the size queries.
USER_SCHEMAS = "n.nspname NOT IN ('pg_catalog', 'information_schema') AND n.nspname NOT LIKE 'pg\\_toast%'"
# Every index (i, its relation c) with its table (t) and schema (n), shared by the index lists.
INDEXES = """pg_index AS i
        JOIN pg_class AS c ON c.oid = i.indexrelid
        JOIN pg_class AS t ON t.oid = i.indrelid
        JOIN pg_namespace AS n ON n.oid = c.relnamespace"""


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

    Example:
        >>> table_sizes().columns.tolist()[:6]
        ['schema', 'table', 'table_bytes', 'index_bytes', 'toast_bytes', 'total_bytes']
    """
    return query(
        f"""
        SELECT schema,
               "table",
               table_bytes,
               index_bytes,
               toast_bytes,
               total_bytes,
               pg_size_pretty(total_bytes) AS total_size,
               live_rows,
               dead_rows
        FROM (
            SELECT n.nspname AS schema,
                   c.relname AS "table",
                   pg_table_size(c.oid) - coalesce(pg_total_relation_size(c.reltoastrelid), 0) AS table_bytes,
                   pg_indexes_size(c.oid) AS index_bytes,
                   coalesce(pg_total_relation_size(c.reltoastrelid), 0) AS toast_bytes,
                   pg_total_relation_size(c.oid) AS total_bytes,
                   s.n_live_tup AS live_rows,
                   s.n_dead_tup AS dead_rows
            FROM pg_class AS c
            JOIN pg_namespace AS n ON n.oid = c.relnamespace
            LEFT JOIN pg_stat_user_tables AS s ON s.relid = c.oid
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

    Example:
        >>> index_sizes().columns.tolist()
        ['schema', 'table', 'index', 'size_bytes', 'size']
    """
    return query(
        f"""
        SELECT n.nspname AS schema,
               t.relname AS "table",
               c.relname AS index,
               pg_relation_size(c.oid) AS size_bytes,
               pg_size_pretty(pg_relation_size(c.oid)) AS size
        FROM {INDEXES}
        WHERE {USER_SCHEMAS}
        ORDER BY size_bytes DESC, schema, "table", index
        """,
        name="index_sizes",
        engine=engine,
    )
