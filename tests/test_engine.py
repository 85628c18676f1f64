"""Engines, sessions, the query runner and the connection check, on a real server."""

from __future__ import annotations

import time

import pytest
from sqlalchemy import select, text
from sqlalchemy.exc import DBAPIError

from copythat_ops import check_connection, migrations
from copythat_ops.engine import connection, get_db, get_engine, run_query, session_scope
from copythat_ops.errors import ConnectError
from copythat_ops.models import ExtractionJob, JobStatus, Organization, Project


@pytest.fixture(scope="module")
def migrated(db_url):
    migrations.upgrade(url=db_url)
    return db_url


def test_engine_has_the_documented_pool_and_is_cached(db_url):
    engine = get_engine(db_url)
    assert engine is get_engine(db_url.render_as_string(hide_password=False))
    assert (engine.pool.size(), engine.pool._max_overflow, engine.pool._pre_ping) == (5, 10, True)


def test_connections_name_the_toolkit_and_carry_a_connect_timeout(db_url):
    with connection(get_engine(db_url)) as conn:
        assert conn.scalar(text("SELECT application_name FROM pg_stat_activity WHERE pid = pg_backend_pid()")) == "copythat-ops"
        assert conn.connection.dbapi_connection.get_dsn_parameters()["connect_timeout"] == "10"


def test_run_query_returns_a_frame_with_bound_parameters(db_url):
    frame = run_query("SELECT :word AS word, 41 + :n AS answer", {"word": "it's", "n": 1}, engine=get_engine(db_url))
    assert frame.to_dict("records") == [{"word": "it's", "answer": 42}]


def test_run_query_is_read_only_by_default(migrated):
    with pytest.raises(DBAPIError, match="read-only transaction"):
        run_query("INSERT INTO projects (name) VALUES ('x') RETURNING id", engine=get_engine(migrated))


def test_run_query_enforces_its_statement_timeout(db_url):
    started = time.perf_counter()
    with pytest.raises(DBAPIError, match="statement timeout"):
        run_query("SELECT pg_sleep(5)", engine=get_engine(db_url), timeout="200ms")
    assert time.perf_counter() - started < 4


def test_run_query_tags_its_sql_for_pg_stat_activity(db_url):
    frame = run_query("SELECT query FROM pg_stat_activity WHERE pid = pg_backend_pid()", name="tag-check", engine=get_engine(db_url))
    assert frame["query"][0].startswith("/* copythat-ops:tag-check */")
    with pytest.raises(ValueError, match="query name"):
        run_query("SELECT 1", name="x */ DROP TABLE projects; /*", engine=get_engine(db_url))


def test_session_scope_commits_and_rolls_back_as_one(migrated):
    engine = get_engine(migrated)
    with session_scope(engine) as session:
        organization = Organization(name="Acme Studio", slug="acme-studio")
        session.add(organization)
        session.flush()
        owner = organization.id
        project = Project(name="Brand refresh", organization_id=owner)
        session.add(project)
        session.flush()
        session.add(ExtractionJob(project_id=project.id, source_url="s3://bucket/hero.png", extraction_type="color"))
    with pytest.raises(RuntimeError):
        with session_scope(engine) as session:
            session.add(Project(name="never saved", organization_id=owner))
            session.flush()
            raise RuntimeError("worker crashed")
    with session_scope(engine) as session:
        assert session.scalars(select(Project.name)).all() == ["Brand refresh"]
        job = session.scalars(select(ExtractionJob)).one()
        assert job.status == JobStatus.PENDING and job.created_at is not None


def test_get_db_yields_a_session_and_closes_it(migrated, monkeypatch):
    monkeypatch.setenv("DATABASE_URL", migrated.render_as_string(hide_password=False))
    dependency = get_db()
    session = next(dependency)
    assert session.scalar(select(Project.name).limit(1)) == "Brand refresh"
    with pytest.raises(StopIteration):
        next(dependency)
    assert not session.in_transaction()


def test_check_connection_reports_what_db_test_reports_and_more(migrated, server):
    facts = check_connection(migrated)
    assert {k: facts[k] for k in ("database", "projects_count", "message", "revision")} == {
        "database": "connected",
        "projects_count": 1,
        "message": "Database connection successful! 🎉",
        "revision": migrations.heads()[0],
    }
    assert facts["provider"] == "PostgreSQL"  # a test server is neither Neon nor the default embedded one
    assert facts["database_name"] == migrated.database
    assert facts["tls"] is (migrated.query.get("sslmode") in ("require", "verify-ca", "verify-full"))
    assert int(facts["server_version"].split(".")[0]) >= 14
    assert facts["latency_ms"] > 0 and facts["connect_ms"] > 0
    assert (migrated.password or "\0") not in str(facts)


def test_check_connection_on_an_unmigrated_database_says_what_to_do(server):
    url = server.create_database("unmigrated")
    try:
        facts = check_connection(url)
        assert facts["projects_count"] is None and facts["revision"] is None
        assert "migrate upgrade" in facts["message"]
    finally:
        server.drop_database(url)


def test_wrong_password_is_named_without_any_password(server):
    wrong = server.password_url.set(password="Wr0ngPassw0rd")
    with pytest.raises(ConnectError, match="wrong or missing password") as caught:
        check_connection(wrong)
    assert "Wr0ngPassw0rd" not in str(caught.value)
    assert server.password_url.password not in str(caught.value)


def test_the_right_password_logs_in(server):
    assert check_connection(server.password_url)["user"] == server.password_url.username


def test_unreachable_port_is_retried_then_named():
    started = time.perf_counter()
    with pytest.raises(ConnectError, match=r"cannot reach 127\.0\.0\.1:1 .*Fix: check host and port") as caught:
        check_connection("postgresql://someone:S3cretPw@127.0.0.1:1/db")
    assert "S3cretPw" not in str(caught.value)
    assert time.perf_counter() - started >= 0.25 + 0.5 + 1.0  # three retries with backoff


def test_missing_database_is_named(server):
    with pytest.raises(ConnectError, match="has no database 'no_such_db_here'"):
        check_connection(server.admin.set(database="no_such_db_here"))


def test_replica_reads_go_to_the_replica_url_when_set(db_url, server, monkeypatch):
    primary = server.admin
    monkeypatch.setenv("DATABASE_URL", primary.render_as_string(hide_password=False))
    monkeypatch.delenv("DATABASE_REPLICA_URL", raising=False)
    assert get_engine(replica=True).url.database == primary.database
    monkeypatch.setenv("DATABASE_REPLICA_URL", db_url.render_as_string(hide_password=False))
    replica = get_engine(replica=True)
    assert replica.url.database == db_url.database
    assert run_query("SELECT current_database() AS db", engine=replica)["db"][0] == db_url.database
