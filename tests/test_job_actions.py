"""Job actions against real rows: dry runs change nothing, applied actions are transactional, audited,
skip rows a worker holds, and refuse ids they may not touch; the CLI asks before changing a remote database."""

from __future__ import annotations

import getpass
import io
import json
import os
import pty
import subprocess

import pandas as pd
import pytest
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError

from copythat_ops import audit_log, cancel_jobs, fail_stuck_jobs, migrations, requeue_jobs
from copythat_ops.config import is_local
from copythat_ops.engine import get_engine
from copythat_ops.errors import InputError, MigrationError
from test_cli import CLI, run

# id: project, type, status, error, created (minutes ago), completed (minutes ago)
JOBS = [
    (1, 1, "color", "failed", "Timeout after 30s fetching https://cdn.example.com/1.png", 60, 59),
    (2, 1, "spacing", "failed", "TIMEOUT after 31s fetching https://cdn.example.com/2.png", 180, 179),
    (3, 2, "typography", "failed", "Invalid image format", 30, 29),
    (4, 2, "all", "processing", None, 120, None),
    (5, 1, "color", "processing", None, 5, None),
    (6, 1, "color", "pending", None, 10, None),
    (7, 2, "spacing", "pending", None, 1, None),
    (8, 1, "color", "completed", None, 240, 230),
]


@pytest.fixture(scope="module")
def engine(db_url):
    migrations.upgrade(url=db_url)
    return get_engine(db_url)


@pytest.fixture
def jobs(engine):
    """The rows above, fresh for each test, and an empty audit table."""
    with engine.begin() as conn:
        conn.execute(text("TRUNCATE extraction_jobs, projects, organizations, job_action_audit RESTART IDENTITY CASCADE"))
        conn.execute(text("INSERT INTO organizations (name, slug) VALUES ('Acme Studio', 'acme-studio')"))
        conn.execute(text("INSERT INTO projects (name, organization_id) VALUES ('Brand refresh', 1), ('Docs site', 1)"))
        for job in JOBS:
            conn.execute(
                text(
                    "INSERT INTO extraction_jobs (id, project_id, source_url, extraction_type, status, error_message, created_at, completed_at, updated_at)"
                    " VALUES (:id, :project, 'https://cdn.example.com/' || :id || '.png', :type, :status, :error,"
                    " LOCALTIMESTAMP - make_interval(mins => :created), LOCALTIMESTAMP - make_interval(mins => :completed),"
                    " now() - make_interval(mins => coalesce(:completed, :created)))"
                ),
                dict(zip(["id", "project", "type", "status", "error", "created", "completed"], job, strict=True)),
            )
    return engine


def table(engine) -> pd.DataFrame:
    with engine.connect() as conn:
        return pd.read_sql(text("SELECT id, status, error_message, completed_at FROM extraction_jobs ORDER BY id"), conn)


def audit_rows(engine) -> int:
    with engine.connect() as conn:
        return conn.scalar(text("SELECT count(*) FROM job_action_audit"))


def statuses(engine) -> dict[int, str]:
    now = table(engine)
    return dict(zip(now["id"], now["status"], strict=True))


def test_a_dry_run_shows_before_and_after_and_changes_nothing(jobs):
    untouched = table(jobs)
    result = requeue_jobs(error_like="timeout", engine=jobs)
    assert str(result) == "dry run: would requeue 2 job(s): failed -> pending; run with apply=True to change them"
    assert (result.applied, result.audit_id, result.skipped) == (False, None, ())
    assert list(result.before.columns) == ["id", "project_id", "extraction_type", "status", "error_message", "created_at", "completed_at"]
    assert result.before[["id", "status"]].values.tolist() == [[1, "failed"], [2, "failed"]]
    assert result.after["status"].tolist() == ["pending", "pending"]
    assert result.after["error_message"].isna().all() and result.after["completed_at"].isna().all()
    assert result.changes()[["id", "status", "new_status"]].values.tolist() == [[1, "failed", "pending"], [2, "failed", "pending"]]
    pd.testing.assert_frame_equal(table(jobs), untouched)
    assert audit_rows(jobs) == 0


def test_requeue_by_id_applies_and_writes_one_audit_row(jobs):
    result = requeue_jobs([3, 1], apply=True, engine=jobs)
    assert str(result) == f"requeued 2 job(s): failed -> pending; audit row {result.audit_id}"
    now = table(jobs).set_index("id")
    assert now.loc[[1, 3], "status"].tolist() == ["pending", "pending"]
    assert now.loc[[1, 3], "error_message"].isna().all() and now.loc[[1, 3], "completed_at"].isna().all()
    assert now.loc[2, "status"] == "failed"

    log = audit_log(engine=jobs)
    assert len(log) == 1
    entry = log.iloc[0]
    with jobs.connect() as conn:
        role = conn.scalar(text("SELECT current_user"))
    assert (entry.id, entry.action, entry.job_count, entry.job_ids, entry.skipped_job_ids) == (result.audit_id, "requeue", 2, [1, 3], [])
    assert (entry.database_user, entry.os_user) == (role, getpass.getuser())
    assert entry.performed_at.tzinfo is not None
    assert [(r["id"], r["status"], r["error_message"]) for r in entry.before] == [
        (1, "failed", JOBS[0][4]),
        (3, "failed", "Invalid image format"),
    ]
    assert [(r["id"], r["status"], r["error_message"], r["completed_at"]) for r in entry.after] == [(1, "pending", None, None), (3, "pending", None, None)]


@pytest.mark.parametrize(
    "filters,expected",
    [
        ({"error_like": "timeout"}, [1, 2]),
        ({"error_like": "%image format"}, [3]),
        ({"since": "2h"}, [1, 3]),
        ({"project_id": 2}, [3]),
        ({"limit": 1}, [2]),
        ({"error_like": "timeout", "since": "2h"}, [1]),
    ],
    ids=["error_like", "pattern", "since", "project", "limit oldest first", "combined"],
)
def test_requeue_filters_choose_the_failed_jobs(jobs, filters, expected):
    assert requeue_jobs(**filters, engine=jobs).before["id"].tolist() == expected


def test_fail_stuck_fails_only_jobs_processing_longer_than_the_threshold(jobs):
    assert fail_stuck_jobs(engine=jobs).before["id"].tolist() == [4]
    assert fail_stuck_jobs("3 min", engine=jobs).before["id"].tolist() == [4, 5]
    result = fail_stuck_jobs("30 min", "worker lost", apply=True, engine=jobs)
    assert str(result) == f"failed 1 job(s): processing -> failed; audit row {result.audit_id}"
    row = table(jobs).set_index("id").loc[4]
    assert (row.status, row.error_message, pd.notna(row.completed_at)) == ("failed", "worker lost", True)
    assert statuses(jobs)[5] == "processing"
    assert audit_log(engine=jobs).iloc[0][["action", "reason"]].tolist() == ["fail_stuck", "worker lost"]


def test_cancel_fails_pending_jobs_with_the_reason(jobs):
    result = cancel_jobs([6, 7], reason="duplicate upload", apply=True, engine=jobs)
    assert result.after[["id", "status", "error_message"]].values.tolist() == [[6, "failed", "duplicate upload"], [7, "failed", "duplicate upload"]]
    assert result.after["completed_at"].notna().all()
    assert [statuses(jobs)[i] for i in (6, 7)] == ["failed", "failed"]


def test_ids_that_do_not_exist_or_are_in_another_state_are_named_and_nothing_changes(jobs):
    untouched = table(jobs)
    with pytest.raises(InputError, match=r"cannot requeue job\(s\) 4 \(processing\), 999 \(does not exist\): requeue takes failed jobs only"):
        requeue_jobs([1, 4, 999], apply=True, engine=jobs)
    with pytest.raises(InputError, match=r"cannot cancel job\(s\) 1 \(failed\), 8 \(completed\): cancel takes pending jobs only"):
        cancel_jobs([6, 1, 8], reason="wrong upload", apply=True, engine=jobs)
    pd.testing.assert_frame_equal(table(jobs), untouched)
    assert audit_rows(jobs) == 0


BAD_INPUT = [
    (lambda e: fail_stuck_jobs("-5 min", engine=e), "older_than '-5 min' is negative"),
    (lambda e: fail_stuck_jobs("soon", engine=e), "older_than 'soon' is not a duration"),
    (lambda e: fail_stuck_jobs("", engine=e), "older_than '' is not a duration"),
    (lambda e: fail_stuck_jobs("0s", engine=e), "older_than '0s' is zero"),
    (lambda e: requeue_jobs(engine=e), "requeue needs job ids or a filter"),
    (lambda e: requeue_jobs([1], since="1h", engine=e), "job ids or filters, not both"),
    (lambda e: requeue_jobs(since="yesterday", engine=e), "since 'yesterday' is not a duration"),
    (lambda e: requeue_jobs(limit=0, engine=e), "limit 0 is out of range"),
    (lambda e: requeue_jobs(["7"], engine=e), "job id '7' is not a whole number"),
    (lambda e: requeue_jobs([], engine=e), "no job ids given"),
    (lambda e: cancel_jobs([6], reason="  ", engine=e), "reason must be a non-empty text"),
]


@pytest.mark.parametrize("call,message", BAD_INPUT, ids=[m for _, m in BAD_INPUT])
def test_bad_input_is_named_and_changes_nothing(jobs, call, message):
    untouched = table(jobs)
    with pytest.raises(InputError, match=message.replace("(", r"\(").replace(")", r"\)")):
        call(jobs)
    pd.testing.assert_frame_equal(table(jobs), untouched)


def test_a_job_a_worker_holds_is_skipped_and_reported_not_waited_for(jobs):
    with jobs.connect() as worker:
        worker.execute(text("SELECT id FROM extraction_jobs WHERE id = 1 FOR UPDATE"))
        assert requeue_jobs(error_like="timeout", engine=jobs).before["id"].tolist() == [1, 2]  # the dry run locks nothing
        result = requeue_jobs(error_like="timeout", apply=True, engine=jobs)
        alone = requeue_jobs([1], apply=True, engine=jobs)
        worker.rollback()
    assert str(alone) == "no job requeued; nothing changed; skipped 1 job(s) a worker holds or changed meanwhile: 1"
    assert (result.before["id"].tolist(), result.skipped) == ([2], (1,))
    assert str(result).endswith("; skipped 1 job(s) a worker holds or changed meanwhile: 1")
    assert [statuses(jobs)[i] for i in (1, 2)] == ["failed", "pending"]
    assert audit_log(engine=jobs).iloc[0][["job_ids", "skipped_job_ids"]].tolist() == [[2], [1]]


def test_a_failure_part_way_rolls_back_everything(jobs):
    untouched = table(jobs)
    with jobs.begin() as conn:
        conn.execute(text("CREATE FUNCTION refuse() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN RAISE EXCEPTION 'audit is read-only'; END $$"))
        conn.execute(text("CREATE TRIGGER refuse BEFORE INSERT ON job_action_audit FOR EACH ROW EXECUTE FUNCTION refuse()"))
    try:
        with pytest.raises(DBAPIError, match="audit is read-only"):
            requeue_jobs([1, 2, 3], apply=True, engine=jobs)
    finally:
        with jobs.begin() as conn:
            conn.execute(text("DROP TRIGGER refuse ON job_action_audit"))
            conn.execute(text("DROP FUNCTION refuse()"))
    pd.testing.assert_frame_equal(table(jobs), untouched)
    assert audit_rows(jobs) == 0


def test_audit_log_is_newest_first(jobs):
    first = requeue_jobs([1], apply=True, engine=jobs).audit_id
    second = cancel_jobs([6], reason="duplicate upload", apply=True, engine=jobs).audit_id
    assert audit_log(engine=jobs)[["id", "action"]].values.tolist() == [[second, "cancel"], [first, "requeue"]]
    assert audit_log(1, engine=jobs)["id"].tolist() == [second]


def test_a_database_without_the_tables_gets_the_fix(server):
    url = server.create_database("unmigrated")
    try:
        with pytest.raises(MigrationError, match="lacks a table the job actions need.*Fix: migrate it to head"):
            requeue_jobs([1], engine=get_engine(url))
    finally:
        server.drop_database(url)


@pytest.mark.parametrize(
    "url,local",
    [
        ("postgresql://u@localhost/db", True),
        ("postgresql://u@127.0.0.1:5433/db", True),
        ("postgresql://u@[::1]/db", True),
        ("postgresql://u@/db?host=/tmp/copythat", True),
        ("postgresql+asyncpg://u:pw@ep-cool-1.us-east-2.aws.neon.tech/neondb?ssl=require", False),
        ("postgresql://u@db.internal/db?hostaddr=127.0.0.1", False),
        ("postgresql://u@/db?host=localhost,replica.example.com", False),
    ],
)
def test_is_local_counts_sockets_and_loopback_only(url, local):
    assert is_local(url) is local


# --- the command line ---


def remote_looking(url):
    """A URL that names a remote host but still reaches the test server (through its socket or hostaddr)."""
    if url.host is None:
        return url.set(host="db.example.com")
    return url.set(host="db.example.com").update_query_dict({"hostaddr": url.host})


def test_cli_dry_run_prints_the_rows_and_apply_changes_them(jobs, db_url):
    dry = run("--format", "csv", "jobs", "requeue", "--error-like", "timeout", url=db_url)
    assert dry.returncode == 0, dry.stderr
    assert dry.stderr.strip() == "dry run: would requeue 2 job(s): failed -> pending; run with --apply to change them"
    assert pd.read_csv(io.StringIO(dry.stdout))[["id", "new_status"]].values.tolist() == [[1, "pending"], [2, "pending"]]
    assert statuses(jobs)[1] == "failed"
    applied = run("--format", "json", "jobs", "requeue", "--id", "1", "--apply", url=db_url)
    assert applied.returncode == 0, applied.stderr
    assert json.loads(applied.stdout)[0]["new_status"] == "pending" and statuses(jobs)[1] == "pending"
    audit = run("jobs", "audit", url=db_url)
    assert audit.returncode == 0 and "requeue" in audit.stdout and "before" not in audit.stdout


def test_cli_refuses_bad_ids_and_durations_with_exit_2(jobs, db_url):
    ids = run("jobs", "cancel", "--id", "1", "--reason", "x", "--apply", url=db_url)
    assert ids.returncode == 2 and "cannot cancel job(s) 1 (failed)" in ids.stderr and "Traceback" not in ids.stderr
    age = run("jobs", "fail-stuck", "--older-than=-5min", url=db_url)
    assert age.returncode == 2 and "is negative" in age.stderr


def test_cli_apply_to_a_remote_database_needs_yes(jobs, db_url):
    remote = remote_looking(db_url)
    refused = run("jobs", "cancel", "--id", "6", "--reason", "duplicate upload", "--apply", url=remote)
    assert refused.returncode == 2 and "not local; nothing was changed" in refused.stderr and "Fix: add --yes" in refused.stderr
    assert statuses(jobs)[6] == "pending"
    confirmed = run("jobs", "cancel", "--id", "6", "--reason", "duplicate upload", "--apply", "--yes", url=remote)
    assert confirmed.returncode == 0, confirmed.stderr
    assert statuses(jobs)[6] == "failed"


def run_in_terminal(*args: str, url, typed: str) -> subprocess.CompletedProcess:
    """Run the CLI with a terminal as stdin, typing `typed` at the prompt."""
    controller, terminal = pty.openpty()
    env = {**os.environ, "DATABASE_URL": url.render_as_string(hide_password=False)}
    try:
        os.write(controller, f"{typed}\n".encode())
        return subprocess.run([CLI, *args], stdin=terminal, env=env, capture_output=True, text=True, timeout=120)
    finally:
        os.close(terminal)
        os.close(controller)


def test_cli_apply_to_a_remote_database_asks_for_its_name_in_a_terminal(jobs, db_url):
    remote = remote_looking(db_url)
    args = ("jobs", "cancel", "--id", "6", "--reason", "duplicate upload", "--apply")
    wrong = run_in_terminal(*args, url=remote, typed="production")
    assert wrong.returncode == 2 and f"Type its name ({db_url.database}) to apply" in wrong.stderr
    assert "would cancel 1 job(s)" in wrong.stderr and "does not match the database; nothing was changed" in wrong.stderr
    assert statuses(jobs)[6] == "pending"
    right = run_in_terminal(*args, url=remote, typed=db_url.database)
    assert right.returncode == 0, right.stderr
    assert "cancelled 1 job(s): pending -> failed" in right.stderr and statuses(jobs)[6] == "failed"
