"""`copythat-ops`: the library's functions from a terminal, cron or CI.

Example:
    $ copythat-ops db check
    $ copythat-ops migrate upgrade
    $ copythat-ops --format json migrate history
"""

from __future__ import annotations

import argparse
import json
import os
import sys

import pandas as pd

from . import embedded, migrations
from .check import check_connection
from .config import ENV_FILE_VAR, mask_text
from .engine import database_url
from .errors import CopythatError
from .runbooks import run_notebooks


def emit(value, fmt: str = "table") -> None:
    """Print a DataFrame, dict, list or text as a table, CSV or JSON."""
    if isinstance(value, dict):
        value = pd.DataFrame({"field": list(value), "value": list(value.values())}) if fmt != "json" else value
    if isinstance(value, pd.DataFrame):
        if fmt == "json":
            print(value.to_json(orient="records", date_format="iso", force_ascii=False))
        elif fmt == "csv":
            print(value.to_csv(index=False), end="")
        elif value.empty:
            print("(none)")
        else:
            print(value.to_markdown(index=False, tablefmt="simple"))
    elif fmt == "json":
        print(json.dumps(value, default=str, ensure_ascii=False))
    elif isinstance(value, list):
        print("\n".join(map(str, value)) if value else "(none)")
    else:
        print("(none)" if value is None else value)


def _db(args) -> object:
    if args.action == "up":
        embedded.start()
        return embedded.status()
    if args.action == "down":
        return "stopped" if embedded.stop() else "the embedded PostgreSQL was not running"
    if args.action == "status":
        return embedded.status()
    if args.action == "url":
        return database_url().render_as_string(hide_password=not args.show_password)
    return check_connection()


def _now(revision: str | None) -> str:
    return f"now at {revision or 'base (no revision applied)'}"


def _migrate(args) -> object:
    action = args.action
    if action == "upgrade":
        if args.sql:
            return migrations.sql(migrations.current(), args.target)
        todo = migrations.pending(args.target)
        print(f"Applying {len(todo)} revision(s) up to {args.target}:" if len(todo) else "Nothing to apply.", file=sys.stderr)
        if len(todo):
            print(todo[["revision", "description"]].to_markdown(index=False, tablefmt="simple"), file=sys.stderr)
        return _now(migrations.upgrade(args.target))
    if action == "downgrade":
        at = migrations.current()
        if args.sql:
            return migrations.sql(at, args.target)
        if not args.yes:
            return (
                f"Would downgrade from {at} to {args.target}, dropping what those revisions created, data included.\n"
                "See the SQL with --sql; run again with --yes to apply."
            )
        return _now(migrations.downgrade(args.target))
    if action == "stamp":
        return _now(migrations.stamp(args.revision))
    if action == "sql":
        return migrations.sql(args.start, args.end)
    if action == "check":
        diffs = migrations.check()
        if diffs:
            emit([str(d) for d in diffs])
            raise CopythatError("the models and the database differ", fix="write a migration: alembic revision --autogenerate")
        return "models and database agree"
    return {"current": migrations.current, "heads": migrations.heads, "history": migrations.history, "pending": migrations.pending}[action]()


def _notebooks(args) -> object:
    result = run_notebooks(args.output_dir)
    emit(result[["notebook", "status", "seconds", "error"]], args.format)
    failed = result[result["status"] != "ok"]
    if not failed.empty:
        raise CopythatError(f"{len(failed)} notebook(s) failed", fix=f"open the executed copies in {args.output_dir} to see the failing cell")
    return f"Executed notebooks are in {os.path.abspath(args.output_dir)}"


def parser() -> argparse.ArgumentParser:
    """Return the argument parser (one sub-command per public function)."""
    top = argparse.ArgumentParser(prog="copythat-ops", description="Operate the Copy That PostgreSQL database.")
    top.add_argument("--env-file", help="read DATABASE_URL from this file instead of the nearest .env")
    top.add_argument("--format", choices=["table", "csv", "json"], default="table", help="output format")
    groups = top.add_subparsers(dest="group", required=True)

    db = groups.add_parser("db", help="the database: embedded server, URL, connection check").add_subparsers(dest="action", required=True)
    db.add_parser("up", help="start (or reuse) the embedded PostgreSQL")
    db.add_parser("down", help="stop the embedded PostgreSQL")
    db.add_parser("status", help="the embedded PostgreSQL's state")
    db.add_parser("url", help="the URL in use, password masked").add_argument("--show-password", action="store_true", help="print the password too")
    db.add_parser("check", help="connect and report provider, version, revision, latency")
    groups.choices["db"].set_defaults(run=_db)

    mig = groups.add_parser("migrate", help="schema migrations (Alembic)").add_subparsers(dest="action", required=True)
    up = mig.add_parser("upgrade", help="apply migrations up to TARGET (default head)")
    up.add_argument("target", nargs="?", default="head")
    up.add_argument("--sql", action="store_true", help="print the SQL instead of running it")
    down = mig.add_parser("downgrade", help="revert migrations down to TARGET (a revision, -1 or base)")
    down.add_argument("target")
    down.add_argument("--yes", action="store_true", help="really revert (drops data)")
    down.add_argument("--sql", action="store_true", help="print the SQL instead of running it")
    mig.add_parser("stamp", help="record REVISION as applied without running it").add_argument("revision")
    sql = mig.add_parser("sql", help="the SQL from START (default empty) to END (default head), offline")
    sql.add_argument("start", nargs="?")
    sql.add_argument("end", nargs="?", default="head")
    for name, text in [
        ("current", "the revision the database is at"),
        ("heads", "the newest revision(s)"),
        ("history", "every revision and whether it is applied"),
        ("pending", "revisions not applied yet"),
        ("check", "fail when the models and the database differ"),
    ]:
        mig.add_parser(name, help=text)
    groups.choices["migrate"].set_defaults(run=_migrate)

    nb = groups.add_parser("notebooks", help="the curated runbooks").add_subparsers(dest="action", required=True)
    nb.add_parser("run", help="execute every notebook headless").add_argument("--output-dir", default="build/notebooks")
    groups.choices["notebooks"].set_defaults(run=_notebooks)
    return top


def main(argv: list[str] | None = None) -> int:
    """Run the command line; return the exit code (0 ok, 1 failure, 2 bad input or configuration)."""
    args = parser().parse_args(argv)
    if args.env_file:
        os.environ[ENV_FILE_VAR] = args.env_file
    try:
        emit(args.run(args), args.format)
    except CopythatError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130
    except Exception as exc:  # a library failure: one masked line, no traceback
        detail = (str(exc).strip().splitlines() or [""])[0]
        print(f"error: {type(exc).__name__}: {mask_text(detail)}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
