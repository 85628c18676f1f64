"""`copythat-ops seed`: realistic, reproducible projects and jobs for development and demos.

Example:
    $ copythat-ops seed --jobs 100000 --projects 200 --seed 42
    $ copythat-ops seed --if-empty          # demo data on first use only
"""

from __future__ import annotations

from ..seed import seed_database
from .args import positive_duration, whole
from .confirm import add_yes, confirm_change


def register(groups) -> None:
    """Add the `seed` command."""
    command = groups.add_parser("seed", help="add realistic projects and extraction jobs (bulk COPY)")
    command.add_argument("--jobs", type=whole(0), default=10_000, help="how many jobs (default 10000)")
    command.add_argument("--projects", type=whole(1), default=50, help="how many projects (default 50)")
    command.add_argument("--seed", type=whole(0), default=0, help="random seed: the same seed gives the same data (default 0)")
    command.add_argument("--window", default="30 days", type=positive_duration, help="jobs are created over this long up to now (default 30 days)")
    command.add_argument("--if-empty", action="store_true", help="do nothing when extraction_jobs already has rows")
    add_yes(command)
    command.set_defaults(run=run)


def run(args) -> object:
    confirm_change("seed", yes=args.yes)
    return seed_database(args.jobs, args.projects, seed=args.seed, window=args.window, if_empty=args.if_empty, allow_remote=True)
