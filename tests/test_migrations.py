"""Migrations against a real server: the schema of the setup guide, round trips, guards, offline SQL."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
from pathlib import Path

import pandas as pd
import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.pool import NullPool

from copythat_ops import migrations
from copythat_ops.errors import MigrationError
from copythat_ops.models import Base

ROOT = Path(__file__).resolve().parents[1]
INITIAL = "c1a36d61036a"
HEAD = migrations.heads()[0]

# The setup guide's tables: (table, column, type, nullable, default)
DOCUMENTED_SCHEMA = [
    ("extraction_jobs", "id", "integer", False, "nextval('extraction_jobs_id_seq'::regclass)"),
    ("extraction_jobs", "project_id", "integer", False, None),
    ("extraction_jobs", "source_url", "character varying(512)", False, None),
    ("extraction_jobs", "extraction_type", "character varying(50)", False, None),
    ("extraction_jobs", "status", "character varying(50)", False, "'pending'::character varying"),
    ("extraction_jobs", "result_data", "text", True, None),
    ("extraction_jobs", "error_message", "text", True, None),
    ("extraction_jobs", "created_at", "timestamp without time zone", False, "now()"),
    ("extraction_jobs", "completed_at", "timestamp without time zone", True, None),
    ("projects", "id", "integer", False, "nextval('projects_id_seq'::regclass)"),
    ("projects", "name", "character varying(255)", False, None),
    ("projects", "description", "text", True, None),
    ("projects", "created_at", "timestamp without time zone", False, "now()"),
    ("projects", "updated_at", "timestamp without time zone", False, "now()"),
]


def schema(url) -> list[tuple]:
    frame = migrations.schema_columns(url=url)
    return [
        (r.table_name, r.column_name, r.data_type, bool(r.nullable), None if pd.isna(r.column_default) else r.column_default)
        for r in frame.itertuples()
    ]


def primary_keys(url) -> dict[str, str]:
    engine = create_engine(url, poolclass=NullPool)
    with engine.connect() as conn:
        rows = conn.execute(
            text(
                "SELECT conrelid::regclass::text, pg_get_constraintdef(oid) FROM pg_constraint"
                " WHERE contype = 'p' AND connamespace = 'public'::regnamespace AND conrelid::regclass::text <> 'alembic_version'"
            )
        ).all()
    engine.dispose()
    return dict(rows)


def alembic(*args: str, url) -> subprocess.CompletedProcess:
    env = {**os.environ, "DATABASE_URL": url.render_as_string(hide_password=False)}
    return subprocess.run(
        [sys.executable, "-m", "alembic", *args], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120
    )


def test_fresh_database_has_no_revision_and_every_revision_pending(db_url):
    assert migrations.current(url=db_url) is None
    todo = migrations.pending(url=db_url)["revision"].tolist()
    assert todo == migrations.history(url=db_url)["revision"].tolist()
    assert todo[0] == INITIAL and migrations.heads() == [todo[-1]]


def test_initial_revision_creates_exactly_the_documented_schema(db_url):
    assert migrations.upgrade(INITIAL, url=db_url) == INITIAL
    assert schema(db_url) == DOCUMENTED_SCHEMA
    assert primary_keys(db_url) == {"projects": "PRIMARY KEY (id)", "extraction_jobs": "PRIMARY KEY (id)"}


def test_models_match_the_migrated_database(db_url):
    migrations.upgrade(url=db_url)
    assert migrations.check(url=db_url) == []
    result = alembic("check", url=db_url)
    assert result.returncode == 0, result.stderr
    assert "No new upgrade operations detected" in result.stdout + result.stderr


def test_upgrade_downgrade_upgrade_round_trip_keeps_the_schema(db_url):
    migrations.upgrade(url=db_url)
    before = schema(db_url)
    assert migrations.downgrade("base", url=db_url) is None
    assert schema(db_url) == []
    assert migrations.upgrade(url=db_url) == HEAD
    assert schema(db_url) == before
    assert migrations.pending(url=db_url).empty


def test_history_marks_what_is_applied(db_url):
    migrations.upgrade(url=db_url)
    frame = migrations.history(url=db_url)
    assert list(frame.columns) == ["revision", "down_revision", "description", "is_head", "applied"]
    first = frame.iloc[0]
    assert (first.revision, first.applied) == (INITIAL, True) and pd.isna(first.down_revision)
    assert first.description == "Initial schema: projects and extraction_jobs"


def test_alembic_command_line_takes_the_applications_asyncpg_url(db_url, server):
    migrations.downgrade("base", url=db_url)
    app_url = db_url.set(drivername="postgresql+asyncpg")
    if "sslmode" in db_url.query:
        app_url = app_url.update_query_dict({"ssl": db_url.query["sslmode"]}).difference_update_query(["sslmode"])
    result = alembic("upgrade", "head", url=app_url)
    assert result.returncode == 0, result.stderr
    assert migrations.current(url=db_url) == HEAD
    assert (db_url.password or "\0") not in result.stdout + result.stderr


def test_a_database_made_from_the_models_and_stamped_at_head_is_up_to_date(db_url):
    migrations.downgrade("base", url=db_url)
    engine = create_engine(db_url, poolclass=NullPool)
    Base.metadata.create_all(engine)  # as the application's own tooling would have made it
    engine.dispose()
    migrations.stamp(HEAD, url=db_url)
    assert migrations.current(url=db_url) == HEAD
    assert migrations.pending(url=db_url).empty
    assert migrations.check(url=db_url) == []


def test_upgrade_to_an_unknown_revision_names_it_and_changes_nothing(db_url):
    migrations.downgrade("base", url=db_url)
    with pytest.raises(MigrationError, match="no migration revision 'deadbeef0000'.*c1a36d61036a"):
        migrations.upgrade("deadbeef0000", url=db_url)
    assert migrations.current(url=db_url) is None
    assert schema(db_url) == []


def test_downgrade_below_base_is_refused_with_the_fix(db_url):
    migrations.downgrade("base", url=db_url)
    with pytest.raises(MigrationError, match="downgrade -1 goes past base: no revision is applied.*Fix"):
        migrations.downgrade("-1", url=db_url)


def test_a_second_migrator_is_turned_away_while_one_runs(db_url):
    migrations.downgrade("base", url=db_url)
    holder = create_engine(db_url, poolclass=NullPool)
    with holder.connect() as conn:
        conn.execute(text("SELECT pg_advisory_lock(:k)"), {"k": migrations.MIGRATION_LOCK_KEY})
        pid = conn.scalar(text("SELECT pg_backend_pid()"))
        with pytest.raises(MigrationError, match=f"another migration is running.*{pid}"):
            migrations.upgrade(url=db_url)
        conn.execute(text("SELECT pg_advisory_unlock(:k)"), {"k": migrations.MIGRATION_LOCK_KEY})
    holder.dispose()
    assert migrations.current(url=db_url) is None
    assert migrations.upgrade(url=db_url) == HEAD


def downgrade_to_base_while_reading(db_url, table: str, tmp_path) -> None:
    """Downgrade to base with lock_timeout 300ms while another session reads `table` (holding ACCESS SHARE); expect the timeout."""
    ini = tmp_path / "alembic.ini"
    ini.write_text((ROOT / "alembic.ini").read_text().replace("lock_timeout = 5s", "lock_timeout = 300ms").replace("%(here)s", str(ROOT)))
    os.environ[migrations.INI_VAR] = str(ini)
    holder = create_engine(db_url, poolclass=NullPool)
    try:
        with holder.connect() as conn:
            conn.execute(text(f"SELECT count(*) FROM {table}"))  # holds ACCESS SHARE until rollback
            with pytest.raises(MigrationError, match="lock timeout"):
                migrations.downgrade("base", url=db_url)
            conn.rollback()
    finally:
        del os.environ[migrations.INI_VAR]
        holder.dispose()


def test_ddl_gives_up_behind_a_long_transaction_instead_of_queueing(db_url, tmp_path):
    migrations.downgrade("base", url=db_url)
    migrations.upgrade(INITIAL, url=db_url)
    downgrade_to_base_while_reading(db_url, "projects", tmp_path)
    assert migrations.current(url=db_url) == INITIAL


def test_offline_sql_needs_no_database(monkeypatch):
    monkeypatch.setenv("DATABASE_URL", "postgresql://nobody:pw@127.0.0.1:1/none")
    script = migrations.sql(None, INITIAL)
    assert "CREATE TABLE projects" in script and "CREATE TABLE extraction_jobs" in script
    assert "SET lock_timeout = '5s'" in script
    assert f"INSERT INTO alembic_version (version_num) VALUES ('{INITIAL}')" in script
    down = migrations.sql(INITIAL, "base")
    assert "DROP TABLE extraction_jobs" in down and "DROP TABLE projects" in down


def test_concurrent_upgrades_from_threads_apply_once(db_url):
    migrations.downgrade("base", url=db_url)
    results, errors = [], []

    def run():
        try:
            results.append(migrations.upgrade(url=db_url))
        except MigrationError as exc:
            errors.append(str(exc))

    threads = [threading.Thread(target=run) for _ in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert results and all(r == HEAD for r in results)
    assert all("another migration is running" in e for e in errors)
    assert migrations.current(url=db_url) == HEAD


def test_a_failed_multi_revision_run_stops_at_the_last_revision_that_succeeded(db_url, tmp_path):
    migrations.upgrade(url=db_url)
    downgrade_to_base_while_reading(db_url, "job_action_audit", tmp_path)  # blocks only the audit table's revision
    at = migrations.current(url=db_url)
    revisions = migrations.history(url=db_url)["revision"].tolist()
    assert at == revisions[1]  # the audit table's revision, still applied
    assert migrations.pending(url=db_url)["revision"].tolist() == revisions[2:]
    assert migrations.upgrade(url=db_url) == migrations.heads()[0]
    assert migrations.check(url=db_url) == []


def test_migrations_refuse_a_pooler_host_before_connecting():
    url = "postgresql://neondb_owner:Sup3rS3cret@ep-cool-darkness-123456-pooler.us-east-2.aws.neon.tech/neondb?sslmode=require"
    with pytest.raises(MigrationError, match="connection pooler") as caught:
        migrations.upgrade(url=url)
    assert "Sup3rS3cret" not in str(caught.value) and "remove '-pooler'" in str(caught.value)


UPDATED_AT = "c0db8df4a585"  # extraction_jobs.updated_at
ABOVE_UPDATED_AT = "a41f008744a3"  # the monitoring history tables: no lock on extraction_jobs


def _scalar(url, sql: str, **params):
    engine = create_engine(url, poolclass=NullPool)
    try:
        with engine.begin() as conn:
            result = conn.execute(text(sql), params)
            return result.scalar() if result.returns_rows else None
    finally:
        engine.dispose()


def test_updated_at_is_added_without_a_rewrite_backfilled_from_the_job_state_and_kept_by_a_trigger(db_url):
    migrations.downgrade("base", url=db_url)
    migrations.upgrade("3ca76145171f", url=db_url)
    _scalar(db_url, "INSERT INTO projects (name) VALUES ('Brand refresh') RETURNING id")
    _scalar(  # more rows than one backfill batch; every other job finished 30 s after it was created
        db_url,
        "INSERT INTO extraction_jobs (project_id, source_url, extraction_type, status, created_at, completed_at)"
        " SELECT 1, 'https://cdn.example.com/' || i || '.png', 'color', CASE WHEN i % 2 = 0 THEN 'completed' ELSE 'pending' END,"
        " TIMESTAMP '2026-01-01' + make_interval(secs => i), CASE WHEN i % 2 = 0 THEN TIMESTAMP '2026-01-01' + make_interval(secs => i + 30) END"
        " FROM generate_series(1, 25000) AS i",
    )
    table_file = "SELECT pg_relation_filenode('extraction_jobs')"
    before = _scalar(db_url, table_file)
    assert migrations.upgrade(UPDATED_AT, url=db_url) == UPDATED_AT
    assert _scalar(db_url, table_file) == before  # no table rewrite
    assert _scalar(db_url, "SELECT count(*) FROM extraction_jobs WHERE updated_at IS NULL") == 0
    assert _scalar(db_url, "SELECT count(*) FROM extraction_jobs WHERE updated_at <> CAST(coalesce(completed_at, created_at) AS timestamptz)") == 0
    assert ("extraction_jobs", "updated_at", "timestamp with time zone", True, "now()") in schema(db_url)
    later = ("ix_extraction_jobs_unfinished", "ix_extraction_jobs_created_at", "ix_extraction_jobs_failure_reason")  # 9e4b2c7d1f60's
    assert [line for line in migrations.check(url=db_url) if "extraction_jobs" in line and not line.startswith(tuple(f"index {i} " for i in later))] == []  # later revisions add other tables
    # New rows get now(); a change of state sets now(); other writes leave it alone.
    assert _scalar(db_url, "INSERT INTO extraction_jobs (project_id, source_url, extraction_type) VALUES (1, 'x', 'color') RETURNING updated_at = now()")
    assert _scalar(db_url, "UPDATE extraction_jobs SET status = 'processing' WHERE id = 1 RETURNING updated_at = now()")
    assert _scalar(db_url, "UPDATE extraction_jobs SET error_message = 'boom', status = 'failed' WHERE id = 2 RETURNING updated_at = now()")
    assert _scalar(db_url, "UPDATE extraction_jobs SET source_url = 'y' WHERE id = 3 RETURNING updated_at = TIMESTAMP '2026-01-01 00:00:03'")
    assert migrations.downgrade("3ca76145171f", url=db_url) == "3ca76145171f"
    assert "updated_at" not in migrations.schema_columns(url=db_url).query("table_name == 'extraction_jobs'")["column_name"].tolist()
    assert _scalar(db_url, "SELECT count(*) FROM pg_trigger WHERE tgname = 'extraction_jobs_set_updated_at'") == 0
    assert _scalar(db_url, "SELECT to_regproc('extraction_jobs_set_updated_at')") is None
    assert migrations.upgrade(url=db_url) == HEAD


def test_the_updated_at_revision_offline_commits_each_backfill_batch_outside_a_transaction():
    script = migrations.sql("3ca76145171f", UPDATED_AT)
    add = script.index("ADD COLUMN IF NOT EXISTS")
    assert "DEFAULT now()" not in script[add : script.index(";", add)]  # default set apart: no rewrite, old rows backfilled
    assert script.index("SET DEFAULT now()") < script.index("CREATE TRIGGER") < script.index("COMMIT;") < script.index("DO $$\nDECLARE")
    assert "SET lock_timeout = '5s'" in script


# ---- plans: each target resolved before anything changes ----

REVISIONS = migrations.history()["revision"].tolist()  # oldest first


def cli(*args: str, url) -> subprocess.CompletedProcess:
    env = {**os.environ, "DATABASE_URL": url.render_as_string(hide_password=False)}
    return subprocess.run([str(Path(sys.executable).parent / "copythat-ops"), *args], env=env, capture_output=True, text=True, timeout=300)


def test_downgrade_dry_run_names_where_it_lands_and_each_revision_it_reverts(db_url):
    migrations.upgrade(url=db_url)
    described = migrations.history(url=db_url).set_index("revision")["description"]
    one = cli("migrate", "downgrade", "-1", url=db_url)
    assert one.returncode == 0, one.stderr
    assert f"Would downgrade from {HEAD} to {REVISIONS[-2]}, reverting 1 revision (newest first):" in one.stdout
    assert f"{HEAD}  {described[HEAD]}" in one.stdout and "to -1" not in one.stdout
    two = cli("migrate", "downgrade", "-2", url=db_url).stdout
    assert f"to {REVISIONS[-3]}, reverting 2 revisions" in two and two.index(REVISIONS[-1]) < two.index(REVISIONS[-2])
    by_prefix = cli("migrate", "downgrade", INITIAL[:6], url=db_url).stdout
    assert f"to {INITIAL}, reverting {len(REVISIONS) - 1} revisions" in by_prefix and all(r in by_prefix for r in REVISIONS[1:])
    base = cli("migrate", "downgrade", "base", url=db_url).stdout
    assert f"to base (no revision applied), reverting {len(REVISIONS)} revisions" in base and "--yes to apply" in base
    assert migrations.current(url=db_url) == HEAD  # dry runs all


def test_downgrade_refuses_what_cannot_be_done_with_exit_2_and_changes_nothing(db_url):
    migrations.upgrade(url=db_url)
    for target, message, fix in [
        ("deadbeef0000", "no migration revision 'deadbeef0000'", "use head, base, a relative step"),
        (f"-{len(REVISIONS) + 1}", f"downgrade -{len(REVISIONS) + 1} goes past base", f"downgrade -{len(REVISIONS)}"),
        ("+1", "downgrade +1 goes past head", "upgrade to head"),
    ]:
        result = cli("migrate", "downgrade", target, url=db_url)
        assert result.returncode == 2 and message in result.stderr and fix in result.stderr, (target, result.stderr)
        assert "Would downgrade" not in result.stdout and "Traceback" not in result.stderr
        assert cli("migrate", "downgrade", target, "--yes", url=db_url).returncode == 2
    assert migrations.current(url=db_url) == HEAD
    migrations.downgrade(REVISIONS[-2], url=db_url)
    ahead = cli("migrate", "downgrade", HEAD, "--yes", url=db_url)
    assert ahead.returncode == 2 and f"{HEAD} is ahead of the database" in ahead.stderr
    assert f"Fix: to apply it, run `copythat-ops migrate upgrade {HEAD}`" in ahead.stderr
    assert migrations.current(url=db_url) == REVISIONS[-2]


def test_downgrade_to_where_the_database_is_has_nothing_to_do(db_url):
    migrations.upgrade(url=db_url)
    same = cli("migrate", "downgrade", HEAD[:8], "--yes", url=db_url)
    assert same.returncode == 0 and f"Nothing to do: the database is already at {HEAD}." in same.stdout
    migrations.downgrade("base", url=db_url)
    assert "Nothing to do: the database is already at base" in cli("migrate", "downgrade", "base", url=db_url).stdout
    below = cli("migrate", "downgrade", "-1", url=db_url)
    assert below.returncode == 2 and "goes past base" in below.stderr and "nothing is applied" in below.stderr


def test_downgrade_with_yes_reverts_exactly_the_revisions_it_names(db_url):
    migrations.upgrade(url=db_url)
    result = cli("migrate", "downgrade", "-2", "--yes", url=db_url)
    assert result.returncode == 0, result.stderr
    assert f"Downgrading from {HEAD} to {REVISIONS[-3]}, reverting 2 revisions" in result.stderr
    assert result.stdout.strip() == f"now at {REVISIONS[-3]}"
    assert migrations.current(url=db_url) == REVISIONS[-3]


def test_upgrade_to_an_older_revision_or_past_head_says_what_to_run(db_url):
    migrations.upgrade(url=db_url)
    older = cli("migrate", "upgrade", INITIAL, "--yes", url=db_url)
    assert older.returncode == 2 and f"upgrade {INITIAL} would go back" in older.stderr
    assert f"copythat-ops migrate downgrade {INITIAL}" in older.stderr and "Applying" not in older.stderr
    past = cli("migrate", "upgrade", "+2", "--yes", url=db_url)
    assert past.returncode == 2 and f"upgrade +2 goes past head: the database is at {HEAD}, head is {HEAD}" in past.stderr
    assert "upgrade to head" in past.stderr
    with pytest.raises(MigrationError, match="would go back.*Fix: to revert to it"):
        migrations.upgrade(REVISIONS[-2], url=db_url)
    assert migrations.current(url=db_url) == HEAD
    migrations.downgrade("base", url=db_url)
    assert migrations.upgrade("+1", url=db_url) == INITIAL
    assert migrations.upgrade_plan("head+0", url=db_url).steps == tuple(
        (r, d) for r, d in migrations.history(url=db_url)[["revision", "description"]].itertuples(index=False) if r != INITIAL
    )


def test_check_on_a_database_behind_says_to_upgrade_and_lists_differences_readably(db_url):
    migrations.downgrade("base", url=db_url)
    migrations.upgrade("3ca76145171f", url=db_url)  # before extraction_jobs.updated_at
    result = cli("migrate", "check", url=db_url)
    assert result.returncode == 2
    assert "the database is behind: it is at 3ca76145171f and head is " + HEAD in result.stderr
    assert "Fix: run `copythat-ops migrate upgrade`" in result.stderr and "write a migration" not in result.stderr
    assert "column extraction_jobs.updated_at (TIMESTAMP WITH TIME ZONE, NULL allowed, default now()): in the models, not in the database" in result.stdout
    assert "Column(" not in result.stdout and "('add_" not in result.stdout
    migrations.upgrade(url=db_url)
    assert cli("migrate", "check", url=db_url).stdout.strip() == "models and database agree"


def test_check_at_head_with_a_real_difference_says_to_write_a_migration(db_url):
    migrations.upgrade(url=db_url)
    engine = create_engine(db_url, poolclass=NullPool)
    with engine.begin() as conn:  # a hand-made change the models do not have
        conn.execute(text("ALTER TABLE projects ADD COLUMN archived boolean NOT NULL DEFAULT false"))
        conn.execute(text("ALTER TABLE projects ALTER COLUMN description SET NOT NULL"))
        conn.execute(text("CREATE INDEX ix_projects_name ON projects (name)"))
    try:
        status = migrations.schema_status(url=db_url)
        assert not status["ok"] and status["pending"] == []
        assert sorted(status["differences"]) == [
            "column projects.archived (BOOLEAN, NOT NULL, default false): in the database, not in the models",
            "column projects.description nullable: NOT NULL in the database, NULL allowed in the models",
            "index ix_projects_name on projects (name): in the database, not in the models",
        ]
        result = cli("--format", "json", "migrate", "check", url=db_url)
        assert result.returncode == 2 and json.loads(result.stdout) == status["differences"]
        assert f"the database is at head ({HEAD}) but the models differ from it in 3 place(s)" in result.stderr
        assert "Fix: write a migration" in result.stderr and "migrate upgrade`" in result.stderr
    finally:
        with engine.begin() as conn:
            conn.execute(text("DROP INDEX ix_projects_name"))
            conn.execute(text("ALTER TABLE projects DROP COLUMN archived, ALTER COLUMN description DROP NOT NULL"))
        engine.dispose()


def test_a_downgrade_whose_session_is_killed_says_where_the_database_is_and_to_run_the_same_downgrade_again(db_url, tmp_path):
    migrations.upgrade(url=db_url)
    migrations.downgrade(ABOVE_UPDATED_AT, url=db_url)  # the revisions above it also wait for the reader below (policies, foreign keys on extraction_jobs)
    ini = tmp_path / "alembic.ini"
    ini.write_text((ROOT / "alembic.ini").read_text().replace("lock_timeout = 5s", "lock_timeout = 120s").replace("%(here)s", str(ROOT)))
    env = {**os.environ, "DATABASE_URL": db_url.render_as_string(hide_password=False), migrations.INI_VAR: str(ini)}
    engine = create_engine(db_url, poolclass=NullPool, isolation_level="AUTOCOMMIT")
    reverting = migrations.downgrade_plan(INITIAL, url=db_url).steps
    blocked = next(i for i, (rev, _) in enumerate(reverting) if rev == UPDATED_AT)  # its DROP TRIGGER waits for the reader below
    with engine.connect() as reader, engine.connect() as watcher:
        reader.execute(text("BEGIN"))
        reader.execute(text("SELECT count(*) FROM extraction_jobs"))  # holds ACCESS SHARE
        process = subprocess.Popen(
            [str(Path(sys.executable).parent / "copythat-ops"), "migrate", "downgrade", INITIAL, "--yes"],
            env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        )
        waiting = text("SELECT pid FROM pg_stat_activity WHERE query LIKE 'DROP TRIGGER%' AND wait_event_type = 'Lock'")
        pid = None
        while pid is None and process.poll() is None:
            pid = watcher.execute(waiting).scalar()
            time.sleep(0.05)
        assert pid is not None, process.communicate()
        watcher.execute(text("SELECT pg_terminate_backend(:pid)"), {"pid": pid})
        _, err = process.communicate(timeout=120)
        reader.execute(text("ROLLBACK"))
    engine.dispose()
    assert process.returncode == 2 and "Traceback" not in err and "Error:" not in err
    at = UPDATED_AT  # the revisions above it reverted, its own downgrade rolled back
    assert f"while revision {UPDATED_AT} ({reverting[blocked][1]}) was running" in err
    assert f"the database is now at {at}" in err and "it left nothing half-built" in err
    assert f"Fix: run `copythat-ops migrate downgrade {INITIAL}` again" in err
    assert migrations.current(url=db_url) == at
    assert migrations.downgrade(INITIAL, url=db_url) == INITIAL
    assert migrations.upgrade(url=db_url) == HEAD
