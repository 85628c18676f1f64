"""Jobs as DataFrames and the on-call analyses, on a small seeded database with a few deliberate jobs."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.pool import NullPool

from copythat_ops import jobs, migrations, requeue_jobs
from copythat_ops.engine import dispose_engines, get_engine
from copythat_ops.errors import ConnectError, InputError, MigrationError
from copythat_ops.models import EXTRACTION_TYPES, JOB_STATUSES
from copythat_ops.seed import seed_database

CLI = str(Path(sys.executable).parent / "copythat-ops")

# (status, minutes ago, error_message, result_data): the rows each check is about.
DELIBERATE = [
    ("failed", 5, "job 123 failed at https://x/1", None),
    ("failed", 4, "job 456 failed at https://y/2", None),
    ("failed", 3, "Task 3f9a1c2e-0b4d-4c1e-9a2b-1234567890ab hit 0xdeadbeef12 at req_8f3a2b1c9d", None),
    ("failed", 2, "Task 11111111-2222-4333-8444-555555555555 hit 0xcafebabe34 at req_0a1b2c3d4e", None),
    ("processing", 29, None, None),
    ("processing", 31, None, None),
    ("processing", 90, None, None),
    ("pending", 59, None, None),
    ("pending", 61, None, None),
    ("completed", 1, None, '{"colors": [{"name": "primary", "value": "#1a2b3c"'),
    ("completed", 1, None, '{"colors": [{"name": "primary", "value": "#1a2b3c"}]}'),
]


@pytest.fixture(scope="module")
def engine(db_url):
    migrations.upgrade(url=db_url)
    engine = get_engine(db_url)
    seed_database(3000, 20, seed=3, window="2 days", engine=engine)
    with engine.begin() as conn:
        conn.execute(text("DELETE FROM extraction_jobs WHERE status IN ('processing', 'pending')"))
        project = conn.scalar(text("SELECT min(id) FROM projects"))
        for status, minutes, error, result in DELIBERATE:
            conn.execute(
                text(
                    "INSERT INTO extraction_jobs (project_id, source_url, extraction_type, status, error_message, result_data, created_at, completed_at, updated_at)"
                    " VALUES (:p, 'https://uploads.copythat.app/x.png', 'color', :s, :e, :r, localtimestamp - make_interval(mins => :m),"
                    " CASE WHEN :s IN ('failed', 'completed') THEN localtimestamp END, now() - make_interval(mins => :m))"
                ),
                {"p": project, "s": status, "e": error, "r": result, "m": minutes},
            )
    return engine


def count(engine, where: str = "TRUE") -> int:
    with engine.connect() as conn:
        return conn.scalar(text(f"SELECT count(*) FROM extraction_jobs WHERE {where}"))


def test_summary_counts_match_the_table(engine):
    summary = jobs.job_summary(by="status", engine=engine).set_index("status")
    for status in JOB_STATUSES:
        assert summary.loc[status, "jobs"] == count(engine, f"status = '{status}'")
    failed = summary.loc["failed", "failed"]
    assert summary.loc["failed", "failure_rate"] == 1.0 and failed == count(engine, "status = 'failed'")
    done = summary.loc["completed"]
    assert 0 < done["p50_seconds"] <= done["p95_seconds"] <= done["max_seconds"]


def test_summary_by_type_and_project(engine):
    both = jobs.job_summary(by=["extraction_type", "status"], engine=engine)
    assert both["jobs"].sum() == count(engine)
    assert list(both["extraction_type"].cat.categories) == list(EXTRACTION_TYPES)
    by_project = jobs.job_summary(by="project", engine=engine)
    assert {"project_id", "project_name"} <= set(by_project.columns) and by_project["project_name"].notna().all()
    assert by_project["jobs"].is_monotonic_decreasing
    rate = by_project["failed"] / (by_project["failed"] + by_project["completed"])
    assert (by_project["failure_rate"] - rate).abs().max() < 1e-9


def test_throughput_buckets_are_contiguous_and_zero_filled(engine):
    frame = jobs.job_throughput("1h", since="4 days", engine=engine)
    steps = frame["bucket"].diff().dropna()
    assert (steps == pd.Timedelta("1h")).all() and str(frame["bucket"].dt.tz) == "UTC"
    assert frame["created"].iloc[:24].sum() == 0  # the seed spans 2 days: the first day is empty, not missing
    assert frame["bucket"].iloc[-1] <= pd.Timestamp.now(tz="UTC") < frame["bucket"].iloc[-1] + pd.Timedelta("1h")
    assert frame["created"].sum() == count(engine)
    assert frame["failed"].sum() == count(engine, "status = 'failed'")


def test_failure_reasons_fold_ids_numbers_and_urls(engine):
    reasons = jobs.failure_reasons(top=50, engine=engine).set_index("reason")
    folded = reasons.loc["job <n> failed at <url>"]
    with engine.connect() as conn:
        latest = conn.scalar(text("SELECT id FROM extraction_jobs WHERE error_message LIKE 'job 456 %'"))
    assert folded["jobs"] == 2 and folded["example_job_id"] == latest
    assert reasons.loc["Task <uuid> hit <hex> at req_<hex>", "jobs"] == 2
    assert reasons["jobs"].sum() == count(engine, "status = 'failed'") and reasons["jobs"].is_monotonic_decreasing
    assert (reasons["first_seen"] <= reasons["last_seen"]).all()
    assert len(jobs.failure_reasons(top=1, engine=engine)) == 1


def test_stuck_jobs_respect_the_thresholds_oldest_first(engine):
    stuck = jobs.stuck_jobs("30 min", pending_older_than="1 hour", engine=engine)
    minutes = (stuck["age_seconds"] / 60).round().astype(int).tolist()
    assert list(zip(stuck["status"], minutes)) == [("processing", 90), ("pending", 61), ("processing", 31)]
    assert stuck["updated_at"].is_monotonic_increasing
    only_processing = jobs.stuck_jobs("60 min", pending_older_than=None, engine=engine)
    assert list(only_processing["status"]) == ["processing"]


def test_waiting_counts_from_the_last_change_of_state_not_from_creation(engine):
    """A job created hours ago that was just requeued, or just picked up by a worker, is not stuck."""
    with engine.begin() as conn:
        project = conn.scalar(text("SELECT min(id) FROM projects"))
        failed, picked = (
            conn.scalar(
                text(
                    "INSERT INTO extraction_jobs (project_id, source_url, extraction_type, status, error_message, created_at, completed_at, updated_at)"
                    " VALUES (:p, 'https://uploads.copythat.app/old.png', 'color', :s, :e, localtimestamp - interval '3 hours',"
                    " CASE WHEN :s = 'failed' THEN localtimestamp - interval '3 hours' END, now() - interval '3 hours') RETURNING id"
                ),
                {"p": project, "s": status, "e": error},
            )
            for status, error in (("failed", "Timeout after 30s"), ("pending", None))
        )
    try:
        assert requeue_jobs([failed], apply=True, engine=engine).summary().startswith("requeued 1 job(s)")
        with engine.begin() as conn:  # a worker takes the old pending job, as the application writes it
            conn.execute(text("UPDATE extraction_jobs SET status = 'processing' WHERE id = :id"), {"id": picked})
        stuck = jobs.stuck_jobs("30 min", pending_older_than="1 hour", engine=engine)
        assert failed not in stuck["id"].tolist() and picked not in stuck["id"].tolist()
        with engine.connect() as conn:  # both changed just now: the action and the trigger set updated_at
            fresh = "SELECT count(*) FROM extraction_jobs WHERE id IN (:a, :b) AND updated_at > now() - interval '1 hour'"
            assert conn.scalar(text(fresh), {"a": failed, "b": picked}) == 2
    finally:
        with engine.begin() as conn:
            conn.execute(text("DELETE FROM extraction_jobs WHERE id IN (:a, :b)"), {"a": failed, "b": picked})


def test_jobs_frame_dtypes_and_duration(engine):
    frame = jobs.jobs_frame(engine=engine)
    assert len(frame) == count(engine) and frame["id"].is_monotonic_increasing
    assert str(frame["id"].dtype) == "Int64" and str(frame["project_id"].dtype) == "Int64"
    assert list(frame["status"].cat.categories) == list(JOB_STATUSES)
    assert list(frame["extraction_type"].cat.categories) == list(EXTRACTION_TYPES)
    assert str(frame["created_at"].dtype) == "datetime64[us, UTC]"
    pd.testing.assert_series_equal(frame["duration"], frame["completed_at"] - frame["created_at"], check_names=False)
    assert frame.loc[frame["status"] == "pending", "duration"].isna().all()


def test_jobs_frame_filters_and_parsed_results(engine):
    frame = jobs.jobs_frame(status=["completed"], extraction_type="color", since="10 min", with_project=True, parse_results=True, engine=engine)
    assert set(frame["status"]) == {"completed"} and set(frame["extraction_type"]) == {"color"}
    assert len(frame) == count(engine, "status = 'completed' AND extraction_type = 'color' AND created_at >= localtimestamp - interval '10 min'")
    assert frame["project_name"].notna().all()
    assert frame["result_malformed"].sum() == 1
    good = frame[~frame["result_malformed"]]
    assert good["result"].map(lambda value: isinstance(value, dict)).all()
    assert frame.loc[frame["result_malformed"], "result"].isna().all()
    assert len(jobs.jobs_frame(limit=7, engine=engine)) == 7
    assert jobs.jobs_frame(project_id=[], engine=engine).empty


def test_iter_jobs_frames_gives_the_same_rows_in_chunks(engine):
    chunks = list(jobs.iter_jobs_frames(1000, progress=False, engine=engine))
    assert [len(c) for c in chunks[:-1]] == [1000] * (len(chunks) - 1) and 0 < len(chunks[-1]) <= 1000
    together = pd.concat(chunks, ignore_index=True)
    assert together["id"].tolist() == jobs.jobs_frame(engine=engine)["id"].tolist()
    assert str(together["status"].dtype) == "category"


def test_jobs_frame_has_updated_at_and_arrow_backed_strings(engine):
    frame = jobs.jobs_frame(engine=engine)
    assert str(frame["updated_at"].dtype) == "datetime64[us, UTC]" and frame["updated_at"].notna().all()
    for column in ("organization", "source_url", "error_message", "result_data"):
        assert frame[column].dtype == pd.StringDtype("pyarrow", na_value=float("nan")), column
    with engine.connect() as conn:
        newest = conn.execute(text("SELECT id, updated_at FROM extraction_jobs ORDER BY updated_at DESC, id DESC LIMIT 1")).one()
    row = frame.set_index("id").loc[newest.id]
    assert row["updated_at"] == pd.Timestamp(newest.updated_at).tz_convert("UTC")


@pytest.mark.parametrize(
    "filters",
    [{}, {"status": "completed"}, {"since": "middle", "with_project": True}, {"project_id": [1, 2, 3], "extraction_type": ["color", "spacing"]}],
)
def test_parallel_streams_read_the_same_frame_as_one(engine, filters):
    if filters.get("since") == "middle":  # a fixed moment (a duration back from now moves between the reads)
        with engine.connect() as conn:
            middle = conn.scalar(text(f"SELECT percentile_disc(0.5) WITHIN GROUP (ORDER BY {jobs.frames.AT_UTC.format('created_at')}) FROM extraction_jobs"))
        filters = dict(filters, since=middle)
    one = jobs.jobs_frame(streams=1, engine=engine, **filters)
    assert len(one) > 0
    for streams in (2, 3, 4):
        pd.testing.assert_frame_equal(jobs.jobs_frame(streams=streams, engine=engine, **filters), one)
    pd.testing.assert_frame_equal(jobs.jobs_frame(streams=4, limit=10, engine=engine, **filters), one.head(10))


def test_every_stream_reads_the_first_streams_snapshot(engine, monkeypatch):
    """A job inserted and a job deleted by another session once the snapshot is exported change nothing in the frame."""
    before = jobs.jobs_frame(streams=1, engine=engine)
    victim = int(before["id"].iloc[len(before) // 2])
    export, added = jobs.frames._export_snapshot, []

    def export_then_write(cursor, restart):
        snapshot = export(cursor, restart)
        with engine.begin() as conn:
            conn.execute(text("DELETE FROM extraction_jobs WHERE id = :id"), {"id": victim})
            added.append(conn.scalar(text("INSERT INTO extraction_jobs (project_id, source_url, extraction_type) VALUES (:p, 'https://x/new.png', 'color') RETURNING id"), {"p": int(before["project_id"].iloc[0])}))
        return snapshot

    monkeypatch.setattr(jobs.frames, "_export_snapshot", export_then_write)
    try:
        during = jobs.jobs_frame(streams=3, engine=engine)
        assert added and snapshot_is_before(during, victim, added[0])
        pd.testing.assert_frame_equal(during, before)
    finally:
        with engine.begin() as conn:  # put the deleted job back as it was
            conn.execute(text("DELETE FROM extraction_jobs WHERE id = ANY(:ids)"), {"ids": added})
            row = before[before["id"] == victim].iloc[0]
            conn.execute(
                text(
                    "INSERT INTO extraction_jobs (id, project_id, source_url, extraction_type, status, error_message, result_data, created_at, completed_at, updated_at)"
                    " VALUES (:id, :p, :u, :t, :s, :e, :r, CAST(:c AS timestamptz) AT TIME ZONE current_setting('TimeZone'),"
                    " CAST(:d AS timestamptz) AT TIME ZONE current_setting('TimeZone'), :up)"
                ),
                {
                    "id": victim, "p": int(row["project_id"]), "u": row["source_url"], "t": str(row["extraction_type"]), "s": str(row["status"]),
                    "e": None if pd.isna(row["error_message"]) else row["error_message"], "r": None if pd.isna(row["result_data"]) else row["result_data"],
                    "c": row["created_at"].isoformat(), "d": None if pd.isna(row["completed_at"]) else row["completed_at"].isoformat(), "up": row["updated_at"].to_pydatetime(),
                },
            )
    pd.testing.assert_frame_equal(jobs.jobs_frame(streams=1, engine=engine), before)


def snapshot_is_before(frame: pd.DataFrame, deleted: int, inserted: int) -> bool:
    ids = set(frame["id"])
    return deleted in ids and inserted not in ids


def test_one_stream_reads_it_all_where_no_snapshot_can_be_exported(engine):
    """PostgreSQL refuses to export a snapshot from a subtransaction: the reader begins its transaction again and goes on."""
    sql, _ = jobs.frames._jobs_query()
    with jobs.frames._reader(engine, "1min", "3s", "test", sql, snapshot=True) as (cursor, _, restart):
        cursor.execute("SAVEPOINT inner_transaction")
        assert jobs.frames._export_snapshot(cursor, restart) is None
        cursor.execute("SELECT count(*) FROM extraction_jobs")
        assert cursor.fetchone()[0] == count(engine)
        assert jobs.frames._export_snapshot(cursor, restart)  # a fresh top-level transaction exports


def test_streams_is_checked(engine):
    with pytest.raises(InputError, match="streams 0 is out of range"):
        jobs.jobs_frame(streams=0, engine=engine)


def test_iter_jobs_frames_estimates_the_bar_on_a_large_table(engine, monkeypatch):
    """Above EXACT_COUNT_ROWS the bar's total is the planner's estimate (no count), then what was read."""
    monkeypatch.setattr(jobs.frames, "EXACT_COUNT_ROWS", 0)
    with engine.connect() as conn:
        conn.execute(text("ANALYZE extraction_jobs"))
        conn.commit()
    totals = []
    real = jobs.frames.tqdm

    def recording(*args, **kwargs):
        bar = real(*args, **kwargs)
        totals.append(kwargs["total"])
        return bar

    monkeypatch.setattr(jobs.frames, "tqdm", recording)
    rows = sum(len(chunk) for chunk in jobs.iter_jobs_frames(500, status="failed", progress=False, engine=engine))
    assert rows == count(engine, "status = 'failed'") and totals and 0 < totals[0] < count(engine)


def test_jobs_frame_reads_the_archive_too(server, tmp_path):
    from copythat_ops.jobs.archive import archive_jobs

    url = server.create_database("frames_archive")
    try:
        migrations.upgrade(url=url)
        engine = get_engine(url)
        seed_database(2000, 8, seed=5, window="90 days", engine=engine, tokens=False)
        before = jobs.jobs_frame(with_project=True, engine=engine)
        result = archive_jobs(tmp_path, older_than="30 days", apply=True, progress=False, engine=engine)
        archived = int(result.months["deleted"].sum())
        assert archived > 0 and count(engine) == len(before) - archived
        both = jobs.jobs_frame(with_project=True, include_archive=tmp_path, engine=engine)
        pd.testing.assert_frame_equal(both, before)
        for filters in ({"status": "failed"}, {"project_id": [2, 3], "since": "60 days"}, {"limit": 25}, {"until": "45 days", "streams": 3}):
            expected = jobs.jobs_frame(**filters, include_archive=tmp_path, engine=engine)
            pd.testing.assert_frame_equal(expected, jobs.jobs_frame(**{k: v for k, v in filters.items() if k != "streams"}, include_archive=tmp_path, engine=engine))
        failed = jobs.jobs_frame(status="failed", include_archive=tmp_path, engine=engine)
        pd.testing.assert_frame_equal(failed, before[before["status"] == "failed"].drop(columns="project_name").reset_index(drop=True))
        pd.testing.assert_frame_equal(jobs.jobs_frame(limit=25, include_archive=tmp_path, engine=engine), before.drop(columns="project_name").head(25))
        # A month being restored: a job back in the database and still in the files is read once, as the database has it.
        first = before.iloc[0]
        with engine.begin() as conn:
            conn.execute(
                text(
                    "INSERT INTO extraction_jobs (id, project_id, source_url, extraction_type, status, error_message, created_at, completed_at)"
                    " VALUES (:id, :p, :u, :t, 'failed', 'restored and changed', localtimestamp - interval '100 days', localtimestamp - interval '100 days')"
                ),
                {"id": int(first["id"]), "p": int(first["project_id"]), "u": first["source_url"], "t": str(first["extraction_type"])},
            )
        again = jobs.jobs_frame(include_archive=tmp_path, engine=engine)
        assert again["id"].is_unique and len(again) == len(before)
        assert again.iloc[0]["error_message"] == "restored and changed"
    finally:
        dispose_engines()
        server.drop_database(url)


@pytest.mark.parametrize(
    "call, message",
    [
        (lambda e: jobs.jobs_frame(status="done", engine=e), "unknown status 'done'. Fix: use one of: pending, processing, completed, failed"),
        (lambda e: jobs.jobs_frame(extraction_type=["color", "audio"], engine=e), "unknown extraction_type 'audio'"),
        (lambda e: jobs.jobs_frame(since="last tuesday", engine=e), "since 'last tuesday' is not a duration"),
        (lambda e: jobs.stuck_jobs("-5 min", engine=e), "older_than '-5 min' is negative"),
        (lambda e: jobs.job_summary(by="colour", engine=e), "unknown by 'colour'. Fix: use one of: status, extraction_type, project"),
        (lambda e: jobs.job_throughput("0s", engine=e), "freq '0s' is zero"),
        (lambda e: jobs.job_throughput("1s", since="30 days", engine=e), "makes more than 100,000 buckets"),
        (lambda e: jobs.failure_reasons(top=0, engine=e), "top 0 is out of range"),
    ],
)
def test_bad_input_names_the_value_and_what_is_allowed(engine, call, message):
    with pytest.raises(InputError, match=message.replace("(", r"\(").replace(")", r"\)")):
        call(engine)


def test_an_unmigrated_database_says_to_migrate(server):
    url = server.create_database("jobs_empty")
    try:
        for call in (jobs.jobs_frame, jobs.job_summary):
            with pytest.raises(MigrationError, match="migrate upgrade"):
                call(engine=get_engine(url))
    finally:
        server.drop_database(url)


def test_a_wrong_password_is_never_shown(server):
    url = server.password_url.set(password="Wr0ngS3cret")
    engine = create_engine(url, poolclass=NullPool)
    with pytest.raises(ConnectError) as raised:
        jobs.jobs_frame(engine=engine)
    assert "Wr0ngS3cret" not in str(raised.value) and "password" in str(raised.value)


def test_cli_summary_and_errors(engine, db_url):
    env = {"PATH": "/usr/bin:/bin", "DATABASE_URL": db_url.render_as_string(hide_password=False)}
    result = subprocess.run([CLI, "--format", "csv", "jobs", "summary"], env=env, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines()[0].startswith("status,jobs,pending,processing,completed,failed,failure_rate")
    bad = subprocess.run([CLI, "jobs", "stuck", "--older-than", "soon"], env=env, capture_output=True, text=True, timeout=120)
    assert bad.returncode == 2 and "--older-than soon is not a duration" in bad.stderr
    stuck = subprocess.run([CLI, "--format", "json", "jobs", "stuck", "--pending-older-than", "none"], env=env, capture_output=True, text=True, timeout=120)
    assert stuck.returncode == 0 and [row["status"] for row in json.loads(stuck.stdout)] == ["processing", "processing"]
    table = subprocess.run([CLI, "jobs", "stuck"], env=env, capture_output=True, text=True, timeout=120)
    assert table.returncode == 0 and table.stdout.splitlines()[-1] == "3 stuck jobs (2 processing over 30 min, 1 pending over 1 hour)", table.stdout
    none = subprocess.run([CLI, "jobs", "stuck", "--older-than", "1000d", "--pending-older-than", "none"], env=env, capture_output=True, text=True, timeout=120)
    assert none.stdout.strip() == "0 stuck jobs (0 processing over 1000d)", none.stdout
