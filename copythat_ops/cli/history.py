"""`copythat-ops monitor capture | history | growth | forecast | trends | schema-diff`: monitoring over time.

Example:
    $ copythat-ops monitor capture --keep 90d                 # from cron, every few minutes
    $ copythat-ops monitor capture --every 5min               # a loop for this session; Ctrl-C stops it
    $ copythat-ops monitor growth --days 7
    $ copythat-ops monitor forecast sequences
    $ copythat-ops monitor forecast size --size-limit "10 GB"
    $ copythat-ops monitor trends queries --since "2026-11-25 14:05"
    $ copythat-ops monitor schema-diff "$BRANCH_URL" "$MAIN_URL"
"""

from __future__ import annotations

import sys

from ..errors import InputError
from .args import duration, positive_duration, whole
from .lazy import library

monitor = library("monitor")


def add_commands(checks) -> None:
    """Add the history sub-commands to the `monitor` group's sub-parsers."""
    cap = checks.add_parser("capture", help="record one snapshot into the history tables (or one per --every until Ctrl-C)")
    cap.add_argument("--every", type=duration, help="capture in a loop, once per this long (e.g. 5min), until Ctrl-C")
    cap.add_argument("--interval", type=duration, help="one snapshot per interval (default: --every, else 5min)")
    cap.add_argument("--keep", type=positive_duration, help="then delete snapshots older than this, in small batches (e.g. 90d; at least --interval)")
    cap.add_argument("--times", type=whole(1), help="with --every: stop after this many captures")
    cap.add_argument("--source", help="the name the history keeps this database under (default: its name)")
    cap.set_defaults(run=run_capture)

    hist = checks.add_parser("history", help="how much history there is, per source")
    hist.add_argument("--prune", metavar="KEEP", type=positive_duration, help="delete snapshots older than this (e.g. 90d), in small batches")
    hist.set_defaults(run=run_history)

    grow = checks.add_parser("growth", help="each table's size and rows now and --days ago, growth per day")
    grow.add_argument("--days", type=float, default=7, help="compare with this many days ago (default 7)")
    grow.set_defaults(run=lambda a: monitor.growth(days=a.days))

    fore = checks.add_parser("forecast", help="when sequences reach their type's maximum, when the database reaches --size-limit")
    fore.add_argument("kind", nargs="?", choices=["sequences", "size"], default="sequences", help="default sequences")
    fore.add_argument("--size-limit", help="size: the limit, e.g. '10 GB' (a Neon plan's)")
    fore.add_argument("--days", type=float, default=30, help="fit the last this many days of history (default 30)")
    fore.set_defaults(run=run_forecast)

    trend = checks.add_parser("trends", help="jobs, or statements, per interval from the history; changes since a deploy")
    trend.add_argument("kind", nargs="?", choices=["jobs", "queries", "changes"], default="jobs", help="default jobs")
    trend.add_argument("--since", help="queries / changes: the deploy's time, e.g. '2026-11-25 14:05' (UTC)")
    trend.add_argument("--interval", type=duration, default="1h", help="bucket (default 1h)")
    trend.add_argument("--days", type=float, default=7, help="look back this many days (default 7)")
    trend.add_argument("--top", type=whole(1), default=10, help="queries: the statements with most time (default 10)")
    trend.set_defaults(run=run_trends)

    diff = checks.add_parser("schema-diff", help="tables, columns, indexes, constraints, triggers, functions, policies, extensions and grants that differ between two databases")
    diff.add_argument("url_a", metavar="URL_A", help="the first database (e.g. a Neon branch)")
    diff.add_argument("url_b", metavar="URL_B", help="the second database (e.g. main)")
    diff.set_defaults(run=lambda a: monitor.schema_diff(a.url_a, a.url_b))


def run_capture(args) -> object:
    if args.every is None:
        return monitor.capture(interval=args.interval or "5min", keep=args.keep, source=args.source)
    print(f"capturing every {args.every}; Ctrl-C stops", file=sys.stderr)
    results = monitor.capture_loop(args.every, keep=args.keep, times=args.times, report=_say, interval=args.interval, source=args.source)
    print(f"stopped after {len(results)} capture{'s' if len(results) != 1 else ''}", file=sys.stderr)
    import pandas as pd

    return pd.DataFrame(results)


def run_history(args) -> object:
    if args.prune:
        print(f"deleted {monitor.prune_history(args.prune)} snapshots older than {args.prune}", file=sys.stderr)
    return monitor.history_summary()


def run_forecast(args) -> object:
    if args.kind == "size":
        if args.size_limit is None:
            raise InputError("forecast size needs the limit to forecast against", fix="give it, e.g. --size-limit '10 GB'")
        return monitor.size_forecast(args.size_limit, days=args.days)
    return monitor.sequence_forecast(days=args.days)


def run_trends(args) -> object:
    if args.kind == "jobs":
        return monitor.job_trends(args.interval, days=args.days)
    if args.kind == "changes":
        if args.since is None:
            raise InputError("trends changes needs the time to compare before and after", fix="give it, e.g. --since '2026-11-25 14:05'")
        return monitor.query_changes(args.since, days=args.days, top=args.top)
    return monitor.query_trends(args.since, interval=args.interval, days=args.days, top=args.top)


def _say(result: dict) -> None:
    if result["status"] == "failed":
        print(f"capture failed: {result['reason']}", file=sys.stderr)
    else:
        print(f"{result['bucket']:%Y-%m-%d %H:%M} {result['status']} ({result.get('tables', 0)} tables, {result.get('seconds', 0)} s)", file=sys.stderr, flush=True)
