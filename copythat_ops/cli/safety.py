"""The safe-migration commands: `migrate lint | new | rehearse`, `migrate upgrade --backup`, `db backup | restore | backups`.

Example:
    $ copythat-ops migrate lint                 # exit 1 when squawk finds something
    $ copythat-ops migrate new "add jobs.priority" --autogenerate
    $ copythat-ops migrate rehearse             # on a clone; exit 1 when anything failed
    $ copythat-ops db backup && copythat-ops db backups
"""

from __future__ import annotations

import re
import sys
from contextlib import contextmanager

from ..errors import CopythatError, InputError
from .args import positive_duration
from .confirm import add_yes, confirm_change
from .lazy import library
from .output import Report

rehearse, revisions, lint = library("migrations.rehearsal"), library("migrations.revisions"), library("migrations.squawk")
backup = library("recovery.dumps", BACKUP_DIR_VAR="COPYTHAT_BACKUP_DIR", LOCK_WAIT_TIMEOUT="5s")
MIGRATE_ACTIONS = ("lint", "new", "rehearse")
DB_ACTIONS = ("backup", "restore", "backups")
FOLDER_HELP = f"the backup folder (default ${backup.BACKUP_DIR_VAR}, else .copythat/backups of the checkout)"
LOCK_WAIT_HELP = f"give up when a table stays locked this long, naming the session that holds it (default {backup.LOCK_WAIT_TIMEOUT})"
# "backups() (`copythat-ops db backups`)": a library message names the function and the command; the CLI says the command.
_BOTH = re.compile(r"(?<![\w.])[a-z_]+\([^()]*\) \((`copythat-ops [^`]+`)\)")


@contextmanager
def cli_words():
    """Errors from the library in the CLI's words: the command instead of the function, one `Fix:`."""
    try:
        yield
    except CopythatError as exc:
        problem, _, inner_fix = exc.problem.partition(". Fix: ")
        fix = exc.fix or inner_fix or None
        raise type(exc)(_BOTH.sub(r"\1", problem), fix=_BOTH.sub(r"\1", fix) if fix else None, params=exc.params) from None


def register_migrate(actions, upgrade) -> None:
    """Add `migrate lint | new | rehearse` and `migrate upgrade --backup`."""
    upgrade.add_argument("--backup", action="store_true", help="take a backup (pg_dump -Fc) before applying anything")
    upgrade.add_argument("--folder", help=FOLDER_HELP)
    upgrade.add_argument("--lock-wait-timeout", type=positive_duration, default=backup.LOCK_WAIT_TIMEOUT, help=f"with --backup: {LOCK_WAIT_HELP}")
    check = actions.add_parser("lint", help="check revisions' SQL (upgrade and downgrade) with squawk; exit 1 on a finding")
    check.add_argument("revisions", nargs="*", metavar="REV", help="revisions to lint (default: all)")
    check.add_argument("--pg-version", help="judge for this PostgreSQL version, e.g. 15 (default: squawk's newest)")
    new = actions.add_parser("new", help="write a new revision after head, then lint it")
    new.add_argument("message", help="what the revision changes")
    new.add_argument("--autogenerate", action="store_true", help="fill it with the difference between the models and the database")
    new.add_argument("--empty", dest="allow_empty", action="store_true", help="with --autogenerate: write the revision even when the models and the database agree")
    practise = actions.add_parser("rehearse", help="migrate a clone (or a Neon branch) to TARGET, check it, drop it; exit 1 on failure")
    practise.add_argument("target", nargs="?", default="head")
    practise.add_argument("--keep", action="store_true", help="keep the clone or branch afterwards")
    practise.add_argument("--neon", action="store_true", help="rehearse on a Neon branch (NEON_API_KEY, NEON_PROJECT_ID)")


def register_db(actions) -> None:
    """Add `db backup | restore | backups`."""
    take = actions.add_parser("backup", help="pg_dump -Fc the database into the backup folder")
    take.add_argument("--folder", help=FOLDER_HELP)
    take.add_argument("--lock-wait-timeout", type=positive_duration, default=backup.LOCK_WAIT_TIMEOUT, help=LOCK_WAIT_HELP)
    take.add_argument("--neon", action="store_true", help="instead: a Neon branch of the default branch at its current LSN")
    back = actions.add_parser("restore", help="restore a backup into a NEW database (never over an existing one)")
    back.add_argument("path", nargs="?", metavar="FILE", help="a .dump file (see `db backups`)")
    back.add_argument("--database", help="the name of the new database")
    back.add_argument("--neon", action="store_true", help="instead: Neon point-in-time restore of the default branch (the state before is kept as a branch)")
    back.add_argument("--timestamp", help="with --neon: the time to go back to (ISO 8601, UTC)")
    add_yes(back)
    listed = actions.add_parser("backups", help="the backups in the folder, newest first")
    listed.add_argument("--folder", help=FOLDER_HELP)


def run_migrate(args) -> object:
    with cli_words():
        return _run_migrate(args)


def _run_migrate(args) -> object:
    if args.action == "lint":
        found = lint.lint(args.revisions or None, pg_version=args.pg_version)
        if found.empty:
            print("squawk: no findings", file=sys.stderr)
            return Report(found, exit_code=0)
        print(f"squawk: {len(found)} finding(s); fix them, or add the rule to the revision's SQUAWK_IGNORE with the reason", file=sys.stderr)
        return Report(found, exit_code=1)
    if args.action == "new":
        written = revisions.revision(args.message, autogenerate=args.autogenerate, allow_empty=args.allow_empty)
        print(written.summary(), file=sys.stderr)
        return Report(written.findings if not written.ok else str(written.path), exit_code=0 if written.ok else 1)
    if args.neon:
        report = rehearse.rehearse_on_neon(args.target, keep=args.keep)
    else:
        report = rehearse.rehearse(args.target, keep=args.keep)
    print(rehearse.summary(report), file=sys.stderr)
    if args.keep:
        print(f"kept: {report.attrs.get('clone')}", file=sys.stderr)
    return Report(report, exit_code=0 if report.attrs.get("ok") else 1)


def offer_backup(args) -> None:
    """`migrate upgrade` on a database that is not local, without --backup: say how to take one first."""
    from ..config import is_local
    from ..engine import database_url

    if not getattr(args, "backup", False) and not is_local(database_url()):
        print("No backup will be taken: add --backup to pg_dump the database first (copythat-ops db backups lists them).", file=sys.stderr)


def backup_before_upgrade(args) -> None:
    """`migrate upgrade --backup`: the dump comes first; a failed dump stops the upgrade."""
    if getattr(args, "backup", False):
        with cli_words():
            taken = backup.backup(folder=args.folder, lock_wait_timeout=getattr(args, "lock_wait_timeout", backup.LOCK_WAIT_TIMEOUT))
        print(f"backup: {taken['path']} ({taken['size_bytes']} bytes, {taken['tool']})", file=sys.stderr)


def run_db(args) -> object:
    with cli_words():
        return _run_db(args)


def _run_db(args) -> object:
    if args.action == "backup":
        if args.neon:
            from ..recovery import neon

            return neon.snapshot()
        return backup.backup(folder=args.folder, lock_wait_timeout=args.lock_wait_timeout)
    if args.action == "backups":
        return backup.backups(args.folder)
    if args.neon:
        from ..recovery import neon

        if not args.timestamp:
            raise InputError("restore --neon needs --timestamp", fix="give the time to go back to, e.g. --timestamp 2026-11-25T12:00:00Z")
        client = neon.Neon()
        confirm_change(f"db restore --neon (Neon project {client.project_id}, default branch back to {args.timestamp})", yes=args.yes)
        return neon.restore_to(client=client, timestamp=args.timestamp)
    if not args.path or not args.database:
        raise InputError(
            "restore needs FILE and --database NAME (a new database)",
            fix="name a file listed by `copythat-ops db backups`, e.g. copythat-ops db restore FILE --database copythat_restored",
        )
    from ..engine import database_url

    server = database_url()
    confirm_change(f"db restore (creates database {args.database})", yes=args.yes, url=server)
    return backup.restore(args.path, database=args.database)
