"""`copythat-ops migrate`: Alembic migrations, each showing its plan before it acts."""

from __future__ import annotations

import sys

from ..errors import CopythatError
from . import safety
from .confirm import add_yes, confirm_change
from .lazy import library
from .output import emit

migrations = library("migrations")


def register(groups) -> None:
    """Add the `migrate` sub-commands."""
    mig = groups.add_parser("migrate", help="schema migrations (Alembic)")
    actions = mig.add_subparsers(dest="action", required=True)
    up = actions.add_parser("upgrade", help="apply migrations up to TARGET (default head)")
    up.add_argument("target", nargs="?", default="head")
    up.add_argument("--sql", action="store_true", help="print the SQL instead of running it")
    add_yes(up)
    down = actions.add_parser("downgrade", help="revert migrations down to TARGET (a revision, -1 or base)")
    down.add_argument("target")
    down.add_argument("--yes", action="store_true", help="really revert (drops data), on any database: without it, a dry run")
    down.add_argument("--sql", action="store_true", help="print the SQL instead of running it")
    stamp = actions.add_parser("stamp", help="record REVISION as applied without running it")
    stamp.add_argument("revision")
    add_yes(stamp)
    sql = actions.add_parser("sql", help="the SQL from START (default empty) to END (default head), offline")
    sql.add_argument("start", nargs="?")
    sql.add_argument("end", nargs="?", default="head")
    for name, text in [
        ("current", "the revision the database is at"),
        ("heads", "the newest revision(s)"),
        ("history", "every revision and whether it is applied"),
        ("pending", "revisions not applied yet"),
        ("check", "fail when the models and the database differ"),
    ]:
        actions.add_parser(name, help=text)
    safety.register_migrate(actions, up)
    mig.set_defaults(run=run)


def _now(revision: str | None) -> str:
    return f"now at {revision or 'base (no revision applied)'}"


def run(args) -> object:
    action = args.action
    if action in safety.MIGRATE_ACTIONS:
        return safety.run_migrate(args)
    if action == "upgrade":
        if args.sql:
            return migrations.sql(migrations.current(), args.target)
        migrations.upgrade_plan(args.target)  # an unknown, older or past-head target: refused with the fix
        todo = migrations.pending(args.target)
        print(f"Applying {len(todo)} revision(s) up to {args.target}:" if len(todo) else "Nothing to apply.", file=sys.stderr)
        if len(todo):
            print(todo[["revision", "description"]].to_markdown(index=False, tablefmt="simple"), file=sys.stderr)
        if len(todo):
            safety.offer_backup(args)
            confirm_change("migrate upgrade", yes=args.yes)
            safety.backup_before_upgrade(args)
        return _now(migrations.upgrade(args.target))
    if action == "downgrade":
        plan = migrations.downgrade_plan(args.target)  # an unknown, past-base or ahead target: refused with the fix
        if not plan.steps:
            return plan.summary()
        if args.sql:
            return migrations.sql(plan.current, plan.lands_on or "base")
        if not args.yes:
            return plan.summary() + "\nThis drops what those revisions created, data included. See the SQL with --sql; run again with --yes to apply."
        print(plan.summary(done=True), file=sys.stderr)
        return _now(migrations.downgrade(plan.lands_on or "base"))
    if action == "stamp":
        confirm_change("migrate stamp", yes=args.yes)
        return _now(migrations.stamp(args.revision))
    if action == "sql":
        return migrations.sql(args.start, args.end)
    if action == "check":
        status = migrations.schema_status()
        if not status["ok"]:
            if status["differences"]:
                emit(status["differences"], getattr(args, "format", "table"))
            raise CopythatError(status["problem"], fix=status["fix"])
        return "models and database agree"
    return {"current": migrations.current, "heads": migrations.heads, "history": migrations.history, "pending": migrations.pending}[action]()
