"""GET /metrics against a real server: every metric family, the values of staged problems, a scrape bounded while
a table is locked or the database does not answer, several databases from one targets file, and no password anywhere.
"""

from __future__ import annotations

import logging
import socket
import threading
import time
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path

import psycopg2
import pytest
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy import text

from copythat_ops import migrations
from copythat_ops.api import metrics, targets
from copythat_ops.config import URL_VAR
from copythat_ops.engine import get_engine
from copythat_ops.errors import ConfigError, InputError

HANG_GUARD = 10  # seconds: a scrape that took this long waited for something; the budget is 1.5 s


def libpq(url) -> str:
    return url.render_as_string(hide_password=False).replace("+psycopg2", "")


def execute(url, *statements: str) -> None:
    conn = psycopg2.connect(libpq(url))
    conn.autocommit = True
    try:
        with conn.cursor() as cur:
            for statement in statements:
                cur.execute(statement)
    finally:
        conn.close()


def stage_jobs(url, *, completed: int, failed: int, recent_failed: int = 0, stuck: int = 0, pending: int = 0) -> None:
    """Jobs of one project: `completed` and `failed` finished two days ago, `recent_failed` failed a minute ago,
    `stuck` processing since two hours, `pending` created now."""
    engine = get_engine(url)
    with engine.begin() as conn:
        project = conn.scalar(text("SELECT min(id) FROM projects WHERE name = 'metrics'"))
        if project is None and conn.scalar(text("SELECT to_regclass('public.organizations') IS NOT NULL")):
            org = conn.scalar(text("INSERT INTO organizations (name, slug) VALUES ('Metrics', 'metrics') RETURNING id"))
            project = conn.scalar(text("INSERT INTO projects (name, organization_id) VALUES ('metrics', :org) RETURNING id"), {"org": org})
        elif project is None:
            project = conn.scalar(text("INSERT INTO projects (name) VALUES ('metrics') RETURNING id"))
        rows = (
            [("completed", "2 days", "2 days")] * completed
            + [("failed", "2 days", "2 days")] * failed
            + [("failed", "1 minute", "2 minutes")] * recent_failed
            + [("processing", None, "2 hours")] * stuck
            + [("pending", None, "0 seconds")] * pending
        )
        for status, finished, changed in rows:
            conn.execute(
                text(
                    """
                    INSERT INTO extraction_jobs (project_id, source_url, extraction_type, status, created_at, completed_at, updated_at)
                    VALUES (:project, 'https://example.com/a.png', 'color', :status,
                            localtimestamp - CAST(:changed AS interval),
                            localtimestamp - CAST(:finished AS interval),
                            now() - CAST(:changed AS interval))
                    """
                ),
                {"project": project, "status": status, "changed": changed, "finished": finished},
            )


def samples(body: bytes) -> dict[tuple[str, tuple], float]:
    """{(name, sorted label items): value} of an exposition, parsed as Prometheus parses it."""
    found = {}
    for family in text_string_to_metric_families(body.decode()):
        for sample in family.samples:
            found[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return found


def value(found: dict, name: str, **labels) -> float:
    return found[(name, tuple(sorted(labels.items())))]


@contextmanager
def locked(url, table: str = "extraction_jobs"):
    holder = psycopg2.connect(libpq(url), application_name="ct-metrics-lock")
    try:
        with holder.cursor() as cur:
            cur.execute("BEGIN")
            cur.execute(f"LOCK TABLE {table} IN ACCESS EXCLUSIVE MODE")
        yield holder.info.backend_pid
    finally:
        holder.close()


@pytest.fixture(scope="module")
def jobs_db(db_url):
    """Migrated to head: 6 completed and 2 failed jobs two days ago, 3 failed a minute ago, 1 stuck processing, 2 pending."""
    migrations.upgrade(url=db_url)
    stage_jobs(db_url, completed=6, failed=2, recent_failed=3, stuck=1, pending=2)
    return db_url


@pytest.fixture(autouse=True)
def fresh(monkeypatch, tmp_path):
    monkeypatch.setenv("COPYTHAT_BACKUP_DIR", str(tmp_path / "backups"))
    monkeypatch.delenv(targets.TARGETS_FILE_VAR, raising=False)
    metrics._background_states.clear()
    metrics._background_threads.clear()
    yield
    targets.dispose_target_engines()


def scrape_default(url, monkeypatch) -> dict:
    monkeypatch.setenv(URL_VAR, url.render_as_string(hide_password=False))
    body, content_type = metrics.exposition()
    assert content_type == metrics.CONTENT_TYPE_LATEST and content_type.startswith("text/plain; version=")
    return samples(body)


def test_one_scrape_has_every_family_and_the_staged_numbers(jobs_db, monkeypatch):
    found = scrape_default(jobs_db, monkeypatch)
    assert value(found, "pg_up") == 1
    assert {value(found, "copythat_scrape_error", collector=c) for c in metrics.COLLECTORS} == {0}
    assert [value(found, "copythat_jobs", status=s) for s in ("pending", "processing", "completed", "failed")] == [2, 1, 6, 5]
    assert 0 <= value(found, "copythat_job_totals_age_seconds") < 60
    assert value(found, "copythat_jobs_finished_15m", status="failed") == 3 and value(found, "copythat_jobs_finished_15m", status="completed") == 0
    assert value(found, "copythat_job_failure_ratio_15m") == 1.0
    assert value(found, "copythat_jobs_stuck", status="processing") == 1 and value(found, "copythat_jobs_stuck", status="pending") == 0
    assert 7000 < value(found, "copythat_job_oldest_seconds", status="processing") < 8000  # two hours since its last change
    assert value(found, "pg_database_size_bytes", datname=jobs_db.database) > 1_000_000
    assert value(found, "pg_stat_activity_count", datname=jobs_db.database, state="active") >= 1  # the scrape itself
    # PostgreSQL 16+ also reserves reserved_connections, 0 by default
    assert value(found, "copythat_connections_usable") == value(found, "pg_settings_max_connections") - value(found, "pg_settings_superuser_reserved_connections")
    assert 1 <= value(found, "copythat_connections_used") < value(found, "copythat_connections_usable")
    head = ", ".join(migrations.heads())
    assert value(found, "copythat_migration_at_head") == 1 and value(found, "copythat_migration_info", current=head, head=head) == 1
    labels = dict(schema="public", sequence="extraction_jobs_id_seq", table="extraction_jobs", column="id")
    assert value(found, "copythat_sequence_values_left", **labels) == 2_147_483_647 - 14
    assert value(found, "copythat_backups") == 0 and not any(name.startswith("copythat_backup_newest") for name, _ in found)
    statuses = {dict(labels)["check"]: v for (name, labels), v in found.items() if name == "copythat_health_check_status"}
    assert {"connection_headroom", "sequences", "blocked_queries"} <= set(statuses) and set(statuses.values()) <= {0, 1, 2, 3}
    assert value(found, "copythat_health_status") == max(statuses.values(), key=[0, 3, 1, 2].index)


def test_a_sequence_near_its_maximum_and_a_recent_backup_are_seen(db_url, monkeypatch, tmp_path, server):
    url = server.create_database("metrics_seq")
    try:
        migrations.upgrade(url=url)
        execute(url, "SELECT setval('extraction_jobs_id_seq', 2147000000)")
        folder = tmp_path / "backups"
        folder.mkdir()
        taken = datetime.now(UTC) - timedelta(hours=30)
        dump = folder / f"{url.database}__{migrations.heads()[0]}__{taken:%Y%m%dT%H%M%SZ}.dump"
        dump.write_bytes(b"PGDMP" + b"\0" * 95)
        (folder / f"other__{migrations.heads()[0]}__{datetime.now(UTC):%Y%m%dT%H%M%SZ}.dump").write_bytes(b"PGDMP")  # another database's: not counted
        found = scrape_default(url, monkeypatch)
        labels = dict(schema="public", sequence="extraction_jobs_id_seq", table="extraction_jobs", column="id")
        assert value(found, "copythat_sequence_used_ratio", **labels) == pytest.approx(2147000000 / 2147483647)
        assert value(found, "copythat_sequence_values_left", **labels) == 483647
        assert value(found, "copythat_backups") == 1 and value(found, "copythat_backup_newest_size_bytes") == 100
        assert 30 * 3600 - 5 < value(found, "copythat_backup_newest_age_seconds") < 30 * 3600 + 60
        assert value(found, "copythat_backup_newest_timestamp_seconds") == int(taken.timestamp())
        assert value(found, "copythat_health_check_status", check="sequences") == 2  # 99.98 % used: CRIT
    finally:
        targets.dispose_target_engines()
        server.drop_database(url)


def test_a_database_behind_head_says_which_revision(server, monkeypatch):
    url = server.create_database("metrics_behind")
    try:
        migrations.upgrade("c0db8df4a585", url=url)
        found = scrape_default(url, monkeypatch)
        head = ", ".join(migrations.heads())
        assert value(found, "copythat_migration_at_head") == 0
        assert value(found, "copythat_migration_info", current="c0db8df4a585", head=head) == 1
        execute(url, "DROP TABLE alembic_version")
        found = scrape_default(url, monkeypatch)
        assert value(found, "copythat_migration_info", current="base", head=head) == 1
        assert value(found, "copythat_scrape_error", collector="migrations") == 0
    finally:
        targets.dispose_target_engines()
        server.drop_database(url)


def test_a_locked_jobs_table_is_marked_and_the_scrape_still_answers(jobs_db, monkeypatch):
    monkeypatch.setenv(URL_VAR, jobs_db.render_as_string(hide_password=False))
    metrics.exposition()  # a first scrape: the health report exists before the lock
    with locked(jobs_db) as pid:
        started = time.monotonic()
        body, _ = metrics.exposition()
        elapsed = time.monotonic() - started
        with psycopg2.connect(libpq(jobs_db)) as probe, probe.cursor() as cur:
            cur.execute("SELECT state FROM pg_stat_activity WHERE pid = %s", (pid,))
            assert cur.fetchone() == ("idle in transaction",)  # the holder was left alone
    assert elapsed < HANG_GUARD
    found = samples(body)
    assert value(found, "pg_up") == 1
    assert value(found, "copythat_scrape_error", collector="jobs") == 1 and value(found, "copythat_scrape_error", collector="stuck_jobs") == 1
    assert not any(name in ("copythat_jobs_stuck", "copythat_job_failure_ratio_15m") for name, _ in found)  # left out, not zero
    assert {dict(labels)["status"] for name, labels in found if name == "copythat_jobs"} == {"completed", "failed"}  # counted before the lock
    for collector in ("server", "sequences", "migrations", "backups", "job_totals", "health"):
        assert value(found, "copythat_scrape_error", collector=collector) == 0, collector
    assert value(found, "pg_database_size_bytes", datname=jobs_db.database) > 0
    assert value(found, "copythat_scrape_collector_duration_seconds", collector="jobs") < 1  # it gave up after its lock timeout
    assert value(found, "copythat_scrape_duration_seconds") < metrics.SCRAPE_BUDGET + 0.5
    after = samples(metrics.exposition()[0])
    assert value(after, "copythat_scrape_error", collector="jobs") == 0 and value(after, "copythat_jobs", status="processing") == 1


def test_a_database_that_does_not_answer_is_down_within_the_budget(tmp_path, monkeypatch):
    """A server that accepts the TCP connection and never answers: the scrape ends at its budget with pg_up 0."""
    silent = socket.socket()
    silent.bind(("127.0.0.1", 0))
    silent.listen(8)
    port = silent.getsockname()[1]
    accepted = []
    threading.Thread(target=lambda: accepted.append(silent.accept()), daemon=True).start()
    file = tmp_path / "targets.env"
    file.write_text(f"silent=postgresql://app:hush-hush-pw@127.0.0.1:{port}/neondb?sslmode=disable\n")
    try:
        started = time.monotonic()
        body, _ = metrics.exposition("silent", targets_file=file)
        assert time.monotonic() - started < HANG_GUARD
    finally:
        silent.close()
    found = samples(body)
    assert value(found, "pg_up") == 0
    assert value(found, "copythat_scrape_error", collector="server") == 1 and value(found, "copythat_scrape_error", collector="jobs") == 1
    assert value(found, "copythat_scrape_error", collector="backups") == 0  # files, read without the database
    assert b"hush-hush-pw" not in body


def test_a_refused_connection_is_down_at_once_and_no_password_is_logged(tmp_path, caplog):
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]  # closed again: nothing listens there
    file = tmp_path / "targets.toml"
    file.write_text(f'[targets]\ngone = "postgresql+asyncpg://app:t0p-s3cret@127.0.0.1:{port}/neondb"\n')
    with caplog.at_level(logging.WARNING, logger="copythat_ops.metrics"):
        body, _ = metrics.exposition("gone", targets_file=file)
    found = samples(body)
    assert value(found, "pg_up") == 0 and value(found, "copythat_scrape_error", collector="health") == 1
    assert "gone" in caplog.text and "server not read" in caplog.text
    assert "t0p-s3cret" not in caplog.text and b"t0p-s3cret" not in body


def test_several_databases_from_one_targets_file_each_with_its_own_pool(jobs_db, server, tmp_path):
    other = server.create_database("metrics_other")
    try:
        migrations.upgrade(url=other)
        stage_jobs(other, completed=40, failed=0)
        file = tmp_path / "targets.env"
        file.write_text(f"# two databases\nprod={libpq(jobs_db)}\nexport staging='{libpq(other)}'\n")
        prod, staging = samples(metrics.exposition("prod", targets_file=file)[0]), samples(metrics.exposition("staging", targets_file=file)[0])
        assert value(prod, "copythat_jobs", status="completed") == 6 and value(staging, "copythat_jobs", status="completed") == 40
        assert value(staging, "pg_database_size_bytes", datname=other.database) > 0
        engines = [targets.target_engine(targets.target(name, targets_file=file)) for name in ("prod", "staging")]
        assert engines[0] is not engines[1] and [e.pool.size() for e in engines] == [2, 2]
        with engines[0].connect() as conn:
            assert conn.scalar(text("SHOW application_name")) == "copythat-ops-metrics"
        with pytest.raises(InputError, match=r"unknown target 'test' \(known: prod, staging\)") as caught:
            metrics.exposition("test", targets_file=file)
        assert caught.value.params == ("target",)
        file.write_text(f"prod={libpq(jobs_db)}\n")  # staging removed: its engine is closed on the next read
        time.sleep(0.01)
        with pytest.raises(InputError, match=r"\(known: prod\)"):
            metrics.exposition("staging", targets_file=file)
    finally:
        targets.dispose_target_engines()
        server.drop_database(other)


def test_the_targets_file_may_come_from_the_environment_and_toml_tables(jobs_db, tmp_path, monkeypatch):
    folder = tmp_path / "prod-backups"
    folder.mkdir()
    (folder / f"{jobs_db.database}__base__20260101T000000Z.dump").write_bytes(b"PGDMP")
    file = tmp_path / "targets.toml"
    file.write_text(f'[targets.prod]\nurl = "{libpq(jobs_db)}"\nbackup_dir = "{folder}"\n')
    monkeypatch.setenv(targets.TARGETS_FILE_VAR, str(file))
    found = samples(metrics.exposition("prod")[0])
    assert value(found, "copythat_backups") == 1
    assert value(found, "copythat_backup_newest_timestamp_seconds") == datetime(2026, 1, 1, tzinfo=UTC).timestamp()


def test_a_target_without_a_targets_file_says_how_to_give_one():
    with pytest.raises(InputError, match="no targets file is configured.*--targets FILE.*COPYTHAT_TARGETS_FILE"):
        metrics.exposition("prod")


@pytest.mark.parametrize(
    ("name", "content", "message"),
    [
        ("t.env", "prod=mysql://u:pw-one@h/db\n", r"the URL of target 'prod' is not a PostgreSQL URL .*line 1"),
        ("t.env", "prod=postgresql://u:pw-one@h/db\nprod=postgresql://u:pw-one@h/db2\n", r"names target 'prod' twice \(lines 1 and 2\)"),
        ("t.env", "prod postgresql://u:pw-one@h/db\n", r"cannot read \(line 1, 'prod'\)"),
        ("t.env", "# nothing\n", "names no targets"),
        ("t.env", "prod=\n", "gives target 'prod' no URL"),
        ("t.toml", '[targets]\n"1prod" = "postgresql://u:pw-one@h/db"\n', r"target name '1prod' .* is not a name"),
        ("t.toml", 'prod = "postgresql://u:pw-one@h/db"\n', r"has no \[targets\] table"),
        ("t.toml", "[targets\n", "is not valid TOML"),
        ("t.toml", '[targets.prod]\nurl = "postgresql://u:pw-one@h/db"\npassword = "pw-one"\n', "unknown keys: password"),
        ("t.toml", '[targets]\nprod = "postgresql://u:pw-one@h/db?sslmode=sometimes"\n', r"unknown sslmode 'sometimes' \(.*\[targets\] prod\)"),
    ],
)
def test_a_wrong_targets_file_is_named_with_its_line_and_no_password(tmp_path, name, content, message):
    file = tmp_path / name
    file.write_text(content)
    with pytest.raises(ConfigError, match=message) as caught:
        targets.targets(file)
    assert str(file) in str(caught.value) and "pw-one" not in str(caught.value) and caught.value.fix


def test_a_missing_targets_file_says_how_to_make_one(tmp_path):
    with pytest.raises(ConfigError, match=r"does not exist.*NAME=URL lines, or TOML"):
        targets.targets(tmp_path / "nope.env")


def test_passwords_may_come_from_the_environment(tmp_path, monkeypatch):
    monkeypatch.setenv("PROD_DB_PASSWORD", "from-env-pw")
    file = tmp_path / "targets.env"
    file.write_text("prod=postgresql://app:${PROD_DB_PASSWORD}@db.example.com/neondb?sslmode=require\n")
    found = targets.target("prod", targets_file=file)
    assert found.url.password == "from-env-pw"
    assert "from-env-pw" not in repr(found) and "from-env-pw" not in found.shown


def test_the_app_route_answers_the_exposition_and_400_for_an_unknown_target(jobs_db, tmp_path, monkeypatch):
    from fastapi.testclient import TestClient

    from copythat_ops.api.app import create_app

    monkeypatch.setenv(URL_VAR, jobs_db.render_as_string(hide_password=False))
    file = tmp_path / "targets.env"
    file.write_text(f"prod={libpq(jobs_db)}\n")
    with TestClient(create_app(token=None, targets_file=file)) as client:
        answer = client.get("/metrics")
        assert answer.status_code == 200 and answer.headers["content-type"] == metrics.CONTENT_TYPE_LATEST
        assert value(samples(answer.content), "pg_up") == 1
        assert value(samples(client.get("/metrics", params={"target": "prod"}).content), "copythat_jobs", status="pending") == 2
        wrong = client.get("/metrics", params={"target": "nope"})
        assert wrong.status_code == 400 and "known: prod" in wrong.json()["error"]


def test_open_jobs_are_counted_every_scrape_and_the_rest_once_an_interval(server, monkeypatch):
    url = server.create_database("metrics_totals")
    try:
        migrations.upgrade(url=url)
        stage_jobs(url, completed=3, failed=0, pending=1)
        assert value(found := scrape_default(url, monkeypatch), "copythat_jobs", status="completed") == 3
        assert value(found, "copythat_jobs", status="pending") == 1
        assert value(found, "copythat_jobs_finished_15m", status="completed") == 0
        assert not any(name == "copythat_job_failure_ratio_15m" for name, _ in found)  # none finished: absent, not NaN
        stage_jobs(url, completed=4, failed=0, pending=2)
        found = scrape_default(url, monkeypatch)
        assert value(found, "copythat_jobs", status="pending") == 3  # fresh
        assert value(found, "copythat_jobs", status="completed") == 3  # the count made less than JOB_TOTALS_INTERVAL ago
        monkeypatch.setattr(metrics, "JOB_TOTALS_INTERVAL", 0.0)
        metrics.scrape(targets.target())  # starts a new count in the background
        deadline = time.monotonic() + HANG_GUARD
        while value(found := scrape_default(url, monkeypatch), "copythat_jobs", status="completed") != 7 and time.monotonic() < deadline:
            time.sleep(0.1)
        assert value(found, "copythat_jobs", status="completed") == 7
    finally:
        targets.dispose_target_engines()
        server.drop_database(url)


def test_the_metrics_page_lists_every_metric(jobs_db, monkeypatch, tmp_path):
    folder = tmp_path / "backups"
    folder.mkdir()
    (folder / f"{jobs_db.database}__base__20260101T000000Z.dump").write_bytes(b"PGDMP")
    monkeypatch.setenv("COPYTHAT_BACKUP_DIR", str(folder))
    names = {name for name, _ in scrape_default(jobs_db, monkeypatch)}
    page = (Path(__file__).resolve().parent.parent / "docs" / "metrics.md").read_text()
    listed = set()
    for cell in (line.split("|")[1] for line in page.splitlines() if line.startswith("| `")):
        ticks = [part for part in cell.split("`")[1::2]]
        stem = ticks[0]
        listed |= {stem} | {stem.rsplit("_", 2)[0] + tick if tick.startswith("_") else tick for tick in ticks[1:]}
    assert names - listed == set(), "metrics missing from docs/metrics.md"
    assert {name for name in listed if name.startswith(("pg_", "copythat_"))} - names == set(), "docs/metrics.md lists metrics the scrape does not give"


def test_slow_background_reads_leave_a_connection_to_the_scrapes(jobs_db, monkeypatch):
    """health() and the job totals run one after another, on one connection of the target's two: a scrape meanwhile still connects."""

    def slow(read):
        def run(found):
            with targets.target_engine(found).connect() as conn:
                conn.exec_driver_sql("SELECT pg_sleep(2)")
            return read(found)

        return run

    monkeypatch.setattr(metrics, "_health_report", slow(metrics._health_report))
    monkeypatch.setattr(metrics, "_job_totals", slow(metrics._job_totals))
    first = scrape_default(jobs_db, monkeypatch)  # starts them, gives up waiting at the budget
    assert value(first, "pg_up") == 1 and value(first, "copythat_scrape_error", collector="health") == 1
    again = scrape_default(jobs_db, monkeypatch)  # while they still run
    assert value(again, "pg_up") == 1 and value(again, "copythat_scrape_error", collector="server") == 0
    assert value(again, "copythat_scrape_error", collector="jobs") == 0


def test_a_busy_pool_is_not_a_database_down(jobs_db, tmp_path):
    file = tmp_path / "targets.env"
    file.write_text(f"prod={libpq(jobs_db)}\n")
    engine = targets.target_engine(targets.target("prod", targets_file=file))
    held = [engine.connect() for _ in range(3)]  # the pool's two and its one extra
    try:
        found = samples(metrics.exposition("prod", targets_file=file)[0])
    finally:
        for conn in held:
            conn.close()
    assert not any(name == "pg_up" for name, _ in found)
    assert value(found, "copythat_scrape_error", collector="server") == 1
    assert value(samples(metrics.exposition("prod", targets_file=file)[0]), "pg_up") == 1
