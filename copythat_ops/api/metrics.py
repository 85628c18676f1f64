"""Prometheus metrics of a Copy That database, for `GET /metrics` (and `/metrics?target=NAME`).

Names follow postgres_exporter where it has one (`pg_up`, `pg_database_size_bytes`,
`pg_stat_activity_count{datname,state}`, `pg_settings_max_connections`, ...) and
start with `copythat_` for the rest: jobs by status, the recent failure ratio,
stuck jobs, sequence headroom, the migration revision, backup age, the health
checks, and what the scrape could not read. docs/metrics.md lists them all.

One scrape is bounded: its queries run one after another on one connection of
the target's small pool, each with a statement timeout no longer than what is
left of `SCRAPE_BUDGET` (1.5 s) and a `LOCK_TIMEOUT` (200 ms) lock timeout, and
the answer is rendered when the budget is spent whatever is still running. A
collector that could not read (a lock, a timeout, the budget, a missing table)
leaves its metrics out and says `copythat_scrape_error{collector="..."} 1`;
`pg_up` says whether the database answered at all.

Two reads are too heavy for every scrape of a big database and run in the
background instead, per target, each in a thread of its own: the full
`health()` report at most once a `HEALTH_INTERVAL` (60 s), and the count of
every job by status at most once a `JOB_TOTALS_INTERVAL` (5 min; a
whole-table count). A scrape shows their latest result and its age (a first
scrape waits for them within its budget). What every scrape counts stays on
the `(status, created_at)` index: the pending and processing jobs, and the
jobs finished in the last 15 minutes among those created in the last 2 hours.

Example:
    >>> body, content_type = exposition()
    >>> b"pg_up 1.0" in body, content_type.startswith("text/plain")
    (True, True)
    >>> b'copythat_scrape_error{collector="jobs"} 0.0' in body
    True
"""

from __future__ import annotations

import logging
import os
import threading
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest
from prometheus_client.core import GaugeMetricFamily, Metric

from ..config import mask_text
from . import targets as _targets
from .targets import Target, target_engine

SCRAPE_BUDGET = 1.5  # seconds for the queries of one scrape; rendering and HTTP fit in the rest of Prometheus' usual 2 s
LOCK_TIMEOUT = "200ms"  # how long one query waits for a lock before its collector is marked unread
QUERY_TIMEOUT = 1.0  # seconds: the longest statement timeout of one query (less when less of the budget is left)
MIN_QUERY_SECONDS = 0.05  # a query is not started with less than this left of the budget
HEALTH_INTERVAL = 60.0  # seconds between two health() runs of a target
JOB_TOTALS_INTERVAL = 300.0  # seconds between two counts of every job by status (a whole-table count: too slow for every scrape of millions)
JOB_TOTALS_TIMEOUT = "60s"  # the statement timeout of that count, in the background
STALE_RUNS = 3  # a background result older than this many intervals is not shown (its collector is marked unread)
STUCK_PROCESSING = 30 * 60  # seconds in `processing` before a job counts as stuck (stuck_jobs' older_than)
STUCK_PENDING = 60 * 60  # seconds in `pending` before a job counts as stuck (stuck_jobs' pending_older_than)
RECENT_WINDOW = 15 * 60  # seconds: the window of copythat_jobs_finished_15m and copythat_job_failure_ratio_15m
RECENT_CREATED = 2 * 60 * 60  # seconds: jobs finished recently are looked for among those created this recently (on the status, created_at index); an older one is stuck by then
STATUS_CODES = {"OK": 0, "WARN": 1, "CRIT": 2, "UNKNOWN": 3}
ACTIVITY_STATES = ("active", "idle", "idle in transaction", "idle in transaction (aborted)", "fastpath function call", "disabled")
OPEN_STATUSES = ("pending", "processing")
COLLECTORS = ("server", "jobs", "stuck_jobs", "sequences", "migrations", "backups", "job_totals", "health")

log = logging.getLogger("copythat_ops.metrics")


def exposition(target: str | None = None, *, targets_file=None) -> tuple[bytes, str]:
    """Return the exposition body of one scrape of `target` (None: the configured database) and its content type.

    `target` names a database of the targets file (`targets_file`, else
    $COPYTHAT_TARGETS_FILE); an unknown name raises InputError listing the
    known ones. The scrape answers within `SCRAPE_BUDGET` plus rendering, even
    when a table is locked or the database is down (`pg_up 0`).

    Example:
        >>> body, content_type = exposition()
        >>> content_type == CONTENT_TYPE_LATEST
        True
        >>> [line for line in body.decode().splitlines() if line.startswith("copythat_jobs{")]
        ['copythat_jobs{status="pending"} 2.0', 'copythat_jobs{status="processing"} 1.0', 'copythat_jobs{status="completed"} 459.0', 'copythat_jobs{status="failed"} 38.0']
    """
    found = _targets.target(target, targets_file=targets_file)
    families = scrape(found)
    registry = CollectorRegistry(auto_describe=False)
    registry.register(_Families(families))
    return generate_latest(registry), CONTENT_TYPE_LATEST


def scrape(found: Target, *, budget: float = SCRAPE_BUDGET) -> list[Metric]:
    """Return the metric families of one bounded scrape of a target (what `exposition` renders).

    Example:
        >>> from copythat_ops.api.targets import target
        >>> names = [family.name for family in scrape(target())]
        >>> names[:3]
        ['pg_up', 'pg_static', 'pg_postmaster_start_time_seconds']
    """
    run = _Run(found, deadline=time.monotonic() + budget)
    workers = [
        threading.Thread(target=run.work, name=f"copythat-metrics-{found.name}", daemon=True),
        threading.Thread(target=run._collect, args=("backups", lambda: _backups(run)), name=f"copythat-backups-{found.name}", daemon=True),
    ]  # the backups are files: read beside the database, they are seen while it does not answer
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(timeout=max(0.0, run.deadline - time.monotonic()))
    health, totals = _background(found, {"health": (_health_report, HEALTH_INTERVAL), "job_totals": (_job_totals, JOB_TOTALS_INTERVAL)}, wait_until=run.deadline)
    return run.families(health, totals)


# --- one scrape ----------------------------------------------------------------------------------------------------


@dataclass
class _Run:
    """One scrape's progress: the worker thread fills it; the caller renders what is there at the deadline."""

    target: Target
    deadline: float
    started: float = field(default_factory=time.monotonic)
    lock: threading.Lock = field(default_factory=threading.Lock)
    up: bool | None = None
    results: dict[str, list[Metric]] = field(default_factory=dict)
    errors: dict[str, str] = field(default_factory=dict)
    seconds: dict[str, float] = field(default_factory=dict)
    open_counts: dict[str, int] | None = None

    def left(self) -> float:
        return self.deadline - time.monotonic()

    def work(self) -> None:
        from ..monitor.snapshot import snapshot

        engine = target_engine(self.target)
        try:
            with snapshot(engine, timeout=f"{int(QUERY_TIMEOUT * 1000)}ms") as snap:
                for name, collect in _DATABASE_COLLECTORS:
                    self._collect(name, lambda collect=collect: collect(self, snap.conn))
                    if name == "server" and self.up is None:
                        self.up = True  # a connection was made: the server query's own failure is its collector's
        except Exception as exc:  # could not connect (refused, timeout, too old a server), or no free connection in the pool
            from sqlalchemy.exc import TimeoutError as PoolTimeout

            with self.lock:
                if self.up is None:
                    self.up = None if isinstance(exc, PoolTimeout) else False  # our own pool busy says nothing of the database
            self._failed("server", exc)

    def _collect(self, name: str, collect: Callable[[], list[Metric]]) -> None:
        if self.left() < MIN_QUERY_SECONDS:
            return  # marked unread ("scrape budget spent") when rendered
        began = time.monotonic()
        try:
            families = collect()
        except Exception as exc:
            self._failed(name, exc)
        else:
            with self.lock:
                self.results[name] = families
        with self.lock:
            self.seconds[name] = time.monotonic() - began

    def _failed(self, name: str, exc: BaseException) -> None:
        reason = _reason(exc)
        with self.lock:
            self.errors.setdefault(name, reason)
        log.warning("metrics of target %s: %s not read: %s", self.target.name, name, reason)

    def timeout(self) -> str:
        """The statement timeout of the next query: what is left of the budget, at most QUERY_TIMEOUT."""
        return f"{max(1, int(min(QUERY_TIMEOUT, self.left()) * 1000))}ms"

    def query(self, conn, sql: str, params: dict | None = None, *, name: str):
        from ..engine import run_query

        if self.left() < MIN_QUERY_SECONDS:
            raise TimeoutError("the scrape budget was spent")
        return run_query(sql, params, name=f"metrics.{name}", conn=conn, timeout=self.timeout(), settings={"lock_timeout": LOCK_TIMEOUT})

    def families(self, health: _Background, totals: _Background) -> list[Metric]:
        with self.lock:
            up, results, errors, seconds, open_counts = self.up, dict(self.results), dict(self.errors), dict(self.seconds), self.open_counts
        found: list[Metric] = []
        if up is not None or "server" not in errors:  # left out when the target's own pool had no free connection
            found.append(_gauge("pg_up", "Whether the database answered this scrape (1) or not (0)", 1 if up else 0))
        for name in COLLECTORS[:-2]:
            if name == "jobs":
                jobs, why = _jobs_family(open_counts if "jobs" in results else None, totals)
                found += jobs
                if why:
                    errors["job_totals"] = why
            found += results.get(name, [])
            if name not in results and name not in errors:
                errors[name] = "database down" if up is False and name != "backups" else "scrape budget spent"
        health_families, health_error = _health_families(health)
        found += health_families
        if health_error:
            errors["health"] = health_error
        error = GaugeMetricFamily("copythat_scrape_error", "Whether a collector could not read its metrics this scrape (1: they are left out)", labels=["collector"])
        took = GaugeMetricFamily("copythat_scrape_collector_duration_seconds", "Seconds each collector took this scrape", labels=["collector"])
        for name in COLLECTORS:
            error.add_metric([name], 1 if name in errors else 0)
            if name in seconds:
                took.add_metric([name], round(seconds[name], 6))
        found += [error, took, _gauge("copythat_scrape_duration_seconds", "Seconds this scrape took", round(time.monotonic() - self.started, 6))]
        return found


class _Families:
    def __init__(self, families: list[Metric]) -> None:
        self._families = families

    def collect(self):
        return iter(self._families)


def _gauge(name: str, documentation: str, value: float) -> GaugeMetricFamily:
    return GaugeMetricFamily(name, documentation, value=value)


def _reason(exc: BaseException) -> str:
    code = getattr(getattr(exc, "orig", None), "pgcode", None)
    if code == "55P03":
        return f"waited {LOCK_TIMEOUT} for a lock another session holds"
    if code == "57014":
        return "statement timeout (the scrape budget)"
    detail = str(getattr(exc, "orig", None) or exc).strip().splitlines()
    return mask_text(f"{type(exc).__name__}: {detail[0] if detail else ''}")[:300]


# --- collectors ----------------------------------------------------------------------------------------------------


def _server(run: _Run, conn) -> list[Metric]:
    row = run.query(
        conn,
        """
        SELECT current_database() AS datname,
               pg_database_size(current_database()) AS size_bytes,
               current_setting('server_version') AS short_version,
               version() AS version,
               extract(epoch FROM pg_postmaster_start_time())::float8 AS started,
               current_setting('max_connections')::int AS max_connections,
               current_setting('superuser_reserved_connections')::int AS superuser_reserved,
               coalesce(current_setting('reserved_connections', true), '0')::int AS reserved,
               (SELECT count(*)
                FROM pg_stat_activity
                WHERE coalesce(backend_type, 'client backend') = 'client backend') AS used_connections,
               (SELECT coalesce(json_agg(json_build_object('state', state, 'count', sessions, 'max_tx', max_tx) ORDER BY state), '[]'::json)
                FROM (
                    SELECT coalesce(state, '<insufficient privilege>') AS state,
                           count(*) AS sessions,
                           coalesce(max(extract(epoch FROM now() - xact_start)), 0)::float8 AS max_tx
                    FROM pg_stat_activity
                    WHERE datname = current_database()
                      AND coalesce(backend_type, 'client backend') = 'client backend'
                    GROUP BY 1
                ) AS states) AS states
        ORDER BY datname
        """,
        name="server",
    ).iloc[0]
    datname = str(row["datname"])
    static = GaugeMetricFamily("pg_static", "Version string as reported by postgres", labels=["short_version", "version"])
    static.add_metric([str(row["short_version"]).split(" ")[0], str(row["version"])], 1)
    size = GaugeMetricFamily("pg_database_size_bytes", "Disk space used by the database", labels=["datname"])
    size.add_metric([datname], int(row["size_bytes"]))
    count = GaugeMetricFamily("pg_stat_activity_count", "Client connections of this database by state", labels=["datname", "state"])
    longest = GaugeMetricFamily("pg_stat_activity_max_tx_duration", "Seconds the oldest open transaction of each state has run", labels=["datname", "state"])
    states = {entry["state"]: entry for entry in row["states"]}
    for state in dict.fromkeys([*ACTIVITY_STATES, *sorted(states)]):
        entry = states.get(state, {"count": 0, "max_tx": 0})
        count.add_metric([datname, state], entry["count"])
        longest.add_metric([datname, state], entry["max_tx"])
    reserved = int(row["superuser_reserved"]) + int(row["reserved"])
    return [
        static,
        _gauge("pg_postmaster_start_time_seconds", "Time at which postmaster started (Unix seconds)", float(row["started"])),
        size,
        count,
        longest,
        _gauge("pg_settings_max_connections", "Server Parameter: max_connections", int(row["max_connections"])),
        _gauge("pg_settings_superuser_reserved_connections", "Server Parameter: superuser_reserved_connections", int(row["superuser_reserved"])),
        _gauge("copythat_connections_used", "Client connections on the whole server", int(row["used_connections"])),
        _gauge("copythat_connections_usable", "Connections clients may use: max_connections less the reserved slots", int(row["max_connections"]) - reserved),
    ]


def _jobs(run: _Run, conn) -> list[Metric]:
    rows = run.query(
        conn,
        """
        SELECT 'open' AS kind,
               status,
               count(*) AS jobs
        FROM extraction_jobs
        WHERE status IN ('pending', 'processing')
        GROUP BY status
        UNION ALL
        SELECT 'recent' AS kind,
               status,
               count(*) AS jobs
        FROM extraction_jobs
        WHERE status IN ('completed', 'failed')
          AND created_at >= localtimestamp - make_interval(secs => :created)
          AND completed_at >= localtimestamp - make_interval(secs => :window)
        GROUP BY status
        ORDER BY kind, status
        """,
        {"created": RECENT_CREATED, "window": RECENT_WINDOW},
        name="jobs",
    )
    counts = {(kind, status): int(n) for kind, status, n in rows.itertuples(index=False)}
    with run.lock:
        run.open_counts = {status: counts.get(("open", status), 0) for status in OPEN_STATUSES}
    finished = GaugeMetricFamily("copythat_jobs_finished_15m", "Jobs created in the last 2 hours that completed or failed in the last 15 minutes (by completed_at)", labels=["status"])
    done, failed = counts.get(("recent", "completed"), 0), counts.get(("recent", "failed"), 0)
    finished.add_metric(["completed"], done)
    finished.add_metric(["failed"], failed)
    families: list[Metric] = [finished]
    if done + failed:  # absent, not NaN, when none finished: one NaN in a range makes avg_over_time NaN, and the failure band with it
        families.append(_gauge("copythat_job_failure_ratio_15m", "Share of the jobs finished in the last 15 minutes that failed (absent when none finished)", failed / (done + failed)))
    return families


def _stuck_jobs(run: _Run, conn) -> list[Metric]:
    rows = run.query(
        conn,
        """
        SELECT status,
               count(*) FILTER (WHERE changed < now() - make_interval(secs => CASE status WHEN 'processing' THEN :processing ELSE :pending END)) AS stuck,
               coalesce(max(extract(epoch FROM now() - changed)), 0)::float8 AS oldest_seconds
        FROM (
            SELECT status,
                   coalesce(updated_at, CAST(created_at AS timestamptz)) AS changed
            FROM extraction_jobs
            WHERE status IN ('pending', 'processing')
        ) AS open_jobs
        GROUP BY status
        ORDER BY status
        """,
        {"processing": STUCK_PROCESSING, "pending": STUCK_PENDING},
        name="stuck_jobs",
    )
    found = {row.status: row for row in rows.itertuples(index=False)}
    stuck = GaugeMetricFamily("copythat_jobs_stuck", "Jobs processing over 30 min or pending over 1 h since their last change (as stuck_jobs())", labels=["status"])
    oldest = GaugeMetricFamily("copythat_job_oldest_seconds", "Seconds since the last change of the oldest job in each open status (0: none)", labels=["status"])
    for status in ("pending", "processing"):
        row = found.get(status)
        stuck.add_metric([status], 0 if row is None else int(row.stuck))
        oldest.add_metric([status], 0 if row is None else round(float(row.oldest_seconds), 3))
    return [stuck, oldest]


def _sequences(run: _Run, conn) -> list[Metric]:
    import pandas as pd

    from ..monitor.sequences import sequences

    if run.left() < MIN_QUERY_SECONDS:
        raise TimeoutError("the scrape budget was spent")
    found = sequences()
    labels = ["schema", "sequence", "table", "column"]
    used = GaugeMetricFamily("copythat_sequence_used_ratio", "Share of its column type's maximum a sequence has used (0-1)", labels=labels)
    left = GaugeMetricFamily("copythat_sequence_values_left", "Values a sequence can still give before its column's maximum", labels=labels)
    unread = 0
    for row in found.itertuples(index=False):
        names = [str(row.schema), str(row.sequence), "" if row.table is None else str(row.table), "" if row.column is None else str(row.column)]
        if not row.readable or isinstance(row.note, str):
            unread += 1
            continue
        ceiling = int(row.max_value)
        last = 0 if row.last_value is None or row.last_value is pd.NA else int(row.last_value)  # never used: nothing taken yet
        used.add_metric(names, max(last, 0) / ceiling if ceiling > 0 else 0)
        left.add_metric(names, float(ceiling - last))
    return [used, left, _gauge("copythat_sequences_unread", "Sequences this scrape could not read (no privilege, or locked)", unread)]


_HEADS: dict[str | None, list[str]] = {}


def _migrations(run: _Run, conn) -> list[Metric]:
    from sqlalchemy.exc import ProgrammingError

    from ..migrations.scripts import INI_VAR, heads

    key = os.environ.get(INI_VAR)
    if key not in _HEADS:  # the scripts of this checkout do not change under a running server
        _HEADS[key] = sorted(heads())
    head = _HEADS[key]
    try:
        current = sorted(run.query(conn, "SELECT version_num FROM alembic_version ORDER BY version_num", name="migrations")["version_num"].tolist())
    except ProgrammingError as exc:
        if getattr(exc.orig, "pgcode", None) != "42P01":  # no alembic_version: no revision applied
            raise
        current = []
    info = GaugeMetricFamily("copythat_migration_info", "The database's migration revision and the scripts' head (always 1)", labels=["current", "head"])
    info.add_metric([", ".join(current) or "base", ", ".join(head)], 1)
    return [_gauge("copythat_migration_at_head", "Whether the database is at the scripts' head revision (1) or not (0)", 1 if current == head else 0), info]


def _backups(run: _Run) -> list[Metric]:
    from ..recovery.dumps import LeftoverWarning, backups

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", LeftoverWarning)
        found = backups(run.target.backup_dir)
    mine = found[found["database"] == run.target.url.database]
    families = [_gauge("copythat_backups", "pg_dump backups of this database in its backup folder", len(mine))]
    if len(mine):
        newest = mine.iloc[0]
        taken = newest["taken_at"].timestamp()
        families += [
            _gauge("copythat_backup_newest_timestamp_seconds", "When the newest backup was taken (Unix seconds)", taken),
            _gauge("copythat_backup_newest_age_seconds", "Seconds since the newest backup was taken", round(time.time() - taken, 3)),
            _gauge("copythat_backup_newest_size_bytes", "Size of the newest backup file", int(newest["size_bytes"])),
        ]
    return families


_DATABASE_COLLECTORS: list[tuple[str, Callable]] = [
    ("server", _server),
    ("jobs", _jobs),
    ("stuck_jobs", _stuck_jobs),
    ("sequences", _sequences),
    ("migrations", _migrations),
]


# --- health and job totals, in the background ---------------------------------------------------------------------


@dataclass
class _Background:
    """The latest result of a slow read of one target, remade at most once an interval."""

    result: object = None
    finished: float | None = None  # time.time() of the latest run's end
    took: float | None = None
    error: str | None = None


_background_lock = threading.Lock()
_background_states: dict[tuple[str, str], _Background] = {}
_background_threads: dict[str, threading.Thread] = {}


def _background(found: Target, reads: dict[str, tuple[Callable[[Target], object], float]], *, wait_until: float) -> list[_Background]:
    """The latest result of each of `reads` ({kind: (read, interval)}), in that order.

    The reads that are due run one after another in one thread per target, so they hold one connection of its
    pool of two at most and the scrapes keep the other; a first result is waited for until `wait_until`.
    """
    key = found.url.render_as_string(hide_password=False)
    with _background_lock:
        states = [_background_states.setdefault((kind, key), _Background()) for kind in reads]
        due = [(kind, read, state) for (kind, (read, interval)), state in zip(reads.items(), states)
               if state.finished is None or time.time() - state.finished >= interval]  # fmt: skip
        thread = _background_threads.get(key)
        if due and (thread is None or not thread.is_alive()):
            thread = _background_threads[key] = threading.Thread(target=_remake, args=(found, due), name=f"copythat-metrics-background-{found.name}", daemon=True)
            thread.start()
    if thread is not None and any(state.result is None for state in states):
        thread.join(timeout=max(0.0, wait_until - time.monotonic()))
    return states


def _remake(found: Target, due: list[tuple[str, Callable[[Target], object], _Background]]) -> None:
    for kind, read, state in due:
        began = time.monotonic()
        try:
            result = read(found)
        except Exception as exc:
            state.error, state.finished = _reason(exc), time.time()
            log.warning("metrics of target %s: %s not read: %s", found.name, kind, state.error)
        else:
            state.result, state.error, state.took, state.finished = result, None, time.monotonic() - began, time.time()


def _shown(state: _Background, what: str, interval: float) -> str | None:
    """Why a background result is not shown (None: it is): none yet, or older than STALE_RUNS intervals."""
    if state.result is None:
        return state.error or f"no {what} yet"
    age = time.time() - state.finished
    if age > STALE_RUNS * max(interval, SCRAPE_BUDGET):
        return f"the latest {what} is {age:.0f} s old" + (f" ({state.error})" if state.error else "")
    return None


def _health_report(found: Target):
    from ..monitor.health import health

    return health(engine=target_engine(found))


def _job_totals(found: Target) -> dict[str, int]:
    from ..engine import run_query

    rows = run_query(
        """
        SELECT status,
               count(*) AS jobs
        FROM extraction_jobs
        GROUP BY status
        ORDER BY status
        """,
        name="metrics.job_totals",
        engine=target_engine(found),
        timeout=JOB_TOTALS_TIMEOUT,
        settings={"lock_timeout": LOCK_TIMEOUT},
    )
    return {str(status): int(jobs) for status, jobs in rows.itertuples(index=False)}


def _health_families(state: _Background) -> tuple[list[Metric], str | None]:
    from ..monitor.health import verdict

    why = _shown(state, "health report", HEALTH_INTERVAL)
    if why:
        return [], why
    report = state.result
    checks = GaugeMetricFamily("copythat_health_check_status", "Status of each health() check: 0 OK, 1 WARN, 2 CRIT, 3 UNKNOWN", labels=["check"])
    for row in report.itertuples(index=False):
        checks.add_metric([row.check], STATUS_CODES.get(row.status, 3))
    families = [
        checks,
        _gauge("copythat_health_status", "The health verdict, the worst check: 0 OK, 1 WARN, 2 CRIT, 3 UNKNOWN", STATUS_CODES[verdict(report)]),
        _gauge("copythat_health_age_seconds", "Seconds since the health report shown was made", round(time.time() - state.finished, 3)),
    ]
    if state.took is not None:
        families.append(_gauge("copythat_health_duration_seconds", "Seconds the latest health() run took", round(state.took, 3)))
    return families, (f"the latest health run failed: {state.error}" if state.error else None)


def _jobs_family(open_counts: dict[str, int] | None, totals: _Background) -> tuple[list[Metric], str | None]:
    """copythat_jobs: pending and processing from this scrape, the other statuses from the background totals."""
    from ..models import JOB_STATUSES

    why = _shown(totals, "job totals", JOB_TOTALS_INTERVAL)
    known = [] if why else [s for s in dict.fromkeys([*JOB_STATUSES, *sorted(totals.result)]) if s not in OPEN_STATUSES]
    counts = {status: totals.result.get(status, 0) for status in known}
    if open_counts is not None:  # read this scrape; when they could not be, they are left out rather than shown stale
        counts = {**open_counts, **counts}
    family = GaugeMetricFamily(
        "copythat_jobs",
        "Extraction jobs by status: pending and processing counted every scrape, the others at most every 5 minutes (copythat_job_totals_age_seconds)",
        labels=["status"],
    )
    for status in sorted(counts, key=lambda s: (JOB_STATUSES.index(s) if s in JOB_STATUSES else len(JOB_STATUSES), s)):
        family.add_metric([status], counts[status])
    families = [family] if family.samples else []
    if not why:
        families.append(_gauge("copythat_job_totals_age_seconds", "Seconds since the jobs of every status were counted", round(time.time() - totals.finished, 3)))
    return families, (why or (f"the latest count failed: {totals.error}" if totals.error else None))
