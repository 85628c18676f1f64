"""`copythat-ops monitor`: the monitoring checks and the health verdict, for a terminal, cron or CI.

`monitor health` exits 3 when a check is CRIT (or WARN, with --fail-on warn),
after printing the report; 2 stays for bad input.

Example:
    $ copythat-ops monitor health
    $ copythat-ops monitor health --threshold long_running_seconds=30 --fail-on warn
    $ copythat-ops --format json monitor indexes duplicate
    $ copythat-ops monitor cancel 4242 --apply
    $ copythat-ops monitor capture --keep 90d
    $ copythat-ops monitor forecast sequences
"""

from __future__ import annotations

import sys

from ..errors import InputError
from . import history
from .confirm import add_yes, confirm_change
from .args import duration, whole
from .lazy import library
from .output import Report

monitor = library("monitor")
FAIL_EXIT = 3
# monitor.health's parameters but engine, written here so that building the parser imports no library (tests/test_startup.py compares them).
THRESHOLDS = [
    "connections_warn_percent", "connections_crit_percent", "total_connections", "idle_in_transaction",
    "long_running_seconds", "cache_hit_percent", "cache_hit_min_blocks", "unused_index_scans", "missing_index_rows",
    "index_use_percent", "index_stats_min_scans", "sequence_warn_percent", "sequence_crit_percent",
    "xids_left_warn", "xids_left_crit", "dead_rows_percent", "dead_rows_min", "replication_lag_seconds", "replication_lag_crit_seconds",
    "slow_query_calls", "slow_query_mean_ms", "forecast_warn_days", "forecast_crit_days", "size_limit",
    "bloat_warn_bytes", "bloat_crit_bytes", "prepared_warn_seconds", "prepared_crit_seconds",
    "transaction_warn_seconds", "transaction_crit_seconds", "commit_ratio_warn_percent",
    "commit_ratio_crit_percent", "commit_ratio_min_transactions", "backup_warn_hours", "backup_crit_days", "drill_warn_days",
]  # fmt: skip
VIEWS = {
    "connections": {
        "summary": lambda a: monitor.connections(),
        "headroom": lambda a: monitor.connection_headroom(),
        "idle": lambda a: monitor.idle_in_transaction(a.min_duration or 0),
    },
    "sizes": {
        "tables": lambda a: monitor.table_sizes().head(a.top),
        "indexes": lambda a: monitor.index_sizes().head(a.top),
        "database": lambda a: monitor.database_size(),
    },
    "indexes": {
        "usage": lambda a: monitor.index_usage(),
        "unused": lambda a: monitor.unused_indexes(),
        "duplicate": lambda a: monitor.duplicate_indexes(),
        "invalid": lambda a: monitor.invalid_indexes(),
        "missing": lambda a: monitor.missing_indexes(),
    },
    "activity": {
        "long-running": lambda a: monitor.long_running_queries(a.min_duration or "1 min"),
        "blocked": lambda a: monitor.blocked_queries(),
        "locks": lambda a: monitor.relation_locks(),
    },
    "maintenance": {
        "vacuum": lambda a: monitor.vacuum_stats(),
        "progress": lambda a: monitor.vacuum_progress(),
        "wraparound": lambda a: monitor.wraparound_risk(),
        "cache": lambda a: monitor.cache_hit_ratio(),
    },
    "sequences": {"all": lambda a: monitor.sequences()},
    "transactions": {
        "open": lambda a: monitor.open_transactions(),
        "prepared": lambda a: monitor.prepared_transactions(),
        "commit-ratio": lambda a: monitor.commit_ratio(),
    },
    "bloat": {"estimate": lambda a: monitor.bloat(), "exact": lambda a: monitor.bloat(exact=True)},
    "triggers": {"disabled": lambda a: monitor.disabled_triggers()},
    "queries": {
        "top": lambda a: monitor.query_stats(top=a.top or 20, sort=a.sort),
        "slow": lambda a: monitor.slow_queries(),
        "status": lambda a: monitor.query_stats_status(),
    },
    "server": {
        "info": lambda a: monitor.server_info(),
        "checkpoints": lambda a: monitor.checkpoints(),
        "replication": lambda a: monitor.replication(),
        "replica-lag": lambda a: monitor.replica_lag(),
        "slots": lambda a: monitor.replication_slots(),
    },
}


def register(groups) -> None:
    """Add the `monitor` sub-commands."""
    mon = groups.add_parser("monitor", help="health verdict, connections, sizes, indexes, activity, maintenance, sequences, queries; history, trends, forecasts")
    checks = mon.add_subparsers(dest="check", required=True)

    health = checks.add_parser("health", help=f"every check with a status; exit {FAIL_EXIT} on CRIT")
    health.add_argument("--fail-on", choices=["crit", "warn"], default="crit", help=f"exit {FAIL_EXIT} at this status or worse (default crit)")
    health.add_argument(
        "--threshold", action="append", default=[], metavar="NAME=VALUE", help=f"change a threshold; one of: {', '.join(THRESHOLDS)}"
    )
    health.set_defaults(run=run_health)

    for group, views in VIEWS.items():
        sub = checks.add_parser(group, help=f"{group}: {', '.join(views)}")
        if len(views) > 1:
            sub.add_argument("view", nargs="?", choices=list(views), default=next(iter(views)), help=f"default {next(iter(views))}")
        if group in ("connections", "activity"):
            sub.add_argument("--min-duration", type=duration, help="idle / long-running: at least this long, e.g. 30s (defaults 0 and 1 min)")
        if group in ("sizes", "queries"):
            sub.add_argument("--top", type=whole(1), help="only the first N (queries top: default 20)")
        if group == "queries":
            sub.add_argument("--sort", default="total_time", help="queries top: total_time, mean_time or calls")
        sub.set_defaults(run=run_view, group=group)

    history.add_commands(checks)

    for action, text in [("cancel", "cancel a session's running query"), ("terminate", "end a session, rolling back its transaction")]:
        act = checks.add_parser(action, help=f"{text} (a dry run unless --apply)")
        act.add_argument("pid", type=whole(1), metavar="PID", help="the session's process id (from monitor activity or connections idle)")
        act.add_argument("--apply", action="store_true", help="really send the signal")
        add_yes(act)
        act.set_defaults(run=run_signal, action=action)


def run_view(args) -> object:
    views = VIEWS[args.group]
    return views[getattr(args, "view", next(iter(views)))](args)


def run_signal(args) -> object:
    signal = monitor.cancel_query if args.action == "cancel" else monitor.terminate_backend
    if args.apply:
        confirm_change(f"monitor {args.action} {args.pid} --apply", yes=args.yes)
    result = signal(args.pid, apply=args.apply)
    if not args.apply:
        print(f"Would {args.action} this session; run again with --apply to do it.", file=sys.stderr)
    return result


def run_health(args) -> object:
    from ..monitor.health import unjudged

    report = _in_commands(monitor.health(**dict(_threshold(item) for item in args.threshold)))
    worst = monitor.verdict(report)
    failing = report[report["status"].isin(["CRIT"] if args.fail_on == "crit" else ["WARN", "CRIT"])]
    problems = report[report["status"].isin(["WARN", "CRIT"])]["check"].tolist()  # whether or not they set the exit code
    unknown = report[report["status"] == "UNKNOWN"]["check"].tolist()
    young = unjudged(report)
    print(
        f"health: {worst}"
        + (f" ({', '.join(problems)})" if problems else "")
        + (f"; not checked: {', '.join(unknown)}" if unknown else "")
        + (f"; too young to judge yet: {', '.join(young)}" if young else ""),
        file=sys.stderr,
    )
    return Report(report, exit_code=FAIL_EXIT if len(failing) else 0)


# Functions the health report points to that are not views of this group, and the commands that show the same.
HISTORY_COMMANDS = {
    "sequence_forecast": "copythat-ops monitor forecast sequences",
    "size_forecast": "copythat-ops monitor forecast size --size-limit SIZE",
    "growth": "copythat-ops monitor growth",
    "job_trends": "copythat-ops monitor trends jobs",
    "capture": "copythat-ops monitor capture",
}


def _in_commands(report):
    """The health report's detail and action in the CLI's words: `copythat-ops monitor indexes unused`, not unused_indexes()."""
    import re

    from . import COMMANDS

    def words(text: str) -> str:
        for function, command in {**COMMANDS, **HISTORY_COMMANDS}.items():
            text = re.sub(rf"(?<![\w.`]){re.escape(function)}\([^()]*\)", f"`{command}`", text)
        return re.sub(r"(?<![\w-])size_limit='([^']*)'", lambda m: f"--threshold size_limit='{m[1]}'", text)

    for column in ("detail", "action"):
        report[column] = [words(text) if isinstance(text, str) else text for text in report[column]]
    return report


def _threshold(item: str) -> tuple[str, float]:
    name, _, value = item.partition("=")
    if name not in THRESHOLDS:
        raise InputError(f"unknown threshold {name!r}", fix=f"use NAME=VALUE with NAME one of: {', '.join(THRESHOLDS)}")
    if name == "size_limit":
        return name, value  # a size with its unit, e.g. size_limit=10GB
    try:
        return name, int(value) if value.strip().lstrip("-").isdigit() else float(value)
    except ValueError:
        raise InputError(f"threshold {name} must be a number, not {value!r}", fix=f"e.g. --threshold {name}=10") from None
