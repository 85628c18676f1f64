"""Tenants: what each organization uses, and proof on the live database that row-level security keeps organizations apart.

The application's role is `copythat_app` (revision b11509538edf): a login role
an operator makes a member of it sees only the organization it sets with
`SET LOCAL app.organization_id = '42'`, and nothing with none set. The
migrations' owner and other operators are not members and see every row.

Example:
    >>> from copythat_ops import tenants
    >>> bool(tenants.tenant_isolation()["ok"].all())
    True
    >>> usage = tenants.tenant_usage()
    >>> int(usage["projects"].sum()), int(usage["jobs"].sum())
    (10, 500)
"""

from __future__ import annotations

import uuid

import pandas as pd
from psycopg2 import errors as pg_errors
from sqlalchemy import text
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.exc import DBAPIError

from .engine import APP_NAME, LOCK_TIMEOUT, connection, explain_lock_waits, get_engine, run_query
from .errors import CopythatError, MigrationError, schema_required

ROLE = "copythat_app"
SETTING = "app.organization_id"
REVISION = "b11509538edf"
TENANT_TABLES = ("organizations", "memberships", "projects", "extraction_jobs", "color_tokens", "spacing_tokens", "typography_tokens")
TOKEN_TABLES = ("color_tokens", "spacing_tokens", "typography_tokens")
ISOLATION_COLUMNS = ["table", "visible_own", "visible_other", "visible_unset", "write_other_refused", "write_unset_refused", "ok"]
TIMEOUT = "30s"
# What a token of each kind needs beyond its project, job and name (the rest has defaults).
_TOKEN_VALUES = {
    "color_tokens": ("hex", "'#336699'"),
    "spacing_tokens": ("value", "8"),
    "typography_tokens": ("font_family, font_size", "'Inter', 16"),
}


def tenant_usage(*, engine: Engine | None = None) -> pd.DataFrame:
    """Return what each organization holds and runs, largest first: members, projects, jobs, failures, tokens and the bytes its rows take.

    Columns: organization_id, slug, name, members, projects, jobs, failed,
    failure_rate (failed / finished jobs, an exact decimal to 4 places; None
    with no finished job), tokens (color, spacing and typography),
    bytes_estimated and size (readable). The bytes are an estimate: each tenant
    table's total size (heap, TOAST, indexes: pg_total_relation_size) shared
    out by the organization's share of its rows, summed over memberships,
    projects, extraction_jobs and the token tables; a tenant whose rows are
    larger than average (long result_data) holds more than it says. Counts are
    exact (one aggregate per table). Read as the connecting role: under
    copythat_app, only its organization.

    Example:
        >>> tenant_usage().columns.tolist()
        ['organization_id', 'slug', 'name', 'members', 'projects', 'jobs', 'failed', 'failure_rate', 'tokens', 'bytes_estimated', 'size']
    """
    tokens = "\n                UNION ALL\n                ".join(
        f"SELECT p.organization_id, '{table}' AS tbl, count(*) AS n FROM {table} AS t JOIN projects AS p ON p.id = t.project_id GROUP BY 1"
        for table in TOKEN_TABLES
    )
    sql = f"""
        WITH rows_per_table AS (
            SELECT organization_id, 'memberships' AS tbl, count(*) AS n FROM memberships GROUP BY 1
            UNION ALL
            SELECT organization_id, 'projects', count(*) FROM projects GROUP BY 1
            UNION ALL
            SELECT p.organization_id, 'extraction_jobs', count(*) FROM extraction_jobs AS j JOIN projects AS p ON p.id = j.project_id GROUP BY 1
            UNION ALL
            {tokens}
        ),
        shares AS (
            SELECT r.organization_id,
                   r.tbl,
                   r.n,
                   pg_total_relation_size(r.tbl::regclass)::numeric * r.n / sum(r.n) OVER (PARTITION BY r.tbl) AS bytes
            FROM rows_per_table AS r
        ),
        jobs AS (
            SELECT p.organization_id,
                   count(*) FILTER (WHERE j.status = 'failed') AS failed,
                   count(*) FILTER (WHERE j.status IN ('completed', 'failed')) AS finished
            FROM extraction_jobs AS j
            JOIN projects AS p ON p.id = j.project_id
            GROUP BY 1
        )
        SELECT o.id AS organization_id,
               o.slug,
               o.name,
               coalesce(sum(s.n) FILTER (WHERE s.tbl = 'memberships'), 0)::bigint AS members,
               coalesce(sum(s.n) FILTER (WHERE s.tbl = 'projects'), 0)::bigint AS projects,
               coalesce(sum(s.n) FILTER (WHERE s.tbl = 'extraction_jobs'), 0)::bigint AS jobs,
               coalesce(max(jobs.failed), 0)::bigint AS failed,
               round(max(jobs.failed)::numeric / nullif(max(jobs.finished), 0), 4) AS failure_rate,
               coalesce(sum(s.n) FILTER (WHERE s.tbl IN ({", ".join(f"'{t}'" for t in TOKEN_TABLES)})), 0)::bigint AS tokens,
               coalesce(round(sum(s.bytes)), 0)::bigint AS bytes_estimated,
               pg_size_pretty(coalesce(round(sum(s.bytes)), 0)) AS size
        FROM organizations AS o
        LEFT JOIN shares AS s ON s.organization_id = o.id
        LEFT JOIN jobs ON jobs.organization_id = o.id
        GROUP BY o.id, o.slug, o.name
        ORDER BY bytes_estimated DESC, o.id
    """
    with schema_required("tenant usage"):
        return run_query(sql, name="tenant_usage", engine=engine, timeout="5min")


def tenant_isolation(*, engine: Engine | None = None) -> pd.DataFrame:
    """Return, per tenant table, the proof that copythat_app sees and writes only the organization it sets; nothing is left behind.

    In one transaction that is always rolled back, as the connecting role (the
    owner): two organizations A and B, each with a member, a project, a job and
    one token of each kind; then as copythat_app (SET LOCAL ROLE, made possible
    for this transaction only by a GRANT that the rollback takes back, WITH
    INHERIT FALSE on PostgreSQL 16+) it counts, per table, A's rows visible
    with A set (visible_own, 1), B's rows visible with A set (visible_other,
    0), and A's and B's rows visible with no organization set (visible_unset,
    0); and tries to write a row into B with A set and a row into A with none
    set, each of which must be refused (write_other_refused,
    write_unset_refused). ok is all five holding. Refuses a database before
    revision b11509538edf.
    The connecting role must be able to SET ROLE copythat_app: a superuser, a
    member, or a role that may grant it (CREATEROLE; on 16+, ADMIN OPTION on it,
    which its creator has).

    Example:
        >>> tenant_isolation()[["table", "visible_own", "visible_other", "ok"]].head(3)
                   table  visible_own  visible_other    ok
        0  organizations            1              0  True
        1    memberships            1              0  True
        2       projects            1              0  True
    """
    engine = engine or get_engine()
    with explain_lock_waits("tenant_isolation", " ".join(TENANT_TABLES), engine=engine, read_only=False), connection(engine) as conn:
        trans = conn.begin()
        try:
            return _prove(conn)
        finally:
            trans.rollback()


def _prove(conn: Connection) -> pd.DataFrame:
    run = lambda sql, **params: conn.execute(text(f"/* {APP_NAME}:tenant_isolation */ {sql}"), params)
    run("SELECT set_config('statement_timeout', :t, true), set_config('lock_timeout', :l, true)", t=TIMEOUT, l=LOCK_TIMEOUT)
    _require_revision(run)
    user = run("SELECT current_user").scalar()
    tag = uuid.uuid4().hex[:10]
    try:
        a, b = (_tenant(run, f"isolation-check-{side}-{tag}") for side in ("a", "b"))
    except DBAPIError as exc:
        if not isinstance(exc.orig, pg_errors.InsufficientPrivilege):
            raise
        reason = str(exc.orig).strip().splitlines()[0]
        raise CopythatError(
            f"{user} may not make the two throwaway organizations the check needs ({reason})",
            fix=f"run the check as the tables' owner (the role that migrates); a member of {ROLE} with inheritance sees through its policies only",
        ) from None
    _assume_role(run, user)
    results = []
    for table in TENANT_TABLES:
        key = "organization_id" if table == "memberships" else "id"
        mine, theirs = a[table], b[table]
        run("SELECT set_config(:s, :v, true)", s=SETTING, v=str(a["organizations"]))
        seen = run(
            f"SELECT count(*) FILTER (WHERE {key} = :mine) AS own, count(*) FILTER (WHERE {key} = :theirs) AS other FROM {table} WHERE {key} IN (:mine, :theirs)",
            mine=mine,
            theirs=theirs,
        ).one()
        write_other = _refused(conn, run, *_insert(table, b, a, tag))
        run("SELECT set_config(:s, '', true)", s=SETTING)
        unset = run(f"SELECT count(*) FROM {table} WHERE {key} IN (:mine, :theirs)", mine=mine, theirs=theirs).scalar()
        write_unset = _refused(conn, run, *_insert(table, a, b, tag))
        row = [table, int(seen.own), int(seen.other), int(unset), write_other, write_unset]
        results.append(row + [row[1] == 1 and row[2] == 0 and row[3] == 0 and write_other and write_unset])
    run("RESET ROLE")
    return pd.DataFrame(results, columns=ISOLATION_COLUMNS)


def _require_revision(run) -> None:
    with schema_required("the tenant isolation check"):
        ready = run(
            """
            SELECT EXISTS (SELECT FROM pg_roles WHERE rolname = :role) AS role,
                   (SELECT count(*) FROM pg_policy WHERE polrelid = 'projects'::regclass AND polname = 'tenant') AS policies,
                   (SELECT count(*) FROM pg_class WHERE relname = ANY(:tables) AND relrowsecurity AND relforcerowsecurity
                      AND relnamespace = 'public'::regnamespace) AS secured,
                   to_regclass('typography_tokens') IS NOT NULL AS tokens
            """,
            role=ROLE,
            tables=list(TENANT_TABLES),
        ).one()
    if not (ready.role and ready.policies and ready.tokens):
        raise MigrationError(
            f"the database has no tenant row-level security to check (role {ROLE} or the tenant policies are missing: revision {REVISION} is not applied)",
            fix="migrate it to head: copythat-ops migrate upgrade",
        )


def _tenant(run, slug: str) -> dict[str, int]:
    """One organization with a member, a project, a job and a token of each kind, made as the connecting role; the ids by table."""
    ids = {"organizations": run("INSERT INTO organizations (name, slug) VALUES (:n, :s) RETURNING id", n=f"Isolation check {slug}", s=slug).scalar()}
    person = run("INSERT INTO users (email, name) VALUES (:e, 'Isolation check') RETURNING id", e=f"{slug}@example.invalid").scalar()
    run("INSERT INTO memberships (organization_id, user_id) VALUES (:o, :u)", o=ids["organizations"], u=person)
    ids["memberships"] = ids["organizations"]
    ids["users"] = person
    ids["projects"] = run("INSERT INTO projects (name, organization_id) VALUES (:n, :o) RETURNING id", n=slug, o=ids["organizations"]).scalar()
    ids["extraction_jobs"] = run(
        "INSERT INTO extraction_jobs (project_id, source_url, extraction_type) VALUES (:p, 'https://isolation.check/a.png', 'color') RETURNING id",
        p=ids["projects"],
    ).scalar()
    for table, (columns, values) in _TOKEN_VALUES.items():
        ids[table] = run(
            f"INSERT INTO {table} (project_id, extraction_job_id, name, {columns}) VALUES (:p, :j, 'isolation-check', {values}) RETURNING id",
            p=ids["projects"],
            j=ids["extraction_jobs"],
        ).scalar()
    return ids


def _insert(table: str, into: dict[str, int], other: dict[str, int], tag: str) -> tuple[str, dict]:
    """An INSERT of a row belonging to the organization `into` (other: the remaining one, whose user joins `into`)."""
    if table == "organizations":  # an organization other than the one set: a fresh id, so only the policy can refuse it
        return "INSERT INTO organizations (id, name, slug) VALUES (:id, 'Isolation write', :slug)", {"id": into["organizations"] + 1_000_000_000, "slug": f"isolation-write-{tag}"}
    if table == "memberships":
        return "INSERT INTO memberships (organization_id, user_id) VALUES (:o, :u)", {"o": into["organizations"], "u": other["users"]}
    if table == "projects":
        return "INSERT INTO projects (name, organization_id) VALUES ('isolation write', :o)", {"o": into["organizations"]}
    if table == "extraction_jobs":
        return "INSERT INTO extraction_jobs (project_id, source_url, extraction_type) VALUES (:p, 'https://isolation.check/b.png', 'color')", {"p": into["projects"]}
    columns, values = _TOKEN_VALUES[table]
    return f"INSERT INTO {table} (project_id, name, {columns}) VALUES (:p, 'isolation-write', {values})", {"p": into["projects"]}


def _refused(conn: Connection, run, sql: str, params: dict) -> bool:
    """Whether the row-level security policy refuses this write (in a savepoint, so the transaction goes on either way)."""
    savepoint = conn.begin_nested()
    try:
        run(sql, **params)
    except DBAPIError as exc:
        savepoint.rollback()
        if isinstance(exc.orig, pg_errors.InsufficientPrivilege):
            return "row-level security" in str(exc.orig)
        raise
    savepoint.rollback()
    return False


def _assume_role(run, user: str) -> None:
    """SET LOCAL ROLE copythat_app, granting it to `user` for this transaction first when needed (the rollback revokes it)."""
    major = run("SELECT current_setting('server_version_num')::int / 10000").scalar()
    privilege = "SET" if major >= 16 else "MEMBER"
    superuser, member = run(
        "SELECT rolsuper, pg_has_role(current_user, :role, :privilege) FROM pg_roles WHERE rolname = current_user", role=ROLE, privilege=privilege
    ).one()
    if not (superuser or member):
        options = " WITH INHERIT FALSE, SET TRUE" if major >= 16 else ""
        try:
            run(f'GRANT "{ROLE}" TO "{user}"{options}')
        except DBAPIError as exc:
            if not isinstance(exc.orig, pg_errors.InsufficientPrivilege):
                raise
            raise CopythatError(
                f"{user} may not take the role {ROLE} (SET ROLE) to prove the isolation, nor grant it to itself for the check",
                fix=f"run the check as a superuser or a role with CREATEROLE{' or ADMIN OPTION on ' + ROLE if major >= 16 else ''}",
            ) from None
    run(f'SET LOCAL ROLE "{ROLE}"')
