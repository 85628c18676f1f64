"""Bloat: how much of each table and b-tree index is wasted space, estimated from the planner's statistics.

The estimate (check_postgres's `bloat`, the well-known statistics query) reads
only the catalog and `pg_stats`: no table is scanned and no lock is taken,
so it is safe on production at any time; it is as good as the last ANALYZE.
`bloat(exact=True)` measures instead with the pgstattuple extension, which
reads every table and index: ask for it on a quiet server.

Example:
    >>> from copythat_ops import monitor
    >>> monitor.bloat().columns.tolist()[:4]
    ['kind', 'schema', 'table', 'index']
"""

from __future__ import annotations

import pandas as pd
from sqlalchemy.engine import Engine

from ..errors import CopythatError
from .snapshot import query
from .space import USER_SCHEMAS

COLUMNS = ["kind", "schema", "table", "index", "size_bytes", "expected_bytes", "bloat_bytes", "bloat_percent", "method"]

ESTIMATE = f"""
    WITH widths AS MATERIALIZED (
        SELECT c.oid AS relid,
               s.attname,
               s.avg_width,
               s.null_frac
        FROM pg_stats AS s
        JOIN pg_namespace AS n ON n.nspname = s.schemaname
        JOIN pg_class AS c ON c.relnamespace = n.oid AND c.relname = s.tablename
        WHERE s.schemaname NOT IN ('pg_catalog', 'information_schema')
          AND c.relkind IN ('r', 'm')
    ),
    rows_width AS (
        SELECT w.relid AS oid,
               24 + 1 + count(*) FILTER (WHERE w.null_frac > 0) / 8 AS header,
               sum((1 - w.null_frac) * w.avg_width) AS data_width
        FROM widths AS w
        GROUP BY w.relid
    ),
    tables AS (
        SELECT 'table' AS kind,
               n.nspname AS schema,
               c.relname AS "table",
               NULL::text AS index,
               c.relpages::bigint * current_setting('block_size')::bigint AS size_bytes,
               ceil(c.reltuples * (8 * ceil((rw.header + rw.data_width) / 8) + 4)
                    / (current_setting('block_size')::numeric - 24))::bigint * current_setting('block_size')::bigint AS expected_bytes
        FROM rows_width AS rw
        JOIN pg_class AS c ON c.oid = rw.oid
        JOIN pg_namespace AS n ON n.oid = c.relnamespace
        WHERE c.reltuples > 0
          AND {USER_SCHEMAS}
    ),
    index_width AS (
        SELECT i.indexrelid,
               sum(w.avg_width) AS key_width,
               count(w.attname) = i.indnatts AS complete
        FROM pg_index AS i
        JOIN pg_class AS t ON t.oid = i.indrelid
        JOIN pg_namespace AS n ON n.oid = t.relnamespace
        CROSS JOIN LATERAL unnest(i.indkey) AS k(attnum)
        LEFT JOIN pg_attribute AS a ON a.attrelid = i.indrelid AND a.attnum = k.attnum
        LEFT JOIN pg_stats AS w ON w.schemaname = n.nspname AND w.tablename = t.relname AND w.attname = a.attname
        WHERE {USER_SCHEMAS}
        GROUP BY i.indexrelid, i.indnatts
    ),
    indexes AS (
        SELECT 'index' AS kind,
               n.nspname AS schema,
               t.relname AS "table",
               c.relname AS index,
               c.relpages::bigint * current_setting('block_size')::bigint AS size_bytes,
               (1 + ceil(c.reltuples * (8 * ceil((8 + iw.key_width)::numeric / 8) + 4)
                    / ((current_setting('block_size')::numeric - 24 - 16) * 0.9)))::bigint * current_setting('block_size')::bigint AS expected_bytes
        FROM index_width AS iw
        JOIN pg_class AS c ON c.oid = iw.indexrelid
        JOIN pg_class AS t ON t.oid = (SELECT indrelid FROM pg_index WHERE indexrelid = c.oid)
        JOIN pg_namespace AS n ON n.oid = c.relnamespace
        JOIN pg_am AS am ON am.oid = c.relam
        WHERE am.amname = 'btree'
          AND iw.complete
          AND c.reltuples > 0
          AND {USER_SCHEMAS}
    )
    SELECT kind,
           schema,
           "table",
           index,
           size_bytes,
           expected_bytes,
           greatest(size_bytes - expected_bytes, 0) AS bloat_bytes,
           round(100.0 * greatest(size_bytes - expected_bytes, 0) / nullif(size_bytes, 0), 1)::float8 AS bloat_percent,
           'estimate' AS method
    FROM (SELECT * FROM tables UNION ALL SELECT * FROM indexes) AS estimates
    ORDER BY bloat_bytes DESC, schema, "table", index NULLS FIRST
"""

EXACT = f"""
    SELECT 'table' AS kind,
           n.nspname AS schema,
           c.relname AS "table",
           NULL::text AS index,
           s.table_len AS size_bytes,
           s.table_len - s.dead_tuple_len - s.approx_free_space AS expected_bytes,
           s.dead_tuple_len + s.approx_free_space AS bloat_bytes,
           round((100.0 * (s.dead_tuple_len + s.approx_free_space) / nullif(s.table_len, 0))::numeric, 1)::float8 AS bloat_percent,
           'pgstattuple_approx' AS method
    FROM pg_class AS c
    JOIN pg_namespace AS n ON n.oid = c.relnamespace
    CROSS JOIN LATERAL pgstattuple_approx(c.oid) AS s
    WHERE c.relkind IN ('r', 'm')
      AND {USER_SCHEMAS}
    UNION ALL
    SELECT 'index',
           n.nspname,
           t.relname,
           c.relname,
           s.index_size,
           round(s.index_size * nullif(s.avg_leaf_density, 'NaN') / 90)::bigint,
           greatest(s.index_size - round(s.index_size * nullif(s.avg_leaf_density, 'NaN') / 90)::bigint, 0),
           round(greatest(100 - nullif(s.avg_leaf_density, 'NaN') / 0.9, 0)::numeric, 1)::float8,
           'pgstatindex'
    FROM pg_index AS i
    JOIN pg_class AS c ON c.oid = i.indexrelid
    JOIN pg_class AS t ON t.oid = i.indrelid
    JOIN pg_namespace AS n ON n.oid = c.relnamespace
    JOIN pg_am AS am ON am.oid = c.relam
    CROSS JOIN LATERAL pgstatindex(c.oid) AS s
    WHERE am.amname = 'btree'
      AND {USER_SCHEMAS}
    ORDER BY 7 DESC, 2, 3, 4 NULLS FIRST
"""


def bloat(*, exact: bool = False, engine: Engine | None = None) -> pd.DataFrame:
    """Return each table's and b-tree index's size, the size its rows need, and the difference (bloat), most bloated first.

    Estimated from statistics by default (no scan, no lock; tables never
    analyzed are left out). `exact=True` measures with pgstattuple
    (`pgstattuple_approx` for tables, `pgstatindex` for indexes), which reads
    every relation and needs the extension (CREATE EXTENSION pgstattuple).

    Example:
        >>> bool((bloat()["bloat_bytes"] >= 0).all())
        True
    """
    if not exact:
        return query(ESTIMATE, name="bloat", engine=engine)
    installed = query("SELECT count(*) AS n FROM pg_extension WHERE extname = 'pgstattuple' ORDER BY n", name="bloat_extension", engine=engine)["n"][0]
    if not installed:
        raise CopythatError(
            "bloat(exact=True) needs the pgstattuple extension, which is not installed in this database",
            fix="run CREATE EXTENSION pgstattuple; (it reads every table: prefer the estimate, bloat(), on a busy server)",
        )
    return query(EXACT, name="bloat_exact", engine=engine)
