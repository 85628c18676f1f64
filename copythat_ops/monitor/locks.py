"""Locks: the relations another session keeps the monitoring checks from opening, and who holds them.

Reading a table's size (`pg_relation_size`, `pg_total_relation_size`), an
index's definition (`pg_get_indexdef`) or an expression (`pg_get_expr`) takes
an ACCESS SHARE lock on the table, which waits behind an ACCESS EXCLUSIVE lock
held *or awaited* by another session (LOCK TABLE, VACUUM FULL, most ALTER
TABLE). Reading a sequence's last value waits behind SHARE and stronger locks
on the sequence (an ALTER of its identity column). The checks read `LOCKED`
first, in the same statement, and take the catalog's answer for those
relations (`pg_class.relpages`) or leave the value out, with a note naming the
lock; every check also runs under a short `lock_timeout`, so a lock taken
between the two never makes one wait.

Example:
    >>> from copythat_ops import monitor
    >>> monitor.relation_locks().columns.tolist()
    ['table_oid', 'relation', 'pid', 'mode', 'granted', 'reason']
"""

from __future__ import annotations

import pandas as pd
from sqlalchemy.engine import Engine

from .snapshot import query

# Modes that make this session's reads wait: ACCESS SHARE (sizes, definitions) conflicts only with
# ACCESS EXCLUSIVE; the ROW EXCLUSIVE lock a sequence read takes conflicts with these four.
TABLE_BLOCKING = "'AccessExclusiveLock'"
SEQUENCE_BLOCKING = "'ShareLock', 'ShareRowExclusiveLock', 'ExclusiveLock', 'AccessExclusiveLock'"

# Who holds (or awaits) a lock on `{}` and what they run: "extraction_jobs locked by pid 4242 (AccessExclusiveLock): LOCK TABLE ...".
_REASON = """format(
                   '%s %s by pid %s (%s): %s',
                   {}::regclass::text,
                   CASE WHEN granted THEN 'locked' ELSE 'awaited' END,
                   pid,
                   mode,
                   coalesce(left(regexp_replace(query, '\\s+', ' ', 'g'), 80), '<insufficient privilege>')
               )"""

# One row per relation lock of another session in this database that could make a read wait.
# `table_oid` is the table the locked relation belongs to (an index's or a TOAST table's owner), so a
# check can test its table once.
_LOCKS = f"""
        SELECT coalesce(owner.oid, base.relid) AS table_oid,
               base.relation,
               base.pid,
               base.mode,
               base.granted,
               a.query
        FROM (
            SELECT coalesce(i.indrelid, l.relation) AS relid,
                   l.relation,
                   l.pid,
                   l.mode,
                   l.granted
            FROM pg_locks AS l
            LEFT JOIN pg_index AS i ON i.indexrelid = l.relation
            WHERE l.locktype = 'relation'
              AND l.database = (SELECT oid FROM pg_database WHERE datname = current_database())
              AND l.pid <> pg_backend_pid()
              AND l.mode IN ({SEQUENCE_BLOCKING})
        ) AS base
        LEFT JOIN pg_class AS owner ON owner.reltoastrelid = base.relid
        LEFT JOIN pg_stat_activity AS a ON a.pid = base.pid
"""

# A CTE for the checks: `locked` (table_oid, reason) for tables whose reads would wait (the table,
# its indexes or its TOAST locked), and `locked_sequences` (relid, reason) for sequences whose last value would.
LOCKED = f"""
    locks AS ({_LOCKS}),
    locked AS (
        SELECT table_oid, string_agg(DISTINCT {_REASON.format("table_oid")}, '; ') AS reason
        FROM locks
        WHERE mode = {TABLE_BLOCKING}
        GROUP BY table_oid
    ),
    locked_sequences AS (
        SELECT relation AS relid, string_agg(DISTINCT {_REASON.format("relation")}, '; ') AS reason
        FROM locks
        GROUP BY relation
    )"""


def relation_locks(*, engine: Engine | None = None) -> pd.DataFrame:
    """Return the relation locks of other sessions in this database that make reads wait (SHARE and stronger), held or awaited, with who holds them.

    `table_oid` is the table the locked relation belongs to; `reason` reads
    "extraction_jobs locked by pid 4242 (AccessExclusiveLock): LOCK TABLE ...".

    Example:
        >>> relation_locks().empty
        True
    """
    return query(
        f"""
        SELECT table_oid,
               relation,
               pid,
               mode,
               granted,
               {_REASON.format("relation")} AS reason
        FROM ({_LOCKS}) AS locks
        ORDER BY granted DESC, relation::regclass::text, pid
        """,
        name="relation_locks",
        engine=engine,
    )
