"""Schema: triggers that are switched off, and how two databases' schemas differ (a Neon branch against main), grants and policies included.

Example:
    >>> from copythat_ops import monitor
    >>> monitor.disabled_triggers().empty
    True
"""

from __future__ import annotations

import pandas as pd
from sqlalchemy.engine import URL, Engine

from ..config import mask_url, normalize_url
from ..engine import get_engine, run_query
from ..errors import ConnectError, InputError
from .snapshot import query
from .space import USER_SCHEMAS

DIFF_COLUMNS = ["kind", "schema", "table", "name", "difference", "in_a", "in_b"]
KINDS = ("extension", "table", "column", "index", "constraint", "trigger", "function", "row level security", "policy", "grant")

# Every object schema_diff compares, one row each: kind, schema, table, name and its definition.
DEFINITIONS = f"""
    SELECT 'table' AS kind, n.nspname AS schema, c.relname AS "table", c.relname AS name,
           CASE c.relkind WHEN 'p' THEN 'partitioned table' WHEN 'm' THEN 'materialized view' WHEN 'v' THEN 'view' ELSE 'table' END AS definition
    FROM pg_class AS c
    JOIN pg_namespace AS n ON n.oid = c.relnamespace
    WHERE c.relkind IN ('r', 'p', 'm', 'v')
      AND {USER_SCHEMAS}
      AND NOT EXISTS (SELECT FROM pg_depend AS e WHERE e.classid = 'pg_class'::regclass AND e.objid = c.oid AND e.deptype = 'e')
    UNION ALL
    SELECT 'column', n.nspname, c.relname, a.attname,
           format_type(a.atttypid, a.atttypmod)
           || CASE WHEN a.attnotnull THEN ' NOT NULL' ELSE '' END
           || coalesce(' DEFAULT ' || pg_get_expr(d.adbin, d.adrelid), '')
           || CASE WHEN a.attidentity <> '' THEN ' IDENTITY' ELSE '' END
    FROM pg_attribute AS a
    JOIN pg_class AS c ON c.oid = a.attrelid
    JOIN pg_namespace AS n ON n.oid = c.relnamespace
    LEFT JOIN pg_attrdef AS d ON d.adrelid = a.attrelid AND d.adnum = a.attnum
    WHERE c.relkind IN ('r', 'p', 'm', 'v')
      AND a.attnum > 0
      AND NOT a.attisdropped
      AND {USER_SCHEMAS}
      AND NOT EXISTS (SELECT FROM pg_depend AS e WHERE e.classid = 'pg_class'::regclass AND e.objid = c.oid AND e.deptype = 'e')
    UNION ALL
    SELECT 'index', n.nspname, t.relname, c.relname, regexp_replace(pg_get_indexdef(c.oid), ' ON \\S+ ', ' ON ')
    FROM pg_index AS i
    JOIN pg_class AS c ON c.oid = i.indexrelid
    JOIN pg_class AS t ON t.oid = i.indrelid
    JOIN pg_namespace AS n ON n.oid = c.relnamespace
    WHERE {USER_SCHEMAS}
      AND NOT EXISTS (SELECT FROM pg_depend AS e WHERE e.classid = 'pg_class'::regclass AND e.objid = t.oid AND e.deptype = 'e')
    UNION ALL
    SELECT 'constraint', n.nspname, c.relname, k.conname, pg_get_constraintdef(k.oid)
    FROM pg_constraint AS k
    JOIN pg_class AS c ON c.oid = k.conrelid
    JOIN pg_namespace AS n ON n.oid = c.relnamespace
    WHERE k.contype <> 'n'  -- PostgreSQL 18 also keeps NOT NULL as a constraint: the column's definition says it already
      AND {USER_SCHEMAS}
      AND NOT EXISTS (SELECT FROM pg_depend AS e WHERE e.classid = 'pg_class'::regclass AND e.objid = c.oid AND e.deptype = 'e')
    UNION ALL
    SELECT 'trigger', n.nspname, c.relname, t.tgname,
           pg_get_triggerdef(t.oid)
           || CASE t.tgenabled WHEN 'D' THEN ' (disabled)' WHEN 'R' THEN ' (replica only)' WHEN 'A' THEN ' (always)' ELSE '' END
    FROM pg_trigger AS t
    JOIN pg_class AS c ON c.oid = t.tgrelid
    JOIN pg_namespace AS n ON n.oid = c.relnamespace
    WHERE NOT t.tgisinternal
      AND {USER_SCHEMAS}
      AND NOT EXISTS (SELECT FROM pg_depend AS e WHERE e.classid = 'pg_class'::regclass AND e.objid = c.oid AND e.deptype = 'e')
    UNION ALL
    SELECT 'function', n.nspname, '', p.proname || '(' || pg_get_function_identity_arguments(p.oid) || ')',
           regexp_replace(btrim(pg_get_functiondef(p.oid)), '\\s+', ' ', 'g')
    FROM pg_proc AS p
    JOIN pg_namespace AS n ON n.oid = p.pronamespace
    WHERE p.prokind IN ('f', 'p')
      AND NOT EXISTS (SELECT FROM pg_depend AS e WHERE e.classid = 'pg_proc'::regclass AND e.objid = p.oid AND e.deptype = 'e')
      AND {USER_SCHEMAS}
    UNION ALL
    SELECT 'row level security', n.nspname, c.relname, c.relname,
           CASE WHEN c.relforcerowsecurity THEN 'enabled, forced for the owner' ELSE 'enabled' END
    FROM pg_class AS c
    JOIN pg_namespace AS n ON n.oid = c.relnamespace
    WHERE c.relrowsecurity
      AND {USER_SCHEMAS}
      AND NOT EXISTS (SELECT FROM pg_depend AS e WHERE e.classid = 'pg_class'::regclass AND e.objid = c.oid AND e.deptype = 'e')
    UNION ALL
    SELECT 'policy', n.nspname, c.relname, pol.polname,
           format(
               '%s FOR %s TO %s USING (%s) WITH CHECK (%s)',
               CASE WHEN pol.polpermissive THEN 'PERMISSIVE' ELSE 'RESTRICTIVE' END,
               CASE pol.polcmd WHEN 'r' THEN 'SELECT' WHEN 'a' THEN 'INSERT' WHEN 'w' THEN 'UPDATE' WHEN 'd' THEN 'DELETE' ELSE 'ALL' END,
               (SELECT string_agg(CASE WHEN r = 0 THEN 'PUBLIC' ELSE pg_get_userbyid(r) END, ', ' ORDER BY 1) FROM unnest(pol.polroles) AS r),
               coalesce(pg_get_expr(pol.polqual, pol.polrelid), 'true'),
               coalesce(pg_get_expr(pol.polwithcheck, pol.polrelid), 'true')
           )
    FROM pg_policy AS pol
    JOIN pg_class AS c ON c.oid = pol.polrelid
    JOIN pg_namespace AS n ON n.oid = c.relnamespace
    WHERE {USER_SCHEMAS}
      AND NOT EXISTS (SELECT FROM pg_depend AS e WHERE e.classid = 'pg_class'::regclass AND e.objid = c.oid AND e.deptype = 'e')
    UNION ALL
    SELECT 'extension', n.nspname, '', x.extname, 'version ' || x.extversion
    FROM pg_extension AS x
    JOIN pg_namespace AS n ON n.oid = x.extnamespace
    UNION ALL
    SELECT 'grant', n.nspname, c.relname, CASE WHEN g.grantee = 0 THEN 'PUBLIC' ELSE pg_get_userbyid(g.grantee) END,
           string_agg(g.privilege_type || CASE WHEN g.is_grantable THEN ' WITH GRANT OPTION' ELSE '' END, ', ' ORDER BY g.privilege_type)
    FROM pg_class AS c
    JOIN pg_namespace AS n ON n.oid = c.relnamespace
    CROSS JOIN LATERAL aclexplode(c.relacl) AS g
    WHERE c.relkind IN ('r', 'p', 'm', 'v', 'S')
      AND g.grantee <> c.relowner
      AND {USER_SCHEMAS}
      AND NOT EXISTS (SELECT FROM pg_depend AS e WHERE e.classid = 'pg_class'::regclass AND e.objid = c.oid AND e.deptype = 'e')
    GROUP BY 1, 2, 3, 4
    UNION ALL
    SELECT 'grant', n.nspname, '', CASE WHEN g.grantee = 0 THEN 'PUBLIC' ELSE pg_get_userbyid(g.grantee) END,
           'schema: ' || string_agg(g.privilege_type || CASE WHEN g.is_grantable THEN ' WITH GRANT OPTION' ELSE '' END, ', ' ORDER BY g.privilege_type)
    FROM pg_namespace AS n
    CROSS JOIN LATERAL aclexplode(n.nspacl) AS g
    WHERE g.grantee <> n.nspowner
      AND {USER_SCHEMAS}
    GROUP BY 1, 2, 3, 4
    ORDER BY 1, 2, 3, 4
"""


def disabled_triggers(*, engine: Engine | None = None) -> pd.DataFrame:
    """Return the triggers of this database that do not fire: disabled, or firing only for replication (`replica`); foreign keys' internal triggers included.

    A disabled trigger silently stops what it keeps right (extraction_jobs.updated_at, a foreign key).

    Example:
        >>> disabled_triggers().columns.tolist()
        ['schema', 'table', 'trigger', 'enabled', 'internal']
    """
    return query(
        f"""
        SELECT n.nspname AS schema,
               c.relname AS "table",
               t.tgname AS trigger,
               CASE t.tgenabled WHEN 'D' THEN 'disabled' WHEN 'R' THEN 'replica' END AS enabled,
               t.tgisinternal AS internal
        FROM pg_trigger AS t
        JOIN pg_class AS c ON c.oid = t.tgrelid
        JOIN pg_namespace AS n ON n.oid = c.relnamespace
        WHERE t.tgenabled IN ('D', 'R')
          AND {USER_SCHEMAS}
        ORDER BY schema, "table", trigger
        """,
        name="disabled_triggers",
        engine=engine,
    )


def schema_diff(url_a: URL | str, url_b: URL | str) -> pd.DataFrame:
    """Return what differs between the schemas of two databases: extensions, tables, columns (type, NOT NULL, default), indexes, constraints, triggers, functions, row level security, policies and grants.

    Objects an extension owns (its functions, views, tables) count as the extension
    (name and version), not one by one. Grants are
    privileges on tables, views, sequences and schemas given to roles other than
    their owner (table "" for a schema's). One row per difference: `difference` is "only in a", "only in b" or
    "differs", with each side's definition. Empty when the schemas agree.
    Both are read-only catalog reads. Refuses a database compared with itself.

    Example:
        >>> from copythat_ops.engine import database_url
        >>> schema_diff(database_url(), database_url())
        Traceback (most recent call last):
        ...
        copythat_ops.errors.InputError: url_a and url_b are the same database (...). Fix: give two different databases, e.g. a Neon branch and main
    """
    a, b = _url(url_a, "url_a"), _url(url_b, "url_b")
    if _same_place(a, b):
        raise InputError(f"url_a and url_b are the same database ({mask_url(a)})", fix="give two different databases, e.g. a Neon branch and main", params=("url_a", "url_b"))
    identity = "SELECT inet_server_addr()::text AS addr, inet_server_port() AS port, current_database() AS db, pg_postmaster_start_time() AS started ORDER BY db"
    who_a, who_b = _read(a, "url_a", identity, "schema_diff.identity"), _read(b, "url_b", identity, "schema_diff.identity")
    if who_a.astype(str).values.tolist() == who_b.astype(str).values.tolist():
        raise InputError(f"url_a and url_b are the same database ({mask_url(a)})", fix="give two different databases, e.g. a Neon branch and main", params=("url_a", "url_b"))
    left = _read(a, "url_a", DEFINITIONS, "schema_diff")
    right = _read(b, "url_b", DEFINITIONS, "schema_diff")
    keys = ["kind", "schema", "table", "name"]
    both = left.merge(right, on=keys, how="outer", suffixes=("_a", "_b"))
    both = both[both["definition_a"].fillna("\0") != both["definition_b"].fillna("\0")].copy()
    both["difference"] = [
        "only in b" if pd.isna(x) else "only in a" if pd.isna(y) else "differs" for x, y in zip(both["definition_a"], both["definition_b"])
    ]
    both = both.rename(columns={"definition_a": "in_a", "definition_b": "in_b"})
    order = {kind: rank for rank, kind in enumerate(KINDS)}
    both = both.sort_values(keys, key=lambda col: col.map(order) if col.name == "kind" else col, ignore_index=True)
    return both[DIFF_COLUMNS]


def _url(value: URL | str, name: str) -> URL:
    try:
        return normalize_url(value)
    except Exception as exc:
        raise InputError(f"{name} is not a PostgreSQL URL ({getattr(exc, 'problem', exc)})", fix=f"give {name} as postgresql://USER:PASSWORD@HOST/DB", params=name) from None


def _same_place(a: URL, b: URL) -> bool:
    place = lambda u: (u.host or u.query.get("host"), u.port or 5432, u.database)
    return place(a) == place(b)


def _read(url: URL, name: str, sql: str, tag: str) -> pd.DataFrame:
    try:
        return run_query(sql, name=f"monitor.{tag}", engine=get_engine(url), timeout="30s")
    except ConnectError as exc:
        raise ConnectError(f"{name}: {exc.problem}", fix=f"check {name} ({mask_url(url)}) and that its server is up", params=name) from None
