"""Never a secret: a password given any way (user-info, query parameter, .env, environment,
PGPASSWORD, options) appears in no command's output, in any format, working or failing;
`db url --libpq` gives a URL psql accepts with the password from PGPASSWORD."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from urllib.parse import quote, quote_plus

import pytest
from sqlalchemy import text
from sqlalchemy.engine import URL

from copythat_ops import engine
from copythat_ops.cli import main
from copythat_ops.engine import dispose_engines

CLI = str(Path(sys.executable).parent / "copythat-ops")
PLANTED = "Pl4ntedS3cretXyz"
FORMATS = ["table", "json", "csv"]
COMMANDS = [
    ["db", "url"],
    ["db", "url", "--libpq"],
    ["db", "check"],
    ["db", "status"],
    ["migrate", "current"],
    ["migrate", "check"],
    ["migrate", "history"],
    ["jobs", "summary"],
    ["monitor", "health"],
]

# Each connects its own way (engine, Alembic, ADBC, monitoring); the rest share these paths.
FAILING_COMMANDS = [["db", "url"], ["db", "check"], ["db", "status"], ["migrate", "current"], ["jobs", "summary"], ["monitor", "health"]]


@pytest.fixture(scope="module")
def login(server, db_url) -> URL:
    """A URL with a password to the module's database, migrated; the role owns the database."""
    url = server.password_url.set(database=db_url.database)
    if url.username != server.admin.username:
        with server.engine.connect() as conn:
            conn.execute(text(f'ALTER DATABASE "{db_url.database}" OWNER TO {url.username}'))
    migrated = subprocess.run([CLI, "migrate", "upgrade"], env={**os.environ, "DATABASE_URL": url.render_as_string(hide_password=False)},
                              capture_output=True, text=True, timeout=300)  # fmt: skip
    assert migrated.returncode == 0, migrated.stderr
    return url


def spellings(password: str) -> list[str]:
    return [password, quote(password, safe=""), quote_plus(password)]


def without_password(url: URL, **query: str) -> URL:
    return URL.create(url.drivername, url.username, None, url.host, url.port, url.database, {**url.query, **query})


def working_ways(url: URL, tmp_path: Path) -> dict[str, tuple[dict[str, str], list[str]]]:
    """The ways a user gives the password, each as (environment, leading CLI options)."""
    env_file = tmp_path / "prod.env"
    env_file.write_text(f"DATABASE_URL={url.render_as_string(hide_password=False)}\n")
    return {
        "userinfo": ({"DATABASE_URL": url.render_as_string(hide_password=False)}, []),
        "query": ({"DATABASE_URL": without_password(url, password=url.password).render_as_string(hide_password=False)}, []),
        ".env": ({}, ["--env-file", str(env_file)]),
        "PGPASSWORD": ({"DATABASE_URL": without_password(url).render_as_string(hide_password=False), "PGPASSWORD": url.password}, []),
        "sslpassword": ({"DATABASE_URL": url.update_query_dict({"sslpassword": PLANTED}).render_as_string(hide_password=False)}, []),
    }


def failing_ways(url: URL) -> dict[str, dict[str, str]]:
    """Connections that fail, each carrying the planted password."""
    unreachable = URL.create("postgresql", "app", PLANTED, "127.0.0.1", 1, "prod")
    return {
        "wrong password": {"DATABASE_URL": url.set(password=PLANTED).render_as_string(hide_password=False)},
        "wrong password as query": {"DATABASE_URL": without_password(url, password=PLANTED).render_as_string(hide_password=False)},
        "wrong PGPASSWORD": {"DATABASE_URL": without_password(url).render_as_string(hide_password=False), "PGPASSWORD": PLANTED},
        "unreachable host": {"DATABASE_URL": unreachable.render_as_string(hide_password=False)},
        "unreachable host, query": {"DATABASE_URL": without_password(unreachable, password=PLANTED).render_as_string(hide_password=False)},
        "options": {"DATABASE_URL": url.update_query_dict({"options": f"-c password={PLANTED}"}).render_as_string(hide_password=False)},
        "conninfo": {"DATABASE_URL": f"host=127.0.0.1 port=1 user=app password={PLANTED} dbname=prod"},
    }


def run_all(monkeypatch, capfd, env: dict[str, str], options: list[str], fmt: str, commands=COMMANDS) -> dict[str, tuple[int, str]]:
    """Run every command in-process with `env`; return each one's exit code and stdout + stderr."""
    for var in ("DATABASE_URL", "PGPASSWORD", "COPYTHAT_ENV_FILE", "DATABASE_REPLICA_URL"):
        monkeypatch.delenv(var, raising=False)
    for var, value in env.items():
        monkeypatch.setenv(var, value)
    dispose_engines()  # no pooled connection from an earlier case
    seen = {}
    for command in commands:
        monkeypatch.delenv("COPYTHAT_ENV_FILE", raising=False)
        try:
            code = main([*options, "--format", fmt, *command])
        except SystemExit as exc:
            code = exc.code
        out, err = capfd.readouterr()
        seen[" ".join(command)] = (code, out + err)
    return seen


def assert_no_secret(seen: dict[str, tuple[int, str]], secrets: list[str]) -> None:
    leaks = [command for command, (_, output) in seen.items() if any(s in output for secret in secrets for s in spellings(secret))]
    assert not leaks, f"a password was printed by: {leaks}"


@pytest.mark.parametrize("fmt", FORMATS)
@pytest.mark.parametrize("way", ["userinfo", "query", ".env", "PGPASSWORD", "sslpassword"])
def test_no_command_prints_the_password_whichever_way_it_was_given(login, tmp_path, monkeypatch, capfd, way, fmt):
    env, options = working_ways(login, tmp_path)[way]
    seen = run_all(monkeypatch, capfd, env, options, fmt)
    assert_no_secret(seen, [login.password, PLANTED])
    assert seen["db check"][0] == 0 and seen["migrate current"][0] == 0, seen  # it did connect
    assert "postgresql://" in seen["db url --libpq"][1] and "+psycopg2" not in seen["db url --libpq"][1]


@pytest.mark.parametrize("fmt", FORMATS)
@pytest.mark.parametrize("way", ["wrong password", "wrong password as query", "wrong PGPASSWORD", "unreachable host", "unreachable host, query", "options", "conninfo"])
def test_failing_connections_do_not_echo_the_password(login, monkeypatch, capfd, way, fmt):
    monkeypatch.setattr(engine, "CONNECT_RETRIES", 0)  # the same error again is no new output
    seen = run_all(monkeypatch, capfd, failing_ways(login)[way], [], fmt, FAILING_COMMANDS)
    assert_no_secret(seen, [login.password, PLANTED])
    assert seen["db check"][0] != 0 and "error: " in seen["db check"][1], seen["db check"]
    assert seen["migrate current"][0] != 0 and "error: " in seen["migrate current"][1], seen["migrate current"]
    assert seen["db status"][0] != 0 and not any("Traceback" in output for _, output in seen.values()), seen


def test_the_cli_itself_masks_a_query_password(login):
    url = without_password(login, password=PLANTED).set(host="127.0.0.1", port=1)
    for args in (["--format", "json", "db", "check"], ["db", "url"]):
        result = subprocess.run([CLI, *args], env={**os.environ, "DATABASE_URL": url.render_as_string(hide_password=False)},
                                capture_output=True, text=True, timeout=120)  # fmt: skip
        assert PLANTED not in result.stdout + result.stderr
    assert "password=***" in result.stdout


def test_psql_accepts_the_libpq_url_with_pgpassword(login):
    env = {**os.environ, "DATABASE_URL": login.render_as_string(hide_password=False)}
    shown = subprocess.run([CLI, "db", "url", "--libpq"], env=env, capture_output=True, text=True, timeout=120)
    assert shown.returncode == 0, shown.stderr
    libpq = shown.stdout.strip()
    assert libpq.startswith("postgresql://") and "+psycopg2" not in libpq and "ssl=" not in libpq
    assert login.password not in libpq and "PGPASSWORD" in shown.stderr
    env = {k: v for k, v in os.environ.items() if not k.startswith("PG")}
    psql = subprocess.run(["psql", libpq, "-Atc", "SELECT current_user || ' ' || current_database()"], env={**env, "PGPASSWORD": login.password},
                          capture_output=True, text=True, timeout=60)  # fmt: skip
    assert psql.returncode == 0, psql.stderr
    assert psql.stdout.strip() == f"{login.username} {login.database}"
