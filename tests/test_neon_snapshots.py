"""Neon snapshots, the backup schedule and point-in-time restore, through the library and the CLI, against
tests/neon_fake.py (its branches, snapshots and history points are real databases on the test server)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

import pytest
from neon_fake import FakeNeon
from sqlalchemy import create_engine, text
from sqlalchemy.pool import NullPool

from copythat_ops import migrations
from copythat_ops.engine import dispose_engines, get_engine
from copythat_ops.errors import ConfigError, InputError
from copythat_ops.recovery import neon, pitr
from copythat_ops.seed import seed_database

CLI = str(Path(sys.executable).parent / "copythat-ops")
KEY = "neon-key-SECRET-4f9d2c"


@pytest.fixture(scope="module")
def main(db_url):
    migrations.upgrade(url=db_url)
    seed_database(200, 3, seed=4, engine=get_engine(db_url))
    dispose_engines()
    return db_url


@pytest.fixture
def fake(server, main):
    with FakeNeon(server, main, api_key=KEY) as api:
        yield api
    dispose_engines()
    for database in api.branch_databases():
        server.drop_database(main.set(database=database))


def client(fake: FakeNeon, **kw) -> neon.Neon:
    return neon.Neon(kw.pop("api_key", fake.api_key), kw.pop("project_id", fake.project_id), base_url=fake.url, **kw)


def scalar(url, sql: str):
    engine = create_engine(url, poolclass=NullPool)
    try:
        with engine.connect() as conn:
            return conn.execute(text(sql)).scalar()
    finally:
        engine.dispose()


def execute(url, sql: str) -> None:
    engine = create_engine(url, poolclass=NullPool, isolation_level="AUTOCOMMIT")
    try:
        with engine.connect() as conn:
            conn.execute(text(sql))
    finally:
        engine.dispose()


def jobs(url) -> int:
    return scalar(url, "SELECT count(*) FROM extraction_jobs")


def of(fake: FakeNeon, database: str):
    return fake.main.set(database=database)


def polls(fake: FakeNeon) -> int:
    return sum(1 for method, path, _ in fake.requests if method == "GET" and "/operations/" in path)


def cli(fake: FakeNeon, *args: str, url=None, key: str | None = None, debug: bool = False) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k not in ("COPYTHAT_ENV_FILE",)}
    env.update({"DATABASE_URL": (url or fake.main).render_as_string(hide_password=False), "NEON_API_KEY": key or fake.api_key,
                "NEON_PROJECT_ID": fake.project_id, "NEON_API_URL": fake.url})
    if debug:
        env["COPYTHAT_DEBUG"] = "1"
    return subprocess.run([CLI, *args], env=env, capture_output=True, text=True, timeout=180, stdin=subprocess.DEVNULL)


# --- the library -------------------------------------------------------------------------------


def test_a_snapshot_is_a_copy_taken_through_the_published_endpoint_and_waited_on(fake, main):
    api = client(fake)
    before = polls(fake)
    taken = api.create_snapshot(name="before-upgrade", expires_at="2026-12-31T00:00:00Z")
    assert taken["id"].startswith("snap-") and taken["name"] == "before-upgrade" and taken["source_branch_id"] == "br-main"
    assert taken["expires_at"] == "2026-12-31T00:00:00Z" and taken["manual"] is True
    posted = [(path, query) for method, path, query in fake.queries if method == "POST" and path.endswith("/snapshot")]
    assert posted == [("/api/v2/projects/icy-lake-00000000/branches/br-main/snapshot", {"name": "before-upgrade", "expires_at": "2026-12-31T00:00:00Z"})]
    assert polls(fake) - before == 2  # scheduling -> running -> finished, one state per poll
    assert fake.operations and all(op["status"] == "finished" for op in fake.operations.values())
    snap_db = fake.snapshots[taken["id"]]["database"]
    assert jobs(of(fake, snap_db)) == jobs(main) == 200
    listed = api.snapshots()
    assert listed.columns.tolist() == neon.SNAPSHOT_COLUMNS and listed["id"].tolist() == [taken["id"]]
    api.delete_snapshot(taken["id"])
    assert api.snapshots().empty and fake.snapshots == {}
    assert scalar(main, f"SELECT count(*) FROM pg_database WHERE datname = '{snap_db}'") == 0


def test_a_snapshot_as_of_a_time_holds_that_time_s_rows(fake, main):
    api = client(fake)
    fake.checkpoint()
    between = datetime.now(UTC)
    execute(main, "DELETE FROM extraction_jobs WHERE id IN (SELECT id FROM extraction_jobs ORDER BY id LIMIT 7)")
    try:
        then = api.create_snapshot(timestamp=between)
        assert then["timestamp"] == neon.iso_time(between) and fake.unrecorded == []
        assert jobs(of(fake, fake.snapshots[then["id"]]["database"])) == 200 and jobs(main) == 193
        with pytest.raises(InputError, match="give lsn or timestamp, not both"):
            api.create_snapshot(timestamp=between, lsn="0/1")
    finally:
        reseed(fake, main)


def reseed(fake, main) -> None:
    """Put back the 200 seeded jobs a test deleted (from the first history point, a copy of the seeded state)."""
    dispose_engines()
    first = fake.history["br-main"][0]["database"] if fake.history.get("br-main") else None
    if first and jobs(main) != 200:
        with fake.server.engine.connect() as conn:
            conn.execute(text(f'DROP DATABASE "{main.database}" WITH (FORCE)'))
            conn.execute(text(f'CREATE DATABASE "{main.database}" TEMPLATE "{first}"'))


def test_restore_previews_in_a_new_branch_and_finalize_replaces_the_source(fake, main):
    api = client(fake)
    taken = api.create_snapshot()
    execute(main, "DELETE FROM extraction_jobs WHERE id IN (SELECT id FROM extraction_jobs ORDER BY id LIMIT 11)")
    restored = api.restore_snapshot(taken["id"], name="preview")
    assert restored["name"] == "preview" and restored["id"].startswith("br-")
    assert jobs(main) == 189  # a preview changes nothing existing
    assert jobs(of(fake, fake.database_of(restored["id"]))) == 200
    assert [body for method, path, body in fake.requests if path.endswith("/restore")] == [{"finalize_restore": False, "name": "preview"}]
    done = api.finalize_restore(restored["id"], name="main-before-restore")
    assert done == {"branch_id": restored["id"], "operations": 1}
    assert jobs(main) == 200  # the same URL now reaches the restored data
    names = api.branches().set_index("id")
    assert names.loc[restored["id"], "name"] == "main" and bool(names.loc[restored["id"], "default"])
    assert names.loc["br-main", "name"] == "main-before-restore" and jobs(of(fake, fake.database_of("br-main"))) == 189
    with pytest.raises(neon.NeonError, match=r"Neon refused POST .*finalize_restore \(400 branch .* was not restored from a snapshot"):
        api.finalize_restore(restored["id"])


def test_restore_with_finalize_does_both_and_an_unknown_snapshot_is_named(fake, main):
    api = client(fake)
    taken = api.create_snapshot()
    execute(main, "DELETE FROM extraction_jobs WHERE id IN (SELECT id FROM extraction_jobs ORDER BY id LIMIT 3)")
    restored = api.restore_snapshot(taken["id"], finalize=True)
    assert jobs(main) == 200 and api.default_branch() == restored["id"]
    with pytest.raises(neon.NeonError, match=r"Neon has no snapshot snap-nothing \(snapshot snap-nothing not found\)\. Fix: list the snapshots"):
        api.restore_snapshot("snap-nothing")


def test_the_backup_schedule_is_read_and_replaced(fake):
    api = client(fake)
    assert api.backup_schedule().empty
    shown = api.set_backup_schedule(["daily hour=4 retention=7 days", {"frequency": "weekly", "day": 1, "hour": 4, "retention": "28 days"}])
    assert fake.schedules["br-main"] == [{"frequency": "daily", "hour": 4, "retention_seconds": 604800},
                                         {"frequency": "weekly", "day": 1, "hour": 4, "retention_seconds": 2419200}]
    assert shown["retention"].tolist() == ["7 days", "28 days"]
    with pytest.raises(InputError, match="needs frequency daily, weekly or monthly \\(got 'hourly'\\)"):
        api.set_backup_schedule(["hourly hour=4"])
    with pytest.raises(InputError, match="backup schedule hour 25 is out of range"):
        api.set_backup_schedule(["daily hour=25"])
    assert api.set_backup_schedule([]).empty


# --- compute endpoints -------------------------------------------------------------------------


def test_a_branch_without_a_compute_gets_one_to_be_connected_to(fake, main):
    api = client(fake)
    backup = neon.snapshot(client=api)  # a backup branch: no compute
    assert api.endpoints(backup["id"]).empty
    with pytest.raises(neon.NeonError, match=r"Neon cannot give a connection string for that branch .*read_write endpoint not found.*Fix: create one"):
        api.connection_uri(backup["id"], main.database, main.username)
    with pytest.raises(neon.NeonError, match="has no read-write compute endpoint to connect to"):
        api.read_write_endpoint(backup["id"], create=False)
    made = api.read_write_endpoint(backup["id"])
    assert made["created"] is True and made["branch_id"] == backup["id"] and made["type"] == "read_write" and made["id"].startswith("ep-")
    posted = [(path, body) for method, path, body in fake.requests if method == "POST" and path.endswith("/endpoints")]
    assert posted == [(f"/api/v2/projects/{fake.project_id}/endpoints", {"endpoint": {"branch_id": backup["id"], "type": "read_write"}})]
    started = [op for op in fake.operations.values() if op.get("endpoint_id") == made["id"]]
    assert [(op["action"], op["status"]) for op in started] == [("start_compute", "finished")]  # waited on
    assert api.read_write_endpoint(backup["id"]) == {**made, "created": False}  # one is enough: not made twice
    assert jobs(api.connection_uri(backup["id"], main.database, main.username)) == 200
    with pytest.raises(neon.NeonError, match=r"Neon refused POST .*/endpoints \(400 branch .* already has a read_write endpoint"):
        api.create_endpoint(backup["id"])
    replica = api.create_endpoint(backup["id"], "read_only")
    assert sorted(api.endpoints(backup["id"])["type"]) == ["read_only", "read_write"]
    api.delete_endpoint(replica["id"])
    assert api.endpoints(backup["id"])["id"].tolist() == [made["id"]]
    with pytest.raises(neon.NeonError, match=r"Neon has no endpoints at .*\(endpoint .* not found\)"):
        api.delete_endpoint(replica["id"])
    with pytest.raises(InputError, match="an endpoint's type is read_write or read_only"):
        api.create_endpoint(backup["id"], "primary")
    with pytest.raises(neon.NeonError, match=r"\(branch br-nothing not found\)"):
        api.create_endpoint("br-nothing")
    api.delete_branch(backup["id"])
    assert made["id"] not in set(api.endpoints()["id"])  # a branch's computes go with it


def test_point_in_time_diff_and_a_restored_snapshot_get_a_compute_when_they_have_none(fake, main):
    api = client(fake)
    taken = api.create_snapshot()
    restored = api.restore_snapshot(taken["id"], name="look")
    assert fake.endpoints_of(restored["id"]) == []  # restored from a snapshot: no compute yet
    diff = pitr.point_in_time_diff(restored["id"], client=api, url=main)
    assert set(diff[diff["kind"] == "rows"]["change"]) == {0}
    assert [e["type"] for e in fake.endpoints_of(restored["id"])] == ["read_write"]
    done = api.finalize_restore(restored["id"])
    assert [e["id"] for e in fake.endpoints_of(restored["id"])] == ["ep-main"]  # the target's computes replace the restored branch's
    assert done["branch_id"] == restored["id"]


# --- retries --------------------------------------------------------------------------------


def attempts(fake: FakeNeon, method: str, suffix: str) -> int:
    return sum(1 for m, path, _ in fake.requests if m == method and path.endswith(suffix))


def test_429_is_retried_after_the_time_it_asks(fake):
    api = client(fake, backoff=0.01)
    fake.answer_next(429, 2, retry_after="1")
    assert api.snapshots().empty
    assert attempts(fake, "GET", "/snapshots") == 3
    assert [(status, pause) for _, _, status, pause in api.retried] == [(429, 1.0), (429, 1.0)]


def test_5xx_is_retried_with_growing_pauses_and_given_up_after_the_cap(fake):
    api = client(fake, backoff=0.01, retries=3)
    fake.answer_next(500)
    fake.answer_next(502)
    assert api.snapshots().empty and attempts(fake, "GET", "/snapshots") == 3
    assert [pause for *_, pause in api.retried] == [0.01, 0.02]
    fake.answer_next(503, 10)
    with pytest.raises(neon.NeonError, match=r"answered GET .*/snapshots with 503 service unavailable after 4 attempts"):
        api.snapshots()
    assert attempts(fake, "GET", "/snapshots") == 3 + 4
    fake.forced.clear()


def test_a_post_that_may_have_been_applied_is_not_sent_again(fake):
    api = client(fake, backoff=0.01)
    fake.answer_next(500)
    with pytest.raises(neon.NeonError, match="may or may not have been applied, so it was not sent again"):
        api.create_snapshot("br-main")
    assert attempts(fake, "POST", "/snapshot") == 1 and fake.snapshots == {}
    fake.answer_next(503)  # unavailable: nothing was done, so it is sent again
    assert api.create_snapshot("br-main")["id"] in fake.snapshots and attempts(fake, "POST", "/snapshot") == 3


def test_a_retry_after_beyond_the_cap_is_said_not_slept(fake):
    api = client(fake)
    fake.answer_next(429, retry_after="3600")
    with pytest.raises(neon.NeonError, match=r"rate-limiting this API key \(429; it asks to wait 3600 s\)"):
        api.snapshots()
    assert attempts(fake, "GET", "/snapshots") == 1


# --- point in time ----------------------------------------------------------------------------


def test_point_in_time_restores_into_a_new_branch_shows_the_differences_and_finalizes_when_asked(fake, main):
    api = client(fake)
    fake.checkpoint()
    between = datetime.now(UTC)
    execute(main, "DELETE FROM extraction_jobs WHERE id IN (SELECT id FROM extraction_jobs ORDER BY id LIMIT 13)")
    execute(main, "ALTER TABLE projects ADD COLUMN archived boolean")
    made = pitr.point_in_time(between, client=api)
    assert made["parent_id"] == "br-main" and made["timestamp"] == neon.iso_time(between) and fake.unrecorded == []
    posted = [body for method, path, body in fake.requests if method == "POST" and path.endswith("/branches")][-1]
    assert posted["branch"]["parent_timestamp"] == made["timestamp"] and posted["endpoints"] == [{"type": "read_write"}]
    assert jobs(main) == 187  # nothing existing changed
    diff = pitr.point_in_time_diff(made["branch_id"], client=api, url=main)
    assert diff.columns.tolist() == pitr.DIFF_COLUMNS
    rows = diff[diff["kind"] == "rows"].set_index("table")
    assert rows.loc["extraction_jobs", ["now", "restored", "change"]].tolist() == [187, 200, 13]
    assert rows.loc["projects", "change"] == 0
    schema = diff[diff["kind"] != "rows"]
    assert schema[["kind", "table", "name", "change"]].values.tolist() == [["column", "projects", "archived", "only now"]]
    done = pitr.finalize_point_in_time(made["branch_id"], client=api, preserve_under_name="before-pitr")
    assert done == {"branch_id": "br-main", "restored_from": made["branch_id"], "preserved_as": "before-pitr"}
    assert jobs(main) == 200 and scalar(main, "SELECT count(*) FROM information_schema.columns WHERE table_name = 'projects' AND column_name = 'archived'") == 0
    kept = api.branches().set_index("name").loc["before-pitr", "id"]
    assert jobs(of(fake, fake.database_of(kept))) == 187
    assert made["branch_id"] not in fake.branches  # the point-in-time branch is gone once it served


def test_point_in_time_by_lsn_and_its_input_errors(fake, main):
    api = client(fake)
    point = fake.checkpoint()
    made = pitr.point_in_time(lsn=point["lsn"], client=api)
    assert fake.unrecorded == [] and jobs(of(fake, fake.database_of(made["branch_id"]))) == 200
    pitr.discard_point_in_time(made["branch_id"], client=api)
    assert made["branch_id"] not in fake.branches
    with pytest.raises(InputError, match="needs a time or an LSN"):
        pitr.point_in_time(client=api)
    with pytest.raises(InputError, match=r"timestamp is not a time \('yesterday'\)"):
        pitr.point_in_time("yesterday", client=api)


# --- the CLI ---------------------------------------------------------------------------------


def test_cli_snapshot_verbs(fake, main):
    made = cli(fake, "--format", "json", "db", "snapshot", "create", "--name", "nightly")
    assert made.returncode == 0, made.stderr
    taken = json.loads(made.stdout)
    assert taken["name"] == "nightly" and taken["id"] in fake.snapshots
    listed = cli(fake, "--format", "csv", "db", "snapshot", "list")
    assert listed.returncode == 0 and taken["id"] in listed.stdout and listed.stdout.startswith("id,name,source_branch_id")
    restored = cli(fake, "--format", "json", "db", "snapshot", "restore", taken["id"], "--name", "look")
    assert restored.returncode == 0, restored.stderr
    branch = json.loads(restored.stdout)["id"]
    assert f"copythat-ops db snapshot finalize {branch}" in restored.stderr and fake.default_branch()["id"] == "br-main"
    final = cli(fake, "db", "snapshot", "finalize", branch)  # a local database: no question
    assert final.returncode == 0, final.stderr
    assert fake.default_branch()["id"] == branch
    scheduled = cli(fake, "--format", "csv", "db", "snapshot", "schedule", "set", "daily hour=4 retention=7 days")
    assert scheduled.returncode == 0, scheduled.stderr
    assert "daily" in cli(fake, "db", "snapshot", "schedule", "show").stdout
    assert cli(fake, "db", "snapshot", "schedule").returncode == 0
    gone = cli(fake, "db", "snapshot", "delete", taken["id"])
    assert gone.returncode == 0 and gone.stdout.strip() == f"deleted snapshot {taken['id']}" and fake.snapshots == {}
    missing = cli(fake, "db", "snapshot", "delete", taken["id"])
    assert missing.returncode == 2 and missing.stderr.startswith(f"error: Neon has no snapshot {taken['id']}") and missing.stderr.count("\n") == 1


def test_cli_pitr_shows_the_differences_and_keeps_the_branch(fake, main):
    fake.checkpoint()
    between = neon.iso_time(datetime.now(UTC))
    execute(main, "DELETE FROM extraction_jobs WHERE id IN (SELECT id FROM extraction_jobs ORDER BY id LIMIT 5)")
    try:
        shown = cli(fake, "--format", "json", "db", "pitr", "--at", between)
        assert shown.returncode == 0, shown.stderr
        rows = {(r["kind"], r["table"]): r for r in json.loads(shown.stdout)}
        assert rows[("rows", "extraction_jobs")]["change"] == 5 and rows[("rows", "extraction_jobs")]["restored"] == 200
        assert "1 difference(s) from now: row counts of 1 table(s), 0 schema object(s)" in shown.stderr
        branch = [b for b in fake.branches.values() if b["name"].startswith("pitr-")][0]["id"]
        assert f"copythat-ops db pitr --branch {branch} --finalize" in shown.stderr and jobs(main) == 195
        dropped = cli(fake, "db", "pitr", "--branch", branch, "--discard")
        assert dropped.returncode == 0 and branch not in fake.branches
        wrong = cli(fake, "db", "pitr", "--at", "soon")
        assert wrong.returncode == 2 and wrong.stderr.startswith("error: --timestamp is not a time ('soon')"), wrong.stderr
    finally:
        reseed(fake, main)


def remote_looking(url):
    """A URL that names a remote host but still reaches the test server."""
    if url.host is None:
        return url.set(host="db.example.com")
    return url.set(host="db.example.com").update_query_dict({"hostaddr": url.host})


def test_cli_finalize_asks_first_on_a_remote_database(server, main):
    remote = remote_looking(main)
    with FakeNeon(server, remote, api_key=KEY) as api:
        try:
            api.checkpoint()
            between = neon.iso_time(datetime.now(UTC))
            execute(main, "DELETE FROM extraction_jobs WHERE id IN (SELECT id FROM extraction_jobs ORDER BY id LIMIT 9)")
            refused = cli(api, "db", "pitr", "--at", between, "--finalize", url=remote)
            assert refused.returncode == 2, refused.stderr
            assert "db pitr --finalize (Neon project icy-lake-00000000: the default branch becomes branch br-" in refused.stderr
            assert "not local; nothing was changed" in refused.stderr and "Fix: add --yes" in refused.stderr
            assert jobs(main) == 191 and not [r for r in api.requests if r[1].endswith("/restore")]
            branch = [b for b in api.branches.values() if b["name"].startswith("pitr-")][0]["id"]
            taken = client(api).create_snapshot()
            quick = cli(api, "db", "snapshot", "restore", taken["id"], "--finalize", url=remote)
            assert quick.returncode == 2 and "not local; nothing was changed" in quick.stderr
            assert not [r for r in api.requests if r[1].endswith("/restore")]  # asked before anything was sent
            done = cli(api, "db", "pitr", "--branch", branch, "--finalize", "--yes", url=remote)
            assert done.returncode == 0, done.stderr
            assert "finalized: branch br-main is now the state of" in done.stderr and jobs(main) == 200
        finally:
            dispose_engines()
            for database in api.branch_databases():
                server.drop_database(main.set(database=database))


def test_the_api_key_is_never_shown(fake, main):
    api = client(fake)
    assert KEY not in repr(api) and KEY not in str(vars(api).get("retried"))
    fake.answer_next(429, retry_after="3600")
    limited = cli(fake, "db", "snapshot", "list", debug=True)
    fake.answer_next(500)
    failed_post = cli(fake, "db", "snapshot", "create", "--branch", "br-main", debug=True)
    missing = cli(fake, "db", "snapshot", "restore", "snap-none", debug=True)
    rejected = cli(fake, "db", "snapshot", "list", key="neon-wrong-SECRET-77aa", debug=True)
    for done in (limited, failed_post, missing, rejected):
        assert done.returncode == 2, done.stderr
        assert "Traceback" in done.stderr  # COPYTHAT_DEBUG=1 shows where
        assert KEY not in done.stdout + done.stderr and "neon-wrong-SECRET-77aa" not in done.stdout + done.stderr
    assert "rate-limiting" in limited.stderr and "may or may not have been applied" in failed_post.stderr
    assert "Neon rejected NEON_API_KEY (401 authentication required)" in rejected.stderr
    with pytest.raises(ConfigError) as caught:
        client(fake, api_key="neon-wrong-SECRET-77aa").snapshots()
    assert "neon-wrong-SECRET-77aa" not in str(caught.value)


def test_cli_input_errors_are_one_line_in_its_words(fake):
    discard = cli(fake, "db", "pitr", "--lsn", "0/1", "--discard")
    assert discard.returncode == 2 and discard.stderr.startswith("error: --discard needs --branch") and discard.stderr.count("\n") == 1
    assert not [r for r in fake.requests if r[0] == "POST"]  # refused before anything was made
    empty = cli(fake, "db", "snapshot", "schedule", "set")
    assert empty.returncode == 2 and "schedule set needs entries, or --none" in empty.stderr
    bad = cli(fake, "db", "snapshot", "schedule", "set", "hourly hour=4")
    assert bad.returncode == 2 and "needs frequency daily, weekly or monthly (got 'hourly')" in bad.stderr and fake.schedules == {}
    both = cli(fake, "db", "snapshot", "create", "--at", "2026-11-25T12:00:00Z", "--lsn", "0/1")
    assert both.returncode == 2 and "not allowed with argument" in both.stderr
