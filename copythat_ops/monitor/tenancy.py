"""Tenancy lints: row-level security on the tables that hold one organization's data, policies, foreign keys without an index, tables without a primary key.

After supabase/splinter's lints (rls_disabled_in_public, policy_exists_rls_disabled,
rls_enabled_no_policy, auth_rls_initplan, unindexed_foreign_keys, no_primary_key),
plus one of this project's: row-level security that is enabled but not FORCED
leaves the tables' owner outside it. A tenant table is a table of schema public
with an organization_id or project_id column, and organizations itself.
`health()` reports each lint as a check; these functions show the rows behind it.

Example:
    >>> from copythat_ops import monitor
    >>> monitor.rls_status().query("tenant")["table"].tolist()
    ['color_tokens', 'extraction_jobs', 'memberships', 'organizations', 'projects', 'spacing_tokens', 'typography_tokens']
"""

from __future__ import annotations

import re

import pandas as pd
from sqlalchemy.engine import Engine

from .snapshot import query

CHECKS = (
    "tenant_rls_disabled",
    "policy_exists_rls_disabled",
    "rls_enabled_no_policy",
    "rls_not_forced",
    "rls_forced_owner_no_bypass",
    "rls_per_row_setting",
    "unindexed_foreign_keys",
    "no_primary_key",
)
# Functions whose call in a policy should be read once per query, not once per row.
PER_QUERY_FUNCTIONS = ("current_setting",)
TENANCY_REVISION = "b11509538edf"


def rls_status(*, engine: Engine | None = None) -> pd.DataFrame:
    """Return every table of schema public with its row-level security: whether it is a tenant table, enabled, forced, its policies, its primary key.

    Columns: schema, table, tenant (an organization_id or project_id column, or
    organizations itself), rls_enabled, rls_forced, policies (how many),
    per_row_policies (names of policies calling current_setting() once per row,
    see `per_row_calls`), primary_key, owner and owner_bypasses_rls (a superuser
    or BYPASSRLS owner is not subject to forced RLS). `health()` judges primary keys on tenant tables only
    (a scratch table is named in the detail, not warned about). Read from the catalog; no table is locked.

    Example:
        >>> rls_status().query("table == 'projects'")[["rls_enabled", "rls_forced", "policies", "per_row_policies"]].values.tolist()
        [[True, True, 2, '']]
    """
    tables = query(
        """
        SELECT n.nspname AS schema,
               c.relname AS "table",
               (c.relname = 'organizations'
                OR EXISTS (SELECT FROM pg_attribute AS a
                           WHERE a.attrelid = c.oid
                             AND a.attname IN ('organization_id', 'project_id')
                             AND a.attnum > 0
                             AND NOT a.attisdropped)) AS tenant,
               c.relrowsecurity AS rls_enabled,
               c.relforcerowsecurity AS rls_forced,
               EXISTS (SELECT FROM pg_constraint AS k WHERE k.conrelid = c.oid AND k.contype = 'p') AS primary_key,
               r.rolname AS owner,
               (r.rolsuper OR r.rolbypassrls) AS owner_bypasses_rls
        FROM pg_class AS c
        JOIN pg_namespace AS n ON n.oid = c.relnamespace
        JOIN pg_roles AS r ON r.oid = c.relowner
        WHERE n.nspname = 'public'
          AND c.relkind IN ('r', 'p')
          AND NOT c.relispartition
          AND NOT EXISTS (SELECT FROM pg_depend AS e WHERE e.classid = 'pg_class'::regclass AND e.objid = c.oid AND e.deptype = 'e')
        ORDER BY schema, "table"
        """,
        name="rls_status",
        engine=engine,
    )
    tables = tables.astype({"tenant": bool, "rls_enabled": bool, "rls_forced": bool, "primary_key": bool, "owner_bypasses_rls": bool})  # bool masks, also when empty
    found = policies(engine=engine)
    count = found.groupby("table").size()
    per_row = found[found["per_row"]].groupby("table")["policy"].agg(", ".join)
    tables.insert(5, "policies", [int(count.get(t, 0)) for t in tables["table"]])
    tables.insert(6, "per_row_policies", [per_row.get(t, "") for t in tables["table"]])
    return tables


def policies(*, engine: Engine | None = None) -> pd.DataFrame:
    """Return the row-level security policies of schema public: table, policy, command, roles, using, with_check, per_row.

    `using` and `with_check` are the expressions as PostgreSQL prints them;
    `per_row` is True when one calls current_setting() outside a scalar
    subquery, so it runs once per row instead of once per query (see `per_row_calls`).

    Example:
        >>> policies().query("table == 'projects'")[["policy", "command", "roles", "per_row"]].values.tolist()
        [['operator', 'ALL', 'PUBLIC', False], ['tenant', 'ALL', 'copythat_app', False]]
    """
    found = query(
        """
        SELECT c.relname AS "table",
               pol.polname AS policy,
               CASE pol.polcmd WHEN 'r' THEN 'SELECT' WHEN 'a' THEN 'INSERT' WHEN 'w' THEN 'UPDATE' WHEN 'd' THEN 'DELETE' ELSE 'ALL' END AS command,
               (SELECT string_agg(CASE WHEN r = 0 THEN 'PUBLIC' ELSE pg_get_userbyid(r) END, ', ' ORDER BY 1) FROM unnest(pol.polroles) AS r) AS roles,
               pg_get_expr(pol.polqual, pol.polrelid) AS using,
               pg_get_expr(pol.polwithcheck, pol.polrelid) AS with_check
        FROM pg_policy AS pol
        JOIN pg_class AS c ON c.oid = pol.polrelid
        JOIN pg_namespace AS n ON n.oid = c.relnamespace
        WHERE n.nspname = 'public'
        ORDER BY "table", policy
        """,
        name="policies",
        engine=engine,
    )
    found["per_row"] = pd.Series([bool(per_row_calls(u) or per_row_calls(w)) for u, w in zip(found["using"], found["with_check"])], index=found.index, dtype=bool)
    return found


def per_row_calls(expression: str | None) -> list[str]:
    """Return the calls in a policy expression (as PostgreSQL prints it) that run once per row: current_setting() and the like outside a scalar subquery.

    Written `(SELECT current_setting('app.organization_id', true))`, the call is
    an InitPlan, run once per query; bare, it runs for every row the query reads.

    Example:
        >>> per_row_calls("(organization_id = (current_setting('app.organization_id'::text, true))::bigint)")
        ['current_setting']
        >>> per_row_calls("(organization_id = ( SELECT (NULLIF(current_setting('app.organization_id'::text, true), ''::text))::bigint AS \\"nullif\\"))")
        []
    """
    if not isinstance(expression, str):  # no such clause (None, or a missing value in a DataFrame)
        return []
    found, stack, i = [], [], 0  # stack: for each open parenthesis, whether it opens a scalar subquery
    names = "|".join(re.escape(name) for name in PER_QUERY_FUNCTIONS)
    call = re.compile(rf"(?<![\w.])({names})\s*\(", re.IGNORECASE)
    while i < len(expression):
        char = expression[i]
        if char == "'":  # a string literal: skip to its end ('' is a quote inside it)
            end = i + 1
            while end < len(expression) and not (expression[end] == "'" and expression[end + 1 : end + 2] != "'"):
                end += 2 if expression[end : end + 2] == "''" else 1
            i = end + 1
            continue
        match = call.match(expression, i)
        if match and not any(stack):
            found.append(match.group(1).lower())
        if char == "(":
            stack.append(bool(re.match(r"\(\s*SELECT\b", expression[i:], re.IGNORECASE)))
        elif char == ")" and stack:
            stack.pop()
        i += 1
    return found


def unindexed_foreign_keys(*, engine: Engine | None = None) -> pd.DataFrame:
    """Return the foreign keys of schema public that no index leads with: each DELETE or key UPDATE of the referenced row scans the table.

    Columns: table, constraint, columns, referenced_table, fix (the index to
    build, CONCURRENTLY, in a migration). An index counts when its first columns are the key's
    (in any order), it is valid and not partial.

    Example:
        >>> unindexed_foreign_keys().empty
        True
    """
    found = query(
        """
        SELECT c.relname AS "table",
               k.conname AS "constraint",
               (SELECT string_agg(quote_ident(a.attname), ', ' ORDER BY u.n)
                FROM unnest(k.conkey) WITH ORDINALITY AS u(attnum, n)
                JOIN pg_attribute AS a ON a.attrelid = k.conrelid AND a.attnum = u.attnum) AS columns,
               (SELECT string_agg(a.attname, '_' ORDER BY u.n)
                FROM unnest(k.conkey) WITH ORDINALITY AS u(attnum, n)
                JOIN pg_attribute AS a ON a.attrelid = k.conrelid AND a.attnum = u.attnum) AS column_names,
               k.confrelid::regclass::text AS referenced_table
        FROM pg_constraint AS k
        JOIN pg_class AS c ON c.oid = k.conrelid
        JOIN pg_namespace AS n ON n.oid = c.relnamespace
        WHERE k.contype = 'f'
          AND n.nspname = 'public'
          AND NOT EXISTS (
              SELECT FROM pg_index AS i
              WHERE i.indrelid = k.conrelid
                AND i.indisvalid
                AND i.indpred IS NULL
                AND (string_to_array(i.indkey::text, ' ')::int2[])[1:cardinality(k.conkey)] @> k.conkey
                AND (string_to_array(i.indkey::text, ' ')::int2[])[1:cardinality(k.conkey)] <@ k.conkey
          )
        ORDER BY "table", "constraint"
        """,
        name="unindexed_foreign_keys",
        engine=engine,
    )
    found["fix"] = [
        f"CREATE INDEX CONCURRENTLY {_quoted(f'ix_{t}_{names}'[:63])} ON {_quoted(t)} ({columns})"
        for t, names, columns in zip(found["table"], found["column_names"], found["columns"])
    ]
    return found.drop(columns="column_names")


def _quoted(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def checks(limits: dict | None = None, *, engine: Engine | None = None) -> list[dict]:
    """Return the tenancy lints as `health()` rows: check, status, value, threshold, detail, action (the SQL that fixes it).

    A database where row-level security is not in use yet (no table has it, no
    policy exists: before revision b11509538edf) reports the RLS lints OK with that said.

    Example:
        >>> [row["status"] for row in checks()]
        ['OK', 'OK', 'OK', 'OK', 'OK', 'OK', 'OK', 'OK']
    """
    tables = rls_status(engine=engine)
    in_use = bool(tables["rls_enabled"].any() or tables["policies"].any())
    tenants = tables[tables["tenant"]]
    unused = f"row-level security is not in use here (no table has it or a policy; revision {TENANCY_REVISION} brings it)"

    def names(frame: pd.DataFrame) -> str:
        return _names(frame["table"].tolist())

    def statements(frame: pd.DataFrame, template: str) -> str:
        return " ".join(template.format(table=_quoted(t)) for t in frame["table"])

    disabled = tenants[~tenants["rls_enabled"]] if in_use else tenants.iloc[0:0]
    orphaned = tables[(tables["policies"] > 0) & ~tables["rls_enabled"]]
    no_policy = tables[tables["rls_enabled"] & (tables["policies"] == 0)]
    unforced = tables[tables["rls_enabled"] & ~tables["rls_forced"]]
    per_row = tables[tables["per_row_policies"] != ""]
    subject = tables[tables["rls_enabled"] & tables["rls_forced"] & ~tables["owner_bypasses_rls"]]
    owners = sorted(set(subject["owner"]))
    keys = unindexed_foreign_keys(engine=engine)
    no_key = tenants[~tenants["primary_key"]]
    others = tables[~tables["primary_key"] & ~tables["tenant"]]  # scratch and staging tables: named, not judged
    return [
        _found(
            "tenant_rls_disabled", disabled, "CRIT", "crit: any tenant table without row-level security",
            (f"{names(disabled)}: every role that may read them sees every organization's rows" if len(disabled)
             else ("none" if in_use else unused)),
            "enable and force it, then add the tenant and operator policies as the other tenant tables have them (see rls_status()): "
            + statements(disabled, "ALTER TABLE {table} ENABLE ROW LEVEL SECURITY; ALTER TABLE {table} FORCE ROW LEVEL SECURITY;"),
        ),
        _found(
            "policy_exists_rls_disabled", orphaned, "CRIT", "crit: any table with policies but row-level security disabled",
            f"{names(orphaned)}: their policies are not applied" if len(orphaned) else "none",
            "enable it (its policies then hold): " + statements(orphaned, "ALTER TABLE {table} ENABLE ROW LEVEL SECURITY;"),
        ),
        _found(
            "rls_enabled_no_policy", no_policy, "WARN", "warn: any table with row-level security but no policy",
            f"{names(no_policy)}: no row is visible to any role but its owner and BYPASSRLS roles" if len(no_policy) else "none",
            "add the policies it needs (see policies() for the other tables'), or disable it if the table is not a tenant's: "
            + statements(no_policy, "ALTER TABLE {table} DISABLE ROW LEVEL SECURITY;"),
        ),
        _found(
            "rls_not_forced", unforced, "WARN", "warn: any table with row-level security not forced",
            f"{names(unforced)}: their owner is not subject to the policies" if len(unforced) else "none",
            statements(unforced, "ALTER TABLE {table} FORCE ROW LEVEL SECURITY;"),
        ),
        _found(
            "rls_forced_owner_no_bypass", subject, "WARN", "warn: any table with forced RLS whose owner is no superuser and lacks BYPASSRLS",
            (f"{names(subject)}: their owner {', '.join(owners)} is subject to the policies, so pg_dump as it fails "
             "(query would be affected by row-level security) and COPY FROM into them is refused" if len(subject) else "none"),
            "as a superuser: " + " ".join(f"ALTER ROLE {_quoted(o)} BYPASSRLS;" for o in owners)
            + " (a Neon owner has it); or back up with pg_dump --enable-row-security and load with INSERT, not COPY",
        ),
        _found(
            "rls_per_row_setting", per_row, "WARN", "warn: any policy calling current_setting() outside a scalar subquery",
            "; ".join(f"{t} ({p})" for t, p in zip(per_row["table"], per_row["per_row_policies"])) + " call it once per row" if len(per_row) else "none",
            "write the call as (SELECT current_setting('app.organization_id', true)), so it runs once per query: "
            "ALTER POLICY name ON table USING (...) WITH CHECK (...) (see policies())",
        ),
        _found(
            "unindexed_foreign_keys", keys, "WARN", "warn: any foreign key no index leads with",
            _names((keys["table"] + "." + keys["constraint"]).tolist()) + ": a delete of the referenced row scans the table" if len(keys) else "none",
            "build the index in a migration: " + "; ".join(keys["fix"]),
        ),
        _found(
            "no_primary_key", no_key, "WARN", "warn: any tenant table without a primary key",
            (f"{names(no_key)}: rows cannot be told apart (logical replication, updates by key)" if len(no_key) else "none")
            + (f"; not judged, not tenant tables: {names(others)}" if len(others) else ""),
            "add one in a migration: " + statements(no_key, "ALTER TABLE {table} ADD PRIMARY KEY (...);"),
        ),
    ]  # fmt: skip


def _found(check: str, rows: pd.DataFrame, level: str, threshold: str, detail: str, action: str) -> dict:
    """A lint that reports `level` when it finds anything: its value is how many rows it found."""
    status = level if len(rows) else "OK"
    return {"check": check, "status": status, "value": len(rows), "threshold": threshold, "detail": detail, "action": action if status != "OK" else ""}


def _names(values: list[str], limit: int = 5) -> str:
    more = f" and {len(values) - limit} more" if len(values) > limit else ""
    return ", ".join(values[:limit]) + more
