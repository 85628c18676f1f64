"""`copythat-ops seed`: realistic, reproducible organizations, users, projects, jobs and tokens for development and demos.

Example:
    $ copythat-ops seed --jobs 100000 --projects 200 --seed 42
    $ copythat-ops seed --projects 50 --organizations 5 --no-tokens
    $ copythat-ops seed --if-empty          # demo data on first use only
    $ copythat-ops seed --history 30d       # and 30 days of demo monitoring history (hourly snapshots)
"""

from __future__ import annotations

from .args import positive_duration, whole
from .confirm import add_yes, confirm_change


def register(groups) -> None:
    """Add the `seed` command."""
    command = groups.add_parser("seed", help="add realistic organizations, users, projects, extraction jobs and tokens (bulk COPY)")
    command.add_argument("--jobs", type=whole(0), default=10_000, help="how many jobs (default 10000)")
    command.add_argument("--projects", type=whole(1), default=50, help="how many projects (default 50)")
    command.add_argument("--organizations", type=whole(1), metavar="N", help="how many organizations own the projects (default about the square root of --projects; at most --projects)")
    command.add_argument("--no-tokens", dest="tokens", action="store_false", help="load no color / spacing / typography tokens from the completed jobs' results")
    command.add_argument("--seed", type=whole(0), default=0, help="random seed: the same seed gives the same data (default 0)")
    command.add_argument("--window", default="30 days", type=positive_duration, help="jobs are created over this long up to now (default 30 days)")
    command.add_argument("--if-empty", action="store_true", help="do nothing when extraction_jobs already has rows")
    command.add_argument("--history", type=positive_duration, metavar="DURATION", help="also write this long of demo monitoring history, hourly, e.g. 30d (not when history exists)")
    add_yes(command)
    command.set_defaults(run=run)


def run(args) -> object:
    from ..seed import seed_database

    confirm_change("seed", yes=args.yes)
    loaded = seed_database(
        args.jobs, args.projects, seed=args.seed, window=args.window, if_empty=args.if_empty, allow_remote=True, organizations=args.organizations, tokens=args.tokens
    )
    if args.history is None:
        return loaded
    from datetime import timedelta

    from ..monitor.history import days_duration
    from ..seed import seed_history

    days = days_duration(args.history, name="history") / timedelta(days=1)
    written = seed_history(days, seed=args.seed, allow_remote=True)
    return loaded | {"history_snapshots": written["snapshots"]} | ({"history_skipped": written["skipped"]} if "skipped" in written else {})
