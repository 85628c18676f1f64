"""The safe-migration commands: `migrate lint | new | rehearse`, `migrate upgrade --backup`, `db backup | restore | backups`.

Example:
    $ copythat-ops migrate lint                 # exit 1 when squawk finds something
    $ copythat-ops migrate new "add jobs.priority" --autogenerate
    $ copythat-ops migrate rehearse             # on a clone; exit 1 when anything failed
    $ copythat-ops db backup && copythat-ops db backups
"""

from __future__ import annotations

import sys

from .. import backup, lint, rehearse, revisions
from ..engine import database_url
from .confirm import add_yes, confirm_change
from .output import Report

MIGRATE_ACTIONS = ("lint", "new", "rehearse")
DB_ACTIONS = ("backup", "restore", "backups")
FOLDER_HELP = f"the backup folder (default ${backup.BACKUP_DIR_VAR}, else .copythat/backups of the checkout)"


def register_migrate(actions, upgrade) -> None:
    """Add `migrate lint | new | rehearse` and `migrate upgrade --backup`."""
    upgrade.add_argument("--backup", action="store_true", help="take a backup (pg_dump -Fc) before applying anything")
    upgrade.add_argument("--folder", help=FOLDER_HELP)
    check = actions.add_parser("lint", help="check revisions' SQL (upgrade and downgrade) with squawk; exit 1 on a finding")
    check.add_argument("revisions", nargs="*", metavar="REV", help="revisions to lint (default: all)")
    check.add_argument("--pg-version", help="judge for this PostgreSQL version, e.g. 15 (default: squawk's newest)")
    new = actions.add_parser("new", help="write a new revision after head, then lint it")
    new.add_argument("message", help="what the revision changes")
    new.add_argument("--autogenerate", action="store_true", help="fill it with the difference between the models and the database")
    practise = actions.add_parser("rehearse", help="migrate a clone (or a Neon branch) to TARGET, check it, drop it; exit 1 on failure")
    practise.add_argument("target", nargs="?", default="head")
    practise.add_argument("--keep", action="store_true", help="keep the clone or branch afterwards")
    practise.add_argument("--neon", action="store_true", help="rehearse on a Neon branch (NEON_API_KEY, NEON_PROJECT_ID)")


def register_db(actions) -> None:
    """Add `db backup | restore | backups`."""
    take = actions.add_parser("backup", help="pg_dump -Fc the database into the backup folder")
    take.add_argument("--folder", help=FOLDER_HELP)
    back = actions.add_parser("restore", help="restore a backup into a NEW database (never over an existing one)")
    back.add_argument("path", metavar="FILE", help="a .dump file (see `db backups`)")
    back.add_argument("--database", required=True, help="the name of the new database")
    add_yes(back)
    listed = actions.add_parser("backups", help="the backups in the folder, newest first")
    listed.add_argument("--folder", help=FOLDER_HELP)


def run_migrate(args) -> object:
    if args.action == "lint":
        found = lint.lint(args.revisions or None, pg_version=args.pg_version)
        if found.empty:
            print("squawk: no findings", file=sys.stderr)
            return Report(found, exit_code=0)
        print(f"squawk: {len(found)} finding(s); fix them, or add the rule to the revision's SQUAWK_IGNORE with the reason", file=sys.stderr)
        return Report(found, exit_code=1)
    if args.action == "new":
        written = revisions.revision(args.message, autogenerate=args.autogenerate)
        print(written.summary(), file=sys.stderr)
        return Report(written.findings if not written.ok else str(written.path), exit_code=0 if written.ok else 1)
    if args.neon:
        from .. import neon

        report = neon.rehearse_on_neon(args.target, keep=args.keep)
    else:
        report = rehearse.rehearse(args.target, keep=args.keep)
    print(rehearse.summary(report), file=sys.stderr)
    if args.keep:
        print(f"kept: {report.attrs.get('clone')}", file=sys.stderr)
    return Report(report, exit_code=0 if report.attrs.get("ok") else 1)


def backup_before_upgrade(args) -> None:
    """`migrate upgrade --backup`: the dump comes first; a failed dump stops the upgrade."""
    if getattr(args, "backup", False):
        taken = backup.backup(folder=args.folder)
        print(f"backup: {taken['path']} ({taken['size_bytes']} bytes, {taken['tool']})", file=sys.stderr)


def run_db(args) -> object:
    if args.action == "backup":
        return backup.backup(folder=args.folder)
    if args.action == "backups":
        return backup.backups(args.folder)
    server = database_url()
    confirm_change(f"db restore (creates database {args.database})", yes=args.yes, url=server)
    return backup.restore(args.path, database=args.database)
