"""The job analyses answer from the rollups and indexes of revision 9e4b2c7d1f60, and from the table before it.

Every answer is compared with a full computation over extraction_jobs done here
(pandas over the rows): counts exact, percentiles within the bucket bound of the
exact nearest-rank value. Both paths are checked: the rollups (at head, and after
inserts, updates, deletes and a concurrent writer), and the table (the rollups
still filling, and a database at 7d1e5c0a9b3f, before the revision). EXPLAIN
shows which rollup table or index each query reads.
"""

from __future__ import annotations

import math
import threading
import warnings
from collections.abc import Iterator
from contextlib import contextmanager

import numpy as np
import pandas as pd
import pytest
from roles import application_login
from sqlalchemy import create_engine, event, text
from sqlalchemy.engine import Engine
from sqlalchemy.pool import NullPool

from copythat_ops import jobs, migrations
from copythat_ops.engine import get_engine
from copythat_ops.jobs import analyses
from copythat_ops.seed import seed_database

BEFORE_ROLLUPS = "7d1e5c0a9b3f"
BOUND = analyses.BUCKET_ERROR + 1e-9  # a bucket's middle is this close to any duration in it, relative to the duration

# (status, minutes ago created, seconds it took or None, error_message): jobs each check is about.
DELIBERATE = [
    ("failed", 5, 2.5, "job 123 failed at https://x/1"),
    ("failed", 4, 2.5, "job 456 failed at https://y/2"),
    ("failed", 3, 0.0, "Task 3f9a1c2e-0b4d-4c1e-9a2b-1234567890ab hit 0xdeadbeef12 at req_8f3a2b1c9d"),
    ("failed", 2, None, "Task 11111111-2222-4333-8444-555555555555 hit 0xcafebabe34 at req_0a1b2c3d4e"),
    ("failed", 6, 1.0, None),
    ("completed", 1, 0.0, None),
    ("completed", 1, 0.0005, None),
    ("completed", 7, 86_400.0 * 3, None),
    ("processing", 29, None, None),
    ("processing", 31, None, None),
    ("processing", 90, None, None),
    ("pending", 59, None, None),
    ("pending", 61, None, None),
]


def make_database(engine: Engine, revision: str = "head") -> Engine:
    migrations.upgrade(revision, url=engine.url)
    seed_database(3000, 20, seed=3, window="2 days", engine=engine, tokens=False)
    with engine.begin() as conn:
        conn.execute(text("DELETE FROM extraction_jobs WHERE status IN ('processing', 'pending')"))
        project = conn.scalar(
            text("INSERT INTO projects (organization_id, name) SELECT organization_id, 'deliberate' FROM projects ORDER BY id LIMIT 1 RETURNING id")
        )
        for status, minutes, seconds, error in DELIBERATE:
            conn.execute(
                text(
                    "INSERT INTO extraction_jobs (project_id, source_url, extraction_type, status, error_message, created_at, completed_at, updated_at)"
                    " VALUES (:p, 'https://uploads.copythat.app/x.png', 'color', :s, :e, localtimestamp - make_interval(mins => :m),"
                    " localtimestamp - make_interval(mins => :m) + make_interval(secs => :d), now() - make_interval(mins => :m))"
                ),
                {"p": project, "s": status, "e": error, "m": minutes, "d": seconds},
            )
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        conn.execute(text("VACUUM ANALYZE extraction_jobs"))  # as autovacuum leaves it: index-only scans read no heap
        if revision == "head":
            conn.execute(text("ANALYZE copythat_rollups.job_counts_compacted, copythat_rollups.job_count_deltas, copythat_rollups.job_minutes_compacted,"
                              " copythat_rollups.job_minute_deltas, copythat_rollups.failure_reasons_compacted, copythat_rollups.failure_reason_deltas"))
    return engine


@pytest.fixture(scope="module")
def engine(db_url) -> Engine:
    """A database at head: the rollups filled by the revision, then kept by its triggers through the seed."""
    return make_database(get_engine(db_url))


@pytest.fixture(scope="module")
def before(server) -> Iterator[Engine]:
    """The same jobs in a database at 7d1e5c0a9b3f: no rollups, no new indexes."""
    url = server.create_database("analyses_before")
    try:
        yield make_database(get_engine(url), BEFORE_ROLLUPS)
    finally:
        server.drop_database(url)


@pytest.fixture
def fresh_warnings(monkeypatch):
    """Each test sees the once-per-process warning anew."""
    monkeypatch.setattr(analyses, "_warned", set())


# -- the full computation, from the rows ------------------------------------------------------------


def rows(engine: Engine) -> pd.DataFrame:
    """Every job with its duration (seconds), reason (folded as the database folds it) and times as UTC instants."""
    has_rollups = engine.dialect.has_schema(engine.connect(), "copythat_rollups")
    fold = (analyses._DATABASE_SQL if has_rollups else analyses._INLINE_SQL)["reason"].format("j.error_message")
    with engine.connect() as conn:
        frame = pd.read_sql(
            text(
                f"""
                SELECT j.id, j.project_id, p.name AS project_name, j.extraction_type, j.status,
                       date_part('epoch', j.completed_at - j.created_at) AS seconds,
                       {fold} AS reason,
                       j.created_at AT TIME ZONE current_setting('TimeZone') AS created_at,
                       j.completed_at AT TIME ZONE current_setting('TimeZone') AS completed_at,
                       coalesce(j.updated_at, j.created_at::timestamptz) AS changed_at,
                       now() AS now
                FROM extraction_jobs j
                LEFT JOIN projects p ON p.id = j.project_id
                ORDER BY j.id
                """
            ),
            conn,
        )
    for column in ("created_at", "completed_at", "changed_at", "now"):
        frame[column] = pd.to_datetime(frame[column], utc=True)
    return frame


def nearest_rank(values: pd.Series, share: float) -> float:
    values = values.dropna().sort_values().to_numpy()
    return math.nan if len(values) == 0 else float(values[math.ceil(share * len(values)) - 1])


def number(value) -> float:
    return math.nan if pd.isna(value) else float(value)


def close_to(reported: float, exact: float) -> bool:
    """A duration reported from its bucket: within BOUND of the exact value (0 for a millisecond or less)."""
    if math.isnan(exact):
        return math.isnan(reported)
    if exact <= 0.001:
        return reported == 0
    return abs(reported - exact) <= BOUND * exact


def expected_summary(jobs_rows: pd.DataFrame, by: list[str], since: pd.Timestamp | None = None) -> pd.DataFrame:
    if since is not None:
        jobs_rows = jobs_rows[jobs_rows["created_at"] >= since]
    keys = [c for name in by for c in analyses.SUMMARY_GROUPS[name]]
    out = []
    for key, part in jobs_rows.groupby(keys, observed=True):
        counts = part["status"].value_counts()
        finished = counts.get("completed", 0) + counts.get("failed", 0)
        out.append(
            {
                **dict(zip(keys, key if isinstance(key, tuple) else (key,))),
                "jobs": len(part),
                **{s: int(counts.get(s, 0)) for s in ("pending", "processing", "completed", "failed")},
                "failure_rate": counts.get("failed", 0) / finished if finished else math.nan,
                "p50_seconds": nearest_rank(part["seconds"], 0.5),
                "p95_seconds": nearest_rank(part["seconds"], 0.95),
                "max_seconds": part["seconds"].max(),
            }
        )
    return pd.DataFrame(out).set_index(keys)


def assert_summary_matches(frame: pd.DataFrame, expected: pd.DataFrame) -> None:
    keys = list(expected.index.names)
    got = frame.assign(**{k: frame[k].astype(object) for k in keys if k in ("status", "extraction_type")}).set_index(keys)
    assert sorted(got.index.tolist()) == sorted(expected.index.tolist())
    assert got["jobs"].is_monotonic_decreasing
    for key, want in expected.iterrows():
        have = got.loc[key]
        for column in ("jobs", "pending", "processing", "completed", "failed"):
            assert have[column] == want[column], (key, column)
        rate, want_rate = number(have["failure_rate"]), number(want["failure_rate"])
        assert (math.isnan(rate) and math.isnan(want_rate)) or abs(rate - want_rate) < 1e-12, key
        for column in ("p50_seconds", "p95_seconds", "max_seconds"):
            assert close_to(number(have[column]), number(want[column])), (key, column, have[column], want[column])


def expected_reasons(jobs_rows: pd.DataFrame, since: pd.Timestamp | None = None) -> pd.DataFrame:
    failed = jobs_rows[jobs_rows["status"] == "failed"]
    if since is not None:
        failed = failed[failed["created_at"] >= since]
    failed = failed.assign(seen_at=failed["completed_at"].fillna(failed["created_at"]))
    out = []
    for reason, part in failed.groupby("reason"):
        last = part.sort_values(["seen_at", "id"]).iloc[-1]
        out.append({"reason": reason, "jobs": len(part), "share": len(part) / len(failed),
                    "first_seen": part["seen_at"].min(), "last_seen": last["seen_at"], "example_job_id": last["id"]})
    return pd.DataFrame(out).sort_values(["jobs", "reason"], ascending=[False, True], ignore_index=True)


def assert_reasons_match(frame: pd.DataFrame, expected: pd.DataFrame, top: int) -> None:
    want = expected.head(top)
    assert frame["reason"].tolist() == want["reason"].tolist()
    assert frame["jobs"].tolist() == want["jobs"].tolist()
    assert np.allclose(frame["share"], want["share"], rtol=0, atol=1e-12)
    assert frame["first_seen"].tolist() == want["first_seen"].tolist()
    assert frame["last_seen"].tolist() == want["last_seen"].tolist()
    assert frame["example_job_id"].tolist() == want["example_job_id"].tolist()


def expected_throughput(jobs_rows: pd.DataFrame, frame: pd.DataFrame, freq: str) -> pd.DataFrame:
    step = pd.Timedelta(freq)
    first, now = frame["bucket"].iloc[0], jobs_rows["now"].iloc[0]
    events = []
    for column, at, keep in (
        ("created", "created_at", jobs_rows["created_at"].notna()),
        ("completed", "completed_at", jobs_rows["status"] == "completed"),
        ("failed", "completed_at", jobs_rows["status"] == "failed"),
    ):
        times = jobs_rows.loc[keep, at].dropna()
        times = times[(times >= first) & (times <= now)]
        events.append(times.dt.floor(step).value_counts().rename(column))
    counted = pd.concat(events, axis=1, sort=True).fillna(0).astype(int)
    return counted.reindex(frame["bucket"], fill_value=0)


# -- what a query read: the plan of the statement a call sent ---------------------------------------


@contextmanager
def statements(engine: Engine, name: str) -> Iterator[list]:
    """The statements tagged `copythat-ops:NAME` sent during the block, with their parameters."""
    sent = []

    def grab(conn, cursor, statement, parameters, context, executemany):
        if f"copythat-ops:{name} " in statement and not statement.startswith("EXPLAIN"):
            sent.append((statement, parameters))

    event.listen(engine, "before_cursor_execute", grab)
    try:
        yield sent
    finally:
        event.remove(engine, "before_cursor_execute", grab)


def plan_of(engine: Engine, call, name: str) -> list[dict]:
    """Every node of the plan of the last `name` statement `call` sent, as (node type, relation, index)."""
    with statements(engine, name) as sent:
        call()
    statement, parameters = sent[-1]
    with engine.connect() as conn:
        plan = conn.exec_driver_sql("EXPLAIN (FORMAT JSON) " + statement, parameters).scalar()
    nodes, todo = [], [plan[0]["Plan"]]
    while todo:
        node = todo.pop()
        nodes.append({"type": node["Node Type"], "relation": node.get("Relation Name"), "index": node.get("Index Name")})
        todo.extend(node.get("Plans", []))
    return nodes


def reads(nodes: list[dict]) -> set[str]:
    return {n["relation"] for n in nodes if n["relation"]}


def indexes(nodes: list[dict]) -> set[tuple[str, str]]:
    return {(n["type"], n["index"]) for n in nodes if n["index"]}


# -- the rollups --------------------------------------------------------------------------------------


def assert_everything_matches(engine: Engine) -> None:
    every = rows(engine)
    for by in (["status"], ["extraction_type", "status"], ["project"], ["project", "status"]):
        assert_summary_matches(jobs.job_summary(by=by, engine=engine), expected_summary(every, by))
    window = jobs.job_summary(by="status", since="10 min", engine=engine)
    assert_summary_matches(window, expected_summary(every, ["status"], since=every["now"].iloc[0] - pd.Timedelta("10 min")))
    reasons = expected_reasons(every)
    for top in (1, 3, 50):
        assert_reasons_match(jobs.failure_reasons(top=top, engine=engine), reasons, top)
    recent = jobs.failure_reasons(top=50, since="10 min", engine=engine)
    assert_reasons_match(recent, expected_reasons(every, since=every["now"].iloc[0] - pd.Timedelta("10 min")), 50)
    for freq, since in (("1h", "4 days"), ("15min", "1 day"), ("1 day", "7 days"), ("90s", "3h")):
        frame = jobs.job_throughput(freq, since=since, engine=engine)
        want = expected_throughput(every, frame, freq)
        for column in ("created", "completed", "failed"):
            assert frame[column].tolist() == want[column].tolist(), (freq, column)


def test_every_answer_equals_a_full_count_over_the_table(engine, recwarn):
    assert_everything_matches(engine)
    assert not [w for w in recwarn if issubclass(w.category, analyses.RollupsUnavailable)]


def test_durations_are_bucketed_within_the_bound(engine):
    summary = jobs.job_summary(by="status", engine=engine).set_index("status")
    assert summary.loc["completed", "max_seconds"] == pytest.approx(86_400 * 3, rel=BOUND)  # the deliberate 3-day job
    assert summary.loc[["pending", "processing"], ["p50_seconds", "p95_seconds", "max_seconds"]].isna().all().all()
    ours = jobs.job_summary(by=["project", "status"], engine=engine).set_index(["project_name", "status"]).loc["deliberate"]
    # completed in 0 s, 0.0005 s (a millisecond or less: 0) and 3 days; failed in 0, 1, 2.5 and 2.5 s, and one never
    # (no completed_at): nearest rank, p50 is the 2nd of 4, p95 the 4th
    assert ours.loc["completed", "p50_seconds"] == 0.0 and ours.loc["completed", "p95_seconds"] == pytest.approx(86_400 * 3, rel=BOUND)
    assert ours.loc["failed", ["p50_seconds", "p95_seconds", "max_seconds"]].tolist() == pytest.approx([1.0, 2.5, 2.5], rel=BOUND)
    assert ours.loc["failed", "failed"] == 5 and ours.loc["failed", "failure_rate"] == 1.0


def test_the_plans_read_the_rollups_and_the_indexes(engine):
    summary = plan_of(engine, lambda: jobs.job_summary(by="project", engine=engine), "job_summary")
    assert "job_counts_compacted" in reads(summary) and "extraction_jobs" not in reads(summary)  # the view job_counts: compacted + deltas
    window = plan_of(engine, lambda: jobs.job_summary(since="10 min", engine=engine), "job_summary")
    assert ("Index Only Scan", "ix_extraction_jobs_created_at") in indexes(window) and reads(window) == {"extraction_jobs"}
    minutes = plan_of(engine, lambda: jobs.job_throughput("1h", since="7 days", engine=engine), "job_throughput")
    assert reads(minutes) == {"job_minutes_compacted", "job_minute_deltas"}
    seconds = plan_of(engine, lambda: jobs.job_throughput("90s", since="3h", engine=engine), "job_throughput")
    assert reads(seconds) == {"extraction_jobs"}  # not whole minutes: the jobs themselves
    reasons = plan_of(engine, lambda: jobs.failure_reasons(top=5, engine=engine), "failure_reasons")
    assert "failure_reasons_compacted" in reads(reasons)
    probes = [n for n in reasons if n["relation"] == "extraction_jobs"]
    assert probes and all(n["index"] == "ix_extraction_jobs_failure_reason" for n in probes)
    stuck = plan_of(engine, lambda: jobs.stuck_jobs("30 min", engine=engine), "stuck_jobs")
    scans = [n for n in stuck if n["relation"] == "extraction_jobs" or n["index"]]
    assert {n["index"] for n in scans if n["index"]} == {"ix_extraction_jobs_unfinished"}
    assert not [n for n in stuck if n["relation"] == "extraction_jobs" and n["type"] == "Seq Scan"]


def test_stuck_jobs_are_those_waiting_past_the_thresholds(engine):
    every = rows(engine)
    waited = (every["now"] - every["changed_at"]).dt.total_seconds()
    want = every[((every["status"] == "processing") & (waited > 30 * 60)) | ((every["status"] == "pending") & (waited > 60 * 60))]
    stuck = jobs.stuck_jobs("30 min", pending_older_than="1 hour", engine=engine)
    assert stuck["id"].tolist() == want.sort_values(["changed_at", "id"])["id"].tolist() and len(stuck) == 3
    only = jobs.stuck_jobs("30 min", pending_older_than=None, engine=engine)
    assert set(only["status"]) == {"processing"} and len(only) == 2


def test_the_rollups_stay_exact_through_inserts_updates_deletes_and_a_concurrent_writer(engine):
    with engine.begin() as conn:
        project = conn.scalar(text("SELECT min(id) FROM projects"))
        conn.execute(
            text(
                "INSERT INTO extraction_jobs (project_id, source_url, extraction_type, status, error_message, created_at, completed_at)"
                " SELECT :p, 'https://uploads.copythat.app/n.png', (ARRAY['color', 'spacing'])[1 + g % 2],"
                " (ARRAY['failed', 'completed', 'pending'])[1 + g % 3], CASE WHEN g % 3 = 0 THEN 'HTTP ' || g || ' at https://h/' || g END,"
                " localtimestamp - make_interval(mins => g), CASE WHEN g % 3 < 2 THEN localtimestamp - make_interval(mins => g) + make_interval(secs => g * 7) END"
                " FROM generate_series(1, 200) g"
            ),
            {"p": project},
        )
    with engine.begin() as conn:  # a worker finishes, fails and requeues jobs; on-call deletes some
        conn.execute(text("UPDATE extraction_jobs SET status = 'completed', completed_at = localtimestamp WHERE status = 'pending' AND id % 2 = 0"))
        conn.execute(text("UPDATE extraction_jobs SET status = 'failed', error_message = 'Timeout after 9s while downloading https://z/' || id, completed_at = localtimestamp WHERE status = 'completed' AND id % 17 = 0"))
        conn.execute(text("UPDATE extraction_jobs SET status = 'pending', error_message = NULL, completed_at = NULL WHERE status = 'failed' AND id % 5 = 0"))
        conn.execute(text("UPDATE extraction_jobs SET project_id = (SELECT max(id) FROM projects) WHERE id % 23 = 0"))
        conn.execute(text("DELETE FROM extraction_jobs WHERE id % 31 = 0"))
    with engine.begin() as conn:  # a rolled-back write leaves no trace
        conn.execute(text("DELETE FROM extraction_jobs WHERE status = 'failed'"))
        conn.rollback()
    stop, errors = threading.Event(), []

    def writer():
        try:
            n = 0
            while not stop.is_set():
                with engine.begin() as conn:
                    conn.execute(
                        text(
                            "INSERT INTO extraction_jobs (project_id, source_url, extraction_type, status, error_message, created_at, completed_at)"
                            " VALUES (:p, 'https://uploads.copythat.app/w.png', 'typography', 'failed', 'Worker worker-' || :n || ' lost connection to https://w/',"
                            " localtimestamp, localtimestamp)"
                        ),
                        {"p": project, "n": n},
                    )
                    conn.execute(text("UPDATE extraction_jobs SET status = 'completed', error_message = NULL WHERE id = (SELECT max(id) FROM extraction_jobs WHERE status = 'failed' AND extraction_type = 'typography')"))
                n += 1
        except Exception as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    thread = threading.Thread(target=writer)
    thread.start()
    try:
        for _ in range(5):  # the analyses run while the writer commits
            assert jobs.job_summary(by=["project", "status"], engine=engine)["jobs"].sum() > 0
            assert len(jobs.failure_reasons(top=5, engine=engine)) == 5
    finally:
        stop.set()
        thread.join()
    assert not errors
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        conn.execute(text("ANALYZE extraction_jobs"))
    assert_everything_matches(engine)


# -- the table, when the rollups are not there or still filling --------------------------------------


@contextmanager
def still_filling(engine: Engine) -> Iterator[None]:
    """fill_state.complete false for the block (nothing writes meanwhile: the triggers would count only ids <= filled_to)."""
    with engine.begin() as conn:
        conn.execute(text("UPDATE copythat_rollups.fill_state SET complete = false, filled_to = (SELECT max(id) FROM extraction_jobs)"))
    try:
        yield
    finally:
        with engine.begin() as conn:
            conn.execute(text("UPDATE copythat_rollups.fill_state SET complete = true"))


def answers(engine: Engine) -> dict[str, pd.DataFrame]:
    return {
        "summary": jobs.job_summary(by=["project", "status"], engine=engine),
        "types": jobs.job_summary(by="extraction_type", engine=engine),
        "reasons": jobs.failure_reasons(top=50, engine=engine),
        "hours": jobs.job_throughput("1h", since="3 days", engine=engine),
        "stuck": jobs.stuck_jobs("30 min", engine=engine).drop(columns=["age_seconds", "age"]),
    }


def test_while_the_rollups_fill_the_table_gives_the_same_answers_and_says_so(engine, fresh_warnings):
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        from_rollups = answers(engine)
    with still_filling(engine):
        with pytest.warns(analyses.RollupsUnavailable, match=r"still filling \(jobs up to id [\d,]+ counted\).*migrate upgrade"):
            from_table = answers(engine)
        with warnings.catch_warnings():
            warnings.simplefilter("error")  # once per process
            again = jobs.job_summary(by=["project", "status"], engine=engine)
        summary = plan_of(engine, lambda: jobs.job_summary(engine=engine), "job_summary")
        assert "job_counts_compacted" not in reads(summary) and "extraction_jobs" in reads(summary)
    for name, frame in from_rollups.items():
        pd.testing.assert_frame_equal(frame, from_table[name], obj=name)
    pd.testing.assert_frame_equal(again, from_rollups["summary"])


def test_before_the_revision_the_table_answers_with_a_warning_to_migrate(before, fresh_warnings):
    with pytest.warns(analyses.RollupsUnavailable, match=r"no rollups yet \(revision 9e4b2c7d1f60\).*copythat-ops migrate upgrade"):
        jobs.job_summary(engine=before)
    assert_everything_matches(before)
    stuck = jobs.stuck_jobs("30 min", pending_older_than="1 hour", engine=before)
    assert [round(s / 60) for s in stuck["age_seconds"]] == [90, 61, 31]


def test_the_functions_inline_before_the_revision_are_the_revisions_own(engine):
    """So a database before the revision buckets durations and folds messages exactly as the rollups do."""
    database, inline = analyses._DATABASE_SQL, analyses._INLINE_SQL
    with engine.connect() as conn:
        buckets = conn.scalar(
            text(
                f"SELECT count(*) FROM (SELECT power(1.1::float8, g / 10.0) AS s FROM generate_series(-1000, 3000) g"
                f" UNION ALL SELECT g * 0.37 FROM generate_series(-10, 100000) g UNION ALL SELECT NULL) v"
                f" WHERE {database['bucket'].format('v.s')} IS DISTINCT FROM {inline['bucket'].format('v.s')}"
            )
        )
        seconds = conn.scalar(
            text(
                f"SELECT count(*) FROM (SELECT generate_series(-2000, 400) UNION ALL VALUES (-32768), (-32767)) AS v(g)"
                f" WHERE {database['seconds'].format('g::smallint')} IS DISTINCT FROM {inline['seconds'].format('g::smallint')}"
            )
        )
        folded = conn.scalar(
            text(
                f"SELECT count(*) FROM (SELECT DISTINCT error_message FROM extraction_jobs UNION ALL SELECT '  ' UNION ALL SELECT NULL) j"
                f" WHERE {database['reason'].format('j.error_message')} IS DISTINCT FROM {inline['reason'].format('j.error_message')}"
            )
        )
    assert (buckets, seconds, folded) == (0, 0, 0)


def test_a_role_that_may_not_read_the_rollups_gets_answers_from_the_table(engine, fresh_warnings):
    """The application's role (copythat_app) has no right on copythat_rollups: the same functions, inline, and a warning."""
    with engine.connect() as conn:
        organization = conn.scalar(text("SELECT organization_id FROM projects WHERE name = 'deliberate'"))
    with application_login(engine.url) as url:
        app = create_engine(url, poolclass=NullPool, connect_args={"options": f"-c app.organization_id={organization}"})
        try:
            with pytest.warns(analyses.RollupsUnavailable, match=r"may not read the rollups \(ct_app_\w+ in schema copythat_rollups\)"):
                summary = jobs.job_summary(by="status", engine=app)
            reasons = jobs.failure_reasons(top=50, engine=app)
            with app.connect() as conn:
                visible = set(conn.scalars(text("SELECT id FROM extraction_jobs")))
        finally:
            app.dispose()
    every = rows(engine)
    ours = every[every["id"].isin(visible)]
    assert 0 < len(ours) < len(every)  # one organization's jobs, as row-level security shows them
    assert_summary_matches(summary, expected_summary(ours, ["status"]))
    assert_reasons_match(reasons, expected_reasons(ours), 50)
