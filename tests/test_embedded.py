"""The embedded PostgreSQL: start, reuse across processes, stop, start again."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import psycopg2
import psutil
import pytest

from copythat_ops import embedded

START_IN_CHILD = "import sys, json; from copythat_ops import embedded; u = embedded.start(sys.argv[1]); print(json.dumps(embedded.status(sys.argv[1])))"


@pytest.fixture
def data_dir():
    path = Path(tempfile.mkdtemp(prefix="copythat-embedded-")) / "pgdata"
    yield path
    embedded.stop(path)
    shutil.rmtree(path.parent, ignore_errors=True)


def start_in_child(path: Path) -> dict:
    out = subprocess.run([sys.executable, "-c", START_IN_CHILD, str(path)], capture_output=True, text=True, timeout=120, check=True)
    return json.loads(out.stdout)


def query(url, sql: str):
    conn = psycopg2.connect(user=url.username, dbname=url.database, host=url.query["host"])
    try:
        with conn.cursor() as cur:
            cur.execute(sql)
            return cur.fetchone()[0]
    finally:
        conn.close()


def test_start_makes_a_running_server_with_the_copythat_database(data_dir):
    assert embedded.status(data_dir)["running"] is False
    url = embedded.start(data_dir)
    state = embedded.status(data_dir)
    assert state["initialized"] and state["running"] and state["version"] == "18"
    assert url.database == "copythat"
    assert query(url, "SELECT current_database()") == "copythat"
    assert "pg_stat_statements" in query(url, "SHOW shared_preload_libraries")


def test_other_processes_reuse_the_running_server(data_dir):
    first = embedded.start(data_dir)
    pid = embedded.status(data_dir)["pid"]
    child = start_in_child(data_dir)
    assert child["pid"] == pid and child["url"] == first.render_as_string()


def test_concurrent_first_starts_share_one_server(data_dir):
    with ThreadPoolExecutor(max_workers=3) as pool:
        states = list(pool.map(lambda _: start_in_child(data_dir), range(3)))
    assert len({s["pid"] for s in states}) == 1
    assert query(embedded.start(data_dir), "SELECT count(*) FROM pg_database WHERE datname = 'copythat'") == 1


def test_stop_then_start_again_keeps_the_data(data_dir):
    url = embedded.start(data_dir)
    conn = psycopg2.connect(user=url.username, dbname=url.database, host=url.query["host"])
    with conn, conn.cursor() as cur:
        cur.execute("CREATE TABLE kept (n int); INSERT INTO kept VALUES (7)")
    conn.close()
    assert embedded.stop(data_dir) is True
    assert embedded.status(data_dir)["running"] is False
    assert embedded.stop(data_dir) is False
    again = embedded.start(data_dir)
    assert query(again, "SELECT n FROM kept") == 7


def test_default_folder_is_inside_the_checkout_and_ignored_by_git(monkeypatch):
    monkeypatch.delenv(embedded.DIR_VAR, raising=False)
    folder = embedded.data_dir()
    assert folder == embedded.CHECKOUT / ".copythat" / "pgdata"
    ignored = subprocess.run(["git", "check-ignore", "-q", str(folder)], cwd=embedded.CHECKOUT)
    assert ignored.returncode == 0


def test_env_var_moves_the_folder(monkeypatch, tmp_path):
    monkeypatch.setenv(embedded.DIR_VAR, str(tmp_path / "elsewhere"))
    assert embedded.data_dir() == (tmp_path / "elsewhere").resolve()


# --- after a crash ---------------------------------------------------------------------


def cli(*args: str, data_dir: Path, cwd: Path) -> subprocess.CompletedProcess:
    """The CLI with nothing configured, so it uses the embedded server in `data_dir`."""
    env = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "DATABASE_REPLICA_URL", "COPYTHAT_ENV_FILE")}
    env[embedded.DIR_VAR] = str(data_dir)
    return subprocess.run([str(Path(sys.executable).parent / "copythat-ops"), *args], env=env, cwd=cwd, capture_output=True, text=True, timeout=120)


def kill_postmaster(data_dir: Path) -> int:
    """kill -9 the running postmaster, with a client session open; return its pid."""
    url = embedded.start(data_dir)
    busy = subprocess.Popen(["psql", "-h", url.query["host"], "-U", "postgres", "-d", "copythat", "-c", "SELECT pg_sleep(30)"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)  # fmt: skip
    time.sleep(0.5)
    pid = embedded.status(data_dir)["pid"]
    os.kill(pid, signal.SIGKILL)
    busy.wait(30)
    deadline = time.monotonic() + 10  # a loaded machine may take a moment to end a process in the middle of I/O
    while not ended(pid) and time.monotonic() < deadline:
        time.sleep(0.1)
    return pid


def ended(pid: int) -> bool:
    """The process is gone, or a zombie its parent has not reaped."""
    try:
        return psutil.Process(pid).status() == psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return True


def test_a_killed_server_is_restarted_by_the_next_command_which_says_so(data_dir, tmp_path):
    pid = kill_postmaster(data_dir)
    assert embedded.status(data_dir)["running"] is False
    result = cli("--format", "json", "db", "check", data_dir=data_dir, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert f"embedded server had stopped (postmaster pid {pid} gone); restarted" in result.stderr
    facts = json.loads(result.stdout)
    assert facts["database"] == "connected" and facts["source"] == "embedded (nothing configured: no DATABASE_URL, no .env)"
    state = embedded.status(data_dir)
    assert state["running"] and state["pid"] != pid


def test_a_killed_server_that_cannot_start_says_why_and_how_to_recover(data_dir, tmp_path):
    conf = data_dir.parent / "pgdata" / "postgresql.conf"
    pid = kill_postmaster(data_dir)
    kept = conf.read_text()
    conf.write_text(kept + "\nmax_connections = 'lots'\n")
    try:
        result = cli("db", "check", data_dir=data_dir, cwd=tmp_path)
        assert result.returncode == 2
        assert result.stderr.startswith(f"error: the embedded PostgreSQL in {data_dir.resolve()} had stopped (postmaster pid {pid} gone)")
        assert "could not be restarted; the server log ends:" in result.stderr and 'parameter "max_connections"' in result.stderr
        assert f"Fix: read {data_dir.resolve() / 'log'}" in result.stderr and "copythat-ops db up" in result.stderr
        assert "Traceback" not in result.stderr and "OperationalError" not in result.stderr
    finally:
        conf.write_text(kept)
    assert cli("db", "up", data_dir=data_dir, cwd=tmp_path).returncode == 0
