"""The Neon API v2 client, against a local server implementing its endpoints over real databases (tests/neon_fake.py)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from copythat_ops import migrations
from copythat_ops.migrations import rehearsal as rehearse
from copythat_ops.recovery import neon
from copythat_ops.engine import dispose_engines, get_engine
from copythat_ops.errors import ConfigError
from copythat_ops.seed import seed_database

from neon_fake import FakeNeon

CLI = str(Path(sys.executable).parent / "copythat-ops")
BEFORE_HEAD = "2e88296926d0"


@pytest.fixture(scope="module")
def main(db_url):
    migrations.upgrade(BEFORE_HEAD, url=db_url)
    seed_database(1000, 5, seed=4, engine=get_engine(db_url))
    dispose_engines()
    return db_url


@pytest.fixture
def fake(server, main):
    with FakeNeon(server, main) as api:
        yield api
    for database in api.branch_databases():
        server.drop_database(main.set(database=database))


def client(fake: FakeNeon, **kw) -> neon.Neon:
    return neon.Neon(kw.get("api_key", fake.api_key), kw.get("project_id", fake.project_id), base_url=fake.url)


def test_rehearse_on_a_branch_migrates_it_and_deletes_it(fake, main):
    report = rehearse.rehearse_on_neon(url=main, client=client(fake))
    assert report.attrs["ok"] and report.attrs["method"] == "Neon branch"
    assert report["revision"].tolist() == migrations.pending(url=main)["revision"].tolist()
    assert report["downgrade_ok"].iloc[-1] and report["checks_ok"].iloc[-1]
    assert migrations.current(url=main) == BEFORE_HEAD  # the parent is never migrated
    assert list(fake.branches) == ["br-main"] and [b["database"] for b in fake.branches.values()] == [main.database]  # the branch was deleted
    assert fake.endpoints_of(made_branch_id(fake)) == []  # and its compute with it
    made = [body for method, path, body in fake.requests if method == "POST" and path.endswith("/branches")]
    assert made == [{"branch": {"parent_id": "br-main", "name": made[0]["branch"]["name"]}, "endpoints": [{"type": "read_write"}]}]
    assert any(path.endswith(f"/operations/{''}") or "/operations/" in path for _, path, _ in fake.requests)  # operations were polled


def made_branch_id(fake: FakeNeon) -> str:
    return next(op["branch_id"] for op in fake.operations.values() if op["action"] == "create_branch")


def test_keep_leaves_the_branch_migrated(fake, main):
    report = rehearse.rehearse_on_neon(url=main, client=client(fake), keep=True)
    kept = fake.branches[report.attrs["clone"]]
    assert migrations.current(url=main.set(database=kept["database"])) == migrations.heads()[0]
    dispose_engines()


def test_a_missing_api_key_is_named(monkeypatch, tmp_path):
    monkeypatch.delenv(neon.API_KEY_VAR, raising=False)
    monkeypatch.chdir(tmp_path)  # no .env here
    with pytest.raises(ConfigError, match="NEON_API_KEY is not set"):
        neon.Neon(project_id="p")


def test_a_rejected_api_key_is_named_and_nothing_is_made(fake, main):
    with pytest.raises(ConfigError, match=r"Neon rejected NEON_API_KEY \(401 authentication required\)"):
        rehearse.rehearse_on_neon(url=main, client=client(fake, api_key="wrong"))
    assert fake.branch_databases() == [] and not [r for r in fake.requests if r[0] == "POST"]


def test_an_unknown_project_is_named_and_nothing_is_made(fake, main):
    with pytest.raises(ConfigError, match="Neon project no-such-project does not exist"):
        rehearse.rehearse_on_neon(url=main, client=client(fake, project_id="no-such-project"))
    assert fake.branch_databases() == []


def test_project_id_and_key_come_from_dotenv(fake, tmp_path, monkeypatch):
    monkeypatch.delenv(neon.API_KEY_VAR, raising=False)
    monkeypatch.delenv(neon.PROJECT_VAR, raising=False)
    (tmp_path / ".env").write_text(f"NEON_API_KEY={fake.api_key}\nNEON_PROJECT_ID={fake.project_id}\nNEON_API_URL={fake.url}\n")
    monkeypatch.chdir(tmp_path)
    assert neon.Neon().project()["id"] == fake.project_id


def test_snapshot_is_a_branch_without_compute_and_restore_goes_through_the_api(fake):
    api = client(fake)
    taken = neon.snapshot(client=api)
    assert taken["parent_id"] == "br-main" and taken["id"] in fake.branches
    posted = [body for method, path, body in fake.requests if method == "POST" and path.endswith("/branches")][-1]
    assert posted["endpoints"] == [] and fake.endpoints_of(taken["id"]) == []
    point = fake.history["br-main"][-1]  # the parent's point it was made at, as Neon reports it
    assert taken["parent_lsn"] == point["lsn"] and taken["parent_timestamp"] == point["at"].strftime("%Y-%m-%dT%H:%M:%SZ")
    done = neon.restore_to(client=api, timestamp="2026-11-25T12:00:00Z")
    assert fake.restores[-1]["source_timestamp"] == "2026-11-25T12:00:00Z" and fake.restores[-1]["source_branch_id"] == "br-main"
    assert done["preserved_as"].startswith("restore-backup-")


def test_cli_rehearse_neon_with_a_rejected_key_is_one_line(fake, main):
    env = {**os.environ, "DATABASE_URL": main.render_as_string(hide_password=False), "NEON_API_KEY": "wrong",
           "NEON_PROJECT_ID": fake.project_id, "NEON_API_URL": fake.url}
    result = subprocess.run([CLI, "migrate", "rehearse", "--neon"], env=env, capture_output=True, text=True, timeout=120)
    assert result.returncode == 2 and result.stderr.startswith("error: Neon rejected NEON_API_KEY") and result.stderr.count("\n") == 1


def test_cli_backup_neon_makes_a_snapshot_branch(fake, main):
    env = {**os.environ, "DATABASE_URL": main.render_as_string(hide_password=False), "NEON_API_KEY": fake.api_key,
           "NEON_PROJECT_ID": fake.project_id, "NEON_API_URL": fake.url}
    result = subprocess.run([CLI, "--format", "json", "db", "backup", "--neon"], env=env, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert '"parent_id": "br-main"' in result.stdout and len(fake.branches) == 2


def test_a_failed_branch_operation_leaves_no_branch(fake, main):
    fake.fail_operations = True
    with pytest.raises(neon.NeonError, match="create_branch .* failed"):
        rehearse.rehearse_on_neon(url=main, client=client(fake))
    fake.fail_operations = False
    assert list(fake.branches) == ["br-main"] and any(method == "DELETE" for method, _, _ in fake.requests)
