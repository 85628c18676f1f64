"""Tenancy: the row-level security revision, tenant_isolation(), the tenancy lints of health(), tenant usage, jobs_frame's organization, the CLI.

Everything runs on a real server: the application role's view is taken with SET ROLE
(as the application's login role would, through its membership in copythat_app),
and each lint's problem is staged for real.
"""

from __future__ import annotations

import subprocess
import sys
import uuid
from decimal import Decimal
from pathlib import Path

import psycopg2
import pytest
from roles import application_login, libpq
from sqlalchemy import text
from test_monitor import execute

from copythat_ops import jobs, migrations, monitor, recovery, tenants
from copythat_ops.engine import dispose_engines, get_engine, run_query
from copythat_ops.errors import CopythatError, MigrationError
from copythat_ops.monitor import tenancy
from copythat_ops.seed import seed_database

CLI = str(Path(sys.executable).parent / "copythat-ops")
REVISION = "b11509538edf"


def down_revision() -> str:
    from copythat_ops.migrations.scripts import script_directory

    return script_directory().get_revision(REVISION).down_revision


@pytest.fixture(scope="module")
def engine(db_url):
    migrations.upgrade(url=db_url)
    engine = get_engine(db_url)
    seed_database(300, 6, seed=5, window="2 days", engine=engine)
    return engine


def row(report, check: str):
    return report.set_index("check").loc[check]


def scalar(engine, sql: str, **params):
    with engine.connect() as conn:
        return conn.execute(text(sql), params).scalar()


def test_every_tenant_table_is_forced_with_a_tenant_and_an_operator_policy(engine):
    status = tenancy.rls_status(engine=engine).set_index("table")
    assert status.index[status["tenant"]].tolist() == sorted(tenants.TENANT_TABLES)
    secured = status.loc[list(tenants.TENANT_TABLES)]
    assert secured["rls_enabled"].all() and secured["rls_forced"].all() and (secured["policies"] == 2).all()
    assert (secured["per_row_policies"] == "").all()
    assert not status.loc["users", "rls_enabled"] and not status.loc["alembic_version", "rls_enabled"]
    found = tenancy.policies(engine=engine)
    assert set(found["roles"]) == {"copythat_app", "PUBLIC"} and not found["per_row"].any()
    grants = run_query(
        """
        SELECT table_name, string_agg(privilege_type, ', ' ORDER BY privilege_type) AS privileges
        FROM information_schema.role_table_grants
        WHERE grantee = 'copythat_app' AND table_schema = 'public'
        GROUP BY table_name
        ORDER BY table_name
        """,
        engine=engine,
    ).set_index("table_name")["privileges"].to_dict()
    assert grants == {**{t: "DELETE, INSERT, SELECT, UPDATE" for t in tenants.TENANT_TABLES}, "users": "INSERT, SELECT"}
    assert "job_action_audit" not in grants and "alembic_version" not in grants
    sequences = run_query(
        "SELECT object_name FROM information_schema.role_usage_grants WHERE grantee = 'copythat_app' AND object_type = 'SEQUENCE' ORDER BY 1", engine=engine
    )["object_name"].tolist()
    assert {"projects_id_seq", "extraction_jobs_id_seq", "organizations_id_seq", "users_id_seq", "color_tokens_id_seq"} <= set(sequences)
    columns = run_query(
        "SELECT column_name FROM information_schema.role_column_grants WHERE grantee = 'copythat_app' AND table_name = 'users' AND privilege_type = 'UPDATE' ORDER BY 1",
        engine=engine,
    )["column_name"].tolist()
    assert columns == ["email", "name"]
    assert scalar(engine, "SELECT rolcanlogin OR rolbypassrls OR rolsuper FROM pg_roles WHERE rolname = 'copythat_app'") is False


def test_isolation_holds_and_leaves_nothing_behind(engine):
    before = scalar(engine, "SELECT count(*) FROM organizations"), scalar(engine, "SELECT count(*) FROM projects")
    report = tenants.tenant_isolation(engine=engine)
    assert report.columns.tolist() == tenants.ISOLATION_COLUMNS
    assert report["table"].tolist() == list(tenants.TENANT_TABLES)
    assert report[["visible_own", "visible_other", "visible_unset"]].values.tolist() == [[1, 0, 0]] * 7
    assert report["write_other_refused"].all() and report["write_unset_refused"].all() and report["ok"].all()
    assert (scalar(engine, "SELECT count(*) FROM organizations"), scalar(engine, "SELECT count(*) FROM projects")) == before
    assert scalar(engine, "SELECT count(*) FROM users WHERE email LIKE 'isolation-check-%'") == 0
    assert scalar(engine, "SELECT pg_has_role(current_user, 'copythat_app', 'USAGE') AND NOT (SELECT rolsuper FROM pg_roles WHERE rolname = current_user)") is False


@pytest.fixture
def app_login(db_url):
    """A session of a login the application would use: a member of copythat_app (with inheritance)."""
    with application_login(db_url) as url:
        conn = psycopg2.connect(libpq(url))
        try:
            yield conn
        finally:
            conn.close()


def test_the_application_sees_and_writes_only_the_organization_it_sets(engine, app_login):
    owner_projects = scalar(engine, "SELECT count(*) FROM projects")
    org, other = (
        int(v) for v in run_query("SELECT organization_id FROM projects GROUP BY 1 ORDER BY count(*) DESC, 1 LIMIT 2", engine=engine)["organization_id"]
    )
    mine = scalar(engine, "SELECT count(*) FROM extraction_jobs j JOIN projects p ON p.id = j.project_id WHERE p.organization_id = :o", o=org)
    with app_login.cursor() as cur:
        for table in tenants.TENANT_TABLES:
            cur.execute(f"SELECT count(*) FROM {table}")
            assert cur.fetchone() == (0,), f"{table} shows rows with no organization set"
        cur.execute("BEGIN")
        cur.execute("SET LOCAL app.organization_id = %s", (str(org),))
        cur.execute("SELECT count(*), count(*) FILTER (WHERE organization_id <> %s) FROM projects", (org,))
        assert cur.fetchone()[1] == 0
        cur.execute("SELECT count(*) FROM extraction_jobs")
        assert cur.fetchone() == (mine,)
        cur.execute("SELECT count(*) FROM organizations")
        assert cur.fetchone() == (1,)
        cur.execute("SAVEPOINT s")
        with pytest.raises(psycopg2.errors.InsufficientPrivilege, match="row-level security"):
            cur.execute("INSERT INTO projects (name, organization_id) VALUES ('x', %s)", (other,))
        cur.execute("ROLLBACK TO SAVEPOINT s")
        cur.execute("UPDATE projects SET name = name WHERE organization_id = %s", (other,))
        assert cur.rowcount == 0
        cur.execute("INSERT INTO projects (name, organization_id) VALUES ('mine', %s) RETURNING id", (org,))
        cur.execute("SELECT count(*) FROM users")
        assert cur.fetchone()[0] > 0  # users span organizations: readable, not deletable
        with pytest.raises(psycopg2.errors.InsufficientPrivilege):
            cur.execute("DELETE FROM users")
        cur.execute("ROLLBACK")
        with pytest.raises(psycopg2.errors.InsufficientPrivilege):
            cur.execute("SELECT count(*) FROM job_action_audit")
    assert scalar(engine, "SELECT count(*) FROM projects") == owner_projects  # the owner still sees every row


def test_health_says_ok_on_a_migrated_database(engine):
    report = monitor.health(engine=engine)
    assert set(tenancy.CHECKS) <= set(report["check"])
    assert report[report["check"].isin(tenancy.CHECKS)]["status"].tolist() == ["OK"] * len(tenancy.CHECKS)


def test_each_tenancy_problem_is_found_with_its_fix(db_url, engine):
    staged = ["t_tenant", "t_policy", "t_no_policy", "t_per_row", "t_no_key", "t_scratch"]
    execute(
        db_url,
        "CREATE TABLE t_tenant (id int PRIMARY KEY, organization_id bigint)",
        "CREATE INDEX ON t_tenant (organization_id)",
        "CREATE TABLE t_policy (id int PRIMARY KEY)",
        "CREATE POLICY p ON t_policy USING (true)",
        "CREATE TABLE t_no_policy (id int PRIMARY KEY)",
        "ALTER TABLE t_no_policy ENABLE ROW LEVEL SECURITY",
        "ALTER TABLE t_no_policy FORCE ROW LEVEL SECURITY",
        "CREATE TABLE t_per_row (id int PRIMARY KEY, organization_id bigint REFERENCES organizations)",
        "ALTER TABLE t_per_row ENABLE ROW LEVEL SECURITY",
        "CREATE POLICY by_org ON t_per_row USING (organization_id = current_setting('app.organization_id', true)::bigint)",
        "CREATE TABLE t_no_key (x int, project_id int)",
        "ALTER TABLE t_no_key ENABLE ROW LEVEL SECURITY",
        "ALTER TABLE t_no_key FORCE ROW LEVEL SECURITY",
        "CREATE POLICY p ON t_no_key USING ((SELECT true))",
        "CREATE TABLE t_scratch AS SELECT 1 AS x",
    )
    try:
        report = monitor.health(engine=engine)
        expect = {
            "tenant_rls_disabled": ("CRIT", 1, "t_tenant", 'ALTER TABLE "t_tenant" ENABLE ROW LEVEL SECURITY;'),
            "policy_exists_rls_disabled": ("CRIT", 1, "t_policy", 'ALTER TABLE "t_policy" ENABLE ROW LEVEL SECURITY;'),
            "rls_enabled_no_policy": ("WARN", 1, "t_no_policy", 'ALTER TABLE "t_no_policy" DISABLE ROW LEVEL SECURITY;'),
            "rls_not_forced": ("WARN", 1, "t_per_row", 'ALTER TABLE "t_per_row" FORCE ROW LEVEL SECURITY;'),
            "rls_per_row_setting": ("WARN", 1, "t_per_row (by_org)", "(SELECT current_setting('app.organization_id', true))"),
            "unindexed_foreign_keys": ("WARN", 1, "t_per_row.t_per_row_organization_id_fkey", 'CREATE INDEX CONCURRENTLY "ix_t_per_row_organization_id" ON "t_per_row" (organization_id)'),
            "no_primary_key": ("WARN", 1, "t_no_key", 'ALTER TABLE "t_no_key" ADD PRIMARY KEY'),
        }  # fmt: skip
        for check, (status, value, named, fix) in expect.items():
            found = row(report, check)
            assert (found["status"], found["value"]) == (status, value), check
            assert named in found["detail"] and fix in found["action"], (check, found["detail"], found["action"])
        assert monitor.verdict(report) == "CRIT"
        assert "not judged, not tenant tables: t_scratch" in row(report, "no_primary_key")["detail"]
        execute(
            db_url,
            "ALTER TABLE t_tenant ENABLE ROW LEVEL SECURITY",
            "ALTER TABLE t_tenant FORCE ROW LEVEL SECURITY",
            "CREATE POLICY p ON t_tenant USING (organization_id = (SELECT current_setting('app.organization_id', true)::bigint))",
            "ALTER TABLE t_policy ENABLE ROW LEVEL SECURITY",
            "ALTER TABLE t_policy FORCE ROW LEVEL SECURITY",
            "CREATE POLICY p ON t_no_policy USING (true)",
            "ALTER TABLE t_per_row FORCE ROW LEVEL SECURITY",
            "ALTER POLICY by_org ON t_per_row USING (organization_id = (SELECT nullif(current_setting('app.organization_id', true), '')::bigint))",
            "CREATE INDEX ix_t_per_row_organization_id ON t_per_row (organization_id)",
            "ALTER TABLE t_no_key ADD PRIMARY KEY (x)",
        )
        fixed = monitor.health(engine=engine)
        assert fixed[fixed["check"].isin(tenancy.CHECKS)]["status"].tolist() == ["OK"] * len(tenancy.CHECKS)
    finally:
        execute(db_url, *(f"DROP TABLE IF EXISTS {t}" for t in staged))


@pytest.mark.parametrize(
    "expression, calls",
    [
        ("(organization_id = (current_setting('app.organization_id'::text, true))::bigint)", ["current_setting"]),
        ("(organization_id = ( SELECT (current_setting('app.organization_id'::text, true))::bigint AS current_setting))", []),
        ("((name = 'current_setting(x)'::text) AND (id = ( SELECT 1)))", []),
        ("((( SELECT 1) = 1) AND (x = (current_setting('a'::text))::integer))", ["current_setting"]),
        ("(EXISTS ( SELECT FROM projects p WHERE (p.id = t.project_id)))", []),
        (None, []),
    ],
)
def test_per_row_calls_reads_what_a_subquery_wraps(expression, calls):
    assert tenancy.per_row_calls(expression) == calls


def test_usage_counts_every_organization_and_shares_out_the_sizes(engine):
    usage = tenants.tenant_usage(engine=engine)
    assert usage.columns.tolist() == [
        "organization_id", "slug", "name", "members", "projects", "jobs", "failed", "failure_rate", "tokens", "bytes_estimated", "size",
    ]  # fmt: skip
    assert len(usage) == scalar(engine, "SELECT count(*) FROM organizations")
    assert usage["projects"].sum() == scalar(engine, "SELECT count(*) FROM projects")
    assert usage["jobs"].sum() == scalar(engine, "SELECT count(*) FROM extraction_jobs")
    tokens = sum(scalar(engine, f"SELECT count(*) FROM {t}") for t in tenants.TOKEN_TABLES)
    assert usage["tokens"].sum() == tokens
    assert usage["bytes_estimated"].is_monotonic_decreasing
    tables = ["memberships", "projects", "extraction_jobs", *tenants.TOKEN_TABLES]
    total = sum(scalar(engine, f"SELECT pg_total_relation_size('{t}') * (count(*) > 0)::int FROM {t}") for t in tables)
    assert abs(int(usage["bytes_estimated"].sum()) - total) <= len(usage) * len(tables)  # each share rounded once
    busiest = usage.sort_values("jobs").iloc[-1]
    failed, finished = (
        scalar(engine, f"SELECT count(*) FROM extraction_jobs j JOIN projects p ON p.id = j.project_id WHERE p.organization_id = :o AND status IN {s}", o=int(busiest["organization_id"]))
        for s in ("('failed')", "('failed', 'completed')")
    )
    assert busiest["failed"] == failed and busiest["failure_rate"] == round(Decimal(failed) / Decimal(finished), 4)


def test_jobs_frame_names_each_jobs_organization(engine):
    frame = jobs.jobs_frame(engine=engine, with_project=True)
    assert frame.columns[:5].tolist() == ["id", "project_id", "organization_id", "organization", "project_name"]
    assert str(frame["organization_id"].dtype) == "Int64" and frame["organization"].notna().all()
    expected = run_query(
        "SELECT j.id, o.slug FROM extraction_jobs j JOIN projects p ON p.id = j.project_id JOIN organizations o ON o.id = p.organization_id ORDER BY j.id",
        engine=engine,
    )
    assert frame["organization"].tolist() == expected["slug"].tolist()


def test_cli_usage_and_isolation(engine, db_url):
    env = {"PATH": "/usr/bin:/bin", "DATABASE_URL": db_url.render_as_string(hide_password=False)}
    usage = subprocess.run([CLI, "--format", "csv", "tenants", "usage"], env=env, capture_output=True, text=True, timeout=120)
    assert usage.returncode == 0, usage.stderr
    assert usage.stdout.startswith("organization_id,slug,name,members,projects,jobs,failed,failure_rate,tokens,bytes_estimated,size")
    proof = subprocess.run([CLI, "--format", "csv", "tenants", "isolation"], env=env, capture_output=True, text=True, timeout=120)
    assert proof.returncode == 0, proof.stderr
    assert "isolation: OK (7 tenant tables checked" in proof.stderr and proof.stdout.count(",True\n") == 7


def test_the_revision_round_trips_and_older_databases_are_judged_fairly(server):
    url = server.create_database("tenancy_rt")
    try:
        engine = get_engine(url)
        migrations.upgrade(url=url)
        assert migrations.check(url=url) == []
        migrations.downgrade(down_revision(), url=url)
        status = tenancy.rls_status(engine=engine)
        assert not status["rls_enabled"].any() and status["policies"].sum() == 0
        for grants in ("role_table_grants", "role_column_grants", "role_usage_grants"):
            assert scalar(engine, f"SELECT count(*) FROM information_schema.{grants} WHERE grantee = 'copythat_app'") == 0, grants
        assert scalar(engine, "SELECT has_schema_privilege('copythat_app', 'public', 'CREATE')") is False
        assert scalar(engine, "SELECT count(*) FROM pg_roles WHERE rolname = 'copythat_app'") == 1  # cluster-wide: left for other databases
        with pytest.raises(MigrationError, match=f"revision {REVISION} is not applied.*migrate upgrade"):
            tenants.tenant_isolation(engine=engine)
        lints = tenancy.checks(engine=engine)
        assert [r["status"] for r in lints] == ["OK"] * len(tenancy.CHECKS)
        assert "not in use here" in lints[0]["detail"]
        env = {"PATH": "/usr/bin:/bin", "DATABASE_URL": url.render_as_string(hide_password=False)}
        refused = subprocess.run([CLI, "tenants", "isolation"], env=env, capture_output=True, text=True, timeout=120)
        assert refused.returncode == 2 and "migrate upgrade" in refused.stderr
        migrations.downgrade("b7bee60badb4", url=url)  # organizations, but projects without organization_id
        assert "organization" not in jobs.jobs_frame(engine=engine).columns
        assert migrations.upgrade(url=url) == migrations.heads()[0]
        assert tenancy.rls_status(engine=engine).query("tenant")["rls_forced"].all()
        assert tenants.tenant_isolation(engine=engine)["ok"].all()
    finally:
        server.drop_database(url)


def test_an_owner_that_is_no_superuser_proves_the_isolation_with_a_grant_the_rollback_takes_back(server):
    """PostgreSQL 16+: the owner holds ADMIN OPTION on copythat_app without SET or INHERIT (as its CREATEROLE creator would)."""
    if scalar(get_engine(server.admin), "SELECT current_setting('server_version_num')::int") < 160000:
        pytest.skip("PostgreSQL 16+ membership options")
    owner, stranger = f"ct_own_{uuid.uuid4().hex[:8]}", f"ct_none_{uuid.uuid4().hex[:8]}"
    try:
        execute(server.admin, f"CREATE ROLE {owner} LOGIN", f"CREATE ROLE {stranger} LOGIN")
    except psycopg2.errors.InsufficientPrivilege:
        pytest.skip("the test server's login may not create roles")
    try:
        execute(server.admin, "CREATE ROLE copythat_app NOLOGIN NOBYPASSRLS")
    except (psycopg2.errors.DuplicateObject, psycopg2.errors.UniqueViolation):
        pass  # made by another test's migration, on this server
    url = server.create_database("tenancy_owner")
    try:
        execute(
            server.admin,
            f'ALTER DATABASE "{url.database}" OWNER TO {owner}',
            f"GRANT copythat_app TO {owner} WITH ADMIN TRUE, INHERIT FALSE, SET FALSE",
        )
        as_owner = url.set(username=owner)
        migrations.upgrade(url=as_owner)
        engine = get_engine(as_owner)
        assert tenants.tenant_isolation(engine=engine)["ok"].all()
        lint = row(monitor.health(engine=engine), "rls_forced_owner_no_bypass")  # an owner without BYPASSRLS cannot pg_dump or COPY FROM them
        assert lint["status"] == "WARN" and lint["value"] == 7 and owner in lint["detail"] and f'ALTER ROLE "{owner}" BYPASSRLS;' in lint["action"]
        assert scalar(engine, "SELECT pg_has_role(current_user, 'copythat_app', 'SET') OR pg_has_role(current_user, 'copythat_app', 'USAGE')") is False
        with pytest.raises(CopythatError, match=f"{stranger} may not make the two throwaway organizations.*permission denied for table organizations"):
            tenants.tenant_isolation(engine=get_engine(url.set(username=stranger)))
        execute(url, f"GRANT SELECT, INSERT ON ALL TABLES IN SCHEMA public TO {stranger}", f"GRANT USAGE ON ALL SEQUENCES IN SCHEMA public TO {stranger}")
        with pytest.raises(CopythatError, match=f"{stranger} may not take the role copythat_app.*Fix: run the check as a superuser"):
            tenants.tenant_isolation(engine=get_engine(url.set(username=stranger)))
    finally:
        server.drop_database(url)
        execute(server.admin, f"DROP ROLE IF EXISTS {stranger}", f"REVOKE copythat_app FROM {owner}", f"DROP ROLE IF EXISTS {owner}")


def test_a_login_that_may_not_create_roles_is_told_what_a_superuser_runs_first(server):
    if server.password_url == server.admin:
        pytest.skip("a shared test server: its roles are not renamed")
    url = server.create_database("tenancy_norole")
    away = f"copythat_app_{uuid.uuid4().hex[:6]}"
    execute(server.admin, f"ALTER ROLE copythat_app RENAME TO {away}")
    try:
        execute(server.admin, f'ALTER DATABASE "{url.database}" OWNER TO {server.password_url.username}')
        login = server.password_url.set(database=url.database)
        with pytest.raises(MigrationError, match=f"role copythat_app does not exist and {login.username} may not create roles: "
                           "have a superuser .* run CREATE ROLE copythat_app NOLOGIN NOBYPASSRLS, then upgrade again"):
            migrations.upgrade(url=login)
        assert migrations.current(url=login) == down_revision()  # the revisions before it are applied; none of it is
    finally:
        execute(server.admin, f"ALTER ROLE {away} RENAME TO copythat_app")
        server.drop_database(url)


def test_a_backup_as_a_member_of_the_application_role_is_refused_before_pg_dump_runs(db_url, tmp_path):
    """Row-level security would hand such a login one organization's rows: a partial backup that looks whole."""
    with application_login(db_url) as url:
        execute(db_url, f'GRANT SELECT ON ALL TABLES IN SCHEMA public TO "{url.username}"')
        try:
            with pytest.raises(CopythatError, match="member of copythat_app.*partial; nothing was written"):
                recovery.backup(url=url, folder=tmp_path)
            assert list(tmp_path.iterdir()) == []
        finally:
            dispose_engines()
            execute(db_url, f'REVOKE SELECT ON ALL TABLES IN SCHEMA public FROM "{url.username}"')
