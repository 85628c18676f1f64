"""Archiving old jobs to Parquet against a real database: the dry run changes nothing, the files DuckDB reads hold
exactly the jobs deleted, a run killed at any point finishes on the next without losing or duplicating a job,
a month restored equals what was archived, and the CLI asks before changing a remote database."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import duckdb
import numpy as np
import pandas as pd
import pytest
from sqlalchemy import text
from test_cli import run
from test_job_actions import remote_looking

from copythat_ops import migrations
from copythat_ops.engine import get_engine
from copythat_ops.errors import InputError, LockTimeout
from copythat_ops.jobs import archive
from copythat_ops.jobs.archive import archive_jobs, read_archive, restore_archive
from copythat_ops.seed import seed_database

JOBS = 1500
OLDER_THAN = "180 days"


@pytest.fixture(scope="module")
def engine(db_url):
    migrations.upgrade(url=db_url)
    return get_engine(db_url)


@pytest.fixture
def jobs(engine):
    """1,500 jobs over the last 400 days (about half older than 180 days), with their tokens, fresh for each test."""
    with engine.begin() as conn:
        conn.execute(text("TRUNCATE extraction_jobs, projects, organizations, users RESTART IDENTITY CASCADE"))
    seed_database(JOBS, 8, seed=7, window="400 days", engine=engine)
    return engine


def database_jobs(engine) -> pd.DataFrame:
    """Every job as the archive holds it (UTC instants), by id."""
    with engine.connect() as conn:
        frame = pd.read_sql(
            text(
                "SELECT id, project_id, source_url, extraction_type, status, result_data, error_message,"
                " created_at AT TIME ZONE current_setting('TimeZone') AS created_at,"
                " completed_at AT TIME ZONE current_setting('TimeZone') AS completed_at, updated_at"
                " FROM extraction_jobs ORDER BY id"
            ),
            conn,
        )
    return tidy(frame)


def tidy(frame: pd.DataFrame) -> pd.DataFrame:
    frame = frame.astype({"id": "int64", "project_id": "int64"})
    for column in ("created_at", "completed_at", "updated_at"):
        frame[column] = pd.to_datetime(frame[column], utc=True).astype("datetime64[us, UTC]")
    for column in ("source_url", "extraction_type", "status", "result_data", "error_message"):
        frame[column] = frame[column].astype(object).where(frame[column].notna(), None)
    return frame.sort_values("id", ignore_index=True)


def archived(directory: Path) -> pd.DataFrame:
    return tidy(read_archive(directory).to_pandas())


def token_links(engine) -> pd.DataFrame:
    with engine.connect() as conn:
        return pd.read_sql(
            text(
                " UNION ALL ".join(f"SELECT '{t}' AS token_table, id, extraction_job_id FROM {t}" for t in archive.TOKEN_TABLES)
                + " ORDER BY 1, 2"
            ),
            conn,
        )


def old_finished(engine) -> pd.DataFrame:
    with engine.connect() as conn:
        return pd.read_sql(
            text(
                "SELECT id, to_char((created_at AT TIME ZONE current_setting('TimeZone')) AT TIME ZONE 'UTC', 'YYYY-MM') AS month"
                " FROM extraction_jobs WHERE status IN ('completed', 'failed') AND created_at < localtimestamp - interval '180 days' ORDER BY id"
            ),
            conn,
        )


def duckdb_months(directory: Path) -> pd.DataFrame:
    """What DuckDB reads from the archive, as it is: count, distinct ids and the id checksum per month."""
    glob = str(directory / "extraction_jobs" / "*" / "*.parquet")
    return duckdb.sql(
        f"SELECT month, count(*) AS n, count(DISTINCT id) AS distinct_ids, sum(id) AS total"
        f" FROM read_parquet('{glob}', hive_partitioning = true) GROUP BY month ORDER BY month"
    ).df()


def assert_nothing_lost_or_doubled(engine, directory: Path, before: pd.DataFrame) -> None:
    """Archive + database = the jobs before, each once; DuckDB sees each archived id once."""
    months = duckdb_months(directory)
    assert (months["n"] == months["distinct_ids"]).all()
    both = pd.concat([archived(directory), database_jobs(engine)]).sort_values("id", ignore_index=True)
    pd.testing.assert_frame_equal(both, before)


def test_a_dry_run_counts_each_month_and_changes_nothing(jobs, tmp_path):
    before, links = database_jobs(jobs), token_links(jobs)
    result = archive_jobs(tmp_path / "archive", OLDER_THAN, engine=jobs)
    expected = old_finished(jobs).groupby("month").size()
    assert not result.applied and len(expected) >= 6
    assert result.months.set_index("month")["jobs"].to_dict() == expected.to_dict()
    assert (result.months["bytes"] > 0).all() and (result.months["in_archive"] == 0).all()
    assert str(result).startswith(f"dry run: would archive {expected.sum()} job(s) created before ")
    assert "run with apply=True to write and delete them" in str(result)
    assert not (tmp_path / "archive").exists()
    pd.testing.assert_frame_equal(database_jobs(jobs), before)
    pd.testing.assert_frame_equal(token_links(jobs), links)


def test_applied_the_files_hold_exactly_the_jobs_deleted(jobs, tmp_path):
    before, links = database_jobs(jobs), token_links(jobs)
    old = old_finished(jobs)
    result = archive_jobs(tmp_path, OLDER_THAN, apply=True, batch_rows=100, progress=False, engine=jobs)
    assert result.applied and result.deleted == result.written == len(old) and result.kept == ()
    assert result.rows_per_second["written"] > 0 and result.rows_per_second["deleted"] > 0
    # DuckDB reads the Hive partitions as they are: per month the jobs deleted, each id once, the same id checksum.
    months = duckdb_months(tmp_path)
    expected = old.groupby("month")["id"].agg(["size", "sum"])
    assert months["month"].tolist() == expected.index.tolist()
    assert months["n"].tolist() == expected["size"].tolist() == result.months["deleted"].tolist()
    assert (months["n"] == months["distinct_ids"]).all() and months["total"].tolist() == expected["sum"].tolist()
    assert not set(old["id"]) & set(database_jobs(jobs)["id"])
    assert_nothing_lost_or_doubled(jobs, tmp_path, before)
    files = sorted((tmp_path / "extraction_jobs").glob("month=*/part-*.parquet"))
    assert len(files) == len(months) and not list(tmp_path.rglob(".*.tmp"))
    first, last = (int(x) for x in files[0].stem.split("-")[1:])
    assert pd.read_parquet(files[0])["id"].agg(["min", "max"]).tolist() == [first, last]
    # The tokens of a deleted job lose their link (ON DELETE SET NULL); the archive remembers it.
    remembered = pd.read_parquet(tmp_path / "token_links").sort_values(["token_table", "token_id"], ignore_index=True)
    was = links[links["extraction_job_id"].isin(old["id"])]
    assert len(was) > 0 and sorted(zip(remembered["token_id"], remembered["extraction_job_id"])) == sorted(zip(was["id"], was["extraction_job_id"]))
    now = token_links(jobs).set_index(["token_table", "id"])["extraction_job_id"]
    assert now.loc[list(zip(was["token_table"], was["id"]))].isna().all()


def test_a_second_run_writes_and_deletes_nothing(jobs, tmp_path):
    archive_jobs(tmp_path, OLDER_THAN, apply=True, progress=False, engine=jobs)
    files = sorted(p.name for p in tmp_path.rglob("*.parquet"))
    again = archive_jobs(tmp_path, OLDER_THAN, apply=True, progress=False, engine=jobs)
    assert (again.written, again.deleted) == (0, 0)
    assert sorted(p.name for p in tmp_path.rglob("*.parquet")) == files
    dry = archive_jobs(tmp_path, OLDER_THAN, engine=jobs)
    assert dry.months["jobs"].sum() == 0 and str(dry).startswith("dry run: no finished job created before")


def test_a_job_changed_between_writing_and_deleting_is_kept_and_left_out_of_the_files(jobs, tmp_path, monkeypatch):
    before = database_jobs(jobs)
    old = old_finished(jobs)
    victim, month = int(old["id"].iloc[3]), old["month"].iloc[3]
    verify = archive._verify

    def verify_then_requeue(*args, **kwargs):
        verify(*args, **kwargs)
        if args[0] != month:
            return
        with jobs.begin() as conn:  # a worker requeues the job after it was written
            conn.execute(text("UPDATE extraction_jobs SET status = 'pending', completed_at = NULL WHERE id = :id"), {"id": victim})

    monkeypatch.setattr(archive, "_verify", verify_then_requeue)
    result = archive_jobs(tmp_path, OLDER_THAN, apply=True, progress=False, engine=jobs)
    assert result.kept == (victim,) and f"kept 1 job(s) changed or held by a worker meanwhile: {victim}" in str(result)
    assert victim in set(database_jobs(jobs)["id"]) and victim not in set(archived(tmp_path)["id"])
    expected = before.copy()
    now = database_jobs(jobs).set_index("id").loc[victim]
    expected.loc[expected["id"] == victim, ["status", "completed_at", "updated_at"]] = [now["status"], now["completed_at"], now["updated_at"]]
    assert_nothing_lost_or_doubled(jobs, tmp_path, expected)


def test_a_job_a_worker_holds_is_kept_and_archived_on_the_next_run(jobs, tmp_path):
    before = database_jobs(jobs)
    held = int(old_finished(jobs)["id"].iloc[0])
    with jobs.connect() as worker:
        worker.execute(text("SELECT id FROM extraction_jobs WHERE id = :id FOR UPDATE"), {"id": held})
        first = archive_jobs(tmp_path, OLDER_THAN, apply=True, progress=False, engine=jobs)
        worker.rollback()
    assert first.kept == (held,)
    assert_nothing_lost_or_doubled(jobs, tmp_path, before)
    second = archive_jobs(tmp_path, OLDER_THAN, apply=True, progress=False, engine=jobs)
    assert (second.written, second.deleted, second.kept) == (1, 1, ())
    assert_nothing_lost_or_doubled(jobs, tmp_path, before)


KILLER = """
import os, signal, sys
from copythat_ops.engine import get_engine
from copythat_ops.jobs import archive

archive.PART_ROWS = 60
point, after, url, directory = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4]
calls = 0

def killing(original):
    def wrapper(*args, **kwargs):
        global calls
        result = original(*args, **kwargs)
        calls += 1
        if calls >= after:
            os.kill(os.getpid(), signal.SIGKILL)
        return result
    return wrapper

if point == "mid-write":  # rows of a file written, the file not complete
    archive._Part.write = killing(archive._Part.write)
elif point == "file-written":  # a complete file renamed into place, before the month is verified or deleted
    archive._publish = killing(archive._publish)
elif point == "mid-delete":  # some delete batches committed
    archive._delete_batch = killing(archive._delete_batch)
elif point == "mid-restore":  # some restored batches committed
    archive._restore_batch = killing(archive._restore_batch)
if point == "mid-restore":
    archive.restore_archive(directory, sys.argv[5], apply=True, batch_rows=20, engine=get_engine(url))
else:
    archive.archive_jobs(directory, "180 days", apply=True, batch_rows=25, progress=False, engine=get_engine(url))
print("not killed")
"""


def killed(point: str, after: int, engine, directory: Path, *extra: str) -> None:
    url = engine.url.render_as_string(hide_password=False)
    done = subprocess.run([sys.executable, "-c", textwrap.dedent(KILLER), point, str(after), url, str(directory), *extra], capture_output=True, text=True, timeout=300)
    assert done.returncode == -9, (done.returncode, done.stdout, done.stderr)


@pytest.mark.parametrize("point,after", [("mid-write", 5), ("file-written", 3), ("mid-delete", 4)])
def test_a_run_killed_at_any_point_is_finished_by_the_next(jobs, tmp_path, point, after):
    before = database_jobs(jobs)
    old = old_finished(jobs)
    killed(point, after, jobs, tmp_path)
    if point == "mid-write":
        assert list(tmp_path.rglob(".part-*.parquet.tmp"))  # the half-written file: never read
    assert duckdb_months(tmp_path).eval("n == distinct_ids").all() if list(tmp_path.rglob("*.parquet")) else True
    result = archive_jobs(tmp_path, OLDER_THAN, apply=True, batch_rows=25, progress=False, engine=jobs)
    assert result.kept == () and not list(tmp_path.rglob(".*.tmp"))
    assert not set(old["id"]) & set(database_jobs(jobs)["id"]) and len(archived(tmp_path)) == len(old)
    assert_nothing_lost_or_doubled(jobs, tmp_path, before)


def test_a_restored_month_equals_what_was_archived(jobs, tmp_path):
    before, links = database_jobs(jobs), token_links(jobs)
    archive_jobs(tmp_path, OLDER_THAN, apply=True, progress=False, engine=jobs)
    month = duckdb_months(tmp_path)["month"].iloc[2]
    in_month = archived(tmp_path)
    in_month = in_month[in_month["created_at"].dt.strftime("%Y-%m") == month]
    dry = restore_archive(tmp_path, month, engine=jobs)
    assert str(dry) == f"dry run: would restore {len(in_month)} job(s) of {month} from {tmp_path} and remove its files; run with apply=True to restore them"
    assert not set(in_month["id"]) & set(database_jobs(jobs)["id"])
    result = restore_archive(tmp_path, month, apply=True, batch_rows=50, engine=jobs)
    assert str(result) == f"restored {len(in_month)} job(s) of {month} from {tmp_path}; its files are removed"
    now = database_jobs(jobs)
    pd.testing.assert_frame_equal(now[now["id"].isin(in_month["id"])].reset_index(drop=True), in_month.reset_index(drop=True))
    assert not (tmp_path / "extraction_jobs" / f"month={month}").exists() and not (tmp_path / "token_links" / f"month={month}").exists()
    assert_nothing_lost_or_doubled(jobs, tmp_path, before)
    # The restored jobs' tokens point at them again.
    restored_links = links[links["extraction_job_id"].isin(in_month["id"])]
    assert len(restored_links) > 0
    relinked = token_links(jobs).merge(restored_links[["token_table", "id"]])
    assert relinked.astype({"extraction_job_id": "int64"}).equals(restored_links.reset_index(drop=True))
    again = restore_archive(tmp_path, month, apply=True, engine=jobs)
    assert str(again) == f"no archived job of {month} in {tmp_path}; nothing to restore"


def test_a_restore_killed_midway_is_finished_by_the_next(jobs, tmp_path):
    before = database_jobs(jobs)
    archive_jobs(tmp_path, OLDER_THAN, apply=True, progress=False, engine=jobs)
    month = duckdb_months(tmp_path).sort_values("n")["month"].iloc[-1]
    killed("mid-restore", 2, jobs, tmp_path, month)
    assert (tmp_path / "extraction_jobs" / f"month={month}").is_dir()
    result = restore_archive(tmp_path, month, apply=True, batch_rows=20, engine=jobs)
    assert result.months["present"].iloc[0] == 40 and "its files are removed" in str(result)
    assert_nothing_lost_or_doubled(jobs, tmp_path, before)


def test_one_run_at_a_time(jobs, tmp_path):
    with jobs.connect() as other:
        other.execute(text("SELECT pg_advisory_lock(hashtext('copythat-ops:archive'))"))
        with pytest.raises(LockTimeout, match="another archive or restore run is going on"):
            archive_jobs(tmp_path, OLDER_THAN, apply=True, progress=False, engine=jobs)
        other.execute(text("SELECT pg_advisory_unlock_all()"))
    assert len(database_jobs(jobs)) == JOBS


@pytest.mark.parametrize(
    "call,param,message",
    [
        (lambda e, d: archive_jobs(d, "-5 days", apply=True, engine=e), "older_than", "older_than '-5 days' is negative"),
        (lambda e, d: archive_jobs(d, "0s", engine=e), "older_than", "older_than '0s' is zero"),
        (lambda e, d: archive_jobs(d, "soon", engine=e), "older_than", "older_than 'soon' is not a duration"),
        (lambda e, d: archive_jobs(d / "file" / "sub", apply=True, engine=e), "to", "cannot be written"),
        (lambda e, d: archive_jobs(d, batch_rows=0, engine=e), "batch_rows", "batch_rows"),
        (lambda e, d: restore_archive(d, "2025-13", engine=e), "month", "month '2025-13' is not of the form YYYY-MM"),
        (lambda e, d: restore_archive(d / "missing", "2025-01", engine=e), "from_", "is not a folder"),
        (lambda e, d: read_archive(d, since="yesterday"), "since", "since 'yesterday' is not a duration"),
    ],
)
def test_bad_input_names_the_parameter_and_changes_nothing(jobs, tmp_path, call, param, message):
    (tmp_path / "file").write_text("not a folder")
    with pytest.raises(InputError, match=message) as raised:
        call(jobs, tmp_path)
    assert param in raised.value.params or param in str(raised.value)
    assert len(database_jobs(jobs)) == JOBS


def test_read_archive_pushes_the_filters_down(jobs, tmp_path):
    archive_jobs(tmp_path, OLDER_THAN, apply=True, progress=False, engine=jobs)
    everything = archived(tmp_path)
    failed = read_archive(tmp_path, status="failed", project_id=[1, 2]).to_pandas()
    expected = everything[(everything["status"] == "failed") & everything["project_id"].isin([1, 2])]
    assert len(failed) and failed["id"].tolist() == expected["id"].tolist()
    moment = everything["created_at"].iloc[len(everything) // 2]
    late = read_archive(tmp_path, since=moment.to_pydatetime(), until="190 days")["id"].to_pylist()
    assert late == everything[(everything["created_at"] >= moment) & (everything["created_at"] < pd.Timestamp.now(tz="UTC") - pd.Timedelta("190 days"))]["id"].tolist()
    assert read_archive(tmp_path).column_names == archive.SCHEMA.names and np.all(np.diff(read_archive(tmp_path)["id"].to_numpy()) > 0)


def test_the_rollups_follow_the_deletes_and_the_restores(jobs, tmp_path):
    rollups = pytest.importorskip("copythat_ops.jobs.rollups", reason="the rollups revision is not in this checkout yet")
    archive_jobs(tmp_path, OLDER_THAN, apply=True, progress=False, engine=jobs)
    assert rollups.rollup_drift(engine=jobs).empty
    restore_archive(tmp_path, duckdb_months(tmp_path)["month"].iloc[0], apply=True, engine=jobs)
    assert rollups.rollup_drift(engine=jobs).empty


# --- the command line ---


def test_cli_dry_run_then_apply_then_restore(jobs, db_url, tmp_path):
    old = old_finished(jobs)
    dry = run("--format", "csv", "jobs", "archive", "--older-than", "180d", "--to", str(tmp_path), url=db_url)
    assert dry.returncode == 0, dry.stderr
    assert f"dry run: would archive {len(old)} job(s)" in dry.stderr and "run with --apply to write and delete them" in dry.stderr
    assert "month,jobs,bytes,in_archive" in dry.stdout and len(database_jobs(jobs)) == JOBS
    applied = run("jobs", "archive", "--older-than", "180d", "--to", str(tmp_path), "--apply", "--batch-rows", "500", url=db_url)
    assert applied.returncode == 0, applied.stderr
    assert f"archived {len(old)} job(s)" in applied.stderr and len(database_jobs(jobs)) == JOBS - len(old)
    month = old["month"].iloc[0]
    restored = run("jobs", "restore-archive", "--from", str(tmp_path), "--month", month, "--apply", url=db_url)
    assert restored.returncode == 0, restored.stderr
    assert f"restored {(old['month'] == month).sum()} job(s) of {month}" in restored.stderr


def test_cli_apply_to_a_remote_database_needs_yes(jobs, db_url, tmp_path):
    remote = remote_looking(db_url)
    refused = run("jobs", "archive", "--older-than", "180d", "--to", str(tmp_path), "--apply", url=remote)
    assert refused.returncode == 2 and "not local; nothing was changed" in refused.stderr and "Fix: add --yes" in refused.stderr
    assert len(database_jobs(jobs)) == JOBS and not list(tmp_path.rglob("*.parquet"))
    confirmed = run("jobs", "archive", "--older-than", "180d", "--to", str(tmp_path), "--apply", "--yes", url=remote)
    assert confirmed.returncode == 0, confirmed.stderr
    assert len(database_jobs(jobs)) == JOBS - len(archived(tmp_path))
    month = duckdb_months(tmp_path)["month"].iloc[0]
    refused = run("jobs", "restore-archive", "--from", str(tmp_path), "--month", month, "--apply", url=remote)
    assert refused.returncode == 2 and "not local; nothing was changed" in refused.stderr


@pytest.mark.parametrize(
    "args,message",
    [
        (["archive", "--older-than=-5d", "--to", "{dir}"], "--older-than -5d is negative"),
        (["restore-archive", "--from", "{dir}", "--month", "2025-13"], "--month 2025-13 is not of the form YYYY-MM"),
        (["archive", "--to", "{dir}/file/sub", "--apply"], "--to"),
    ],
)
def test_cli_bad_input_names_the_flag(jobs, db_url, tmp_path, args, message):
    (tmp_path / "file").write_text("not a folder")
    done = run("jobs", *[a.format(dir=tmp_path) for a in args], url=db_url)
    assert done.returncode == 2 and message in done.stderr and "Traceback" not in done.stderr, done.stderr
    assert len(database_jobs(jobs)) == JOBS


def test_a_lock_held_on_the_table_is_waited_on_briefly_then_named(jobs, tmp_path):
    from copythat_ops.engine import LockWaitError

    with jobs.connect() as holder:
        holder.execute(text("LOCK TABLE extraction_jobs IN ACCESS EXCLUSIVE MODE"))
        with pytest.raises(LockWaitError, match="extraction_jobs") as raised:
            archive_jobs(tmp_path, OLDER_THAN, apply=True, progress=False, engine=jobs)
        pid = holder.execute(text("SELECT pg_backend_pid()")).scalar()
        assert pid in raised.value.pids
        holder.rollback()
    assert len(database_jobs(jobs)) == JOBS and not list(tmp_path.rglob("*.parquet"))
