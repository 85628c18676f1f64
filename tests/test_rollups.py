"""The job rollups (revision 9e4b2c7d1f60) never drift: every kind of write, rollbacks, concurrent writers, the online fill.

After each change, `rollup_drift()` (a full recount in one snapshot) must be empty.
"""

from __future__ import annotations

import io
import random
import subprocess
import sys
import threading
import time
from pathlib import Path

import psycopg2
import pytest
from roles import application_login, libpq
from sqlalchemy import text

from copythat_ops import migrations
from copythat_ops.engine import dispose_engines, get_engine
from copythat_ops.errors import MigrationError
from copythat_ops.jobs import rollup_drift, rollup_state
from copythat_ops.jobs.rollups import compact_rollups
from copythat_ops.seed import seed_database

CLI = str(Path(sys.executable).parent / "copythat-ops")
REVISION = "9e4b2c7d1f60"
BEFORE = "7d1e5c0a9b3f"
ROLLUPS = ("job_counts", "job_minutes", "failure_reasons")
MESSAGES = [
    "Timeout after 30s while downloading https://cdn.example.com/a/1.png",
    "Timeout after 45s while downloading https://cdn.example.com/b/22.png",
    "Worker worker-3 lost connection to redis://queue:6379",
    "HTTP 404 Not Found fetching source https://x.example.com/f.mp4",
    "Vision API error 429: rate limit exceeded (request id req_9f8e7d6c5b4a)",
    "  ",
    None,
]


@pytest.fixture(scope="module")
def engine(db_url):
    migrations.upgrade(url=db_url)
    engine = get_engine(db_url)
    seed_database(2000, 6, seed=7, window="3 days", engine=engine)
    return engine


def execute(engine, sql: str, **params) -> None:
    with engine.begin() as conn:
        conn.execute(text(sql), params)


def scalar(engine, sql: str, **params):
    with engine.connect() as conn:
        return conn.execute(text(sql), params).scalar()


def exact(engine) -> None:
    drift = rollup_drift(engine=engine)
    assert drift.empty, drift.head(20).to_string()


def rollups(engine) -> dict:
    with engine.connect() as conn:
        return {table: conn.execute(text(f"SELECT * FROM copythat_rollups.{table} ORDER BY 1, 2")).all() for table in ROLLUPS}


def test_the_seeded_database_is_counted_and_the_check_can_fail(engine):
    state = rollup_state(engine=engine)
    assert state.pop("delta_rows") >= 0
    assert state == {"complete": True, "filled_to": 0, "max_job_id": scalar(engine, "SELECT max(id) FROM extraction_jobs"), "share_filled": 1.0}
    assert scalar(engine, "SELECT sum(jobs) FROM copythat_rollups.job_counts") == scalar(engine, "SELECT count(*) FROM extraction_jobs") == 2000
    assert scalar(engine, "SELECT sum(created) FROM copythat_rollups.job_minutes") == 2000
    exact(engine)
    # the views add the compacted rows and the deltas: a stray delta of +2 on one key, and one cancelling a reason
    execute(engine, "INSERT INTO copythat_rollups.job_count_deltas SELECT project_id, extraction_type, status, duration_bucket, 2 FROM copythat_rollups.job_counts ORDER BY 1, 2, 3, 4 LIMIT 1")
    execute(engine, "INSERT INTO copythat_rollups.failure_reason_deltas SELECT reason, -jobs FROM copythat_rollups.failure_reasons ORDER BY reason LIMIT 1")
    drift = rollup_drift(engine=engine)
    assert drift["rollup"].tolist() == ["failure_reasons", "job_counts"]
    assert drift["difference"].tolist()[1] == 2 and drift["rollup_value"].tolist()[0] == 0 and drift["full_count"].tolist()[0] > 0
    env = {"PATH": "/usr/bin:/bin", "DATABASE_URL": engine.url.render_as_string(hide_password=False)}
    verify = subprocess.run([CLI, "jobs", "rollups", "--verify"], env=env, capture_output=True, text=True, timeout=120)
    assert verify.returncode == 1 and "job_counts" in verify.stdout and "failure_reasons" in verify.stdout, verify.stdout + verify.stderr
    assert compact_rollups(engine=engine)["compacted"] and rollup_state(engine=engine)["delta_rows"] == 0
    assert len(rollup_drift(engine=engine)) == 2  # compaction moves the drift, never hides or makes it
    execute(engine, "INSERT INTO copythat_rollups.job_count_deltas SELECT project_id, extraction_type, status, duration_bucket, -2 FROM copythat_rollups.job_counts ORDER BY 1, 2, 3, 4 LIMIT 1")
    missing = drift.iloc[0]
    execute(engine, "INSERT INTO copythat_rollups.failure_reason_deltas VALUES (:reason, :jobs)", reason=missing["key"].removeprefix("reason="), jobs=int(missing["full_count"]))
    exact(engine)
    verify = subprocess.run([CLI, "jobs", "rollups", "--verify"], env=env, capture_output=True, text=True, timeout=120)
    assert verify.returncode == 0 and "rollups exact" in verify.stdout, verify.stdout + verify.stderr
    state = subprocess.run([CLI, "--format", "json", "jobs", "rollups"], env=env, capture_output=True, text=True, timeout=120)
    assert state.returncode == 0 and '"complete": true' in state.stdout and '"delta_rows": 2' in state.stdout, state.stdout + state.stderr
    compacted = subprocess.run([CLI, "--format", "json", "jobs", "rollups", "--compact"], env=env, capture_output=True, text=True, timeout=120)
    assert compacted.returncode == 0 and '"delta_rows_moved": 2' in compacted.stdout and '"delta_rows": 0' in compacted.stdout, compacted.stdout + compacted.stderr
    exact(engine)
    assert scalar(engine, "SELECT count(*) FROM copythat_rollups.job_counts_compacted WHERE jobs = 0") == 0  # keys that reach zero go


def test_the_functions_fold_and_bucket_as_specified(engine):
    folded = scalar(
        engine,
        "SELECT array_agg(copythat_rollups.failure_reason(m) ORDER BY o) FROM unnest(CAST(:m AS text[])) WITH ORDINALITY AS t(m, o)",
        m=MESSAGES,
    )
    assert folded == [
        "Timeout after <n>s while downloading <url>",
        "Timeout after <n>s while downloading <url>",
        "Worker worker-<n> lost connection to <url>",
        "HTTP <n> Not Found fetching source <url>",
        "Vision API error <n>: rate limit exceeded (request id req_<hex>)",
        "(no error message)",
        "(no error message)",
    ]
    buckets = scalar(engine, "SELECT array_agg(copythat_rollups.duration_bucket(s) ORDER BY o) FROM unnest(ARRAY[NULL, 0, 0.001, -5, 1, 1.0999, 1.1, 60, 86400]::float8[]) WITH ORDINALITY AS t(s, o)")
    assert buckets == [-32768, -32767, -32767, -32767, 0, 0, 1, 42, 119]
    worst = scalar(
        engine,
        "SELECT max(abs(copythat_rollups.bucket_seconds(copythat_rollups.duration_bucket(s)) / s - 1)) FROM generate_series(0.01, 100000, 0.37) AS s",
    )
    assert 0.04 < worst < 0.049
    assert scalar(engine, "SELECT copythat_rollups.bucket_seconds(CAST(-32767 AS smallint))") == 0
    assert scalar(engine, "SELECT copythat_rollups.bucket_seconds(CAST(-32768 AS smallint))") is None


def test_every_kind_of_write_keeps_the_rollups_exact(engine):
    project = scalar(engine, "SELECT min(id) FROM projects")
    other = scalar(engine, "SELECT max(id) FROM projects")
    writes = [
        # single rows
        "INSERT INTO extraction_jobs (project_id, source_url, extraction_type) VALUES (:p, 'https://x/1.png', 'color')",
        "INSERT INTO extraction_jobs (project_id, source_url, extraction_type, status, error_message, created_at, completed_at)"
        " VALUES (:p, 'https://x/2.png', 'typography', 'failed', 'Timeout after 9s while downloading https://x/2.png', LOCALTIMESTAMP - interval '3 minutes', LOCALTIMESTAMP)",
        # bulk
        "INSERT INTO extraction_jobs (project_id, source_url, extraction_type, status, error_message, created_at, completed_at)"
        " SELECT CASE WHEN i % 2 = 0 THEN :p ELSE :o END, 'https://x/' || i, (ARRAY['color', 'spacing', 'typography', 'all'])[1 + i % 4],"
        " (ARRAY['pending', 'processing', 'completed', 'failed'])[1 + i % 4], CASE WHEN i % 4 = 3 THEN 'Worker worker-' || i || ' lost connection' END,"
        " TIMESTAMP '2026-11-20' + make_interval(secs => i * 7), CASE WHEN i % 4 >= 2 THEN TIMESTAMP '2026-11-20' + make_interval(secs => i * 7 + i % 500) END"
        " FROM generate_series(1, 5000) AS i",
        # status changes, completed_at set and cleared
        "UPDATE extraction_jobs SET status = 'processing' WHERE id IN (SELECT id FROM extraction_jobs WHERE status = 'pending' ORDER BY id LIMIT 300)",
        "UPDATE extraction_jobs SET status = 'completed', completed_at = created_at + interval '95 seconds' WHERE id IN (SELECT id FROM extraction_jobs WHERE status = 'processing' ORDER BY id LIMIT 200)",
        "UPDATE extraction_jobs SET status = 'failed', completed_at = LOCALTIMESTAMP, error_message = 'HTTP 503 from https://api/' || id WHERE id IN (SELECT id FROM extraction_jobs WHERE status = 'processing' ORDER BY id DESC LIMIT 100)",
        "UPDATE extraction_jobs SET status = 'pending', completed_at = NULL, error_message = NULL WHERE id IN (SELECT id FROM extraction_jobs WHERE status = 'failed' ORDER BY id LIMIT 150)",
        # created_at moved across minutes, completed_at moved, project moved, error_message changed
        "UPDATE extraction_jobs SET created_at = created_at - interval '90 seconds' WHERE id % 7 = 0",
        "UPDATE extraction_jobs SET completed_at = completed_at + interval '61 seconds' WHERE completed_at IS NOT NULL AND id % 5 = 0",
        "UPDATE extraction_jobs SET project_id = :o WHERE project_id = :p AND id % 3 = 0",
        "UPDATE extraction_jobs SET error_message = 'Vision API error 500 (request id req_' || md5(id::text) || ')' WHERE status = 'failed' AND id % 2 = 0",
        "UPDATE extraction_jobs SET result_data = '{}' WHERE id % 11 = 0",  # nothing counted changes
        "UPDATE extraction_jobs SET status = status",
        # upsert and MERGE: an insert and an update in one statement
        "INSERT INTO extraction_jobs (id, project_id, source_url, extraction_type, status, error_message, completed_at)"
        " SELECT id, project_id, source_url, extraction_type, 'failed', 'Worker worker-9 lost connection', LOCALTIMESTAMP FROM extraction_jobs WHERE id % 19 = 0"
        " UNION ALL SELECT max(id) + 1, :p, 'https://x/up', 'color', 'pending', NULL, NULL FROM extraction_jobs"
        " ON CONFLICT (id) DO UPDATE SET status = excluded.status, error_message = excluded.error_message, completed_at = excluded.completed_at",
        "MERGE INTO extraction_jobs j USING (SELECT g AS id FROM generate_series((SELECT max(id) - 50 FROM extraction_jobs), (SELECT max(id) + 50 FROM extraction_jobs)) AS g) s"
        " ON j.id = s.id"
        " WHEN MATCHED AND j.id % 2 = 0 THEN UPDATE SET status = 'completed', completed_at = j.created_at + interval '2 hours'"
        " WHEN MATCHED THEN DELETE"
        " WHEN NOT MATCHED THEN INSERT (id, project_id, source_url, extraction_type) VALUES (s.id, :o, 'https://x/merge', 'spacing')",
        "SELECT setval(pg_get_serial_sequence('extraction_jobs', 'id'), (SELECT max(id) FROM extraction_jobs))",
        # deletes (the token tables' foreign keys set NULL or cascade)
        "DELETE FROM extraction_jobs WHERE id % 13 = 0",
        "DELETE FROM extraction_jobs WHERE id = (SELECT max(id) FROM extraction_jobs)",
    ]
    for sql in writes:
        execute(engine, sql, p=project, o=other)
        exact(engine)
    # COPY, as a bulk loader writes
    conn = psycopg2.connect(libpq(engine.url))
    try:
        with conn, conn.cursor() as cur:
            rows = "".join(f"{project}\thttps://copy/{i}\tspacing\t{'failed' if i % 3 else 'completed'}\tTimeout after {i}s\t2026-11-25 10:{i % 60:02d}:00\t2026-11-25 11:00:0{i % 10}\n" for i in range(3000))
            cur.copy_expert("COPY extraction_jobs (project_id, source_url, extraction_type, status, error_message, created_at, completed_at) FROM STDIN", io.StringIO(rows))
    finally:
        conn.close()
    exact(engine)
    assert scalar(engine, "SELECT sum(jobs) FROM copythat_rollups.job_counts") == scalar(engine, "SELECT count(*) FROM extraction_jobs")


def test_a_rollback_leaves_no_trace(engine):
    before = rollups(engine)
    with engine.connect() as conn:
        with conn.begin() as transaction:
            conn.execute(text("INSERT INTO extraction_jobs (project_id, source_url, extraction_type, status, error_message, completed_at) SELECT project_id, source_url, extraction_type, 'failed', 'rolled back ' || id, LOCALTIMESTAMP FROM extraction_jobs"))
            conn.execute(text("UPDATE extraction_jobs SET status = 'completed', completed_at = LOCALTIMESTAMP WHERE status <> 'completed'"))
            conn.execute(text("DELETE FROM extraction_jobs WHERE id % 2 = 0"))
            assert rollup_drift(engine=engine).empty  # another session: nothing uncommitted shows
            transaction.rollback()
    assert rollups(engine) == before
    exact(engine)


def test_the_application_role_keeps_them_exact_and_cannot_read_them(engine, db_url):
    org, project = (int(v) for v in engine.connect().execute(text("SELECT organization_id, id FROM projects ORDER BY id LIMIT 1")).one())
    with application_login(db_url) as url:
        conn = psycopg2.connect(libpq(url))
        try:
            with conn, conn.cursor() as cur:
                cur.execute("SET app.organization_id = %s", (str(org),))
                cur.execute("INSERT INTO extraction_jobs (project_id, source_url, extraction_type, status, error_message, completed_at) VALUES (%s, 'x', 'color', 'failed', 'boom 42', LOCALTIMESTAMP)", (project,))
                cur.execute("UPDATE extraction_jobs SET status = 'completed', completed_at = LOCALTIMESTAMP WHERE status = 'pending'")
                cur.execute("DELETE FROM extraction_jobs WHERE id IN (SELECT id FROM extraction_jobs ORDER BY id LIMIT 3)")
                assert cur.rowcount == 3
            with pytest.raises(psycopg2.errors.InsufficientPrivilege), conn, conn.cursor() as cur:
                cur.execute("SELECT * FROM copythat_rollups.job_counts ORDER BY 1")
        finally:
            conn.close()
    assert scalar(engine, "SELECT count(*) FROM copythat_rollups.failure_reasons WHERE reason = 'boom <n>'") == 1
    exact(engine)


def test_concurrent_writers_committing_and_rolling_back_keep_them_exact(engine, db_url):
    org = int(scalar(engine, "SELECT organization_id FROM projects GROUP BY 1 ORDER BY count(*) DESC, 1 LIMIT 1"))
    projects = [int(p) for p in engine.connect().execute(text("SELECT id FROM projects ORDER BY id")).scalars()]
    mine = [int(p) for p in engine.connect().execute(text("SELECT id FROM projects WHERE organization_id = :o ORDER BY id"), {"o": org}).scalars()]
    statements = [
        ("INSERT INTO extraction_jobs (project_id, source_url, extraction_type) VALUES (%(p)s, 'https://w/' || %(n)s, 'color')", False),
        ("INSERT INTO extraction_jobs (project_id, source_url, extraction_type, status, error_message, created_at, completed_at)"
         " SELECT %(p)s, 'https://w/' || i, 'all', 'failed', 'Timeout after ' || i || 's', LOCALTIMESTAMP - make_interval(secs => i), LOCALTIMESTAMP FROM generate_series(1, 1 + %(n)s %% 20) AS i", False),
        ("UPDATE extraction_jobs SET status = 'processing' WHERE id IN (SELECT id FROM extraction_jobs WHERE status = 'pending' ORDER BY random() LIMIT 3)", True),
        ("UPDATE extraction_jobs SET status = 'completed', completed_at = LOCALTIMESTAMP WHERE id IN (SELECT id FROM extraction_jobs WHERE status = 'processing' ORDER BY random() LIMIT 3)", True),
        ("UPDATE extraction_jobs SET status = 'failed', completed_at = LOCALTIMESTAMP, error_message = 'HTTP ' || %(n)s WHERE id IN (SELECT id FROM extraction_jobs WHERE status IN ('pending', 'processing') ORDER BY random() LIMIT 2)", True),
        ("UPDATE extraction_jobs SET status = 'pending', completed_at = NULL, error_message = NULL WHERE id IN (SELECT id FROM extraction_jobs WHERE status = 'failed' ORDER BY random() LIMIT 2)", True),
        ("UPDATE extraction_jobs SET created_at = created_at - interval '1 minute', project_id = %(p)s WHERE id IN (SELECT id FROM extraction_jobs ORDER BY random() LIMIT 2)", True),
        ("DELETE FROM extraction_jobs WHERE id IN (SELECT id FROM extraction_jobs ORDER BY random() LIMIT 2)", True),
    ]
    outcomes = {"commit": 0, "rollback": 0, "retried": 0}
    errors: list[BaseException] = []
    lock = threading.Lock()
    stop = time.monotonic() + 10

    def writer(seed: int, url, organization: int | None, choices: list[int]) -> None:
        rng = random.Random(seed)
        conn = psycopg2.connect(libpq(url))
        try:
            with conn.cursor() as cur:
                if organization is not None:
                    cur.execute("SELECT set_config('app.organization_id', %s, false)", (str(organization),))
                conn.commit()
                n = 0
                while time.monotonic() < stop:
                    n += 1
                    try:
                        for _ in range(rng.choice([1, 1, 1, 2])):  # mostly one statement per transaction, some two
                            sql, _ = rng.choice(statements)
                            cur.execute(sql, {"p": rng.choice(choices), "n": n})
                        verdict = "commit" if rng.random() < 0.7 else "rollback"
                        conn.commit() if verdict == "commit" else conn.rollback()
                    except (psycopg2.errors.DeadlockDetected, psycopg2.errors.SerializationFailure):
                        conn.rollback()
                        verdict = "retried"
                    with lock:
                        outcomes[verdict] += 1
        except BaseException as exc:  # reported by the test
            errors.append(exc)
        finally:
            conn.close()

    with application_login(db_url) as app_url:
        threads = [threading.Thread(target=writer, args=(i, engine.url, None, projects)) for i in range(3)]
        threads += [threading.Thread(target=writer, args=(10 + i, app_url, org, mine)) for i in range(2)]
        for thread in threads:
            thread.start()
        checks = 0
        while any(t.is_alive() for t in threads):
            exact(engine)  # every commit is exact: mid-run too
            checks += 1
            time.sleep(0.2)
        for thread in threads:
            thread.join()
    assert not errors, errors
    print(f"\nconcurrent writers: {outcomes}, {checks} drift checks while they ran")
    assert outcomes["commit"] > 50 and outcomes["rollback"] > 10 and checks >= 2  # deadlocks (retried) cost deadlock_timeout each
    exact(engine)


def _deadlocks(engine) -> int:
    return int(scalar(engine, "SELECT deadlocks FROM pg_stat_database WHERE datname = current_database()"))


def test_writers_touching_the_same_keys_in_opposite_orders_never_deadlock_nor_wait(engine):
    """Multi-statement transactions insert and finish jobs of the same (project, type) keys, half of them in one
    order and half in the other: counters kept in place would lock those rows in opposite orders (a deadlock about
    once a second before the deltas); appended deltas lock nothing. One writer is REPEATABLE READ (no compaction)."""
    projects = [int(p) for p in engine.connect().execute(text("SELECT id FROM projects ORDER BY id LIMIT 3")).scalars()]
    keys = [(p, t) for p in projects for t in ("color", "typography")]
    deadlocks_before = _deadlocks(engine)
    errors: list[BaseException] = []
    commits = [0]
    lock = threading.Lock()
    stop = time.monotonic() + 6

    def writer(k: int) -> None:
        conn = psycopg2.connect(libpq(engine.url))
        try:
            with conn.cursor() as cur:
                cur.execute("SET lock_timeout = '1s'")  # a wait on a lock fails the test, not just a deadlock
                if k == 0:
                    cur.execute("SET default_transaction_isolation = 'repeatable read'")
                conn.commit()
                mine: list[int] = []
                n = 0
                while time.monotonic() < stop:
                    n += 1
                    order = keys if (k + n) % 2 else keys[::-1]
                    for p, t in order:
                        cur.execute("INSERT INTO extraction_jobs (project_id, source_url, extraction_type) VALUES (%s, 'https://o/' || %s, %s) RETURNING id", (p, n, t))
                        mine.append(cur.fetchone()[0])
                        time.sleep(0.001)
                    # finish this writer's own older jobs, the keys in the other order
                    for p, t in order[::-1]:
                        cur.execute(
                            "UPDATE extraction_jobs SET status = CASE WHEN id %% 3 = 0 THEN 'failed' ELSE 'completed' END, completed_at = LOCALTIMESTAMP,"
                            " error_message = CASE WHEN id %% 3 = 0 THEN 'HTTP 500 #' || id END"
                            " WHERE id = ANY(%s) AND project_id = %s AND extraction_type = %s AND status = 'pending'",
                            (mine[:-len(keys)], p, t),
                        )
                        time.sleep(0.001)
                    conn.commit()
                    with lock:
                        commits[0] += 1
        except BaseException as exc:  # reported by the test
            errors.append(exc)
        finally:
            conn.close()

    threads = [threading.Thread(target=writer, args=(k,)) for k in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not errors, errors
    assert _deadlocks(engine) == deadlocks_before
    assert commits[0] > 30, commits
    print(f"\nopposite orders: {commits[0]} transactions of {2 * len(keys)} statements, no deadlock, no lock wait over 1 s")
    exact(engine)


def test_an_insert_never_waits_for_another_uncommitted_insert_of_the_same_keys(engine):
    project = int(scalar(engine, "SELECT min(id) FROM projects"))
    first, second = psycopg2.connect(libpq(engine.url)), psycopg2.connect(libpq(engine.url))
    try:
        with first.cursor() as a, second.cursor() as b:
            b.execute("SET lock_timeout = '100ms'")
            second.commit()
            for status in ("failed", "pending"):  # the same project, type, minute (and reason): the same rollup keys
                values = (project, status, "HTTP 500 while fetching https://x/1", status)
                insert = "INSERT INTO extraction_jobs (project_id, source_url, extraction_type, status, error_message, completed_at) VALUES (%s, 'https://same', 'color', %s, %s, CASE WHEN %s = 'failed' THEN LOCALTIMESTAMP END)"
                a.execute(insert, values)  # stays open: uncommitted
                b.execute(insert, values)  # would wait on the first one's rollup rows and time out before the deltas
                second.commit()
                first.commit()
    finally:
        first.close()
        second.close()
    exact(engine)


def test_compaction_under_concurrent_writers_keeps_them_exact_and_empties_the_deltas(engine):
    stop = threading.Event()
    errors: list[BaseException] = []
    compactions = {"compacted": 0, "busy": 0}

    def writer(seed: int) -> None:
        rng = random.Random(seed)
        conn = psycopg2.connect(libpq(engine.url))
        try:
            with conn.cursor() as cur:
                cur.execute("SELECT id FROM projects ORDER BY id")
                ids = [r[0] for r in cur.fetchall()]
                while not stop.is_set():
                    try:
                        cur.execute(
                            "INSERT INTO extraction_jobs (project_id, source_url, extraction_type, status, error_message, created_at, completed_at)"
                            " SELECT %s, 'https://c/' || i, 'spacing', (ARRAY['pending', 'completed', 'failed'])[1 + i %% 3], 'Worker ' || i || ' lost',"
                            " LOCALTIMESTAMP - make_interval(mins => i), LOCALTIMESTAMP FROM generate_series(1, %s) AS i",
                            (rng.choice(ids), rng.randint(1, 40)),
                        )
                        cur.execute("UPDATE extraction_jobs SET status = 'completed', completed_at = LOCALTIMESTAMP WHERE id IN (SELECT id FROM extraction_jobs WHERE status = 'pending' AND extraction_type = 'spacing' ORDER BY id DESC LIMIT 3)")
                        if rng.random() < 0.2:
                            cur.execute("DELETE FROM extraction_jobs WHERE id IN (SELECT id FROM extraction_jobs WHERE extraction_type = 'spacing' ORDER BY id DESC LIMIT 5)")
                        conn.commit() if rng.random() < 0.8 else conn.rollback()
                    except psycopg2.errors.DeadlockDetected:  # two writers' UPDATE and DELETE of the same job rows: not the rollups
                        conn.rollback()
        except BaseException as exc:
            errors.append(exc)
        finally:
            conn.close()

    threads = [threading.Thread(target=writer, args=(20 + k,)) for k in range(4)]
    for thread in threads:
        thread.start()
    try:
        checks = 0
        for _ in range(12):
            result = compact_rollups(wait=0, engine=engine)
            compactions["compacted" if result["compacted"] else "busy"] += 1
            exact(engine)
            checks += 1
            time.sleep(0.2)
    finally:
        stop.set()
        for thread in threads:
            thread.join()
    assert not errors, errors
    assert compactions["compacted"] > 0, compactions
    assert compact_rollups(engine=engine)["compacted"]
    assert rollup_state(engine=engine)["delta_rows"] == 0  # every writer committed or rolled back: nothing left over
    exact(engine)
    print(f"\ncompactions while 4 writers ran: {compactions}, {checks} drift checks")


def test_truncate_empties_them_and_counting_goes_on(engine):
    execute(engine, "TRUNCATE extraction_jobs CASCADE")
    assert all(not rows for rows in rollups(engine).values())
    execute(engine, "INSERT INTO extraction_jobs (project_id, source_url, extraction_type, status, completed_at) SELECT id, 'x', 'color', 'completed', LOCALTIMESTAMP FROM projects")
    exact(engine)
    assert rollup_state(engine=engine)["complete"]


# ---- the online fill ----

JOBS = 200_000


def _many_jobs(url) -> None:
    """A database at BEFORE holding JOBS jobs (a quarter failed, with messages), set apart for the fill."""
    migrations.upgrade(BEFORE, url=url)
    engine = get_engine(url)
    seed_database(200, 4, seed=3, engine=engine, tokens=False)
    execute(
        engine,
        "INSERT INTO extraction_jobs (project_id, source_url, extraction_type, status, error_message, created_at, completed_at)"
        " SELECT p.ids[1 + i % array_length(p.ids, 1)], 'https://f/' || i, (ARRAY['color', 'spacing', 'typography', 'all'])[1 + i % 4],"
        " (ARRAY['pending', 'processing', 'completed', 'failed'])[1 + i % 4], CASE WHEN i % 4 = 3 THEN 'Timeout after ' || i % 90 || 's at https://f/' || i END,"
        " LOCALTIMESTAMP - make_interval(secs => i), CASE WHEN i % 4 >= 2 THEN LOCALTIMESTAMP - make_interval(secs => i) + make_interval(secs => i % 700) END"
        " FROM generate_series(1, :n) AS i, (SELECT array_agg(id ORDER BY id) AS ids FROM projects) AS p",
        n=JOBS - 200,
    )


class Writer(threading.Thread):
    """Inserts a job or finishes one every ~10 ms on its own connection, and records how long each write took."""

    def __init__(self, url) -> None:
        super().__init__(daemon=True)
        self.url, self.stop, self.stalls, self.errors = url, threading.Event(), [], []

    def run(self) -> None:
        conn = psycopg2.connect(libpq(self.url))
        conn.autocommit = True
        try:
            with conn.cursor() as cur:
                cur.execute("SELECT min(id) FROM projects")
                project = cur.fetchone()[0]
                n, rng = 0, random.Random(5)
                while not self.stop.is_set():
                    n += 1
                    started = time.perf_counter()
                    if n % 2:
                        cur.execute("INSERT INTO extraction_jobs (project_id, source_url, extraction_type) VALUES (%s, 'https://w', 'color')", (project,))
                    else:  # any job: one the fill has not reached yet, or one it has
                        cur.execute(
                            "UPDATE extraction_jobs SET status = 'failed', completed_at = LOCALTIMESTAMP, error_message = 'HTTP 500 #' || id"
                            " WHERE id = %s AND status IN ('pending', 'processing')",
                            (rng.randint(1, JOBS + n),),
                        )
                    self.stalls.append(time.perf_counter() - started)
                    time.sleep(0.01)
        except BaseException as exc:
            self.errors.append(exc)
        finally:
            conn.close()

    def __enter__(self) -> Writer:
        self.start()
        return self

    def __exit__(self, *exc) -> None:
        self.stop.set()
        self.join()
        assert not self.errors, self.errors


@pytest.fixture(scope="module")
def big(server):
    url = server.create_database("rollup_fill")
    _many_jobs(url)
    yield url
    dispose_engines()
    server.drop_database(url)


def test_the_online_fill_under_a_writer_is_exact_and_stalls_it_briefly(big):
    engine = get_engine(big)
    with Writer(big) as writer:
        time.sleep(0.2)
        started = time.perf_counter()
        assert migrations.upgrade(REVISION, url=big) == REVISION
        took = time.perf_counter() - started
        time.sleep(0.2)
    stalls = sorted(writer.stalls)
    print(f"\nupgrade with the fill of {JOBS:,} jobs: {took:.1f} s; writer: {len(stalls)} writes, p50 {stalls[len(stalls) // 2] * 1000:.1f} ms, "
          f"p99 {stalls[int(len(stalls) * 0.99)] * 1000:.1f} ms, worst {stalls[-1] * 1000:.0f} ms")
    assert len(stalls) > 20 and stalls[-1] < 1.0  # a correctness bound: no write waits for the whole fill
    state = rollup_state(engine=engine)
    assert state["complete"] and state["filled_to"] >= JOBS
    exact(engine)
    assert scalar(engine, "SELECT sum(jobs) FROM copythat_rollups.job_counts") == scalar(engine, "SELECT count(*) FROM extraction_jobs")


def test_a_fill_cancelled_midway_is_exact_so_far_and_resumes(big):
    engine = get_engine(big)
    migrations.downgrade(BEFORE, url=big)
    assert scalar(engine, "SELECT to_regnamespace('copythat_rollups')") is None
    assert scalar(engine, "SELECT count(*) FROM pg_indexes WHERE indexname LIKE 'ix_extraction_jobs_%' AND indexname NOT IN ('ix_extraction_jobs_project_id', 'ix_extraction_jobs_status_created_at')") == 0
    failure: list[BaseException] = []

    def upgrade() -> None:
        try:
            migrations.upgrade(REVISION, url=big)
        except BaseException as exc:
            failure.append(exc)

    seen = None
    with Writer(big) as writer:
        migrating = threading.Thread(target=upgrade)
        migrating.start()
        watcher = psycopg2.connect(libpq(big))
        watcher.autocommit = True
        try:
            with watcher.cursor() as cur:
                while migrating.is_alive() and seen is None:
                    try:
                        cur.execute("SELECT filled_to FROM copythat_rollups.fill_state")
                        row = cur.fetchone()
                    except (psycopg2.errors.UndefinedTable, psycopg2.errors.InvalidSchemaName):  # not made (committed) yet
                        row = None
                    if row and 0 < (row[0] or 0) < JOBS // 2:
                        cur.execute("SELECT pg_cancel_backend(pid) FROM pg_stat_activity WHERE query LIKE '%fill_state%FOR UPDATE%' AND pid <> pg_backend_pid() AND datname = current_database()")
                        seen = row[0] if any(r[0] for r in cur.fetchall()) else None
                    time.sleep(0.005)
        finally:
            watcher.close()
        migrating.join()
        assert seen is not None, "the fill ended before it could be cancelled"
        assert failure and "canceling statement due to user request" in str(failure[0]), failure
        assert migrations.current(url=big) == BEFORE  # the revision is not recorded until its fill completes
        state = rollup_state(engine=engine)
        assert not state["complete"] and seen <= state["filled_to"] < JOBS and 0 < state["share_filled"] < 1
        exact(engine)  # the jobs up to the watermark, exactly, while the writer goes on
        assert migrations.upgrade(REVISION, url=big) == REVISION
    print(f"\ncancelled at filled_to {seen:,} of {JOBS:,}; resumed; writer worst stall {max(writer.stalls) * 1000:.0f} ms")
    assert rollup_state(engine=engine)["complete"]
    exact(engine)
    assert scalar(engine, "SELECT sum(jobs) FROM copythat_rollups.job_counts") == scalar(engine, "SELECT count(*) FROM extraction_jobs")
    assert migrations.check(url=big) == []


def test_downgrade_drops_it_all_and_writes_go_on_then_upgrade_counts_them(big):
    engine = get_engine(big)
    migrations.downgrade(BEFORE, url=big)
    assert scalar(engine, "SELECT count(*) FROM pg_trigger WHERE tgrelid = 'extraction_jobs'::regclass AND tgname LIKE 'extraction_jobs_rollups_%'") == 0
    assert scalar(engine, "SELECT to_regnamespace('copythat_rollups')") is None
    for read in (rollup_state, rollup_drift):
        with pytest.raises(MigrationError, match="job rollups.*migrate upgrade"):
            read(engine=engine)
    execute(engine, "UPDATE extraction_jobs SET status = 'completed', completed_at = LOCALTIMESTAMP WHERE id % 10 = 0")
    execute(engine, "DELETE FROM extraction_jobs WHERE id % 17 = 0")
    assert migrations.upgrade(url=big) == migrations.heads()[0]
    exact(engine)
