"""Queries: the statements that take the server's time, from pg_stat_statements when it is enabled.

pg_stat_statements must be preloaded by the server and created in the
database; these functions only read, so they never create it themselves.

Example:
    >>> from copythat_ops import monitor
    >>> monitor.query_stats_status()["enabled"] in (True, False)
    True
"""

from __future__ import annotations

import pandas as pd
from psycopg2.errors import ObjectNotInPrerequisiteState
from sqlalchemy.engine import Engine
from sqlalchemy.exc import DBAPIError

from .. import validate
from ..errors import CopythatError
from .snapshot import query, snapshot

EXTENSION = "pg_stat_statements"
SORTS = {"total_time": "total_ms", "mean_time": "mean_ms", "calls": "calls"}
ENABLE = (
    f"add {EXTENSION} to shared_preload_libraries (postgresql.conf or ALTER SYSTEM) and restart the server, "
    f"then run CREATE EXTENSION {EXTENSION}; in the database (on Neon it is preloaded: only CREATE EXTENSION is needed)"
)


def query_stats_status(*, engine: Engine | None = None) -> dict:
    """Return whether pg_stat_statements can be read here: enabled, version, a message, and how to enable it (`fix`) when it cannot.

    Example:
        >>> sorted(query_stats_status())
        ['enabled', 'fix', 'message', 'version']
    """
    facts = query(
        """
        SELECT current_database() AS database,
               (SELECT extversion FROM pg_extension WHERE extname = :extension) AS version,
               (SELECT setting FROM pg_settings WHERE name = 'shared_preload_libraries') AS preload
        ORDER BY database
        """,
        {"extension": EXTENSION},
        name="query_stats_status",
        engine=engine,
    ).iloc[0]
    preloaded = pd.isna(facts["preload"]) or EXTENSION in facts["preload"]  # hidden from roles without pg_read_all_settings
    version = None if pd.isna(facts["version"]) else facts["version"]
    if not preloaded:
        message, fix = f"{EXTENSION} is not preloaded by the server", ENABLE
    elif version is None:
        message = f"{EXTENSION} is not installed in database {facts['database']}"
        fix = f"run CREATE EXTENSION {EXTENSION}; in it (the server already preloads it)"
    else:
        message, fix = f"{EXTENSION} {version} is enabled", None
    return {"enabled": fix is None, "version": version, "message": message, "fix": fix}


def query_stats(*, top: int = 20, sort: str = "total_time", engine: Engine | None = None) -> pd.DataFrame:
    """Return this database's `top` statements by total time (or `sort="mean_time"` / `"calls"`): calls, total and mean ms, rows, % of all time, cache hits, I/O time.

    Raises a CopythatError saying how to enable pg_stat_statements when it is not.

    Example:
        >>> query_stats(top=5).columns.tolist()[:4]   # doctest: +SKIP
        ['query_id', 'user_name', 'calls', 'total_ms']
    """
    top = validate.number(top, name="top", minimum=1, integer=True)
    (order,) = validate.choices(sort, SORTS, name="sort")
    return _statements(f"ORDER BY {SORTS[order]} DESC, query_id\nLIMIT :top", {"top": top}, name="query_stats", engine=engine)


def slow_queries(*, min_calls: int = 100, min_mean_ms: float = 20, engine: Engine | None = None) -> pd.DataFrame:
    """Return this database's statements called at least `min_calls` times averaging at least `min_mean_ms` (pghero: 100 calls, 20 ms); slowest first.

    Raises a CopythatError saying how to enable pg_stat_statements when it is not.

    Example:
        >>> slow_queries(min_mean_ms=1000).empty   # doctest: +SKIP
        True
    """
    params = {
        "min_calls": validate.number(min_calls, name="min_calls", integer=True),
        "min_mean_ms": validate.number(min_mean_ms, name="min_mean_ms"),
    }
    return _statements(
        "WHERE calls >= :min_calls\n  AND mean_ms >= :min_mean_ms\nORDER BY mean_ms DESC, query_id",
        params,
        name="slow_queries",
        engine=engine,
    )


def _statements(tail: str, params: dict, *, name: str, engine: Engine | None) -> pd.DataFrame:
    with snapshot(engine):
        status = query_stats_status()
        if not status["enabled"]:
            raise CopythatError(status["message"], fix=status["fix"])
        # pg_stat_statements 1.11 (PostgreSQL 17) renamed blk_read_time to shared_blk_read_time.
        io_ms = "s.shared_blk_read_time + s.shared_blk_write_time" if _at_least(status["version"], 1, 11) else "s.blk_read_time + s.blk_write_time"
        try:
            return query(
                f"""
                SELECT *
                FROM (
                    SELECT s.queryid AS query_id,
                           r.rolname AS user_name,
                           s.calls,
                           round((s.total_exec_time + s.total_plan_time)::numeric, 1)::float8 AS total_ms,
                           round(((s.total_exec_time + s.total_plan_time) / nullif(s.calls, 0))::numeric, 2)::float8 AS mean_ms,
                           s.rows,
                           round((100 * (s.total_exec_time + s.total_plan_time)
                               / nullif(sum(s.total_exec_time + s.total_plan_time) OVER (), 0))::numeric, 1)::float8 AS percent_of_time,
                           round(100.0 * s.shared_blks_hit / nullif(s.shared_blks_hit + s.shared_blks_read, 0), 1)::float8 AS hit_percent,
                           round(({io_ms})::numeric, 1)::float8 AS io_ms,
                           s.query
                    FROM pg_stat_statements AS s
                    LEFT JOIN pg_roles AS r ON r.oid = s.userid
                    WHERE s.dbid = (SELECT oid FROM pg_database WHERE datname = current_database())
                ) AS statements
                {tail}
                """,
                params,
                name=name,
            )
        except DBAPIError as exc:
            if not isinstance(exc.orig, ObjectNotInPrerequisiteState):
                raise
            raise CopythatError(f"{EXTENSION} is installed but not preloaded by the server", fix=ENABLE) from None


def _at_least(version: str, major: int, minor: int) -> bool:
    return tuple(int(part) for part in version.split(".")[:2]) >= (major, minor)
