"""`copythat-ops jobs requeue | fail-stuck | cancel | audit`: dry runs unless given --apply.

--apply against a database that is not local asks first (see `confirm`):
--yes, or typing the database name at the prompt in a terminal; otherwise
nothing is changed and the exit code is 2.

Example:
    $ copythat-ops jobs requeue --error-like timeout --since 2h
    $ copythat-ops jobs requeue --error-like timeout --since 2h --apply
    $ copythat-ops jobs cancel --id 41 42 --reason "duplicate upload" --apply --yes
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from contextlib import redirect_stdout
from typing import TYPE_CHECKING

from .confirm import add_yes, confirm_change
from .args import duration, positive_duration, whole
from .output import emit

if TYPE_CHECKING:
    from ..jobs.actions import ActionResult

# jobs.actions' defaults, written here so that building the parser imports no library (tests/test_startup.py compares them).
STUCK_AFTER = "30 min"
STUCK_REASON = "stuck in processing; failed by on-call"


def register(actions) -> None:
    """Add the job actions to the `jobs` sub-commands."""
    requeue = actions.add_parser("requeue", help="failed -> pending, clearing error and completion (a dry run unless --apply)")
    requeue.add_argument("--id", dest="job_ids", type=whole(1), nargs="+", action="extend", metavar="N", help="these jobs (all must be failed)")
    requeue.add_argument("--error-like", help="jobs whose error matches this ILIKE pattern; text without %% matches anywhere")
    requeue.add_argument("--since", type=duration, help="jobs created within this long, e.g. 2h")
    requeue.add_argument("--project-id", type=whole(1), help="jobs of this project")
    requeue.add_argument("--limit", type=whole(1), help="at most this many, oldest first")
    _apply_options(requeue, run_requeue)

    fail = actions.add_parser("fail-stuck", help="processing -> failed for jobs older than --older-than (a dry run unless --apply)")
    fail.add_argument("--older-than", default=STUCK_AFTER, type=positive_duration, help=f"by created_at (default {STUCK_AFTER})")
    fail.add_argument("--reason", default=STUCK_REASON, help="the error_message to set")
    fail.add_argument("--limit", type=whole(1), help="at most this many, oldest first")
    _apply_options(fail, run_fail_stuck)

    cancel = actions.add_parser("cancel", help="pending -> failed with a reason (a dry run unless --apply)")
    cancel.add_argument("--id", dest="job_ids", type=whole(1), nargs="+", action="extend", metavar="N", required=True, help="these jobs (all must be pending)")
    cancel.add_argument("--reason", required=True, help="why, kept as the error_message")
    _apply_options(cancel, run_cancel)

    audit = actions.add_parser("audit", help="applied job actions, newest first")
    audit.add_argument("--limit", type=whole(1), default=50, help="how many (default 50)")
    audit.set_defaults(run=run_audit)


def _apply_options(parser, run: Callable) -> None:
    parser.add_argument("--apply", action="store_true", help="change the jobs (default: a dry run)")
    add_yes(parser)
    parser.set_defaults(run=run)


def run_requeue(args) -> object:
    from ..jobs.actions import requeue_jobs

    filters = {"error_like": args.error_like, "since": args.since, "project_id": args.project_id, "limit": args.limit}
    return _act(args, lambda apply: requeue_jobs(args.job_ids, **filters, apply=apply))


def run_fail_stuck(args) -> object:
    from ..jobs.actions import fail_stuck_jobs

    return _act(args, lambda apply: fail_stuck_jobs(args.older_than, args.reason, limit=args.limit, apply=apply))


def run_cancel(args) -> object:
    from ..jobs.actions import cancel_jobs

    return _act(args, lambda apply: cancel_jobs(args.job_ids, reason=args.reason, apply=apply))


def run_audit(args) -> object:
    from ..jobs.actions import audit_log

    frame = audit_log(args.limit)
    return frame if args.format == "json" else frame.drop(columns=["before", "after"])


def _act(args, action: Callable[[bool], ActionResult]) -> object:
    if args.apply:
        confirm_change(f"jobs {args.action} --apply", yes=args.yes, preview=lambda: _preview(action(False), args.format))
    result = action(args.apply)
    _say(result)
    return result.changes()


def _preview(shown: ActionResult, fmt: str) -> None:
    with redirect_stdout(sys.stderr):  # stdout keeps the one document of the result
        emit(shown.changes(), fmt)
    _say(shown)


def _say(result: ActionResult) -> None:
    print(result.summary().replace("apply=True", "--apply"), file=sys.stderr)
