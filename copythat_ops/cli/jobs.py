"""`copythat-ops jobs`: extraction jobs: summaries, throughput, failures, stuck jobs, and the actions on-call takes."""

from __future__ import annotations

from . import job_actions


def register(groups) -> None:
    """Add the `jobs` sub-commands."""
    jobs = groups.add_parser("jobs", help="extraction jobs: summary, throughput, failures, stuck, requeue, fail-stuck, cancel")
    actions = jobs.add_subparsers(dest="action", required=True)
    job_actions.register(actions)
