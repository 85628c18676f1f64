"""Every command of `copythat-ops`, found by walking its parser, prints exactly one JSON or CSV document with --format json / csv."""

from __future__ import annotations

import argparse
import csv
import io
import json
import os
from datetime import UTC, datetime, timedelta
from pathlib import Path

import nbformat
import pandas as pd
import pytest
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError

from copythat_ops import migrations, seed
from copythat_ops.cli import main, parser
from copythat_ops.engine import get_engine
from copythat_ops.seed import seed_database
from test_cli import run

# Arguments a command needs to run as a read-only check; a command not listed runs bare.
ARGS = {
    ("jobs", "requeue"): ["--error-like", "timeout"],
    ("jobs", "cancel"): ["--id", "{pending}", "--reason", "format test"],
    ("jobs", "archive"): ["--to", "/nonexistent-archive"],  # a dry run: nothing is written
    ("jobs", "restore-archive"): ["--from", "/tmp", "--month", "2025-01"],
    ("migrate", "downgrade"): ["base"],
    ("seed",): ["--if-empty"],
    ("monitor", "forecast", "size"): ["--size-limit", "10 GB"],
    ("monitor", "trends", "changes"): ["--since", "{two_days_ago}"],
    ("monitor", "schema-diff"): ["{url}", "{other_url}"],
    ("tokens", "export"): ["--project", "1"],
    ("tokens", "search"): ["brand"],
    ("tokens", "backfill"): ["--dry-run"],
}
EXTENSIONS = {("monitor", "queries", "top"): "pg_stat_statements", ("monitor", "queries", "slow"): "pg_stat_statements",
              ("monitor", "bloat", "exact"): "pgstattuple"}  # fmt: skip
SIGNALS = {("monitor", "cancel"), ("monitor", "terminate")}  # take the pid of a live session, as dry runs
# Commands that change something whatever their arguments: covered by their own tests.
CHANGING = {
    ("db", "up"): "starts the embedded server",
    ("db", "down"): "stops the embedded server",
    ("migrate", "upgrade"): "applies revisions (test_upgrade_prints_one_document)",
    ("migrate", "stamp"): "writes the revision table",
    ("notebooks", "run"): "writes report folders (test_notebooks_run_prints_one_document)",
    ("db", "backup"): "writes a dump file",
    ("db", "restore"): "creates a database",
    ("migrate", "new"): "writes a revision file",
    ("migrate", "rehearse"): "creates and drops a scratch database",
    ("monitor", "capture"): "writes a snapshot into the history tables",
    ("db", "drill"): "restores a backup into a scratch database and records the drill (test_drills.py)",
    ("db", "snapshot", "create"): "takes a Neon snapshot (test_neon_snapshots.py)",
    ("db", "snapshot", "restore"): "restores a Neon snapshot into a branch (test_neon_snapshots.py)",
    ("db", "snapshot", "finalize"): "finalizes a Neon restore (test_neon_snapshots.py)",
    ("db", "snapshot", "delete"): "deletes a Neon snapshot (test_neon_snapshots.py)",
    ("db", "snapshot", "schedule", "set"): "sets the Neon backup schedule (test_neon_snapshots.py)",
    ("db", "pitr"): "makes a Neon branch (test_neon_snapshots.py)",
}
# Commands that read what this test has not set up, or do not end: covered by their own tests.
ELSEWHERE = {
    ("db", "snapshot", "list"): "reads the Neon API (test_neon_snapshots.py)",
    ("db", "snapshot", "schedule", "show"): "reads the Neon API (test_neon_snapshots.py)",
    ("serve",): "serves until interrupted (test_serve.py)",
}


def commands(node: argparse.ArgumentParser | None = None, path: tuple[str, ...] = ()) -> list[tuple[str, ...]]:
    """Every runnable command line under the parser: group, action, and each positional view with choices."""
    node = node or parser()
    found = []
    subcommands = [a for a in node._actions if isinstance(a, argparse._SubParsersAction)]
    if subcommands:
        for name, sub in subcommands[0].choices.items():
            found += commands(sub, (*path, name))
        return found
    views = [a for a in node._actions if not a.option_strings and a.choices and not isinstance(a, argparse._SubParsersAction)]
    return [(*path, view) for view in views[0].choices] if views else [path]


def command_key(command: tuple[str, ...]) -> tuple[str, ...]:
    return command[:2] if command[0] != "seed" else command[:1]


READ_ONLY = [c for c in commands() if not any(c[:n] in CHANGING | ELSEWHERE for n in range(1, len(c) + 1))]


def test_the_walk_finds_every_command():
    found = commands()
    assert ("db", "check") in found and ("monitor", "indexes", "duplicate") in found and ("jobs", "audit") in found
    assert len(READ_ONLY) > 30 and ("migrate", "upgrade") in found and ("notebooks", "run") in found


@pytest.fixture(scope="module")
def seeded(db_url, monkeypatch_module):
    migrations.upgrade("head", url=db_url)
    seed_database(300, 5, seed=1, window="2 days", engine=get_engine(db_url))
    other_url = os.environ["DATABASE_URL"]  # the session's other database (the notebooks'), for schema-diff
    monkeypatch_module.setenv("DATABASE_URL", db_url.render_as_string(hide_password=False))
    if hasattr(seed, "seed_history"):  # the history views need snapshots
        seed.seed_history(3, "1h", engine=get_engine(db_url), allow_remote=True)
    with get_engine(db_url).connect() as other:  # a live session for monitor cancel / terminate dry runs
        for extension in sorted(set(EXTENSIONS.values())):
            try:
                other.execute(text(f"CREATE EXTENSION IF NOT EXISTS {extension}"))
                other.commit()
            except DBAPIError:  # a role that may not create it: those views say so with exit 2 (tested with the monitoring)
                other.rollback()
        installed = set(other.execute(text("SELECT extname FROM pg_extension")).scalars())
        pending = other.execute(text("SELECT min(id) FROM extraction_jobs WHERE status = 'pending'")).scalar()
        yield {
            "pid": other.execute(text("SELECT pg_backend_pid()")).scalar(),
            "pending": pending,
            "installed": installed,
            "url": db_url.render_as_string(hide_password=False),
            "other_url": other_url,
            "two_days_ago": f"{datetime.now(UTC) - timedelta(days=2):%Y-%m-%d %H:%M}",
        }


@pytest.fixture(scope="module")
def monkeypatch_module():
    with pytest.MonkeyPatch.context() as patch:
        yield patch


def one_json(out: str) -> object:
    """The one JSON document in `out`: prose before or after it, or NaN / Infinity (not JSON), fail."""

    def not_json(constant):
        raise AssertionError(f"{constant} is not JSON: {out[:300]!r}")

    return json.loads(out, parse_constant=not_json)


def one_csv(out: str) -> list[list[str]]:
    rows = list(csv.reader(io.StringIO(out)))
    assert rows and rows[0] and all(rows[0]), f"no header: {out[:200]!r}"
    assert all(len(row) == len(rows[0]) for row in rows), f"rows of another width than the header: {out[:300]!r}"
    pd.read_csv(io.StringIO(out))
    return rows


@pytest.mark.parametrize("command", READ_ONLY, ids=[" ".join(c) for c in READ_ONLY])
@pytest.mark.parametrize("fmt", ["json", "csv"])
def test_read_only_command_prints_one_document(command, fmt, seeded, capfd):
    if EXTENSIONS.get(command, "") not in seeded["installed"] | {""}:
        pytest.skip(f"{EXTENSIONS[command]} cannot be created by this role")
    args = ARGS.get(command, ARGS.get(command_key(command), []))
    extra = [str(seeded["pid"])] if command_key(command) in SIGNALS else [a.format(**seeded) for a in args]
    code = main([*command, *extra, "--format", fmt])
    out, err = capfd.readouterr()
    assert code in (0, 1, 3), err  # 1: a check that found problems (migrate lint), 3: monitor health at CRIT; both still print their report
    assert not err.startswith("error:"), err
    (one_json if fmt == "json" else one_csv)(out)


def test_format_is_taken_before_the_group_and_after_the_command(seeded, capfd):
    for args in (["--format", "json", "db", "check"], ["db", "check", "--format", "json"], ["db", "--format", "json", "check"]):
        assert main(args) == 0
        assert one_json(capfd.readouterr().out)["database"] == "connected"
    assert main(["--format", "json", "db", "check", "--format", "csv"]) == 0  # the one nearest the command wins
    assert one_csv(capfd.readouterr().out)[0] == ["field", "value"]
    assert main(["db", "check"]) == 0 and "connected" in capfd.readouterr().out  # a table when not given at all


def test_env_file_is_taken_after_the_command_too(seeded, tmp_path):
    env_file = tmp_path / "other.env"
    env_file.write_text(f"DATABASE_URL={os.environ['DATABASE_URL']}\n")
    result = run("migrate", "current", "--env-file", str(env_file), "--format", "json")  # no DATABASE_URL in its environment
    assert result.returncode == 0, result.stderr
    assert one_json(result.stdout) == migrations.heads()[0]


def test_upgrade_prints_one_document(server):
    url = server.create_database("formats_upgrade")
    try:
        first = run("migrate", "upgrade", "--format", "json", url=url)
        assert first.returncode == 0, first.stderr
        assert migrations.heads()[0] in one_json(first.stdout)
        again = run("migrate", "upgrade", "--format", "csv", url=url)
        assert again.returncode == 0, again.stderr
        one_csv(again.stdout)
    finally:
        server.drop_database(url)


def test_notebooks_run_prints_one_document(db_url, tmp_path):
    folder = tmp_path / "runbooks"
    folder.mkdir()
    notebook = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell("print('hello from a runbook')")])
    notebook.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nbformat.write(notebook, folder / "01_hello.ipynb")
    for fmt, parse in (("json", one_json), ("csv", one_csv)):
        result = run("notebooks", "run", "--folder", str(folder), "--output-dir", str(tmp_path / f"reports-{fmt}"), "--format", fmt, url=db_url)
        assert result.returncode == 0, result.stderr
        parse(result.stdout)
        assert "hello from a runbook" not in result.stdout
    assert any(Path(tmp_path / "reports-csv").rglob("*.html"))
