"""`copythat-ops db snapshot ...` (Neon snapshots and the backup schedule) and `db pitr` (point-in-time restore into a new branch, compared, finalized when asked).

Example:
    $ copythat-ops db snapshot create --name before-upgrade
    $ copythat-ops db snapshot restore snap-... --finalize      # asks first: the default branch is replaced
    $ copythat-ops db pitr --at 2026-11-25T12:00:00Z           # a new branch as of then, and what differs from now
"""

from __future__ import annotations

import argparse
import sys

from .confirm import add_yes, confirm_change
from .lazy import library
from .safety import cli_words

neon, pitr = library("recovery.neon"), library("recovery.pitr")
DB_ACTIONS = ("snapshot", "pitr")
AT_HELP = "the time (ISO 8601, UTC, e.g. 2026-11-25T12:00:00Z)"


def register_db(actions) -> None:
    """Add `db snapshot create | list | restore | finalize | delete | schedule` and `db pitr`."""
    group = actions.add_parser("snapshot", help="Neon snapshots: create, list, restore (into a new branch), finalize, delete, the backup schedule")
    verbs = group.add_subparsers(dest="verb", required=True)
    create = verbs.add_parser("create", help="snapshot a branch (default: the default branch) now, or as of a time or LSN")
    create.add_argument("--branch", dest="branch_id", help="the branch id (default: the default branch)")
    when = create.add_mutually_exclusive_group()
    when.add_argument("--at", "--timestamp", dest="timestamp", help=f"as of {AT_HELP}")
    when.add_argument("--lsn", help="as of this LSN, e.g. 0/1A2B3C4")
    create.add_argument("--name", help="the snapshot's name")
    create.add_argument("--expires-at", dest="expires_at", help=f"when Neon deletes it: {AT_HELP} (default: never)")
    verbs.add_parser("list", help="the project's snapshots, newest first")
    restore = verbs.add_parser("restore", help="restore a snapshot into a NEW branch; --finalize makes it replace the branch it was taken of")
    restore.add_argument("snapshot_id", metavar="SNAPSHOT_ID")
    restore.add_argument("--target-branch", dest="target_branch_id", help="the branch it is to replace (default: the one the snapshot was taken of)")
    restore.add_argument("--name", help="the new branch's name")
    restore.add_argument("--finalize", action="store_true", help="replace the target branch at once (its computes restart; it is kept under another name)")
    add_yes(restore)
    final = verbs.add_parser("finalize", help="make a branch restored from a snapshot replace the branch it was restored for")
    final.add_argument("branch_id", metavar="BRANCH_ID")
    final.add_argument("--name", help="the name to keep the replaced branch under")
    add_yes(final)
    delete = verbs.add_parser("delete", help="delete a snapshot")
    delete.add_argument("snapshot_id", metavar="SNAPSHOT_ID")
    add_yes(delete)
    schedule = verbs.add_parser("schedule", help="the automatic snapshot schedule of a branch: show | set")
    which = schedule.add_subparsers(dest="schedule_verb")
    show = which.add_parser("show", help="the schedule (the default)")
    put = which.add_parser("set", help="replace the schedule, e.g. set 'daily hour=4 retention=7 days' 'weekly day=1 hour=4 retention=28 days'")
    put.add_argument("schedule", nargs="*", metavar="ENTRY", help="FREQUENCY (daily | weekly | monthly) [day=N] [hour=N] [month=N] [retention=DURATION]")
    put.add_argument("--none", action="store_true", help="no automatic snapshots")
    for parser in (schedule, show, put):  # before or after show | set; given after, it is kept (SUPPRESS), not reset
        parser.add_argument("--branch", dest="branch_id", default=None if parser is schedule else argparse.SUPPRESS, help="the branch id (default: the default branch)")

    back = actions.add_parser("pitr", help="Neon point-in-time restore: the default branch as of a time or LSN into a NEW branch, what differs from now, --finalize to switch")
    point = back.add_mutually_exclusive_group(required=True)
    point.add_argument("--at", "--timestamp", dest="timestamp", help=f"restore as of {AT_HELP}")
    point.add_argument("--lsn", help="restore as of this LSN")
    point.add_argument("--branch", dest="branch_id", help="a branch an earlier `db pitr` made: compare it again, --finalize or --discard it")
    back.add_argument("--name", help="the new branch's name")
    back.add_argument("--finalize", action="store_true", help="then make the default branch that state (asks first; the state before is kept as a branch)")
    back.add_argument("--discard", action="store_true", help="with --branch: delete that branch, restoring nothing")
    add_yes(back)


def run_db(args) -> object:
    with cli_words():
        return _run_pitr(args) if args.action == "pitr" else _run_snapshot(args)


def _run_snapshot(args) -> object:
    client = neon.Neon()
    if args.verb == "create":
        return client.create_snapshot(args.branch_id, lsn=args.lsn, timestamp=args.timestamp, name=args.name, expires_at=args.expires_at)
    if args.verb == "list":
        return client.snapshots()
    if args.verb == "delete":
        confirm_change(f"db snapshot delete (Neon project {client.project_id}: snapshot {args.snapshot_id} is gone for good)", yes=args.yes)
        client.delete_snapshot(args.snapshot_id)
        return f"deleted snapshot {args.snapshot_id}"
    if args.verb == "schedule":
        if getattr(args, "schedule_verb", None) == "set":
            if not args.schedule and not args.none:
                from ..errors import InputError

                raise InputError("schedule set needs entries, or --none", fix="e.g. copythat-ops db snapshot schedule set 'daily hour=4 retention=7 days'")
            return client.set_backup_schedule([] if args.none else args.schedule, args.branch_id)
        return client.backup_schedule(args.branch_id)
    if args.verb == "finalize":
        confirm_change(f"db snapshot finalize (Neon project {client.project_id}: branch {args.branch_id} replaces the branch it was restored for)", yes=args.yes)
        done = client.finalize_restore(args.branch_id, name=args.name)
        print(f"finalized: {args.branch_id} now serves the replaced branch's connections", file=sys.stderr)
        return done
    if args.finalize:
        confirm_change(f"db snapshot restore --finalize (Neon project {client.project_id}: snapshot {args.snapshot_id} replaces "
                       f"{args.target_branch_id or 'the branch it was taken of'})", yes=args.yes)
    branch = client.restore_snapshot(args.snapshot_id, target_branch_id=args.target_branch_id, name=args.name, finalize=args.finalize)
    if not args.finalize:
        print(f"restored into a new branch {branch.get('id')}; nothing else changed. Replace the branch with it: "
              f"copythat-ops db snapshot finalize {branch.get('id')}", file=sys.stderr)
    return {k: branch.get(k) for k in ("id", "name", "parent_id", "current_state", "created_at")}


def _run_pitr(args) -> object:
    from ..errors import InputError

    client = neon.Neon()
    if args.discard:
        if not args.branch_id:
            raise InputError("--discard needs --branch", fix="name the branch an earlier `copythat-ops db pitr` made: --branch BRANCH_ID --discard")
        pitr.discard_point_in_time(args.branch_id, client=client)
        return f"deleted branch {args.branch_id}; nothing was restored"
    branch_id = args.branch_id
    if branch_id is None:
        made = pitr.point_in_time(args.timestamp, lsn=args.lsn, name=args.name, client=client)
        branch_id = made["branch_id"]
        print(f"restored {'as of ' + (made['timestamp'] or made['lsn'])} into a new branch {made['name']} ({branch_id}); nothing else changed", file=sys.stderr)
    diff = pitr.point_in_time_diff(branch_id, client=client)
    changed = diff[diff["change"].astype(str) != "0"]
    print(f"{len(changed)} difference(s) from now: row counts of {int((changed['kind'] == 'rows').sum())} table(s), "
          f"{int((changed['kind'] != 'rows').sum())} schema object(s)", file=sys.stderr)
    if not args.finalize:
        print(f"next: copythat-ops db pitr --branch {branch_id} --finalize (the default branch becomes this state), "
              f"or --branch {branch_id} --discard", file=sys.stderr)
        return diff
    from .output import text_table

    confirm_change(f"db pitr --finalize (Neon project {client.project_id}: the default branch becomes branch {branch_id})", yes=args.yes,
                   preview=lambda: print(text_table(diff), file=sys.stderr))
    done = pitr.finalize_point_in_time(branch_id, client=client)
    print(f"finalized: branch {done['branch_id']} is now the state of {branch_id}; the state before is kept as branch {done['preserved_as']}", file=sys.stderr)
    return diff
