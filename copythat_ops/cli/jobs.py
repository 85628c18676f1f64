"""`copythat-ops jobs`: extraction jobs: summaries, throughput, failures, stuck jobs, and the actions on-call takes.

Example:
    $ copythat-ops jobs summary --by extraction_type status
    $ copythat-ops jobs throughput --freq 15min --since 6h
    $ copythat-ops --format csv jobs failures --top 10 --since 24h
    $ copythat-ops jobs stuck --older-than 30min
    $ copythat-ops jobs rollups --verify
    $ copythat-ops jobs rollups --compact
"""

from __future__ import annotations

from . import job_actions, job_archive
from .args import duration, duration_or_none, positive_duration, since, whole
from .lazy import library
from .output import Report

analyses = library("jobs.analyses", SUMMARY_GROUPS={"status": ["status"], "extraction_type": ["extraction_type"], "project": ["project_id", "project_name"]})
rollups = library("jobs.rollups")


def register(groups) -> None:
    """Add the `jobs` sub-commands."""
    jobs = groups.add_parser("jobs", help="extraction jobs: summary, throughput, failures, stuck, requeue, fail-stuck, cancel")
    actions = jobs.add_subparsers(dest="action", required=True)

    summary = actions.add_parser("summary", help="counts, failure rate and duration p50 / p95 / max per group")
    summary.add_argument("--by", nargs="+", default=["status"], choices=list(analyses.SUMMARY_GROUPS), help="status, extraction_type and/or project (default status)")
    summary.add_argument("--since", type=since, help="only jobs created within this long, e.g. 24h")
    summary.set_defaults(run=lambda args: analyses.job_summary(by=args.by, since=args.since))

    throughput = actions.add_parser("throughput", help="jobs created / completed / failed per time bucket, gaps as 0")
    throughput.add_argument("--freq", default="1h", type=positive_duration, help="bucket size (default 1h)")
    throughput.add_argument("--since", default="7 days", type=since, help="how far back (default 7 days)")
    throughput.set_defaults(run=lambda args: analyses.job_throughput(args.freq, since=args.since))

    failures = actions.add_parser("failures", help="failed jobs grouped by error message with ids, numbers and URLs folded")
    failures.add_argument("--top", type=whole(1), default=20, help="how many reasons (default 20)")
    failures.add_argument("--since", type=since, help="only jobs created within this long, e.g. 24h")
    failures.set_defaults(run=lambda args: analyses.failure_reasons(args.top, since=args.since))

    stuck = actions.add_parser("stuck", help="processing (and long-pending) jobs older than a threshold, oldest first")
    stuck.add_argument("--older-than", default="30 min", type=duration, help="processing jobs older than this (default 30 min)")
    stuck.add_argument("--pending-older-than", default="1 hour", type=duration_or_none, help="pending jobs older than this (default 1 hour); 'none' leaves them out")
    stuck.set_defaults(run=run_stuck)

    kept = actions.add_parser("rollups", help="how far the job rollups' fill got and the deltas waiting; --verify compares them with a full count (exit 1 on drift); --compact folds the deltas")
    kept.add_argument("--verify", action="store_true", help="recount every rollup from extraction_jobs and list the rows that differ (reads the whole table)")
    kept.add_argument("--compact", action="store_true", help="fold the deltas the triggers appended into the compacted tables now (the triggers also do it now and then)")
    kept.set_defaults(run=run_rollups)

    job_actions.register(actions)
    job_archive.register(actions)


def run_stuck(args) -> object:
    pending = None if args.pending_older_than.strip().lower() == "none" else args.pending_older_than
    stuck = analyses.stuck_jobs(args.older_than, pending_older_than=pending)
    if args.format != "table":  # CSV and JSON stay one document of rows
        return stuck
    from .output import text_table

    counts = stuck["status"].value_counts()
    parts = [f"{counts.get('processing', 0)} processing over {args.older_than}"]
    if pending is not None:
        parts.append(f"{counts.get('pending', 0)} pending over {pending}")
    line = f"{len(stuck)} stuck job{'' if len(stuck) == 1 else 's'} ({', '.join(parts)})"
    return f"{text_table(stuck)}\n{line}" if len(stuck) else line


def run_rollups(args) -> object:
    if args.compact:
        compacted = rollups.compact_rollups()
        if not args.verify:
            return {**compacted, **rollups.rollup_state()}
    state = rollups.rollup_state()
    if not args.verify:
        return state
    drift = rollups.rollup_drift()
    if args.format != "table" or len(drift):
        return Report(drift, exit_code=1 if len(drift) else 0)
    counted = "every job" if state["complete"] else f"the jobs with id <= {state['filled_to']} (the fill is {state['share_filled']:.0%} done)"
    return f"rollups exact: no row differs from a full count of {counted} in extraction_jobs"
