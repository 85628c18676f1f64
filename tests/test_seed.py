"""Seed data: reproducible, realistic, bulk-loaded, and only where it is meant to go."""

from __future__ import annotations

import json
import subprocess
import sys
import uuid
from datetime import UTC, datetime
from pathlib import Path

import pandas as pd
import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.exc import IntegrityError, ProgrammingError
from sqlalchemy.pool import NullPool

from copythat_ops import migrations
from copythat_ops.engine import dispose_engines, get_engine, run_query
from copythat_ops.errors import InputError, MigrationError
from copythat_ops.models import EXTRACTION_TYPES, JOB_STATUSES
from copythat_ops.seed import default_organizations, seed_database

CLI = str(Path(sys.executable).parent / "copythat-ops")
NOW = datetime(2025, 3, 14, 15, 0, tzinfo=UTC)
JOBS = "SELECT * FROM extraction_jobs ORDER BY id"


@pytest.fixture(scope="module")
def engine(db_url):
    migrations.upgrade(url=db_url)
    engine = get_engine(db_url)
    seed_database(5000, 30, seed=11, window="3 days", now=NOW, engine=engine)
    return engine


def frame(engine, sql: str = JOBS) -> pd.DataFrame:
    return run_query(sql, name="test", engine=engine)


def test_same_seed_same_data_other_seed_other_data(engine, server):
    twin = server.create_database("seed_twin")
    try:
        migrations.upgrade(url=twin)
        seed_database(5000, 30, seed=11, window="3 days", now=NOW, engine=get_engine(twin))
        pd.testing.assert_frame_equal(frame(engine), frame(get_engine(twin)))
        for table in ("projects", "organizations", "users", "memberships", "color_tokens", "spacing_tokens", "typography_tokens"):
            sql = f"SELECT * FROM {table} ORDER BY 1, 2"
            pd.testing.assert_frame_equal(frame(engine, sql), frame(get_engine(twin), sql), obj=table)
        with get_engine(twin).begin() as conn:
            conn.execute(text("TRUNCATE extraction_jobs, projects, organizations, users RESTART IDENTITY CASCADE"))
        seed_database(5000, 30, seed=12, window="3 days", now=NOW, engine=get_engine(twin))
        assert not frame(engine)["source_url"].equals(frame(get_engine(twin))["source_url"])
    finally:
        server.drop_database(twin)


def test_jobs_look_like_production(engine):
    jobs = frame(engine)
    shares = jobs["status"].value_counts(normalize=True)
    assert set(jobs["status"]) == set(JOB_STATUSES) and set(jobs["extraction_type"]) == set(EXTRACTION_TYPES)
    assert shares["completed"] > 0.8 and 0.05 < shares["failed"] < 0.12 and shares["processing"] < 0.05
    created = pd.to_datetime(jobs["created_at"]).dt.tz_localize("UTC")
    assert created.min() >= pd.Timestamp(NOW) - pd.Timedelta("3 days") and created.max() <= pd.Timestamp(NOW)
    finished = jobs["status"].isin(["completed", "failed"])
    assert jobs.loc[finished, "completed_at"].notna().all() and jobs.loc[~finished, "completed_at"].isna().all()
    seconds = (jobs["completed_at"] - jobs["created_at"]).dt.total_seconds().dropna()
    assert seconds.min() >= 0 and seconds.quantile(0.99) > 4 * seconds.median()  # a long tail
    assert jobs.loc[jobs["status"] == "failed", "error_message"].notna().all() and jobs.loc[~(jobs["status"] == "failed"), "error_message"].isna().all()
    stuck = (pd.Timestamp(NOW).tz_localize(None) - jobs.loc[jobs["status"] == "processing", "created_at"]) > pd.Timedelta("30 min")
    assert stuck.any() and not stuck.all()


def test_results_are_token_lists_and_projects_are_real(engine):
    results = frame(engine, "SELECT extraction_type, result_data FROM extraction_jobs WHERE status = 'completed' ORDER BY id")
    parsed = [json.loads(text) for text in results["result_data"] if text.endswith("}")]
    assert len(parsed) >= 0.99 * len(results)
    keys = {kind: set() for kind in EXTRACTION_TYPES}
    for kind, value in zip(results["extraction_type"], (json.loads(t) if t.endswith("}") else {} for t in results["result_data"])):
        keys[kind] |= set(value)
    assert keys["color"] == {"colors"} and keys["spacing"] == {"spacing"} and keys["typography"] == {"typography"}
    assert keys["all"] == {"colors", "spacing", "typography"}
    orphans = frame(engine, "SELECT count(*) AS n FROM extraction_jobs j LEFT JOIN projects p ON p.id = j.project_id WHERE p.id IS NULL")
    assert orphans["n"][0] == 0 and frame(engine, "SELECT count(*) AS n FROM projects")["n"][0] == 30


def test_indexes_and_foreign_key_are_as_before_and_the_schema_matches_the_models(engine):
    indexes = frame(engine, "SELECT indexname FROM pg_indexes WHERE tablename = 'extraction_jobs' ORDER BY 1")["indexname"].tolist()
    assert indexes == [
        "extraction_jobs_pkey", "ix_extraction_jobs_created_at", "ix_extraction_jobs_failure_reason", "ix_extraction_jobs_project_id",
        "ix_extraction_jobs_status_created_at", "ix_extraction_jobs_unfinished",
    ]
    valid = frame(engine, "SELECT convalidated FROM pg_constraint WHERE conrelid = 'extraction_jobs'::regclass AND contype = 'f' ORDER BY 1")
    assert valid["convalidated"].tolist() == [True]
    for table in ("color_tokens", "spacing_tokens", "typography_tokens"):  # loaded without them, rebuilt after
        foreign = frame(engine, f"SELECT conname, convalidated FROM pg_constraint WHERE conrelid = '{table}'::regclass AND contype = 'f' ORDER BY 1")
        assert foreign.to_dict("records") == [{"conname": f"{table}_extraction_job_id_fkey", "convalidated": True}, {"conname": f"{table}_project_id_fkey", "convalidated": True}]
        assert f"ix_{table}_project_id" in frame(engine, f"SELECT indexname FROM pg_indexes WHERE tablename = '{table}' ORDER BY 1")["indexname"].tolist()
    assert migrations.check(url=engine.url) == []


def test_if_empty_leaves_a_seeded_database_alone_and_more_can_be_added(engine):
    before = frame(engine, "SELECT count(*) AS n FROM extraction_jobs")["n"][0]
    assert seed_database(100, 2, engine=engine, if_empty=True)["skipped"] == "extraction_jobs already has rows"
    assert seed_database(100, 2, seed=5, engine=engine)["jobs"] == 100
    assert frame(engine, "SELECT count(*) AS n FROM extraction_jobs")["n"][0] == before + 100


def test_refuses_a_remote_database_unless_allowed(server):
    remote = get_engine("postgresql://app:Hunter2Secret@ep-cool-1.us-east-2.aws.neon.tech/neondb?sslmode=require")
    with pytest.raises(InputError, match="not a database on this machine") as raised:
        seed_database(10, 1, engine=remote)
    assert "Hunter2Secret" not in str(raised.value) and "allow_remote=True" in str(raised.value)


def test_bad_input_and_an_unmigrated_database(server):
    url = server.create_database("seed_empty")
    try:
        with pytest.raises(MigrationError, match="migrate upgrade"):
            seed_database(10, 1, engine=get_engine(url))
        for kwargs, message in [({"jobs": -1}, "jobs -1 is out of range"), ({"projects": 0}, "projects 0 is out of range"), ({"window": "0s"}, "window '0s' is empty")]:
            with pytest.raises(InputError, match=message):
                seed_database(**{"jobs": 10, "projects": 1, **kwargs}, engine=get_engine(url))
    finally:
        server.drop_database(url)


def test_cli_seeds_once_with_if_empty(server):
    url = server.create_database("seed_cli")
    try:
        migrations.upgrade(url=url)
        env = {"PATH": "/usr/bin:/bin", "DATABASE_URL": url.render_as_string(hide_password=False)}
        first = subprocess.run([CLI, "--format", "json", "seed", "--jobs", "500", "--projects", "5", "--if-empty"], env=env, capture_output=True, text=True, timeout=120)
        assert first.returncode == 0, first.stderr
        loaded = json.loads(first.stdout)
        assert loaded["jobs"] == 500 and loaded["organizations"] == 3 and loaded["users"] >= 6 and loaded["tokens"] > 1000, loaded
        again = subprocess.run([CLI, "--format", "json", "seed", "--if-empty"], env=env, capture_output=True, text=True, timeout=120)
        skipped = {"projects": 0, "jobs": 0, "organizations": 0, "users": 0, "memberships": 0, "tokens": 0, "skipped": "extraction_jobs already has rows"}
        assert json.loads(again.stdout) == skipped
    finally:
        server.drop_database(url)


def test_cli_seeds_the_demo_history(server):
    url = server.create_database("seed_history_cli")
    try:
        migrations.upgrade(url=url)
        env = {"PATH": "/usr/bin:/bin", "DATABASE_URL": url.render_as_string(hide_password=False)}
        first = subprocess.run([CLI, "--format", "json", "seed", "--jobs", "200", "--projects", "3", "--history", "2d"], env=env, capture_output=True, text=True, timeout=120)
        assert first.returncode == 0, first.stderr
        loaded = json.loads(first.stdout)
        assert loaded["jobs"] == 200 and loaded["history_snapshots"] == 49  # hourly over two days, both ends
        summary = run_query("SELECT count(*) AS n, bool_and(synthetic) AS synthetic FROM copythat_history.snapshots", engine=get_engine(url))
        assert int(summary["n"][0]) == 49 and bool(summary["synthetic"][0])
        again = subprocess.run([CLI, "--format", "json", "seed", "--if-empty", "--history", "30d"], env=env, capture_output=True, text=True, timeout=120)
        assert json.loads(again.stdout)["history_skipped"] == "the source already has history"
        many = subprocess.run([CLI, "seed", "--projects", "3", "--organizations", "4"], env=env, capture_output=True, text=True, timeout=120)
        assert many.returncode != 0 and "--organizations 4 is more than --projects 3" in many.stderr, many.stderr
        bad = subprocess.run([CLI, "seed", "--history", "soon"], env=env, capture_output=True, text=True, timeout=120)
        assert bad.returncode == 2 and "--history soon is not a duration" in bad.stderr, bad.stderr
    finally:
        server.drop_database(url)


def test_a_failure_while_loading_leaves_nothing_and_keeps_the_indexes(server):
    url = server.create_database("seed_fail")
    try:
        migrations.upgrade(url=url)
        engine = get_engine(url)
        with engine.begin() as conn:
            conn.execute(text("ALTER TABLE extraction_jobs ADD CONSTRAINT no_timeouts CHECK (error_message NOT LIKE 'Timeout%')"))
        with pytest.raises(Exception, match="no_timeouts"):
            seed_database(300_000, 10, engine=engine)
        counts = frame(engine, "SELECT (SELECT count(*) FROM projects) AS projects, (SELECT count(*) FROM extraction_jobs) AS jobs, (SELECT count(*) FROM organizations) AS organizations, (SELECT count(*) FROM users) AS users")
        assert counts.to_dict("records") == [{"projects": 0, "jobs": 0, "organizations": 0, "users": 0}]
        indexes = frame(engine, "SELECT count(*) AS n FROM pg_indexes WHERE tablename = 'extraction_jobs'")
        assert indexes["n"][0] == 6
    finally:
        server.drop_database(url)


def test_organizations_users_and_memberships_look_real(engine):
    first = "o.id <= 6 AND p.id <= 30"  # the module's seed (another test adds a few more)
    orgs = frame(engine, f"SELECT o.id, o.name, o.slug, count(p.id) AS projects FROM organizations o LEFT JOIN projects p ON p.organization_id = o.id WHERE {first} GROUP BY o.id ORDER BY o.id")
    assert len(orgs) == default_organizations(30) == 6
    assert orgs["slug"].is_unique and orgs["slug"].str.fullmatch(r"[a-z0-9]+(-[a-z0-9]+)*").all()
    assert (orgs["projects"] >= 1).all() and orgs["projects"].sum() == 30 and orgs["projects"].max() >= 2 * orgs["projects"].min()  # a few big tenants
    assert frame(engine, "SELECT count(*) AS n FROM projects WHERE organization_id IS NULL")["n"][0] == 0
    users = frame(engine, "SELECT email, name FROM users ORDER BY id")
    assert users["email"].str.lower().is_unique and users["email"].str.fullmatch(r"[^@\s]+@[a-z0-9]+\.[a-z]+").all()
    assert users["name"].str.fullmatch(r"\S+ \S+").all() and users["name"].nunique() > len(users) // 2
    roles = frame(engine, "SELECT organization_id, count(*) FILTER (WHERE role = 'owner') AS owners, count(*) AS members FROM memberships GROUP BY 1 ORDER BY 1")
    assert len(roles) == len(frame(engine, "SELECT id FROM organizations ORDER BY id")) and (roles["owners"] == 1).all() and (roles["members"] >= 2).all()


def test_tokens_are_the_completed_results_that_parse(engine):
    results = frame(engine, "SELECT id, project_id, result_data FROM extraction_jobs WHERE status = 'completed' ORDER BY id")
    expected = {"color_tokens": set(), "spacing_tokens": set(), "typography_tokens": set()}
    unparsed = 0
    for job, project, text_ in results.itertuples(index=False):
        try:
            value = json.loads(text_)
        except json.JSONDecodeError:
            unparsed += 1
            continue
        expected["color_tokens"] |= {(project, job, c["name"], c["value"]) for c in value.get("colors", [])}
        expected["spacing_tokens"] |= {(project, job, s["name"], float(s["value"]), "px") for s in value.get("spacing", [])}
        expected["typography_tokens"] |= {(project, job, t["name"], t["font"], float(t["size"]), t["weight"]) for t in value.get("typography", [])}
    got = {
        "color_tokens": frame(engine, "SELECT project_id, extraction_job_id, name, hex FROM color_tokens ORDER BY id"),
        "spacing_tokens": frame(engine, "SELECT project_id, extraction_job_id, name, value::float8 AS value, unit FROM spacing_tokens ORDER BY id"),
        "typography_tokens": frame(engine, "SELECT project_id, extraction_job_id, name, font_family, font_size::float8 AS size, font_weight FROM typography_tokens ORDER BY id"),
    }
    for table, rows in got.items():
        assert len(rows) > 1000 and set(rows.itertuples(index=False, name=None)) == expected[table], table
    assert unparsed >= 1  # a crashed worker's truncated result is in the data, and yields no token
    stamps = frame(engine, "SELECT count(*) AS n FROM color_tokens t JOIN extraction_jobs j ON j.id = t.extraction_job_id WHERE t.created_at <> j.completed_at::timestamptz")
    assert stamps["n"][0] == 0


def test_seeding_again_reuses_organizations_and_users_by_slug_and_email(server):
    url = server.create_database("seed_again")
    try:
        migrations.upgrade(url=url)
        first = seed_database(200, 10, seed=3, now=NOW, engine=get_engine(url))
        again = seed_database(200, 10, seed=3, now=NOW, engine=get_engine(url))
        assert (first["organizations"], first["users"]) == (4, int(frame(get_engine(url), "SELECT count(*) AS n FROM users")["n"][0]))
        assert (again["organizations"], again["users"], again["memberships"]) == (0, 0, 0) and again["projects"] == 10 and again["tokens"] == first["tokens"]
        with pytest.raises(InputError, match="organizations 11 is more than projects 10"):
            seed_database(10, 10, organizations=11, engine=get_engine(url))
        assert seed_database(50, 10, organizations=2, tokens=False, seed=4, now=NOW, engine=get_engine(url))["tokens"] == 0
    finally:
        server.drop_database(url)


@pytest.mark.parametrize("revision", ["c1a36d61036a", "a41f008744a3", "ef6a8e0d2805"])
def test_a_database_at_an_older_revision_is_seeded_with_what_it_has(server, revision):
    url = server.create_database("seed_old")
    try:
        migrations.upgrade(revision, url=url)
        loaded = seed_database(300, 5, seed=2, now=NOW, engine=get_engine(url))
        assert loaded["jobs"] == 300 and loaded["projects"] == 5 and loaded["tokens"] == 0
        assert loaded["organizations"] == (3 if revision == "ef6a8e0d2805" else 0)
        assert frame(get_engine(url), "SELECT count(*) AS n FROM extraction_jobs")["n"][0] == 300
    finally:
        server.drop_database(url)


def test_an_owner_under_forced_row_level_security_seeds_through_the_policies(server):
    """As on a server whose migration owner has no BYPASSRLS (PostgreSQL 15 in CI): COPY FROM is refused there, so rows go through a temporary table."""
    url = server.create_database("seed_rls")
    role, password = f"seed_owner_{uuid.uuid4().hex[:8]}", uuid.uuid4().hex
    admin = create_engine(url, poolclass=NullPool, isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as conn:
            conn.execute(text(f'CREATE ROLE "{role}" LOGIN NOSUPERUSER NOBYPASSRLS PASSWORD :password'), {"password": password})
            if not conn.scalar(text("SELECT pg_has_role(current_user, :role, 'MEMBER')"), {"role": role}):
                conn.execute(text(f'GRANT "{role}" TO current_user'))  # PostgreSQL 15: to give it the database
            conn.execute(text(f'ALTER DATABASE "{url.database}" OWNER TO "{role}"'))
            conn.execute(text(f'GRANT CREATE ON SCHEMA public TO "{role}"'))
            try:
                conn.execute(text("CREATE ROLE copythat_app NOLOGIN NOBYPASSRLS"))
            except (ProgrammingError, IntegrityError):  # made by another test database of this server
                pass
        owner = url.set(username=role, password=password)
        migrations.upgrade(url=owner)
        forced = frame(get_engine(owner), "SELECT count(*) AS n FROM pg_class WHERE relname IN ('projects', 'extraction_jobs') AND relforcerowsecurity")
        assert forced["n"][0] == 2
        loaded = seed_database(300, 5, seed=2, now=NOW, engine=get_engine(owner))
        assert (loaded["projects"], loaded["jobs"], loaded["organizations"]) == (5, 300, 3) and loaded["tokens"] > 100
        counts = frame(get_engine(url), "SELECT (SELECT count(*) FROM projects) AS projects, (SELECT count(*) FROM extraction_jobs) AS jobs, (SELECT count(*) FROM color_tokens) > 0 AS tokens")
        assert counts.to_dict("records") == [{"projects": 5, "jobs": 300, "tokens": True}]
    finally:
        dispose_engines()
        admin.dispose()
        server.drop_database(url)
        with server.engine.connect() as conn:
            conn.execute(text(f'DROP ROLE IF EXISTS "{role}"'))
