"""`copythat-ops` as a user runs it: real processes, real server, exit codes and messages."""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

from copythat_ops import migrations

CLI = str(Path(sys.executable).parent / "copythat-ops")
SECRET = "Sup3rS3cretPw"
INITIAL = "c1a36d61036a"
HEAD = migrations.heads()[0]


def run(*args: str, url=None, env: dict | None = None) -> subprocess.CompletedProcess:
    environment = {k: v for k, v in os.environ.items() if k != "DATABASE_URL"}
    if url is not None:
        environment["DATABASE_URL"] = url if isinstance(url, str) else url.render_as_string(hide_password=False)
    return subprocess.run([CLI, *args], env={**environment, **(env or {})}, capture_output=True, text=True, timeout=120)


def test_migrate_shows_the_plan_then_applies_it(db_url):
    result = run("migrate", "upgrade", url=db_url)
    assert result.returncode == 0, result.stderr
    revisions = len(migrations.history(url=db_url))
    assert f"Applying {revisions} revision(s) up to head" in result.stderr and INITIAL in result.stderr and HEAD in result.stderr
    assert result.stdout.strip() == f"now at {HEAD}"
    assert run("migrate", "current", url=db_url).stdout.strip() == HEAD
    assert "Nothing to apply." in run("migrate", "upgrade", url=db_url).stderr


def test_db_check_as_json(db_url):
    result = run("--format", "json", "db", "check", url=db_url)
    assert result.returncode == 0, result.stderr
    facts = json.loads(result.stdout)
    assert (facts["database"], facts["projects_count"], facts["revision"]) == ("connected", 0, HEAD)


def test_history_as_csv(db_url):
    frame = pd.read_csv(io.StringIO(run("--format", "csv", "migrate", "history", url=db_url).stdout))
    assert (frame["revision"].iloc[0], frame["revision"].iloc[-1]) == (INITIAL, HEAD)
    assert frame["applied"].all()


def test_downgrade_without_yes_only_says_what_it_would_do(db_url):
    result = run("migrate", "downgrade", "base", url=db_url)
    assert result.returncode == 0 and f"Would downgrade from {HEAD} to base" in result.stdout
    assert run("migrate", "current", url=db_url).stdout.strip() == HEAD
    assert "DROP TABLE projects" in run("migrate", "downgrade", "base", "--sql", url=db_url).stdout


def test_db_url_is_masked_unless_asked(server):
    url = server.password_url.render_as_string(hide_password=False)
    masked = run("db", "url", url=url).stdout
    assert "***" in masked and server.password_url.password not in masked
    assert server.password_url.password in run("db", "url", "--show-password", url=url).stdout


def test_env_file_option_reads_the_named_file(db_url, tmp_path):
    env_file = tmp_path / "staging.env"
    env_file.write_text(f"DATABASE_URL={db_url.render_as_string(hide_password=False)}\n")
    result = run("--env-file", str(env_file), "migrate", "current")
    assert result.returncode == 0 and result.stdout.strip() == HEAD


BAD_INPUT = [
    ("malformed URL", ["db", "check"], f"postgresql://u:{SECRET}@host:port/db", "port that is not a number"),
    ("not PostgreSQL", ["db", "check"], f"mysql://u:{SECRET}@host/db", "not a PostgreSQL URL"),
    ("unknown ssl", ["db", "check"], f"postgresql+asyncpg://u:{SECRET}@host/db?ssl=sometimes", "unknown ssl value 'sometimes'"),
    ("unreachable", ["db", "check"], f"postgresql://u:{SECRET}@127.0.0.1:1/db", "cannot reach 127.0.0.1:1"),
]


@pytest.mark.parametrize("args,url,message", [case[1:] for case in BAD_INPUT], ids=[case[0] for case in BAD_INPUT])
def test_bad_configuration_gets_one_clear_line(args, url, message):
    result = run(*args, url=url)
    assert result.returncode == 2
    assert result.stderr.startswith("error: ") and message in result.stderr and "Fix:" in result.stderr
    assert "Traceback" not in result.stderr and SECRET not in result.stderr + result.stdout


def test_wrong_password_gets_one_clear_line(server):
    result = run("db", "check", url=server.password_url.set(password=SECRET))
    assert result.returncode == 2 and "wrong or missing password" in result.stderr
    assert "Traceback" not in result.stderr and SECRET not in result.stderr


def test_missing_env_file_is_named(tmp_path):
    result = run("--env-file", str(tmp_path / "nope.env"), "db", "check")
    assert result.returncode == 2 and "nope.env' does not exist" in result.stderr and "Traceback" not in result.stderr


def test_unknown_revision_and_below_base_are_refused(db_url):
    unknown = run("migrate", "upgrade", "0123456789ab", url=db_url)
    assert unknown.returncode == 2 and "no migration revision '0123456789ab'" in unknown.stderr
    assert "Applying" not in unknown.stderr
    assert run("migrate", "downgrade", "base", "--yes", url=db_url).returncode == 0
    below = run("migrate", "downgrade", "-1", "--yes", url=db_url)
    assert below.returncode == 2 and "downgrade -1 goes past base" in below.stderr and "Traceback" not in below.stderr


def test_db_up_status_down_manage_the_embedded_server(tmp_path):
    env = {"COPYTHAT_EMBEDDED_DIR": str(tmp_path / "pgdata")}
    try:
        up = run("--format", "json", "db", "up", env=env)
        assert up.returncode == 0, up.stderr
        assert json.loads(up.stdout)["running"] is True
        assert json.loads(run("--format", "json", "db", "status", env=env).stdout)["running"] is True
    finally:
        assert run("db", "down", env=env).stdout.strip() == "stopped"
    assert json.loads(run("--format", "json", "db", "status", env=env).stdout)["running"] is False
