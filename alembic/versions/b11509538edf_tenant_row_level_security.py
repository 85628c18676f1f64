"""Tenant row-level security: the role copythat_app, its grants, and a policy on every table holding one organization's data

Revision ID: b11509538edf
Revises: 458d9b0f4a48
Create Date: 2026-11-30 23:50:00.000000

The application connects as a login role that an operator makes a member of
copythat_app (GRANT copythat_app TO app_login), and sets the organization of
each request with `SET LOCAL app.organization_id = '42'` (or set_config(...,
true)) in its transaction. Then:

- organizations (by id), memberships and projects (by organization_id) show it
  that organization's rows only; extraction_jobs and the token tables show the
  rows of the projects it sees (one definition of tenancy: projects');
- with no organization set it sees no tenant row and can write none, and it
  cannot write a row into another organization (WITH CHECK);
- users are not one organization's data (a user can be in several), so they
  have no row-level security: the application may read users (login finds a
  user by email before an organization is known), add them and change their
  email and name, but not delete them (that cascades into other organizations'
  memberships: an operator's act).

Every tenant table has row-level security enabled and FORCED (its owner too
is subject to it), with two policies: `tenant` for copythat_app, reading the
setting once per query (`(SELECT current_setting(...))`, an InitPlan, not once
per row), and `operator` for everyone who is not a member of copythat_app
(the migrations' owner, on-call, pg_dump, monitoring): they see every row, as
before. So the application must not log in as the tables' owner: give it its
own login role.

copythat_app is NOLOGIN NOBYPASSRLS, made here when it does not exist yet
(roles are cluster-wide: a second database of the same server finds it), which
needs a role that may create roles; otherwise the upgrade stops and says the
statement a superuser runs first. It gets USAGE on schema public, SELECT,
INSERT, UPDATE, DELETE on the tenant tables, USAGE on their sequences, and
nothing on alembic_version, job_action_audit or copythat_history.

Safe on a live database: each table is changed in its own short transaction
(ENABLE / FORCE ROW LEVEL SECURITY and CREATE POLICY take an ACCESS EXCLUSIVE
lock, no rows scanned) under alembic.ini's lock_timeout, so at most one table
waits at a time and nothing queues behind a lock held on another. Every step
can run again. The downgrade drops the policies, disables row-level security
and revokes copythat_app's grants in this database; it leaves the role, which
other databases of the server may use (DROP ROLE copythat_app by hand once no
database has grants to it).
"""
from typing import Sequence, Union

from alembic import op

# revision identifiers, used by Alembic.
revision: str = "b11509538edf"
down_revision: Union[str, None] = "458d9b0f4a48"
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None

# No SQUAWK_IGNORE: squawk finds nothing to flag (the steps that lock live in DO blocks, one table each).

ROLE = "copythat_app"
SETTING = "app.organization_id"
# The organization of the request, read once per query (an InitPlan); NULL when none is set ('' after a RESET in the same session).
CURRENT = f"(SELECT nullif(current_setting('{SETTING}', true), '')::bigint)"
# True for everyone but copythat_app and its members: the owner and other operators keep seeing every row under FORCE.
OPERATOR = f"(SELECT NOT pg_has_role('{ROLE}', 'USAGE'))"
# Each tenant table and which of its rows belong to the current organization.
TENANT_TABLES = {
    "organizations": f"id = {CURRENT}",
    "memberships": f"organization_id = {CURRENT}",
    "projects": f"organization_id = {CURRENT}",
    "extraction_jobs": "EXISTS (SELECT FROM projects AS p WHERE p.id = extraction_jobs.project_id)",
    "color_tokens": "EXISTS (SELECT FROM projects AS p WHERE p.id = color_tokens.project_id)",
    "spacing_tokens": "EXISTS (SELECT FROM projects AS p WHERE p.id = spacing_tokens.project_id)",
    "typography_tokens": "EXISTS (SELECT FROM projects AS p WHERE p.id = typography_tokens.project_id)",
}
POLICIES = ("tenant", "operator")

CREATE_ROLE = f"""
DO $$
BEGIN
    IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = '{ROLE}') THEN
        IF NOT (SELECT rolsuper OR rolcreaterole FROM pg_roles WHERE rolname = current_user) THEN
            RAISE EXCEPTION 'role {ROLE} does not exist and % may not create roles: have a superuser (or a role with CREATEROLE) run CREATE ROLE {ROLE} NOLOGIN NOBYPASSRLS, then upgrade again', current_user;
        END IF;
        BEGIN
            CREATE ROLE {ROLE} NOLOGIN NOBYPASSRLS;
        EXCEPTION WHEN duplicate_object OR unique_violation THEN
            NULL;  -- another database of this server made it at the same moment
        END;
    END IF;
    IF (SELECT rolsuper OR rolbypassrls FROM pg_roles WHERE rolname = '{ROLE}') THEN
        RAISE EXCEPTION 'role {ROLE} bypasses row-level security (SUPERUSER or BYPASSRLS), so no policy would hold for the application: have a superuser run ALTER ROLE {ROLE} NOSUPERUSER NOBYPASSRLS, then upgrade again';
    END IF;
END
$$
"""

GRANT_SCHEMA = f"""
DO $$
BEGIN
    IF NOT has_schema_privilege('{ROLE}', 'public', 'USAGE') THEN
        GRANT USAGE ON SCHEMA public TO {ROLE};
    END IF;
END
$$
"""


def _sequences(table: str, statement: str) -> str:
    """A DO block running `statement` (%s: the sequence) on each sequence `table` owns (serial or identity), while the role exists."""
    return f"""
DO $$
DECLARE
    seq regclass;
BEGIN
    IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = '{ROLE}') THEN
        RETURN;
    END IF;
    FOR seq IN
        SELECT d.objid::regclass
        FROM pg_depend AS d
        JOIN pg_class AS s ON s.oid = d.objid AND s.relkind = 'S'
        WHERE d.refobjid = '{table}'::regclass
          AND d.classid = 'pg_class'::regclass
          AND d.deptype IN ('a', 'i')
        ORDER BY 1
    LOOP
        EXECUTE format('{statement}', seq);
    END LOOP;
END
$$
"""


def _secure(table: str, rows: str) -> str:
    """One table's row-level security in one short transaction (a DO block runs as one)."""
    return f"""
DO $$
BEGIN
    ALTER TABLE {table} ENABLE ROW LEVEL SECURITY;
    ALTER TABLE {table} FORCE ROW LEVEL SECURITY;
    DROP POLICY IF EXISTS tenant ON {table};
    DROP POLICY IF EXISTS operator ON {table};
    CREATE POLICY tenant ON {table} AS PERMISSIVE FOR ALL TO {ROLE}
        USING ({rows})
        WITH CHECK ({rows});
    CREATE POLICY operator ON {table} AS PERMISSIVE FOR ALL TO PUBLIC
        USING ({OPERATOR})
        WITH CHECK ({OPERATOR});
END
$$
"""


def upgrade() -> None:
    with op.get_context().autocommit_block():
        op.execute(CREATE_ROLE)
        op.execute(GRANT_SCHEMA)
        for table in TENANT_TABLES:
            op.execute(f"GRANT SELECT, INSERT, UPDATE, DELETE ON {table} TO {ROLE}")
        op.execute(f"GRANT SELECT, INSERT ON users TO {ROLE}")
        op.execute(f"GRANT UPDATE (email, name) ON users TO {ROLE}")
        for table in (*TENANT_TABLES, "users"):
            op.execute(_sequences(table, f"GRANT USAGE ON SEQUENCE %s TO {ROLE}"))
        # Grants first: from here each table is the application's through its policies only.
        for table, rows in TENANT_TABLES.items():
            op.execute(_secure(table, rows))


def downgrade() -> None:
    with op.get_context().autocommit_block():
        for table in reversed(TENANT_TABLES):
            op.execute(
                f"""
DO $$
BEGIN
    DROP POLICY IF EXISTS tenant ON {table};
    DROP POLICY IF EXISTS operator ON {table};
    ALTER TABLE {table} NO FORCE ROW LEVEL SECURITY;
    ALTER TABLE {table} DISABLE ROW LEVEL SECURITY;
END
$$
"""
            )
        op.execute(
            f"""
DO $$
BEGIN
    IF EXISTS (SELECT FROM pg_roles WHERE rolname = '{ROLE}') THEN
        REVOKE ALL ON {", ".join((*TENANT_TABLES, "users"))} FROM {ROLE};
        REVOKE USAGE ON SCHEMA public FROM {ROLE};
    END IF;
END
$$
"""
        )
        for table in (*TENANT_TABLES, "users"):
            op.execute(_sequences(table, f"REVOKE ALL ON SEQUENCE %s FROM {ROLE}"))
