"""The indexes and foreign key revision on a live table: orphans refused up front, invalid leftovers rebuilt,
lock_timeout kept in autocommit mode, re-runnable after a failure, and offline SQL that works as written."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from contextlib import contextmanager
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.exc import DBAPIError, IntegrityError
from sqlalchemy.pool import NullPool

from copythat_ops import embedded, migrations
from copythat_ops.engine import dispose_engines
from copythat_ops.errors import MigrationError

ROOT = Path(__file__).resolve().parents[1]
PREVIOUS = "2e88296926d0"
REVISION = "3ca76145171f"
INDEXES = {
    "ix_extraction_jobs_project_id": "CREATE INDEX ix_extraction_jobs_project_id ON public.extraction_jobs USING btree (project_id)",
    "ix_extraction_jobs_status_created_at": (
        "CREATE INDEX ix_extraction_jobs_status_created_at ON public.extraction_jobs USING btree (status, created_at)"
    ),
}
FOREIGN_KEY = ("extraction_jobs_project_id_fkey", "FOREIGN KEY (project_id) REFERENCES projects(id)", True)


@pytest.fixture
def engine(db_url):
    """The module's database at the revision before this one, with two projects and jobs of project 1."""
    migrations.downgrade("base", url=db_url)  # also clears what a failed test left
    migrations.upgrade(PREVIOUS, url=db_url)
    engine = create_engine(db_url, poolclass=NullPool, isolation_level="AUTOCOMMIT")
    with engine.connect() as conn:
        conn.execute(text("INSERT INTO projects (name) VALUES ('Brand refresh'), ('Docs site')"))
        conn.execute(text(_jobs([1, 1, 2])))
    yield engine
    engine.dispose()


@pytest.fixture
def lock_timeout(tmp_path, monkeypatch):
    """Run migrations with another lock_timeout in alembic.ini."""

    def use(value: str) -> None:
        ini = tmp_path / "alembic.ini"
        source = (ROOT / "alembic.ini").read_text().replace("%(here)s", str(ROOT))
        ini.write_text(source.replace("lock_timeout = 5s", f"lock_timeout = {value}"))
        monkeypatch.setenv(migrations.INI_VAR, str(ini))

    return use


def _jobs(project_ids: list[int]) -> str:
    rows = ", ".join(f"({p}, 'https://cdn.example.com/{i}.png', 'color')" for i, p in enumerate(project_ids))
    return f"INSERT INTO extraction_jobs (project_id, source_url, extraction_type) VALUES {rows}"


def catalog(engine) -> tuple[dict, list]:
    """The revision's indexes (name -> definition, valid ones only; None when invalid) and foreign keys."""
    with engine.connect() as conn:
        indexes = conn.execute(
            text(
                "SELECT c.relname, CASE WHEN i.indisvalid THEN pg_get_indexdef(i.indexrelid) END"
                " FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid"
                " WHERE i.indrelid = 'extraction_jobs'::regclass AND NOT i.indisprimary ORDER BY 1"
            )
        ).all()
        keys = conn.execute(
            text(
                "SELECT conname, pg_get_constraintdef(oid), convalidated FROM pg_constraint"
                " WHERE conrelid = 'extraction_jobs'::regclass AND contype = 'f' ORDER BY 1"
            )
        ).all()
    return dict(indexes), [tuple(k) for k in keys]


def test_upgrade_adds_the_indexes_and_a_validated_foreign_key(engine, db_url):
    assert migrations.upgrade(REVISION, url=db_url) == REVISION
    assert catalog(engine) == (INDEXES, [FOREIGN_KEY])
    migrations.upgrade(url=db_url)  # the later revisions add columns the models have
    assert migrations.check(url=db_url) == []
    with pytest.raises(IntegrityError, match="extraction_jobs_project_id_fkey"), engine.connect() as conn:
        conn.execute(text(_jobs([99])))


def test_downgrade_removes_them_and_upgrade_adds_them_again(engine, db_url):
    migrations.upgrade(REVISION, url=db_url)
    assert migrations.downgrade(PREVIOUS, url=db_url) == PREVIOUS
    assert catalog(engine) == ({}, [])
    assert migrations.upgrade(REVISION, url=db_url) == REVISION
    assert catalog(engine) == (INDEXES, [FOREIGN_KEY])


def test_orphaned_project_ids_stop_it_before_anything_changes_and_a_rerun_after_the_fix_works(engine, db_url):
    with engine.connect() as conn:
        conn.execute(text(_jobs([7, 7, 9])))
    with pytest.raises(MigrationError) as failure:
        migrations.upgrade(REVISION, url=db_url)
    message = str(failure.value)
    assert "3 job(s) name 2 project id(s) that do not exist: 7 (2 jobs), 9 (1 jobs); nothing was changed" in message
    assert "Fix: delete those jobs or reassign them" in message and "create the missing projects" in message
    assert migrations.current(url=db_url) == PREVIOUS
    assert catalog(engine) == ({}, [])
    with engine.connect() as conn:  # still usable, and the fix is plain SQL
        conn.execute(text("DELETE FROM extraction_jobs WHERE project_id = 9"))
        conn.execute(text("INSERT INTO projects (id, name) VALUES (7, 'Restored project')"))
    assert migrations.upgrade(REVISION, url=db_url) == REVISION
    assert catalog(engine) == (INDEXES, [FOREIGN_KEY])


def test_many_orphans_are_counted_and_the_first_ones_named(engine, db_url):
    with engine.connect() as conn:
        conn.execute(text(_jobs(list(range(100, 130)))))
    with pytest.raises(MigrationError, match=r"30 job\(s\) name 30 project id\(s\).*: 100 \(1 jobs\), .*119 \(1 jobs\) and 10 more"):
        migrations.upgrade(REVISION, url=db_url)
    assert migrations.current(url=db_url) == PREVIOUS


def test_an_invalid_index_left_by_a_failed_build_is_dropped_and_built_again(engine, db_url):
    with pytest.raises(IntegrityError), engine.connect() as conn:  # project 1 has two jobs: the unique build fails
        conn.execute(text("CREATE UNIQUE INDEX CONCURRENTLY ix_extraction_jobs_project_id ON extraction_jobs (project_id)"))
    assert catalog(engine)[0] == {"ix_extraction_jobs_project_id": None}
    assert migrations.upgrade(REVISION, url=db_url) == REVISION
    assert catalog(engine) == (INDEXES, [FOREIGN_KEY])


def test_a_run_that_stopped_half_way_completes_when_run_again(engine, db_url):
    with engine.connect() as conn:  # what a run cut short after its first steps leaves behind
        conn.execute(text("ALTER TABLE extraction_jobs ADD CONSTRAINT extraction_jobs_project_id_fkey FOREIGN KEY (project_id) REFERENCES projects (id) NOT VALID"))
        conn.execute(text("CREATE INDEX ix_extraction_jobs_status_created_at ON extraction_jobs (status, created_at)"))
    assert migrations.upgrade(REVISION, url=db_url) == REVISION
    assert catalog(engine) == (INDEXES, [FOREIGN_KEY])


def test_lock_timeout_holds_in_the_autocommit_steps(engine, db_url, lock_timeout):
    lock_timeout("300ms")
    with engine.connect() as holder:
        holder.execute(text("BEGIN"))
        holder.execute(text("LOCK TABLE extraction_jobs IN SHARE UPDATE EXCLUSIVE MODE"))  # as a long VACUUM or index build would
        with pytest.raises(MigrationError, match="lock timeout"):
            migrations.upgrade(REVISION, url=db_url)
        holder.execute(text("ROLLBACK"))
    assert migrations.current(url=db_url) == PREVIOUS
    assert catalog(engine) == ({}, [])
    assert migrations.upgrade(REVISION, url=db_url) == REVISION


def test_an_orphan_written_after_the_check_is_caught_and_nothing_is_left_behind(engine, db_url, lock_timeout):
    lock_timeout("60s")
    errors = []

    def upgrade():
        try:
            migrations.upgrade(REVISION, url=db_url)
        except MigrationError as exc:
            errors.append(str(exc))

    with engine.connect() as writer:
        writer.execute(text("BEGIN"))
        writer.execute(text("LOCK TABLE extraction_jobs IN SHARE ROW EXCLUSIVE MODE"))  # holds the migration at ADD CONSTRAINT
        migrator = threading.Thread(target=upgrade)
        migrator.start()
        waiting = text("SELECT count(*) FROM pg_locks WHERE relation = 'extraction_jobs'::regclass AND NOT granted")
        while not writer.execute(waiting).scalar() and migrator.is_alive():
            time.sleep(0.05)
        held = "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND granted AND (classid::bigint << 32) + objid::bigint = :k"
        assert writer.execute(text(held), {"k": migrations.MIGRATION_LOCK_KEY}).scalar() == 1  # kept in autocommit mode
        writer.execute(text(_jobs([4242])))  # the orphan check has passed; this job names no project
        writer.execute(text("COMMIT"))
        migrator.join()
    assert len(errors) == 1 and "1 job(s) name 1 project id(s) that do not exist: 4242 (1 jobs)" in errors[0]
    assert migrations.current(url=db_url) == PREVIOUS
    assert catalog(engine) == ({}, [])


def _run_script(engine, script: str) -> None:
    with engine.connect() as conn:
        for statement in script.split(";\n\n"):
            if statement.strip():
                conn.execute(text(statement.replace(":", r"\:")))


def test_offline_sql_is_the_safe_form_and_runs_as_written(engine, db_url, monkeypatch):
    monkeypatch.setenv("DATABASE_URL", "postgresql://nobody:pw@127.0.0.1:1/none")
    up = migrations.sql(PREVIOUS, REVISION)
    assert "SET lock_timeout = '5s'" in up
    assert up.index("COMMIT;") < up.index("ADD CONSTRAINT") < up.index("NOT VALID;") < up.index("VALIDATE CONSTRAINT")
    assert up.count("CREATE INDEX CONCURRENTLY IF NOT EXISTS") == 2
    down = migrations.sql(REVISION, PREVIOUS)
    assert "DROP CONSTRAINT IF EXISTS" in down and down.count("DROP INDEX CONCURRENTLY IF EXISTS") == 2
    monkeypatch.undo()

    with engine.connect() as conn:
        conn.execute(text(_jobs([8])))
    with pytest.raises(DBAPIError, match="extraction_jobs has project ids with no project: 8 \\(1 jobs\\)"):
        _run_script(engine, up)
    with engine.connect() as conn:
        conn.execute(text("DELETE FROM extraction_jobs WHERE project_id = 8"))
    _run_script(engine, up)
    assert migrations.current(url=db_url) == REVISION
    assert catalog(engine) == (INDEXES, [FOREIGN_KEY])
    _run_script(engine, down)
    assert migrations.current(url=db_url) == PREVIOUS
    assert catalog(engine) == ({}, [])


# ---- the server going away in the middle of the index build ----

CLI = str(Path(sys.executable).parent / "copythat-ops")


def _cli(*args: str, url, ini: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "DATABASE_URL": url.render_as_string(hide_password=False), migrations.INI_VAR: str(ini)}
    return subprocess.run([CLI, *args], env=env, capture_output=True, text=True, timeout=300)


def _ini(tmp_path: Path) -> Path:
    """alembic.ini with a long lock_timeout, so the index build waits on the held snapshot instead of timing out."""
    ini = tmp_path / "alembic.ini"
    source = (ROOT / "alembic.ini").read_text().replace("%(here)s", str(ROOT))
    ini.write_text(source.replace("lock_timeout = 5s", "lock_timeout = 120s"))
    return ini


@contextmanager
def _index_build_waiting(url, ini: Path):
    """Start `migrate upgrade` through the CLI with a snapshot held open, so CREATE INDEX CONCURRENTLY waits for it.

    Yields (the CLI process, the holding connection, the pid of the migrating backend) once the build waits.
    """
    engine = create_engine(url, poolclass=NullPool, isolation_level="AUTOCOMMIT")
    holder = engine.connect()
    holder.execute(text("BEGIN ISOLATION LEVEL REPEATABLE READ"))
    holder.execute(text("SELECT count(*) FROM pg_class"))  # an old snapshot the build must wait out
    env = {**os.environ, "DATABASE_URL": url.render_as_string(hide_password=False), migrations.INI_VAR: str(ini)}
    process = subprocess.Popen([CLI, "migrate", "upgrade"], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        waiting = text(
            "SELECT pid FROM pg_stat_activity WHERE query LIKE 'CREATE INDEX CONCURRENTLY%' AND wait_event_type = 'Lock'"
        )
        pid = None
        with engine.connect() as watcher:  # a session of its own: activity is read once per transaction
            while pid is None and process.poll() is None:
                pid = watcher.execute(waiting).scalar()
                time.sleep(0.05)
        assert pid is not None, process.communicate()
        yield process, holder, pid
    finally:
        if process.poll() is None:
            process.kill()
        process.wait()
        try:
            holder.close()
        except DBAPIError:
            pass
        engine.dispose()


def _invalid_indexes(url) -> list[str]:
    engine = create_engine(url, poolclass=NullPool)
    with engine.connect() as conn:
        names = conn.execute(text("SELECT indexrelid::regclass::text FROM pg_index WHERE NOT indisvalid ORDER BY 1")).scalars().all()
    engine.dispose()
    return names


@pytest.fixture
def own_server():
    """A throwaway embedded server of this test's own, to shut down at will, its database at the revision before this one.

    Its folder is made as the test session's server's is (not under pytest's tmp_path, whose
    permissions other pytest runs reset while the server's own user reads it).
    """
    data = Path(tempfile.mkdtemp(prefix="copythat-test-")) / "pgdata"
    url = embedded.start(data)
    migrations.upgrade(PREVIOUS, url=url)
    engine = create_engine(url, poolclass=NullPool, isolation_level="AUTOCOMMIT")
    with engine.connect() as conn:
        conn.execute(text("INSERT INTO projects (name) VALUES ('Brand refresh'), ('Docs site')"))
        conn.execute(text(_jobs([1, 1, 2])))
    engine.dispose()
    yield data, url
    dispose_engines()
    embedded.stop(data)
    shutil.rmtree(data.parent, ignore_errors=True)


def test_the_server_shut_down_during_the_index_build_is_explained_and_a_rerun_recovers(own_server, tmp_path):
    data, url = own_server
    ini = _ini(tmp_path)
    with _index_build_waiting(url, ini) as (process, _, _):
        embedded._package().pg_ctl(["-w", "-m", "immediate", "stop"], pgdata=data, user=embedded._system_user())
        out, err = process.communicate(timeout=120)
    assert process.returncode == 2, err
    assert "Error" not in err.replace("error:", "") and "Traceback" not in err  # no exception names
    assert f"while revision {REVISION} (Extraction job indexes and project foreign key) was running" in err
    assert f"the server is unreachable; the database was at {PREVIOUS} before this run" in err
    assert "may have left an invalid index ix_extraction_jobs_status_created_at" in err
    assert "Fix: when the server is back" in err and "run `copythat-ops migrate upgrade` again" in err

    dispose_engines()
    url = embedded.start(data)  # the server back, after crash recovery
    assert migrations.current(url=url) == PREVIOUS
    assert _invalid_indexes(url) == ["ix_extraction_jobs_status_created_at"]
    again = _cli("migrate", "upgrade", url=url, ini=ini)
    assert again.returncode == 0, again.stderr
    assert migrations.current(url=url) == migrations.heads()[0]
    assert _invalid_indexes(url) == []


def test_the_migrating_session_killed_during_the_index_build_names_where_the_database_is_and_the_invalid_index(engine, db_url, tmp_path):
    ini = _ini(tmp_path)
    with _index_build_waiting(db_url, ini) as (process, holder, pid):
        holder.execute(text("SELECT pg_terminate_backend(:pid)"), {"pid": pid})
        holder.execute(text("ROLLBACK"))
        out, err = process.communicate(timeout=120)
    assert process.returncode == 2, err
    assert "Traceback" not in err and "PendingRollbackError" not in err and "OperationalError" not in err
    assert f"while revision {REVISION} (Extraction job indexes and project foreign key) was running" in err
    assert f"the database is now at {PREVIOUS}" in err
    assert "it left an invalid index ix_extraction_jobs_status_created_at" in err
    assert "run `copythat-ops migrate upgrade` again" in err
    again = _cli("migrate", "upgrade", url=db_url, ini=ini)
    assert again.returncode == 0, again.stderr
    assert migrations.current(url=db_url) == migrations.heads()[0]
    assert _invalid_indexes(db_url) == []
