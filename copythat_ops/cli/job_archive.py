"""`copythat-ops jobs archive | restore-archive`: old finished jobs to Parquet files and back; dry runs unless given --apply.

--apply against a database that is not local asks first (see `confirm`), after
showing the dry run: --yes, or typing the database name at the prompt in a
terminal; otherwise nothing is written or changed and the exit code is 2.

Example:
    $ copythat-ops jobs archive --older-than 180d --to /backups/jobs-archive
    $ copythat-ops jobs archive --older-than 180d --to /backups/jobs-archive --apply
    $ copythat-ops jobs restore-archive --from /backups/jobs-archive --month 2025-03 --apply
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from contextlib import redirect_stdout
from typing import TYPE_CHECKING

from .args import since, whole
from .confirm import add_yes, confirm_change
from .output import emit

if TYPE_CHECKING:
    from ..jobs.archive import ArchiveResult

# jobs.archive's defaults, written here so that building the parser imports no library.
OLDER_THAN = "180 days"
BATCH_ROWS = 10_000


def register(actions) -> None:
    """Add `jobs archive` and `jobs restore-archive` to the `jobs` sub-commands."""
    archive = actions.add_parser(
        "archive", help="finished jobs older than --older-than to Parquet files under --to, then out of the database (a dry run unless --apply)"
    )
    archive.add_argument("--older-than", default=OLDER_THAN, type=since, metavar="DURATION|DATE", help=f"jobs created longer ago than this, or before this date (default {OLDER_THAN})")
    archive.add_argument("--to", required=True, metavar="DIR", help="the archive folder (DIR/extraction_jobs/month=YYYY-MM/*.parquet)")
    archive.add_argument("--batch-rows", type=whole(1), default=BATCH_ROWS, metavar="N", help=f"jobs deleted per committed transaction (default {BATCH_ROWS})")
    _apply_options(archive, run_archive)

    restore = actions.add_parser("restore-archive", help="put a month of archived jobs back into the database, then remove its files (a dry run unless --apply)")
    restore.add_argument("--from", dest="from_", required=True, metavar="DIR", help="the archive folder jobs archive wrote to")
    restore.add_argument("--month", required=True, help="the month to put back, as YYYY-MM")
    restore.add_argument("--batch-rows", type=whole(1), default=BATCH_ROWS, metavar="N", help=f"jobs inserted per committed transaction (default {BATCH_ROWS})")
    _apply_options(restore, run_restore)


def _apply_options(parser, run: Callable) -> None:
    parser.add_argument("--apply", action="store_true", help="write the files and change the database (default: a dry run)")
    add_yes(parser)
    parser.set_defaults(run=run)


def run_archive(args) -> object:
    from ..jobs.archive import archive_jobs

    return _act(args, lambda apply: archive_jobs(args.to, args.older_than, apply=apply, batch_rows=args.batch_rows))


def run_restore(args) -> object:
    from ..jobs.archive import restore_archive

    return _act(args, lambda apply: restore_archive(args.from_, args.month, apply=apply, batch_rows=args.batch_rows))


def _act(args, action: Callable[[bool], ArchiveResult]) -> object:
    if args.apply:
        confirm_change(f"jobs {args.action} --apply", yes=args.yes, preview=lambda: _preview(action(False), args.format))
    result = action(args.apply)
    _say(result)
    return result.months


def _preview(shown: ArchiveResult, fmt: str) -> None:
    with redirect_stdout(sys.stderr):  # stdout keeps the one document of the result
        emit(shown.months, fmt)
    _say(shown)


def _say(result: ArchiveResult) -> None:
    print(result.summary().replace("apply=True", "--apply"), file=sys.stderr)
