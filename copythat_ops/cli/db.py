"""`copythat-ops db`: the embedded server, the URL in use, the connection check."""

from __future__ import annotations

import sys

from ..errors import InputError
from . import safety, snapshots
from .confirm import add_yes, confirm_change
from .lazy import library
from .output import Report

LIBPQ_HELP = (
    "print it in the form psql accepts (postgresql://, libpq options); the password is left out: "
    "give it to psql with PGPASSWORD=... or a ~/.pgpass line, or add --show-password"
)


def register(groups) -> None:
    """Add the `db` sub-commands."""
    db = groups.add_parser("db", help="the database: embedded server, URL, connection check")
    actions = db.add_subparsers(dest="action", required=True)
    actions.add_parser("up", help="start (or reuse) the embedded PostgreSQL")
    actions.add_parser("down", help="stop the embedded PostgreSQL")
    actions.add_parser("status", help="the database in use: the configured one (reachable, version, revision), else the embedded server")
    url = actions.add_parser("url", help="the URL in use, password masked")
    url.add_argument("--show-password", action="store_true", help="print the password too")
    url.add_argument("--libpq", action="store_true", help=LIBPQ_HELP)
    actions.add_parser("check", help="connect and report provider, version, revision, latency")
    safety.register_db(actions)
    snapshots.register_db(actions)
    register_drills(actions)
    db.set_defaults(run=run)


def run(args) -> object:
    if args.action in DRILL_ACTIONS or getattr(args, "prune", False):
        return run_drills(args)
    if args.action in safety.DB_ACTIONS:
        return safety.run_db(args)
    if args.action in snapshots.DB_ACTIONS:
        return snapshots.run_db(args)
    from .. import embedded  # the library loads with the command: building the parser loads none of it
    from ..check import check_connection, database_status
    from ..config import libpq_url, mask_url
    from ..engine import database_url

    if args.action == "up":
        embedded.start()
        return embedded.status()
    if args.action == "down":
        return "stopped" if embedded.stop() else "the embedded PostgreSQL was not running"
    if args.action == "status":
        facts = database_status()
        return Report(facts, exit_code=1 if facts.get("reachable") is False else 0)
    if args.action == "url":
        url = database_url()
        if args.libpq:
            if url.password and not args.show_password:
                print("password left out: psql reads it from PGPASSWORD or ~/.pgpass (or use --show-password)", file=sys.stderr)
            return libpq_url(url, show_password=args.show_password)
        return url.render_as_string(hide_password=False) if args.show_password else mask_url(url)
    return check_connection()


# `db drill | drills` and `db backups --prune`: restore drills and retention (copythat_ops.recovery.drills, recovery.dumps.prune_backups).
DRILL_ACTIONS = ("drill", "drills")
drilling = library("recovery.drills", KINDS=("pg_dump", "neon_snapshot", "neon_branch"))
KEEP = {"daily": (7, "days"), "weekly": (4, "ISO weeks"), "monthly": (6, "months")}  # prune_backups' defaults


def register_drills(actions) -> None:
    """Add `db drill`, `db drills` and the retention flags of `db backups`."""
    run = actions.add_parser("drill", help="restore the newest backup (a pg_dump file, a Neon snapshot or backup branch) into a scratch database or branch, "
                             "verify it, time it (RTO/RPO), record it, drop it; exit 1 when it fails")
    run.add_argument("--backup", metavar="FILE", help="the backup file to drill (default: the newest backup of any kind)")
    run.add_argument("--kind", choices=drilling.KINDS, help="the newest backup of this kind (pg_dump: a file in the folder; neon_snapshot; neon_branch: of `db backup --neon`)")
    run.add_argument("--folder", help=safety.FOLDER_HELP)
    run.add_argument("--no-record", dest="record", action="store_false", help="leave the history and the backup's figures file alone")
    run.add_argument("--neon", action="store_true", help="drill the newest Neon backup, a snapshot or a backup branch (restored into a branch, checked against a branch as of its point)")
    run.add_argument("--snapshot", metavar="ID", help="with --neon: this snapshot (see `db snapshot list`)")
    run.add_argument("--branch", metavar="BRANCH", help="with --neon: this branch, id or name (a backup branch of `db backup --neon`)")
    add_yes(run)
    past = actions.add_parser("drills", help="the recorded drills of the database, newest first")
    past.add_argument("--limit", type=int, default=100, help="at most this many (default 100)")
    listed = actions.choices["backups"]
    listed.add_argument("--prune", action="store_true", help="show which backups retention keeps and deletes (deletes only with --yes)")
    for name, (default, periods) in KEEP.items():
        listed.add_argument(f"--keep-{name}", type=int, default=default, metavar="N", help=f"with --prune: keep the newest backup of each of the newest N {periods} (default {default})")
    listed.add_argument("--yes", action="store_true", help="with --prune: delete what it shows as delete")


def run_drills(args) -> object:
    with safety.cli_words():
        if args.action == "drill":
            for flag, value in (("--snapshot", args.snapshot), ("--branch", args.branch)):
                if value and not args.neon:
                    raise InputError(f"{flag} names a Neon {flag[2:]}", fix=f"add --neon (copythat-ops db drill --neon {flag} {value})")
            if args.snapshot and args.branch:
                raise InputError("--snapshot and --branch each name the backup to drill: give one", fix="drop --snapshot, or drop --branch")
            given = [flag for flag, value in (("--backup", args.backup), ("--neon", args.neon), ("--kind", args.kind)) if value]
            if len(given) > 1:
                raise InputError(f"{' and '.join(given)} each choose the backup to drill: give one", fix="--backup FILE, --kind KIND, or --neon [--snapshot ID | --branch BRANCH]")
            if args.neon:
                source = f"neon_snapshot:{args.snapshot}" if args.snapshot else f"neon_branch:{args.branch}" if args.branch else "neon"
            else:
                source = args.backup or args.kind
            neon_kind = args.neon or (args.kind or "").startswith("neon")
            made = "two branches in the Neon project (deleted after)" if neon_kind else "a scratch database or two Neon branches (dropped after)" if source is None else "a scratch database on its server (dropped after)"
            confirm_change(f"db drill (creates {made}, and records the result)", yes=args.yes)
            report = drilling.drill(source, folder=args.folder, record=args.record)
            print(drilling.summary(report), file=sys.stderr)
            return Report(report, exit_code=0 if report.attrs["status"] == "passed" else 1)
        if args.action == "drills":
            return drilling.drills(limit=args.limit)
        plan = safety.backup.prune_backups(args.folder, keep_daily=args.keep_daily, keep_weekly=args.keep_weekly, keep_monthly=args.keep_monthly, apply=args.yes)
        going = plan[plan["action"].isin(["delete", "deleted"])]
        size = int(going["size_bytes"].sum())
        if args.yes:
            print(f"deleted {len(going)} backups ({size:,} bytes); kept {len(plan) - len(going)}", file=sys.stderr)
        else:
            print(f"would delete {len(going)} backups ({size:,} bytes) and keep {len(plan) - len(going)}; nothing deleted: add --yes to delete them", file=sys.stderr)
        return plan.drop(columns=["path"])
