"""Restore drills, the figures a backup records, retention, and the backup checks of health(), against the real test server."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pandas as pd
import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.pool import NullPool

from copythat_ops import migrations, monitor
from copythat_ops.engine import dispose_engines, get_engine
from copythat_ops.errors import InputError
from copythat_ops.recovery import drills as drilling
from copythat_ops.recovery import dumps
from copythat_ops.recovery.dumps import LeftoverWarning
from copythat_ops.recovery.pgtools import host_tag
from copythat_ops.seed import seed_database

ROOT = Path(__file__).resolve().parents[1]
CLI = str(Path(sys.executable).parent / "copythat-ops")


def cli(*args: str, url, env: dict | None = None) -> subprocess.CompletedProcess:
    environment = {**os.environ, "DATABASE_URL": url.render_as_string(hide_password=False), **(env or {})}
    return subprocess.run([CLI, *args], env=environment, capture_output=True, text=True, timeout=300)


def scratch_databases(server, source: str) -> list[str]:
    with server.engine.connect() as conn:
        return [r[0] for r in conn.execute(text("SELECT datname FROM pg_database WHERE datname LIKE :p ORDER BY 1"), {"p": source[:20] + "%\\_drill\\_%"})]


def execute(url, *statements: str) -> None:
    engine = create_engine(url, poolclass=NullPool)
    with engine.begin() as conn:
        for statement in statements:
            conn.execute(text(statement))
    engine.dispose()


@pytest.fixture(scope="module")
def source(db_url):
    """A database at head (the drills table included), with jobs in it."""
    migrations.upgrade(url=db_url)
    seed_database(300, 5, seed=7, engine=get_engine(db_url))
    dispose_engines()
    return db_url


def test_a_backup_records_rows_and_key_checksums_of_the_snapshot_it_dumped(source, tmp_path):
    taken = dumps.backup(url=source, folder=tmp_path)
    figures = dumps.backup_figures(taken["path"])
    assert figures["database"] == source.database and figures["revision"] == migrations.current(url=source)
    tables = {(t["schema"], t["table"]): t for t in figures["tables"]}
    jobs = tables[("public", "extraction_jobs")]
    assert jobs["rows"] == 300 and jobs["key"] == ["id"] and jobs["checksum"] is not None
    assert tables[("public", "alembic_version")]["rows"] == 1
    assert taken["tables"] == len(figures["tables"])


def test_a_drill_restores_verifies_times_records_and_drops_its_scratch_database(source, server, tmp_path):
    taken = dumps.backup(url=source, folder=tmp_path)
    report = drilling.drill(url=source, folder=tmp_path)
    a = report.attrs
    assert a["status"] == "passed", a["detail"]
    assert a["backup"] == taken["path"].name and a["backup_kind"] == "pg_dump"
    assert a["rto_seconds"] > 0 and a["rpo_seconds"] >= 0 and a["revision"] == migrations.current(url=source)
    assert bool(report["ok"].all()) and "public.extraction_jobs" in set(report["schema"] + "." + report["table"])
    assert scratch_databases(server, source.database) == []
    history = drilling.drills(engine=get_engine(source))
    assert history["id"].iloc[0] == a["drill_id"] and history["status"].iloc[0] == "passed"
    assert history["backup"].iloc[0] == taken["path"].name and history["tables_failed"].iloc[0] == 0
    assert dumps.backup_figures(taken["path"])["drills"][-1]["status"] == "passed"
    assert drilling.summary(report).startswith(f"drill passed: {taken['path'].name} restored in ")


def test_a_backup_that_does_not_hold_what_was_counted_fails_the_drill(source, server, tmp_path):
    taken = dumps.backup(url=source, folder=tmp_path)
    figures = json.loads(dumps.figures_path(taken["path"]).read_text())
    for table in figures["tables"]:
        if table["table"] == "extraction_jobs":
            table["rows"] += 1  # as if a row had been lost between the count and the file
        if table["table"] == "projects":
            table["checksum"] = "12345"  # as if a key had changed
    dumps.figures_path(taken["path"]).write_text(json.dumps(figures))
    report = drilling.drill(taken["path"], url=source)
    bad = report[~report["ok"]].set_index("table")["problem"]
    assert report.attrs["status"] == "failed"
    assert bad["extraction_jobs"] == "300 rows restored, 301 at backup time" and bad["projects"] == "primary keys differ (checksum)"
    assert "2 of" in report.attrs["detail"] and scratch_databases(server, source.database) == []
    assert drilling.drills(engine=get_engine(source))["status"].iloc[0] == "failed"


def test_a_backup_without_figures_cannot_pass(source, tmp_path):
    taken = dumps.backup(url=source, folder=tmp_path)
    dumps.figures_path(taken["path"]).unlink()
    report = drilling.drill(taken["path"], url=source, record=False)
    assert report.attrs["status"] == "failed" and "no figures were recorded with this backup" in report.attrs["detail"]


def test_no_backup_to_drill_says_how_to_take_one(source, tmp_path):
    with pytest.raises(InputError, match=f"no backup of database {source.database} in {tmp_path}.*Fix: take one first"):
        drilling.drill(url=source, folder=tmp_path)


def test_a_cut_short_backup_fails_as_an_error_recorded_as_a_failed_drill(source, server, tmp_path):
    taken = dumps.backup(url=source, folder=tmp_path)
    data = taken["path"].read_bytes()
    taken["path"].write_bytes(data[: len(data) // 2])
    with pytest.raises(InputError, match="is not a complete pg_dump custom-format backup"):
        drilling.drill(taken["path"], url=source)
    last = drilling.drills(engine=get_engine(source)).iloc[0]
    assert last["status"] == "failed" and last["detail"].startswith("the restore failed:") and pd.isna(last["restore_seconds"])
    assert scratch_databases(server, source.database) == []


def test_a_killed_drill_leaves_a_scratch_database_the_next_drill_drops(source, server, tmp_path):
    dumps.backup(url=source, folder=tmp_path)
    gone = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True).stdout.strip()
    leftover = f"{source.database[:20]}_drill_{host_tag()}_{gone}_beef"
    with server.engine.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{leftover}"'))
    with pytest.warns(LeftoverWarning, match=f"dropped the drill's scratch database {leftover} left by an interrupted run"):
        report = drilling.drill(url=source, folder=tmp_path, record=False)
    assert report.attrs["status"] == "passed" and scratch_databases(server, source.database) == []


def test_drill_cli_exits_non_zero_when_the_verification_fails(source, tmp_path):
    ok = cli("db", "drill", "--folder", str(tmp_path), url=source)
    assert "Fix: take one first" in ok.stderr and ok.returncode != 0
    taken = dumps.backup(url=source, folder=tmp_path)
    passed = cli("--format", "json", "db", "drill", "--folder", str(tmp_path), url=source)
    assert passed.returncode == 0, passed.stderr
    assert "drill passed:" in passed.stderr
    figures = json.loads(dumps.figures_path(taken["path"]).read_text())
    figures["revision"] = "0000aaaa0000"
    dumps.figures_path(taken["path"]).write_text(json.dumps(figures))
    failed = cli("db", "drill", "--backup", str(taken["path"]), url=source)
    assert failed.returncode == 1 and "drill failed:" in failed.stderr and "0000aaaa0000 at backup time" in failed.stderr
    listed = cli("--format", "json", "db", "drills", url=source)
    assert listed.returncode == 0 and json.loads(listed.stdout)[0]["status"] == "failed"


def fake_backups(folder: Path, database: str, stamps: list[datetime]) -> list[Path]:
    folder.mkdir(parents=True, exist_ok=True)
    made = []
    for stamp in stamps:
        path = folder / f"{database}__abc__{stamp:%Y%m%dT%H%M%SZ}.dump"
        path.write_bytes(b"PGDMP" + b"\0" * 10)
        dumps.figures_path(path).write_text(json.dumps({"database": database, "tables": []}))
        made.append(path)
    return made


def test_retention_keeps_daily_weekly_monthly_generations_and_the_newest_drilled_backup(tmp_path):
    now = datetime(2026, 11, 30, 3, 0, tzinfo=UTC)
    stamps = [now - timedelta(hours=12 * i) for i in range(200)]  # two a day for 100 days
    made = fake_backups(tmp_path, "shop", stamps)
    old_drilled = made[150]
    dumps.record_drill(old_drilled, status="passed", at=now)
    dumps.record_drill(made[160], status="passed", at=now - timedelta(days=1))
    partial = tmp_path / f"{made[0].name}.writer-{os.getpid()}@{os.uname().nodename}.partial"
    partial.write_bytes(b"PGDMP")
    plan = dumps.prune_backups(tmp_path, keep_daily=3, keep_weekly=2, keep_monthly=3)
    kept = plan[plan["action"] == "keep"]
    assert len(plan) == 200 and all(p.exists() for p in made), "a dry run deletes nothing"
    assert kept["keep"].iloc[0] == "newest, daily, weekly, monthly"
    days = kept[kept["keep"].str.contains("daily")]["taken_at"].dt.strftime("%Y-%m-%d").tolist()
    assert days == ["2026-11-30", "2026-11-29", "2026-11-28"]
    months = kept[kept["keep"].str.contains("monthly")]["taken_at"].dt.strftime("%Y-%m").tolist()
    assert months == ["2026-11", "2026-10", "2026-09"]
    assert len(kept[kept["keep"].str.contains("weekly")]) == 2
    assert plan.set_index("file").loc[old_drilled.name, "keep"] == "newest that passed a drill"
    applied = dumps.prune_backups(tmp_path, keep_daily=3, keep_weekly=2, keep_monthly=3, apply=True)
    assert set(applied["action"]) == {"keep", "deleted"}
    assert sorted(p.name for p in tmp_path.glob("*.dump")) == sorted(kept["file"])
    assert sorted(p.name for p in tmp_path.glob("*.dump.json")) == sorted(f + ".json" for f in kept["file"])
    assert partial.exists(), "a live writer's partial file is never touched"


def test_prune_cli_shows_first_and_deletes_with_yes(source, tmp_path):
    now = datetime.now(UTC)
    made = fake_backups(tmp_path, "shop", [now - timedelta(days=i) for i in range(5)])
    dry = cli("--format", "json", "db", "backups", "--folder", str(tmp_path), "--prune", "--keep-daily", "2", "--keep-weekly", "0", "--keep-monthly", "0", url=source)
    assert dry.returncode == 0, dry.stderr
    assert [r["action"] for r in json.loads(dry.stdout)] == ["keep", "keep", "delete", "delete", "delete"]
    assert "would delete 3 backups" in dry.stderr and "--yes" in dry.stderr and all(p.exists() for p in made)
    done = cli("db", "backups", "--folder", str(tmp_path), "--prune", "--keep-daily", "2", "--keep-weekly", "0", "--keep-monthly", "0", "--yes", url=source)
    assert done.returncode == 0 and "deleted 3 backups" in done.stderr
    assert [p.exists() for p in made] == [True, True, False, False, False]


def rows(report: pd.DataFrame) -> dict:
    return report.set_index("check")[["status", "value", "detail", "action"]].to_dict("index")


def test_health_does_not_judge_a_local_database_never_backed_up_but_a_remote_one_warns(source, tmp_path, monkeypatch):
    from copythat_ops.monitor import backups as backup_checks

    monkeypatch.setenv(dumps.BACKUP_DIR_VAR, str(tmp_path / "empty"))
    execute(source, "DELETE FROM copythat_history.drills")
    found = rows(monitor.health(engine=get_engine(source)))
    assert found["backup_age"]["status"] == "OK" and "not judged: a local database" in found["backup_age"]["detail"]
    assert found["last_drill"]["status"] == "OK" and "not judged" in found["last_drill"]["detail"]
    monkeypatch.setattr(backup_checks, "is_local", lambda url: False)  # the same server, seen as production is
    found = rows(monitor.health(engine=get_engine(source)))
    assert found["backup_age"]["status"] == "WARN" and found["backup_age"]["detail"].startswith(f"no backup of {source.database} in {tmp_path / 'empty'} on host ")
    assert "copythat-ops db backup" in found["backup_age"]["action"]
    assert found["last_drill"]["status"] == "WARN"


def test_health_judges_the_backup_age_and_the_last_drill(source, tmp_path, monkeypatch):
    folder = tmp_path / "aged"
    monkeypatch.setenv(dumps.BACKUP_DIR_VAR, str(folder))
    execute(source, "DELETE FROM copythat_history.drills")
    dispose_engines()
    taken = dumps.backup(url=source)
    found = rows(monitor.health(engine=get_engine(source)))
    assert found["backup_age"]["status"] == "OK" and found["backup_age"]["detail"].startswith(f"newest: {taken['path'].name}, 0.0 h old")
    assert found["last_drill"]["status"] == "WARN" and "no drill of" in found["last_drill"]["detail"] and "db drill" in found["last_drill"]["action"]
    drilling.drill(url=source)
    found = rows(monitor.health(engine=get_engine(source)))
    assert found["last_drill"]["status"] == "OK" and found["last_drill"]["detail"].startswith(f"last drill passed 0 days ago on {taken['path'].name}")
    # the same backup, as if taken 30 hours and then 9 days ago
    for hours, status in ((30, "WARN"), (9 * 24, "CRIT")):
        figures = dumps.backup_figures(taken["path"])
        figures["taken_at"] = (datetime.now(UTC) - timedelta(hours=hours)).isoformat()
        dumps.figures_path(taken["path"]).write_text(json.dumps(figures))
        found = rows(monitor.health(engine=get_engine(source)))
        assert found["backup_age"]["status"] == status and abs(found["backup_age"]["value"] - hours) < 0.1, found["backup_age"]
    assert rows(monitor.health(engine=get_engine(source), backup_crit_days=10))["backup_age"]["status"] == "WARN"
    execute(source, "UPDATE copythat_history.drills SET status = 'failed', detail = 'revision x restored, y at backup time'")
    found = rows(monitor.health(engine=get_engine(source)))
    assert found["last_drill"]["status"] == "WARN" and "last drill failed" in found["last_drill"]["detail"] and "y at backup time" in found["last_drill"]["detail"]
    execute(source, "UPDATE copythat_history.drills SET status = 'passed', started_at = now() - interval '31 days'")
    assert rows(monitor.health(engine=get_engine(source)))["last_drill"]["status"] == "WARN"
    assert rows(monitor.health(engine=get_engine(source), drill_warn_days=40))["last_drill"]["status"] == "OK"


@pytest.fixture
def fake_neon(server, source, monkeypatch):
    from neon_fake import FakeNeon

    from copythat_ops.recovery import neon

    with FakeNeon(server, source) as api:
        monkeypatch.setenv(neon.API_KEY_VAR, api.api_key)
        monkeypatch.setenv(neon.PROJECT_VAR, api.project_id)
        monkeypatch.setenv(neon.API_URL_VAR, api.url)
        yield api
    dispose_engines()
    for database in api.branch_databases():
        server.drop_database(source.set(database=database))


def test_a_neon_snapshot_drill_restores_into_a_branch_checks_it_against_the_history_and_deletes_both(source, fake_neon):
    from copythat_ops.recovery import neon

    client = neon.Neon()
    taken = client.create_snapshot(name="nightly")
    execute(source, "DELETE FROM extraction_jobs WHERE id IN (SELECT id FROM extraction_jobs ORDER BY id LIMIT 5)")  # after the snapshot
    before = set(client.branches()["id"])
    report = drilling.drill("neon", url=source)
    a = report.attrs
    assert a["status"] == "passed", a["detail"]
    assert a["backup"] == taken["id"] and a["backup_kind"] == "neon_snapshot" and a["rto_seconds"] > 0 and a["rpo_seconds"] >= 0
    jobs = report.set_index("table").loc["extraction_jobs"]
    assert jobs["rows"] == jobs["expected_rows"] == 300, "the snapshot's rows, not today's"
    assert set(client.branches()["id"]) == before, "both scratch branches are deleted"
    last = drilling.drills(engine=get_engine(source)).iloc[0]
    assert last["backup_kind"] == "neon_snapshot" and last["status"] == "passed" and last["backup"] == taken["id"]
    assert fake_neon.unrecorded == [], "the reference branch was served from the snapshot's point in history"
    computes = [body["endpoint"] for method, path, body in fake_neon.requests if method == "POST" and path.endswith("/endpoints")]
    assert [c["type"] for c in computes] == ["read_write"] and computes[0]["branch_id"] not in before, "the restored branch got a compute to be read through"
    with pytest.raises(InputError, match="no Neon snapshot snap-nope in project"):
        drilling.drill("neon_snapshot:snap-nope", url=source)
    with pytest.raises(InputError, match="no Neon snapshot or branch snap-nope in project"):
        drilling.drill("neon:snap-nope", url=source)
    execute(source, "INSERT INTO extraction_jobs (project_id, source_url, extraction_type, status) SELECT project_id, source_url, extraction_type, status FROM extraction_jobs ORDER BY id LIMIT 5")


def test_drill_cli_on_a_neon_snapshot(source, fake_neon):
    from copythat_ops.recovery import neon

    env = {neon.API_KEY_VAR: fake_neon.api_key, neon.PROJECT_VAR: fake_neon.project_id, neon.API_URL_VAR: fake_neon.url}
    none = cli("db", "drill", "--neon", url=source, env=env)
    assert none.returncode == 2 and "no Neon snapshot or backup branch in project" in none.stderr and "db snapshot create" in none.stderr
    taken = neon.Neon().create_snapshot()
    done = cli("db", "drill", "--neon", "--snapshot", taken["id"], url=source, env=env)
    assert done.returncode == 0 and f"drill passed: {taken['id']} restored in " in done.stderr, done.stderr
    assert fake_neon.api_key not in done.stdout + done.stderr
    wrong = cli("db", "drill", "--snapshot", taken["id"], url=source, env=env)
    assert wrong.returncode == 2 and "add --neon" in wrong.stderr


def restore_jobs(url, count: int) -> None:
    """Put back `count` jobs a test deleted (copies of the first ones: the row count the other tests expect)."""
    execute(url, "INSERT INTO extraction_jobs (project_id, source_url, extraction_type, status) "
                 f"SELECT project_id, source_url, extraction_type, status FROM extraction_jobs ORDER BY id LIMIT {count}")


def test_a_neon_backup_branch_drill_restores_a_child_branch_checks_it_at_the_parent_s_lsn_and_deletes_both(source, fake_neon, tmp_path):
    from copythat_ops.recovery import neon

    client = neon.Neon()
    dumps.backup(url=source, folder=tmp_path)
    time.sleep(1.1)  # Neon stamps whole seconds: the branch's second is after the file's
    backup = neon.snapshot(client=client)  # `db backup --neon`: a branch at the parent's LSN, without a compute
    execute(source, "DELETE FROM extraction_jobs WHERE id IN (SELECT id FROM extraction_jobs ORDER BY id LIMIT 4)")  # after the backup
    try:
        before = set(client.branches()["id"])
        report = drilling.drill(url=source, folder=tmp_path)  # the newest backup of any kind: the branch, newer than the file
        a = report.attrs
        assert a["status"] == "passed", a["detail"]
        assert a["backup_kind"] == "neon_branch" and a["backup"] == backup["id"] and a["rto_seconds"] > 0 and a["rpo_seconds"] >= 0
        assert a["backup_taken_at"] == datetime.fromisoformat(backup["parent_timestamp"].replace("Z", "+00:00"))
        jobs = report.set_index("table").loc["extraction_jobs"]
        assert jobs["rows"] == jobs["expected_rows"] == 300, "the backup's rows, not today's"
        assert "a branch as of the branch's point" in a["detail"] and a["revision"] == a["expected_revision"] == migrations.current(url=source)
        made = [body["branch"] for method, path, body in fake_neon.requests if method == "POST" and path.endswith("/branches")][-2:]
        assert made[0]["parent_id"] == backup["id"] and made[0]["name"].endswith("-restored"), "restored: a child of the backup branch"
        assert made[1] == {"parent_id": "br-main", "name": made[1]["name"], "parent_lsn": backup["parent_lsn"]}, "checked: the parent at the backup's LSN"
        assert fake_neon.unrecorded == [] and set(client.branches()["id"]) == before, "both scratch branches are deleted"
        last = drilling.drills(engine=get_engine(source)).iloc[0]
        assert last["backup_kind"] == "neon_branch" and last["status"] == "passed" and last["backup"] == backup["id"]
        time.sleep(1.1)
        dumps.backup(url=source, folder=tmp_path)  # now the file is the newest
        assert drilling.drill(url=source, folder=tmp_path, record=False).attrs["backup_kind"] == "pg_dump"
        assert drilling.drill("neon", url=source, record=False).attrs["backup_kind"] == "neon_branch"  # the newest Neon backup
        with pytest.raises(InputError, match="no Neon snapshot in project .* to drill.*Fix: take one with `copythat-ops db snapshot create`"):
            drilling.drill("neon_snapshot", url=source)
        with pytest.raises(InputError, match="no Neon branch br-nope in project"):
            drilling.drill("neon_branch:br-nope", url=source)
    finally:
        restore_jobs(source, 4)
        client.delete_branch(backup["id"])


def test_a_backup_branch_that_differs_from_its_parent_at_its_lsn_fails_the_drill_and_names_the_table(source, fake_neon):
    from copythat_ops.recovery import neon

    client = neon.Neon()
    backup = neon.snapshot(client=client, name="backup-nightly")
    # as if the branch's storage had lost rows: its data no longer what the parent held at its LSN
    execute(source.set(database=fake_neon.database_of(backup["id"])), "DELETE FROM extraction_jobs WHERE id IN (SELECT id FROM extraction_jobs ORDER BY id LIMIT 3)")
    report = drilling.drill("neon:backup-nightly", url=source)  # by name
    a = report.attrs
    assert a["status"] == "failed" and a["backup"] == backup["id"] and a["backup_kind"] == "neon_branch"
    bad = report[~report["ok"]].set_index("table")["problem"]
    assert bad.to_dict() == {"extraction_jobs": "297 rows restored, 300 at backup time"}
    assert a["detail"] == f"1 of {len(report)} tables differ: public.extraction_jobs 297 rows restored, 300 at the branch's point"
    assert drilling.drills(engine=get_engine(source))["status"].iloc[0] == "failed"
    assert set(client.branches()["id"]) == {"br-main", backup["id"]}, "the scratch branches are deleted on a failure too"
    client.delete_branch(backup["id"])


def test_a_killed_branch_drill_leaves_branches_the_next_drill_deletes(source, fake_neon):
    from copythat_ops.recovery import neon

    client = neon.Neon()
    backup = neon.snapshot(client=client)
    gone = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True).stdout.strip()
    leftover = client.create_branch(f"drill-{host_tag()}-{gone}-beef-restored", parent_id=backup["id"])["branch"]
    other = client.create_branch("drill-000000-1-beef-reference", parent_id="br-main", endpoint=False)["branch"]  # another machine's
    with pytest.warns(LeftoverWarning) as warned:
        report = drilling.drill("neon_branch", url=source, record=False)
    said = [str(w.message) for w in warned]
    assert f"deleted the Neon branch {leftover['name']} ({leftover['id']}) left by an interrupted drill (pid {gone}, gone)" in said
    assert any(f"the Neon branch {other['name']} ({other['id']}) is a drill's of another machine" in w for w in said)
    assert report.attrs["status"] == "passed", report.attrs["detail"]
    assert set(client.branches()["id"]) == {"br-main", backup["id"], other["id"]}
    for branch_id in (other["id"], backup["id"]):
        client.delete_branch(branch_id)


def test_a_branch_drill_whose_restore_fails_is_recorded_as_failed_and_raised(source, fake_neon):
    from copythat_ops.recovery import neon

    client = neon.Neon()
    backup = neon.snapshot(client=client)
    fake_neon.fail_operations = True  # Neon's operations fail: the child branch never becomes ready
    try:
        with pytest.warns(LeftoverWarning, match="the drill's Neon branch br-.* could not be deleted"), pytest.raises(neon.NeonError, match="create_branch .* failed"):
            drilling.drill("neon_branch", url=source)
    finally:
        fake_neon.fail_operations = False
    assert set(client.branches()["id"]) == {"br-main", backup["id"]}, "the branch whose operation failed was deleted all the same"
    last = drilling.drills(engine=get_engine(source)).iloc[0]
    assert last["status"] == "failed" and last["backup_kind"] == "neon_branch" and pd.isna(last["restore_seconds"])
    assert last["detail"].startswith("the restore failed: Neon operation create_branch")
    client.delete_branch(backup["id"])


def test_drill_cli_on_a_neon_backup_branch(source, fake_neon):
    from copythat_ops.recovery import neon

    env = {neon.API_KEY_VAR: fake_neon.api_key, neon.PROJECT_VAR: fake_neon.project_id, neon.API_URL_VAR: fake_neon.url}
    assert drilling.KINDS == ("pg_dump", "neon_snapshot", "neon_branch")  # the parser's copy (cli/db.py) is this
    none = cli("db", "drill", "--kind", "neon_branch", url=source, env=env)
    assert none.returncode == 2 and "no Neon backup branch in project" in none.stderr and "db backup --neon" in none.stderr
    backup = neon.snapshot(name="backup-cli")
    done = cli("db", "drill", "--neon", "--branch", "backup-cli", url=source, env=env)
    assert done.returncode == 0 and f"drill passed: {backup['id']} restored in " in done.stderr, done.stderr
    kind = cli("--format", "json", "db", "drill", "--kind", "neon_branch", "--no-record", url=source, env=env)
    assert kind.returncode == 0 and f"drill passed: {backup['id']}" in kind.stderr, kind.stderr
    wrong = cli("db", "drill", "--branch", backup["id"], url=source, env=env)
    assert wrong.returncode == 2 and "--branch names a Neon branch" in wrong.stderr and "add --neon" in wrong.stderr
    both = cli("db", "drill", "--neon", "--kind", "pg_dump", url=source, env=env)
    assert both.returncode == 2 and "--neon and --kind each choose the backup to drill: give one" in both.stderr
    assert fake_neon.api_key not in done.stdout + done.stderr + kind.stdout + kind.stderr
    neon.Neon().delete_branch(backup["id"])


def test_health_counts_a_neon_snapshot_or_backup_branch_as_a_backup(source, fake_neon, tmp_path, monkeypatch):
    from copythat_ops.monitor import backups as backup_checks
    from copythat_ops.recovery import neon

    monkeypatch.setenv(dumps.BACKUP_DIR_VAR, str(tmp_path / "none-here"))
    monkeypatch.setattr(backup_checks, "is_local", lambda url: False)
    found = rows(monitor.health(engine=get_engine(source)))
    assert found["backup_age"]["status"] == "WARN" and "no Neon snapshot or backup branch in the project" in found["backup_age"]["detail"]
    branch = neon.snapshot()  # `db backup --neon`: a backup branch alone counts
    found = rows(monitor.health(engine=get_engine(source)))
    assert found["backup_age"]["status"] == "OK", found["backup_age"]
    assert found["backup_age"]["detail"].startswith(f"newest: Neon backup branch {branch['name']} ({branch['id']}), 0.0 h old")
    time.sleep(1.1)  # Neon's times are whole seconds
    taken = neon.Neon().create_snapshot()
    found = rows(monitor.health(engine=get_engine(source)))
    assert found["backup_age"]["status"] == "OK" and found["backup_age"]["detail"].startswith(f"newest: Neon snapshot {taken['id']}, 0.0 h old")
    neon.Neon().delete_branch(branch["id"])
    monkeypatch.setenv(neon.API_URL_VAR, f"http://127.0.0.1:{free_port()}")  # the API away: said, and judged on the files alone
    found = rows(monitor.health(engine=get_engine(source)))
    assert found["backup_age"]["status"] == "WARN" and "Neon backups not read (" in found["backup_age"]["detail"]
    assert fake_neon.api_key not in str(found)


def free_port() -> int:
    import socket

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]
