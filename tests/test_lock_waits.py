"""Nothing waits forever on a lock: with extraction_jobs ACCESS EXCLUSIVE locked by another session,
the reads, the bulk read, the job actions, the seed and the CLI give up within a few seconds and
name the holder's pid, what it is doing and how to end it.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import psycopg2
import pytest
from sqlalchemy import text

from copythat_ops import jobs, migrations, requeue_jobs
from copythat_ops.engine import LockWaitError, get_engine, run_query
from copythat_ops.seed import seed_database

CLI = str(Path(sys.executable).parent / "copythat-ops")
GIVE_UP = 10  # seconds: the 3s lock timeout, plus starting a process and naming the holder


@pytest.fixture(scope="module")
def engine(db_url):
    migrations.upgrade(url=db_url)
    engine = get_engine(db_url)
    seed_database(300, 5, seed=1, window="2 days", engine=engine)
    return engine


@contextmanager
def locked(db_url, table: str = "extraction_jobs", mode: str = "ACCESS EXCLUSIVE") -> Iterator[int]:
    """Another session holds `table` in `mode` in an open transaction; yields its pid."""
    holder = psycopg2.connect(db_url.render_as_string(hide_password=False).replace("+psycopg2", ""), application_name="ct-lock-holder")
    try:
        with holder.cursor() as cur:
            cur.execute("BEGIN")
            cur.execute(f"LOCK TABLE {table} IN {mode} MODE")
        yield holder.info.backend_pid
    finally:
        holder.close()


def gives_up(call, pid: int, *, within: float = GIVE_UP, mode: str = "AccessExclusiveLock") -> LockWaitError:
    started = time.monotonic()
    with pytest.raises(LockWaitError) as caught:
        call()
    assert time.monotonic() - started < within
    message = str(caught.value)
    assert f"pid {pid} holds {mode} on extraction_jobs" in message, message
    assert "LOCK TABLE extraction_jobs" in message and "idle in transaction" in message and "query started" in message
    assert "copythat-ops monitor activity locks" in message and f"pg_terminate_backend({pid})" in message
    assert message.count("Fix:") == 1
    assert caught.value.pids == [pid]
    return caught.value


def test_job_summary_gives_up_and_names_the_holder(engine, db_url):
    with locked(db_url) as pid:
        gives_up(lambda: jobs.job_summary(since="2 days", engine=engine), pid)  # a window reads the table
        # without one it reads the rollups (revision 9e4b2c7d1f60), which the lock on the table does not hold up
        assert int(jobs.job_summary(engine=engine)["jobs"].sum()) == 300


def test_every_read_gives_up(engine, db_url):
    with locked(db_url) as pid:
        gives_up(lambda: jobs.stuck_jobs(engine=engine), pid)
        gives_up(lambda: jobs.failure_reasons(engine=engine), pid)
        gives_up(lambda: jobs.jobs_frame(engine=engine), pid)
        gives_up(lambda: next(jobs.iter_jobs_frames(engine=engine, progress=False)), pid)
        gives_up(lambda: run_query("SELECT count(*) FROM extraction_jobs", name="t", engine=engine), pid)


def test_the_lock_timeout_is_a_parameter(engine, db_url):
    with locked(db_url) as pid:
        started = time.monotonic()
        with pytest.raises(LockWaitError):
            run_query("SELECT count(*) FROM extraction_jobs", name="t", engine=engine, lock_timeout="200ms")
        assert time.monotonic() - started < 2
        with pytest.raises(LockWaitError, match="200ms"):
            jobs.jobs_frame(engine=engine, lock_timeout="200ms")
    assert pid


def test_a_read_of_another_table_is_not_held_up(engine, db_url):
    with locked(db_url):
        assert int(run_query("SELECT count(*) AS n FROM projects", name="t", engine=engine)["n"][0]) == 5


def test_writes_give_up_too(engine, db_url):
    with engine.begin() as conn:
        conn.execute(text("UPDATE extraction_jobs SET error_message = 'Timeout after 30s' WHERE id IN (SELECT id FROM extraction_jobs WHERE status = 'failed' LIMIT 2)"))
    with locked(db_url) as pid:
        # the dry run reads the candidates, the applied action then locks rows: both give up
        gives_up(lambda: requeue_jobs(error_like="timeout", engine=engine), pid)
        gives_up(lambda: seed_database(10, 1, engine=engine), pid)
    with locked(db_url, mode="EXCLUSIVE") as pid:  # reads pass; locking the rows (FOR UPDATE) waits
        assert len(requeue_jobs(error_like="timeout", engine=engine).changes()) >= 2
        gives_up(lambda: requeue_jobs(error_like="timeout", engine=engine, apply=True), pid, mode="ExclusiveLock")


def test_cli_jobs_summary_gives_up(engine, db_url, tmp_path):
    env = {k: v for k, v in os.environ.items() if k != "DATABASE_URL"} | {"DATABASE_URL": db_url.render_as_string(hide_password=False)}
    with locked(db_url) as pid:
        started = time.monotonic()
        result = subprocess.run([CLI, "jobs", "summary", "--since", "2d"], env=env, cwd=tmp_path, capture_output=True, text=True, timeout=60)
        took = time.monotonic() - started
    assert result.returncode == 1 and took < GIVE_UP, (took, result.stderr)
    line = result.stderr.strip().splitlines()[-1]
    assert line.startswith("error: gave up after waiting 3s for a lock on extraction_jobs") and f"pid {pid} holds" in line, line
    assert "`copythat-ops monitor activity locks`" in line and line.count("Fix:") == 1
    assert "job_summary" not in line


def test_a_lock_queued_behind_a_reader_is_named_with_whom_it_waits_for(engine, db_url):
    import threading

    with locked(db_url, mode="ACCESS SHARE") as reader:  # a long read: harmless alone
        queued = psycopg2.connect(db_url.render_as_string(hide_password=False).replace("+psycopg2", ""), application_name="ct-migration")
        pid = queued.info.backend_pid
        waiting = threading.Thread(target=lambda: _lock_quietly(queued), daemon=True)
        waiting.start()  # queues for ACCESS EXCLUSIVE behind the reader: every new read now waits behind it
        try:
            deadline = time.monotonic() + 10
            while time.monotonic() < deadline and not run_query(
                "SELECT 1 FROM pg_locks WHERE pid = :pid AND NOT granted", {"pid": pid}, name="t", engine=engine
            ).size:
                time.sleep(0.05)
            with pytest.raises(LockWaitError) as caught:
                jobs.job_summary(since="2 days", engine=engine)
            message = str(caught.value)
            assert f"pid {pid} queues for AccessExclusiveLock on extraction_jobs" in message and f"it waits itself for pid {reader}" in message, message
        finally:
            queued.cancel()
            waiting.join(10)
            queued.close()


def _lock_quietly(conn) -> None:
    try:
        with conn.cursor() as cur:
            cur.execute("BEGIN")
            cur.execute("LOCK TABLE extraction_jobs IN ACCESS EXCLUSIVE MODE")
    except psycopg2.Error:
        pass
