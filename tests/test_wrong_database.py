"""Never the wrong database: env files that give no URL stop, the embedded fallback says so,
`db status` shows the configured database, and every command that changes a database that is
not local asks first, the same way."""

from __future__ import annotations

import json
import os
import pty
import subprocess
import sys
import threading
import time
from pathlib import Path

import psycopg2
import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.pool import NullPool

from copythat_ops import migrations
from copythat_ops.config import mask_url

CLI = str(Path(sys.executable).parent / "copythat-ops")
HEAD = migrations.heads()[0]
NOTHING = "embedded (nothing configured: no DATABASE_URL, no .env)"


def run(*args: str, url=None, env: dict | None = None, cwd=None, stdin=subprocess.DEVNULL) -> subprocess.CompletedProcess:
    environment = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "COPYTHAT_ENV_FILE")}
    if url is not None:
        environment["DATABASE_URL"] = url if isinstance(url, str) else url.render_as_string(hide_password=False)
    return subprocess.run([CLI, *args], env={**environment, **(env or {})}, cwd=cwd, stdin=stdin, capture_output=True, text=True, timeout=120)


def run_in_terminal(*args: str, url, typed: str | None) -> subprocess.CompletedProcess:
    """Run the CLI with a terminal as stdin; type `typed` and Enter at the prompt, or end the input (Ctrl-D) when None."""
    controller, terminal = pty.openpty()
    env = {k: v for k, v in os.environ.items() if k != "COPYTHAT_ENV_FILE"}
    env["DATABASE_URL"] = url.render_as_string(hide_password=False)
    try:
        os.write(controller, b"\x04" if typed is None else f"{typed}\n".encode())
        return subprocess.run([CLI, *args], stdin=terminal, env=env, capture_output=True, text=True, timeout=120)
    finally:
        os.close(terminal)
        os.close(controller)


def remote_looking(url):
    """A URL that names a remote host but still reaches the test server (through its socket or hostaddr)."""
    if url.host is None:
        return url.set(host="db.example.com")
    return url.set(host="db.example.com").update_query_dict({"hostaddr": url.host})


def revision(url) -> str | None:
    engine = create_engine(url, poolclass=NullPool)
    try:
        with engine.connect() as conn:
            if conn.scalar(text("SELECT to_regclass('public.alembic_version')")) is None:
                return None
            return conn.scalar(text("SELECT version_num FROM alembic_version"))
    finally:
        engine.dispose()


@pytest.fixture
def empty_dir(tmp_path) -> Path:
    """A working folder without .env, and an embedded-server folder the fallback would use (and must not)."""
    (tmp_path / "work").mkdir()
    return tmp_path


# --- env files ------------------------------------------------------------------------


@pytest.mark.parametrize(
    "content, problem",
    [
        ("DATABSE_URL=postgresql://u:pw@db.example.com/db\n", "branch.env has no DATABASE_URL (found: DATABSE_URL)"),
        ("DATABASE_URL postgresql://u:pw@db.example.com/db\n", "branch.env has no usable DATABASE_URL: line 1 ('DATABASE_URL ...') could not be read"),
        ("DATABASE_URL=\n", "branch.env sets DATABASE_URL to an empty value (line 1)"),
    ],
    ids=["misspelt", "unparseable", "empty"],
)
@pytest.mark.parametrize("how", ["--env-file", "COPYTHAT_ENV_FILE", ".env"])
def test_env_file_without_a_usable_url_stops_with_exit_2(empty_dir, content, problem, how):
    work = empty_dir / "work"
    name = ".env" if how == ".env" else "branch.env"
    (work / name).write_text(content)
    env = {"COPYTHAT_EMBEDDED_DIR": str(empty_dir / "pgdata")}
    args = ["migrate", "upgrade"]
    if how == "--env-file":
        args = ["--env-file", name, *args]
    elif how == "COPYTHAT_ENV_FILE":
        env["COPYTHAT_ENV_FILE"] = name
    result = run(*args, env=env, cwd=work)
    assert result.returncode == 2, result.stderr
    assert result.stderr.startswith("error: ") and problem.replace("branch.env", name) in result.stderr, result.stderr
    assert f"Fix: add DATABASE_URL=postgresql://" in result.stderr or "Fix: write" in result.stderr
    assert "pw" not in result.stderr and "embedded" not in result.stderr.split("Fix:")[0]
    assert not (empty_dir / "pgdata").exists(), "fell back to the embedded database"


def test_empty_database_url_in_the_environment_stops_with_exit_2(empty_dir):
    result = run("migrate", "upgrade", url="", env={"COPYTHAT_EMBEDDED_DIR": str(empty_dir / "pgdata")}, cwd=empty_dir / "work")
    assert result.returncode == 2 and "DATABASE_URL is set but empty in the environment" in result.stderr
    assert "unset DATABASE_URL" in result.stderr and not (empty_dir / "pgdata").exists()


def test_nothing_configured_uses_the_embedded_database_and_says_so(empty_dir):
    env = {"COPYTHAT_EMBEDDED_DIR": str(empty_dir / "pgdata")}
    status = run("--format", "json", "db", "status", env=env, cwd=empty_dir / "work")
    assert status.returncode == 0, status.stderr
    facts = json.loads(status.stdout)
    assert facts["source"] == NOTHING and facts["running"] is False


# --- db status --------------------------------------------------------------------------


def test_db_status_shows_the_configured_database(db_url):
    assert run("migrate", "upgrade", url=db_url).returncode == 0
    result = run("--format", "json", "db", "status", url=db_url.set(password="Pl4ntedStatusPw") if db_url.password else db_url)
    facts = json.loads(result.stdout)
    if db_url.password:  # a wrong password: still says which database, and that it is not reachable
        assert result.returncode == 1 and facts["reachable"] is False and "wrong or missing password" in facts["error"]
        assert "Pl4ntedStatusPw" not in result.stdout + result.stderr
        result = run("--format", "json", "db", "status", url=db_url)
        facts = json.loads(result.stdout)
    assert result.returncode == 0, result.stderr
    assert facts["source"] == "DATABASE_URL in the environment" and facts["url"] == mask_url(db_url)
    assert facts["reachable"] is True and facts["revision"] == revision(db_url) and facts["server_version"][:2].isdigit()
    assert "running" not in facts and "data_dir" not in facts


def test_db_status_names_the_env_file(db_url, tmp_path):
    env_file = tmp_path / "branch.env"
    env_file.write_text(f"DATABASE_URL={db_url.render_as_string(hide_password=False)}\n")
    facts = json.loads(run("--format", "json", "--env-file", str(env_file), "db", "status").stdout)
    assert facts["source"] == f"DATABASE_URL in {env_file}" and facts["reachable"] is True


# --- one confirmation rule for every command that changes a database ----------------------


def test_migrate_upgrade_and_stamp_ask_before_changing_a_remote_database(db_url, server):
    fresh = server.create_database("confirm")
    try:
        remote = remote_looking(fresh)
        refused = run("migrate", "upgrade", url=remote)
        assert refused.returncode == 2, refused.stderr
        assert "migrate upgrade would change database" in refused.stderr and mask_url(remote) in refused.stderr
        assert "not local; nothing was changed" in refused.stderr and "Fix: add --yes" in refused.stderr
        assert revision(fresh) is None
        assert run("migrate", "upgrade", "--yes", url=remote).returncode == 0
        assert revision(fresh) == HEAD
        assert run("migrate", "upgrade", url=remote).returncode == 0  # nothing to apply: nothing to ask
        stamp = run("migrate", "stamp", "base", url=remote)
        assert stamp.returncode == 2 and "migrate stamp would change database" in stamp.stderr and "Fix: add --yes" in stamp.stderr
        assert revision(fresh) == HEAD
        assert run("migrate", "stamp", HEAD, "--yes", url=remote).returncode == 0
    finally:
        server.drop_database(fresh)


def test_the_prompt_names_the_masked_database_and_wants_its_name(server):
    fresh = server.create_database("prompt")
    try:
        remote = remote_looking(fresh)
        wrong = run_in_terminal("migrate", "upgrade", url=remote, typed="production")
        assert wrong.returncode == 2
        assert f"migrate upgrade will change database '{fresh.database}' at {mask_url(remote)}, which is not local." in wrong.stderr
        assert f"Type its name ({fresh.database}) to apply" in wrong.stderr and "does not match the database" in wrong.stderr
        assert revision(fresh) is None
        ended = run_in_terminal("migrate", "upgrade", url=remote, typed=None)
        assert ended.returncode == 2 and "no answer (end of input)" in ended.stderr and "nothing was changed" in ended.stderr
        assert revision(fresh) is None
        typed = run_in_terminal("migrate", "upgrade", url=remote, typed=fresh.database)
        assert typed.returncode == 0, typed.stderr
        assert revision(fresh) == HEAD
    finally:
        server.drop_database(fresh)


def test_seed_asks_before_changing_a_remote_database(db_url):
    assert run("migrate", "upgrade", url=db_url).returncode == 0
    remote = remote_looking(db_url)
    refused = run("seed", "--jobs", "10", "--projects", "2", url=remote)
    assert refused.returncode == 2 and "seed would change database" in refused.stderr and "Fix: add --yes" in refused.stderr
    ended = run_in_terminal("seed", "--jobs", "10", "--projects", "2", url=remote, typed=None)
    assert ended.returncode == 2 and "Type its name" in ended.stderr and "no answer" in ended.stderr
    seeded = run("--format", "json", "seed", "--jobs", "10", "--projects", "2", "--yes", url=remote)
    assert seeded.returncode == 0, seeded.stderr
    assert json.loads(seeded.stdout)["jobs"] == 10


def test_job_actions_ask_the_same_way(db_url):
    assert run("migrate", "upgrade", url=db_url).returncode == 0
    remote = remote_looking(db_url)
    refused = run("jobs", "fail-stuck", "--older-than", "1h", "--apply", url=remote)
    assert refused.returncode == 2 and "jobs fail-stuck --apply would change database" in refused.stderr
    assert mask_url(remote) in refused.stderr and "Fix: add --yes" in refused.stderr


def test_the_preview_shown_before_the_question_leaves_stdout_one_document(db_url):
    assert run("migrate", "upgrade", url=db_url).returncode == 0
    args = ("--format", "json", "jobs", "fail-stuck", "--older-than", "1h", "--apply")
    typed = run_in_terminal(*args, url=remote_looking(db_url), typed=db_url.database)
    assert typed.returncode == 0, typed.stderr
    assert json.loads(typed.stdout) == [] and "Type its name" in typed.stderr


def test_monitor_cancel_asks_before_signalling_a_remote_session(db_url):
    conn = psycopg2.connect(db_url.set(drivername="postgresql").render_as_string(hide_password=False))
    pid = conn.get_backend_pid()
    sleeper = threading.Thread(target=lambda: _sleep(conn), daemon=True)
    sleeper.start()
    try:
        time.sleep(0.5)
        remote = remote_looking(db_url)
        refused = run("monitor", "cancel", str(pid), "--apply", url=remote)
        assert refused.returncode == 2 and f"monitor cancel {pid} --apply would change database" in refused.stderr
        assert "Fix: add --yes" in refused.stderr
        assert sleeper.is_alive(), "the query was cancelled without confirmation"
        done = run("monitor", "cancel", str(pid), "--apply", "--yes", url=remote)
        assert done.returncode == 0, done.stderr
        sleeper.join(10)
        assert not sleeper.is_alive()
    finally:
        conn.close()


def _sleep(conn) -> None:
    try:
        with conn.cursor() as cur:
            cur.execute("SELECT pg_sleep(30)")
    except psycopg2.Error:
        pass


def test_local_databases_are_not_asked(db_url):
    assert run("migrate", "stamp", HEAD, url=db_url, stdin=subprocess.DEVNULL).returncode == 0
