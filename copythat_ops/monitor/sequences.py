"""Sequences: how close each is to the largest value its column can hold, in one query for the whole database.

The setup guide's ids are INTEGER, so their ceiling is 2,147,483,647 even
though a sequence could count further.

Example:
    >>> from copythat_ops import monitor
    >>> monitor.sequences().columns.tolist()[:4]
    ['schema', 'sequence', 'table', 'column']
"""

from __future__ import annotations

import pandas as pd
from sqlalchemy.engine import Engine

from .snapshot import query


def sequences(*, engine: Engine | None = None) -> pd.DataFrame:
    """Return every sequence with the column it feeds, its last value, its ceiling (the smaller of the sequence's and the column type's maximum) and the % used; fullest first.

    Columns are found through column defaults (`serial`, `nextval(...)`) and
    identity columns. `readable` is False (and `last_value` empty) when this
    role may not read the sequence; a sequence never used has no last value.

    Example:
        >>> sequences().columns.tolist()[-3:]
        ['percent_used', 'increment', 'readable']
    """
    return query(
        """
        WITH fed AS (
            SELECT d.refobjid AS seq_oid,
                   ad.adrelid AS table_oid,
                   ad.adnum AS attnum
            FROM pg_depend AS d
            JOIN pg_attrdef AS ad ON ad.oid = d.objid
            WHERE d.classid = 'pg_attrdef'::regclass
              AND d.refclassid = 'pg_class'::regclass
            UNION
            SELECT d.objid,
                   d.refobjid,
                   d.refobjsubid
            FROM pg_depend AS d
            WHERE d.classid = 'pg_class'::regclass
              AND d.refclassid = 'pg_class'::regclass
              AND d.deptype = 'i'
        ),
        seqs AS (
            SELECT n.nspname AS schema,
                   c.relname AS sequence,
                   t.relname AS "table",
                   a.attname AS "column",
                   format_type(coalesce(a.atttypid, s.seqtypid), NULL) AS column_type,
                   has_sequence_privilege(c.oid, 'SELECT,USAGE') AS readable,
                   CASE WHEN has_sequence_privilege(c.oid, 'SELECT,USAGE') THEN pg_sequence_last_value(c.oid) END AS last_value,
                   CASE coalesce(a.atttypid, s.seqtypid)
                       WHEN 'int2'::regtype THEN least(s.seqmax, 32767)
                       WHEN 'int4'::regtype THEN least(s.seqmax, 2147483647)
                       ELSE s.seqmax
                   END AS max_value,
                   s.seqincrement AS increment
            FROM pg_sequence AS s
            JOIN pg_class AS c ON c.oid = s.seqrelid
            JOIN pg_namespace AS n ON n.oid = c.relnamespace
            LEFT JOIN fed AS f ON f.seq_oid = s.seqrelid
            LEFT JOIN pg_class AS t ON t.oid = f.table_oid
            LEFT JOIN pg_attribute AS a ON a.attrelid = f.table_oid AND a.attnum = f.attnum
            WHERE NOT pg_is_other_temp_schema(n.oid)
        )
        SELECT schema,
               sequence,
               "table",
               "column",
               column_type,
               last_value,
               max_value,
               max_value - last_value AS values_left,
               round(100.0 * last_value / max_value, 2)::float8 AS percent_used,
               increment,
               readable
        FROM seqs
        ORDER BY percent_used DESC NULLS LAST, schema, sequence, "table", "column"
        """,
        name="sequences",
        engine=engine,
    )
