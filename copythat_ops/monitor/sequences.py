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

from ..display import whole_numbers
from .locks import LOCKED
from .snapshot import query


def sequences(*, engine: Engine | None = None) -> pd.DataFrame:
    """Return every sequence with the column it feeds, its last value, its ceiling (the smaller of the sequence's and the column type's maximum) and the % used; fullest first.

    Columns are found through column defaults (`serial`, `nextval(...)`) and
    identity columns. `readable` is False (and `last_value` empty) when this
    role may not read the sequence; a sequence never used has no last value.
    Whole numbers are exact (nullable Int64; `values_left` past bigint's
    range, from a negative last value, as Python ints).
    A sequence another session locks (an ALTER of its identity column) is not
    read either: its last value is empty and `note` names the lock.

    Example:
        >>> sequences().columns.tolist()[-4:]
        ['percent_used', 'increment', 'readable', 'note']
    """
    found = query(
        f"""
        WITH {LOCKED},
        fed AS (
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
                   CASE WHEN has_sequence_privilege(c.oid, 'SELECT,USAGE') AND lk.reason IS NULL THEN pg_sequence_last_value(c.oid) END AS last_value,
                   CASE coalesce(a.atttypid, s.seqtypid)
                       WHEN 'int2'::regtype THEN least(s.seqmax, 32767)
                       WHEN 'int4'::regtype THEN least(s.seqmax, 2147483647)
                       ELSE s.seqmax
                   END AS max_value,
                   s.seqincrement AS increment,
                   'last value not read: ' || lk.reason AS note
            FROM pg_sequence AS s
            JOIN pg_class AS c ON c.oid = s.seqrelid
            JOIN pg_namespace AS n ON n.oid = c.relnamespace
            LEFT JOIN fed AS f ON f.seq_oid = s.seqrelid
            LEFT JOIN pg_class AS t ON t.oid = f.table_oid
            LEFT JOIN pg_attribute AS a ON a.attrelid = f.table_oid AND a.attnum = f.attnum
            LEFT JOIN locked_sequences AS lk ON lk.relid = s.seqrelid
            WHERE NOT pg_is_other_temp_schema(n.oid)
        )
        SELECT schema,
               sequence,
               "table",
               "column",
               column_type,
               coalesce(last_value, 0) AS last_value,
               max_value,
               (max_value::numeric - coalesce(last_value, 0))::text AS values_left,
               round(100.0 * last_value / max_value, 2)::float8 AS percent_used,
               increment,
               readable,
               note,
               last_value IS NULL AS unknown
        FROM seqs
        ORDER BY percent_used DESC NULLS LAST, schema, sequence, "table", "column"
        """,
        name="sequences",
        engine=engine,
    )
    # Whole numbers exact even where one is unknown (a float column would make 9223372036854775807 into ...808), and values_left
    # counted in numeric: from a negative last value it passes bigint's range.
    unknown = found.pop("unknown").astype(bool).tolist()
    for column in ("last_value", "values_left"):
        found[column] = whole_numbers(None if gone else value for value, gone in zip(found[column], unknown))
    return found
