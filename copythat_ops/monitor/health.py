"""Health: one table answering "is the database healthy right now, and if not, what do I do".

Every check runs on one connection, one query each (a bounded number of
statements whatever the size of the catalog), with pghero's thresholds as
keyword defaults. A check that cannot run (a timeout, a missing privilege, an
extension not installed) reports UNKNOWN with the reason instead of failing the
whole report, and never OK. Checks read around relations another session
locks (sizes from the catalog, definitions left out) and say so in their detail.

Example:
    >>> from copythat_ops import monitor
    >>> report = monitor.health()
    >>> report.columns.tolist()
    ['check', 'status', 'value', 'threshold', 'detail', 'action']
    >>> monitor.verdict(report) in ("OK", "UNKNOWN", "WARN", "CRIT")
    True
"""

from __future__ import annotations

import numbers
from collections.abc import Callable

import pandas as pd
from sqlalchemy.engine import Engine
from sqlalchemy.exc import DBAPIError

from .. import validate
from ..errors import CopythatError
from .activity import blocked_queries, long_running_queries
from . import backups as backup_checks
from .bloat import bloat
from .connections import connection_headroom, idle_in_transaction
from .forecast import parse_size, sequence_forecast, size_forecast
from .history import SCHEMA as HISTORY_SCHEMA
from .indexes import duplicate_indexes, index_usage, invalid_indexes, missing_indexes, unused_indexes
from .maintenance import cache_hit_ratio, vacuum_stats, wraparound_risk
from .queries import query_stats_status, slow_queries
from .schema import disabled_triggers
from .sequences import sequences
from .server import replica_lag, replication, replication_slots
from .snapshot import query, snapshot
from . import tenancy
from .transactions import commit_ratio, open_transactions, prepared_transactions
from .space import database_size

STATUSES = ("OK", "UNKNOWN", "WARN", "CRIT")  # best to worst: a check that could not run is not OK
YOUNG = "too young to judge"  # in the detail of an OK check whose numbers cannot tell yet (a fresh server, a cold cache)
UNJUDGED = (YOUNG, "too few to judge")
COLUMNS = ["check", "status", "value", "threshold", "detail", "action"]
PERCENTS = {"connections_warn_percent", "connections_crit_percent", "cache_hit_percent", "index_use_percent",
            "sequence_warn_percent", "sequence_crit_percent", "dead_rows_percent",
            "commit_ratio_warn_percent", "commit_ratio_crit_percent"}  # fmt: skip
COUNTS = {"total_connections", "idle_in_transaction", "cache_hit_min_blocks", "unused_index_scans", "missing_index_rows", "xids_left_warn",
          "xids_left_crit", "dead_rows_min", "slow_query_calls", "index_stats_min_scans",
          "bloat_warn_bytes", "bloat_crit_bytes", "commit_ratio_min_transactions"}  # fmt: skip


def health(
    *,
    connections_warn_percent: float = 80,
    connections_crit_percent: float = 95,
    total_connections: int = 500,
    idle_in_transaction: int = 100,
    long_running_seconds: float = 60,
    cache_hit_percent: float = 99,
    cache_hit_min_blocks: int = 10_000,
    unused_index_scans: int = 50,
    missing_index_rows: int = 10_000,
    index_use_percent: float = 95,
    index_stats_min_scans: int = 100,
    sequence_warn_percent: float = 90,
    sequence_crit_percent: float = 99,
    xids_left_warn: int = 1_500_000_000,
    xids_left_crit: int = 10_000_000,
    dead_rows_percent: float = 20,
    dead_rows_min: int = 1_000,
    replication_lag_seconds: float = 5,
    replication_lag_crit_seconds: float = 60,
    slow_query_calls: int = 100,
    slow_query_mean_ms: float = 20,
    forecast_warn_days: float = 90,
    forecast_crit_days: float = 14,
    size_limit: int | str | None = None,
    bloat_warn_bytes: int = 1024**3,
    bloat_crit_bytes: int = 5 * 1024**3,
    prepared_warn_seconds: float = 1,
    prepared_crit_seconds: float = 30,
    transaction_warn_seconds: float = 600,
    transaction_crit_seconds: float = 3600,
    commit_ratio_warn_percent: float = 90,
    commit_ratio_crit_percent: float = 80,
    commit_ratio_min_transactions: int = 10_000,
    backup_warn_hours: float = 26,
    backup_crit_days: float = 8,
    drill_warn_days: float = 30,
    engine: Engine | None = None,
) -> pd.DataFrame:
    """Return one row per check: check, status (OK / WARN / CRIT, or UNKNOWN), value, threshold, detail and the action to take.

    Defaults are pghero's: WARN at 500 connections or 100 idle in transaction,
    a query running 60 s, a cache hit rate under 99 %, an index scanned at most
    50 times, tables of 10,000+ rows using indexes for under 95 % of scans, a
    sequence 90 % used, under 1.5 billion transaction ids left, replication 5 s
    behind, statements with 100+ calls averaging 20+ ms. Added here: replication
    CRIT at `replication_lag_crit_seconds` (60) behind, UNKNOWN naming the grant
    (pg_monitor) when standbys are attached but hidden from the role; CRIT at
    95 % of usable connections, a sequence 99 % used or under 10 million ids
    left; WARN at 80 % of connections and at tables with 20 % and 1,000+ dead
    rows. The cache hit rate is judged once `cache_hit_min_blocks` blocks
    have been read, and only for a database larger than shared_buffers (one
    that fits misses only on first reads: a fresh server, a freshly seeded demo).
    A check whose numbers cannot tell yet is OK and says "too young to judge" (or "too few")
    (see `unjudged`), so the verdict names only problems to act on. Blocked queries, invalid or duplicate indexes and inactive
    replication slots WARN when there are any.

    Index use is judged only on tables scanned at least `index_stats_min_scans`
    times since the statistics were reset (younger ones are named as too young
    to judge), and a table whose reads avoid its indexes is reported once, under
    missing_indexes, not also as having unused indexes. The toolkit's own history
    tables (copythat_history) are not judged. A check that could not
    run is UNKNOWN; `slow_queries` is UNKNOWN without pg_stat_statements.

    From check_postgres: WARN at 1 GiB of estimated bloat in a table or index
    (CRIT 5 GiB), a prepared transaction 1 s old (CRIT 30 s), a commit ratio
    under 90 % (CRIT 80 %, judged after 10,000 transactions), any disabled
    trigger; and a transaction open 10 min (CRIT 1 h), whatever its state.
    From the captured history (`capture()`): WARN when a sequence reaches its
    column type's maximum within `forecast_warn_days` (90; CRIT 14), and the
    same for the database reaching `size_limit` (e.g. "10 GB", a Neon plan's
    limit; not checked without one). Without enough history a forecast is
    not made, and the detail says so.

    From supabase/splinter, the tenancy lints (see `tenancy`): CRIT for a tenant table
    without row-level security (once any table uses it) or a table whose policies
    are not applied (RLS disabled); WARN for RLS without a policy, RLS not forced,
    forced RLS on tables whose owner lacks BYPASSRLS (pg_dump and COPY FROM fail),
    a policy calling current_setting() once per row, a foreign key no index
    leads with, a tenant table without a primary key.

    Recovery (see `backups`): WARN when the newest backup of the database in this
    machine's backup folder is `backup_warn_hours` old (26; CRIT at `backup_crit_days`, 8),
    and when no restore drill passed in `drill_warn_days` (30) or the last one failed.
    A local database that was never backed up is not judged (OK, said in the detail).

    Connections, prepared and open transactions and replication are
    server-wide; the rest is this database.

    Example:
        >>> bool(health(long_running_seconds=300)["status"].isin(["OK", "WARN", "CRIT", "UNKNOWN"]).all())
        True
    """
    limits = {name: value for name, value in locals().items() if name != "engine"}
    for name, value in limits.items():
        if name == "size_limit":
            limits[name] = None if value is None else parse_size(value)
            continue
        validate.number(value, name=name, maximum=100 if name in PERCENTS else None, integer=name in COUNTS)
    rows = []
    with snapshot(engine):
        for names, check in CHECKS:
            try:
                rows += check(limits)
            except (DBAPIError, CopythatError) as exc:
                reason = (exc.problem if isinstance(exc, CopythatError) else str(getattr(exc, "orig", None) or exc)).strip().splitlines()[0]
                rows += [_row(name, "UNKNOWN", None, "", f"could not run: {reason}", "run the check alone to see the error; grant the role pg_monitor") for name in names]
    report = pd.DataFrame(rows, columns=COLUMNS)
    report["value"] = pd.Series([_readable(v) for v in report["value"]], index=report.index, dtype=object)
    return report


def verdict(report: pd.DataFrame) -> str:
    """Return the worst status of a `health()` report: "OK", "UNKNOWN" (a check could not run), "WARN" or "CRIT".

    Example:
        >>> verdict(pd.DataFrame({"status": ["OK", "WARN"]}))
        'WARN'
    """
    return max(report["status"], key=STATUSES.index, default="OK")


def unjudged(report: pd.DataFrame) -> list[str]:
    """Return the checks of a `health()` report that are OK only because they are too young to judge (a cold cache, few scans or transactions).

    Example:
        >>> unjudged(pd.DataFrame({"check": ["cache_hit", "sequences"], "status": ["OK", "OK"], "detail": ["...; too young to judge", "fine"]}))
        ['cache_hit']
    """
    young = report[(report["status"] == "OK") & report["detail"].astype(str).str.contains("|".join(UNJUDGED))]
    return young["check"].tolist()


def _row(check: str, status: str, value: float | None, threshold: str, detail: str, action: str) -> dict:
    return {"check": check, "status": status, "value": value, "threshold": threshold, "detail": detail, "action": action if status != "OK" else ""}


def _readable(value):
    """A report value as a plain number: whole numbers as exact ints (2146483619, not 2.146484e+09; a bigint to its last digit), others rounded, missing as None."""
    if value is None or pd.isna(value):
        return None
    if isinstance(value, numbers.Integral):
        return int(value)
    value = float(value)
    return int(value) if value.is_integer() else round(value, 2)


def _notes(*frames: pd.DataFrame) -> str:
    """What the checks could not read because of another session's lock, for a row's detail ("" when nothing)."""
    notes = pd.concat([frame["note"] for frame in frames if "note" in frame]).dropna().unique() if frames else []
    reasons = sorted({note.split(": ", 1)[1] for note in notes})
    return f"; read around locks: {_names(reasons, 2)}" if reasons else ""


def _any(check: str, found: pd.DataFrame, threshold: str, detail: str, action: str) -> dict:
    """A check that warns when it finds anything: its value is how many rows it found."""
    return _row(check, _level(len(found), 1), len(found), threshold, detail or "none", action)


def _level(value: float | None, warn: float, crit: float | None = None, *, below: bool = False) -> str:
    """The status of `value` against thresholds reached at or above them (below them with `below=True`)."""
    if value is None or pd.isna(value):
        return "OK"
    reached = (lambda limit: value < limit) if below else (lambda limit: value >= limit)
    return "CRIT" if crit is not None and reached(crit) else "WARN" if reached(warn) else "OK"


def _short(text, limit: int = 60) -> str:
    text = " ".join(str(text).split())
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _names(values, limit: int = 3) -> str:
    values = [str(v) for v in values]
    more = f" and {len(values) - limit} more" if len(values) > limit else ""
    return ", ".join(values[:limit]) + more


def _connections(t: dict) -> list[dict]:
    usage = connection_headroom().iloc[0]
    used, usable = int(usage["used_connections"]), int(usage["max_connections"] - usage["reserved_connections"])
    return [
        _row(
            "connection_headroom",
            _level(usage["percent_used"], t["connections_warn_percent"], t["connections_crit_percent"]),
            usage["percent_used"],
            f"warn >= {t['connections_warn_percent']} %, crit >= {t['connections_crit_percent']} %",
            f"{used} of {usable} usable connections in use",
            "see who holds them with connections(); close idle clients, lower pool sizes, or raise max_connections",
        ),
        _row(
            "total_connections",
            _level(used, t["total_connections"]),
            used,
            f"warn >= {t['total_connections']}",
            f"{used} client connections on the server",
            "put a connection pooler in front (Neon's -pooler host) and lower the clients' pool sizes",
        ),
    ]


def _idle_in_transaction(t: dict) -> list[dict]:
    idle = idle_in_transaction()
    return [
        _row(
            "idle_in_transaction",
            _level(len(idle), t["idle_in_transaction"]),
            len(idle),
            f"warn >= {t['idle_in_transaction']}",
            f"{len(idle)} sessions idle in a transaction" + (f" (pids {_names(idle['pid'])})" if len(idle) else ""),
            "fix the client that leaves transactions open; end one with terminate_backend(pid); set idle_in_transaction_session_timeout",
        )
    ]


def _long_running(t: dict) -> list[dict]:
    running = long_running_queries(f"{t['long_running_seconds']}s")
    detail = f"longest {running['duration_seconds'].iloc[0]:.0f} s (pids {_names(running['pid'])})" if len(running) else ""
    return [
        _any(
            "long_running_queries",
            running,
            f"warn: any running >= {t['long_running_seconds']} s",
            detail,
            "inspect them with long_running_queries(); cancel one with cancel_query(pid)",
        )
    ]


def _blocked(t: dict) -> list[dict]:
    blocked = blocked_queries()
    waiting = blocked.drop_duplicates("blocked_pid")
    holders = blocked.drop_duplicates("blocking_pid")
    holding = [f"{row.blocking_pid} ({row.blocking_state}: {_short(row.blocking_query)})" for row in holders.itertuples()]
    detail = f"pids {_names(waiting['blocked_pid'])} wait for pid {_names(holding, 2)}" if len(waiting) else ""
    return [
        _any(
            "blocked_queries",
            waiting,
            "warn: any",
            detail,
            "see blocked_queries(); if the blocking session is stuck, end it with cancel_query(pid) or terminate_backend(pid), pid its blocking_pid",
        )
    ]


def _cache_hit(t: dict) -> list[dict]:
    ratio = cache_hit_ratio().dropna(subset=["hit_percent"])
    ratio = ratio[ratio["hits"] + ratio["reads"] >= t["cache_hit_min_blocks"]]
    worst = ratio.loc[ratio["hit_percent"].idxmin()] if len(ratio) else None
    memory = query(
        """
        SELECT pg_database_size(current_database()) AS database_bytes,
               pg_size_pretty(pg_database_size(current_database())) AS database_size,
               (SELECT setting::bigint * pg_size_bytes(coalesce(unit, '1')) FROM pg_settings WHERE name = 'shared_buffers') AS buffers_bytes,
               current_setting('shared_buffers') AS buffers
        ORDER BY database_bytes
        """,
        name="cache_room",
    ).iloc[0]
    fits = memory["database_bytes"] <= memory["buffers_bytes"]
    if worst is None:
        young = f"fewer than {t['cache_hit_min_blocks']:,} blocks read yet; {YOUNG}"
    elif fits:  # every block can stay cached: the misses are first reads (a cold cache) and bulk loads, not a cache too small
        young = f"the whole database ({memory['database_size']}) fits in shared_buffers ({memory['buffers']}): its misses are a cold cache's first reads; {YOUNG}"
    else:
        young = ""
    return [
        _row(
            "cache_hit",
            "OK" if young else _level(worst["hit_percent"], t["cache_hit_percent"], below=True),
            None if worst is None else worst["hit_percent"],
            f"warn < {t['cache_hit_percent']} %",
            young if worst is None else f"lowest: {worst['kind']} {worst['hit_percent']} %" + (f"; {young}" if young else ""),
            "the working set outgrows shared_buffers: give the server more memory, or avoid large full scans",
        )
    ]


def _index_checks(t: dict) -> list[dict]:
    invalid, duplicate = invalid_indexes(), duplicate_indexes()
    unused = unused_indexes(max_scans=t["unused_index_scans"])
    missing = missing_indexes(min_rows=t["missing_index_rows"], max_index_use_percent=t["index_use_percent"])
    usage, since = index_usage(), _stats_since()
    young = _keys(usage[usage["seq_scan"].fillna(0) + usage["idx_scan"].fillna(0) < t["index_stats_min_scans"]])
    # the monitoring history's tables are this toolkit's own, indexed for capture and its retention (which may not have run yet)
    unused, missing = unused[unused["schema"] != HISTORY_SCHEMA], missing[missing["schema"] != HISTORY_SCHEMA]
    judged_unused, judged_missing = unused[~_keys(unused).isin(young)], missing[~_keys(missing).isin(young)]
    both = _keys(judged_unused).isin(_keys(judged_missing))  # read, but never through these indexes: one advice, under missing_indexes
    unused_by_table = judged_unused[both].groupby("table")["index"].agg(list)
    judged_unused = judged_unused[~both]

    def too_young(found: pd.DataFrame) -> str:
        tables = sorted(set(found.loc[_keys(found).isin(young), "table"]))
        return f"; {YOUNG} (under {t['index_stats_min_scans']} scans, {since}): {_names(tables)}" if tables else ""

    left_to_missing = f"; {_names(unused_by_table.index)}: see missing_indexes()" if len(unused_by_table) else ""
    missing_names = [
        f"{table} (its indexes {_names(unused_by_table[table], 2)} go unused too)" if table in unused_by_table else table for table in judged_missing["table"]
    ]
    return [
        _any(
            "invalid_indexes", invalid, "warn: any", _names(invalid["index"]) + _notes(invalid),
            "DROP INDEX CONCURRENTLY each, then CREATE INDEX CONCURRENTLY again (see invalid_indexes())",
        ),
        _any(
            "duplicate_indexes", duplicate, "warn: any",
            _names(duplicate["redundant_index"] + " (covered by " + duplicate["covering_index"] + ")") + _notes(duplicate),
            "drop each redundant_index with DROP INDEX CONCURRENTLY in a migration (see duplicate_indexes())",
        ),
        _any(
            "unused_indexes", judged_unused, f"warn: any scanned <= {t['unused_index_scans']} times",
            (_names(judged_unused["index"]) or "none") + left_to_missing + too_young(unused) + _notes(unused),
            "confirm on every replica over a full business cycle, then drop them in a migration (see unused_indexes())",
        ),
        _any(
            "missing_indexes", judged_missing,
            f"warn: tables of >= {t['missing_index_rows']} rows using indexes < {t['index_use_percent']} % of scans",
            (_names(missing_names) or "none") + too_young(missing),
            "index what these tables are filtered by, with CREATE INDEX CONCURRENTLY in a migration, and drop the indexes "
            "their queries never use (see missing_indexes(), query_stats())",
        ),
    ]  # fmt: skip


def _keys(frame: pd.DataFrame) -> pd.Series:
    """Each row's table as "schema.table", to match rows of different checks."""
    return frame["schema"].astype(str) + "." + frame["table"].astype(str) if len(frame) else pd.Series([], dtype=object)


def _stats_since() -> str:
    """Since when this database's scan counts run: "statistics reset <time>", or "statistics never reset" (kept since its creation)."""
    reset = query(
        """
        SELECT stats_reset
        FROM pg_stat_database
        WHERE datname = current_database()
        ORDER BY stats_reset
        """,
        name="stats_reset",
    )["stats_reset"]
    if reset.empty or pd.isna(reset.iloc[0]):
        return "statistics never reset"
    return f"statistics reset {pd.Timestamp(reset.iloc[0]).strftime('%Y-%m-%d %H:%M UTC')}"


def _sizes(t: dict) -> list[dict]:
    total = database_size().iloc[0]
    # The largest table by the catalog's page counts (as of its last VACUUM or ANALYZE): no size function, so no lock to wait for.
    largest = query(
        """
        SELECT "table",
               pg_size_pretty(pages * current_setting('block_size')::bigint) AS size
        FROM (
            SELECT c.relname AS "table",
                   (c.relpages + coalesce(toast.relpages, 0)
                    + (SELECT coalesce(sum(ic.relpages), 0) FROM pg_index AS ii JOIN pg_class AS ic ON ic.oid = ii.indexrelid WHERE ii.indrelid = c.oid)
                   )::bigint AS pages
            FROM pg_class AS c
            JOIN pg_namespace AS n ON n.oid = c.relnamespace
            LEFT JOIN pg_class AS toast ON toast.oid = c.reltoastrelid
            WHERE c.relkind IN ('r', 'm', 'p')
              AND n.nspname NOT IN ('pg_catalog', 'information_schema')
        ) AS tables
        ORDER BY pages DESC, "table"
        LIMIT 1
        """,
        name="largest_table",
    )
    detail = "no tables" if largest.empty else f"largest table: {largest['table'][0]}, about {largest['size'][0]} by the catalog"
    return [_row("database_size", "OK", total["size_bytes"], "", f"{total['size']}; {detail}", "")]


def _sequences(t: dict) -> list[dict]:
    found = sequences()
    used = found.dropna(subset=["percent_used"])
    top = used.iloc[0] if len(used) else None
    hidden = int((~found["readable"].astype(bool)).sum())
    detail = ("none used yet" if top is None else f"fullest: {top['sequence']} ({top['column_type']}) {top['percent_used']} %") + _notes(found)
    return [
        _row(
            "sequences",
            _level(None if top is None else top["percent_used"], t["sequence_warn_percent"], t["sequence_crit_percent"]),
            None if top is None else top["percent_used"],
            f"warn >= {t['sequence_warn_percent']} %, crit >= {t['sequence_crit_percent']} % of the column's maximum",
            detail + (f"; {hidden} this role may not read (grant SELECT on them)" if hidden else ""),
            "move the column and its sequence to bigint before they run out, with an expand/contract migration (see sequences())",
        )
    ]


def _wraparound(t: dict) -> list[dict]:
    ages = wraparound_risk()
    oldest = ages.iloc[0] if len(ages) else None
    return [
        _row(
            "wraparound",
            _level(None if oldest is None else oldest["xids_left"], t["xids_left_warn"], t["xids_left_crit"], below=True),
            None if oldest is None else oldest["xids_left"],
            f"warn < {t['xids_left_warn']:,} transaction ids left, crit < {t['xids_left_crit']:,}",
            "no tables" if oldest is None else f"oldest: {oldest['schema']}.{oldest['table']}, age {oldest['xid_age']:,}",
            "VACUUM (FREEZE) the oldest tables (see wraparound_risk()); make sure no long transaction holds autovacuum back",
        )
    ]


def _dead_rows(t: dict) -> list[dict]:
    stats = vacuum_stats()
    bloated = stats[(stats["dead_percent"] >= t["dead_rows_percent"]) & (stats["dead_rows"] >= t["dead_rows_min"])]
    return [
        _any(
            "dead_rows",
            bloated,
            f"warn: tables with >= {t['dead_rows_percent']} % and >= {t['dead_rows_min']:,} dead rows",
            _names(bloated["table"] + " " + bloated["dead_percent"].astype(str) + " %"),
            "VACUUM (ANALYZE) these tables; check autovacuum is enabled and not held back by long transactions (see vacuum_stats())",
        )
    ]


def _replication(t: dict) -> list[dict]:
    mine = replica_lag().iloc[0]
    standbys = pd.DataFrame() if mine["in_recovery"] else replication()
    hidden = standbys[standbys["state"].isna()] if len(standbys) else standbys
    lag = mine["lag_seconds"] if mine["in_recovery"] else standbys["replay_lag_seconds"].max() if len(standbys) else None
    threshold = f"warn >= {t['replication_lag_seconds']} s, crit >= {t['replication_lag_crit_seconds']} s"
    if len(hidden):  # the walsenders are there, but pg_stat_replication shows this role only their pids
        role = query("SELECT current_user AS role ORDER BY role", name="current_role")["role"].iloc[0]
        lag_row = _row(
            "replication_lag", "UNKNOWN", None, threshold,
            f"{len(standbys)} standby(s) attached, but their state and lag are hidden from role {role} (pids {_names(standbys['pid'])})",
            f"grant the role the right to see them: GRANT pg_monitor TO {role} (or pg_read_all_stats); then see replication()",
        )  # fmt: skip
    else:
        if mine["in_recovery"]:
            detail = "this replica's lag"
        elif len(standbys):
            behind = standbys["replay_lag_bytes"].max()
            detail = (f"largest lag of {len(standbys)} standby(s) ({_names(standbys['application_name'])}), "
                      + ("caught up" if pd.isna(lag) else "replay behind") + (f", {int(behind):,} bytes not replayed" if pd.notna(behind) else ""))  # fmt: skip
        else:
            detail = "no replication: no standby attached"
        lag_row = _row(
            "replication_lag",
            _level(lag, t["replication_lag_seconds"], t["replication_lag_crit_seconds"]),
            None if lag is None or pd.isna(lag) else lag,
            threshold,
            detail,
            "check the replica's load and network, and whether its replay is paused (see replication(), replica_lag())",
        )
    slots = replication_slots()
    inactive = slots[~slots["active"].astype(bool)]
    return [
        lag_row,
        _any(
            "replication_slots",
            inactive,
            "warn: any inactive",
            _names(inactive["slot_name"] + " keeps " + inactive["retained"].astype(str)),
            "drop the slots nothing consumes any more (pg_drop_replication_slot) before their WAL fills the disk",
        ),
    ]


def _slow_queries(t: dict) -> list[dict]:
    status = query_stats_status()
    threshold = f"warn: any with >= {t['slow_query_calls']} calls averaging >= {t['slow_query_mean_ms']} ms"
    if not status["enabled"]:
        return [_row("slow_queries", "UNKNOWN", None, threshold, f"not checked: {status['message']}", f"to check it: {status['fix']}")]
    slow = slow_queries(min_calls=t["slow_query_calls"], min_mean_ms=t["slow_query_mean_ms"])
    return [
        _any(
            "slow_queries",
            slow,
            threshold,
            f"slowest averages {slow['mean_ms'].iloc[0]} ms over {slow['calls'].iloc[0]} calls" if len(slow) else "",
            "read the plans of these statements (EXPLAIN ANALYZE) and index what they filter on (see slow_queries())",
        )
    ]


CHECKS: list[tuple[tuple[str, ...], Callable[[dict], list[dict]]]] = [
    (("connection_headroom", "total_connections"), _connections),
    (("idle_in_transaction",), _idle_in_transaction),
    (("long_running_queries",), _long_running),
    (("blocked_queries",), _blocked),
    (("cache_hit",), _cache_hit),
    (("invalid_indexes", "duplicate_indexes", "unused_indexes", "missing_indexes"), _index_checks),
    (("sequences",), _sequences),
    (("database_size",), _sizes),
    (("wraparound",), _wraparound),
    (("dead_rows",), _dead_rows),
    (("replication_lag", "replication_slots"), _replication),
    (("slow_queries",), _slow_queries),
    (("bloat",), lambda t: _bloat(t)),
    (("prepared_transactions",), lambda t: _prepared(t)),
    (("longest_transaction",), lambda t: _longest_transaction(t)),
    (("disabled_triggers",), lambda t: _disabled_triggers(t)),
    (("commit_ratio",), lambda t: _commit_ratio(t)),
    (("sequence_forecast", "size_forecast"), lambda t: _forecasts(t)),
    (backup_checks.CHECKS, lambda t: backup_checks.checks(t)),
    (tenancy.CHECKS, lambda t: tenancy.checks(t)),
]


def _bloat(t: dict) -> list[dict]:
    found = bloat()
    worst = found.iloc[0] if len(found) else None
    name = None if worst is None else (worst["index"] if worst["kind"] == "index" else worst["table"])
    return [
        _row(
            "bloat",
            _level(None if worst is None else worst["bloat_bytes"], t["bloat_warn_bytes"], t["bloat_crit_bytes"]),
            None if worst is None else worst["bloat_bytes"],
            f"warn >= {t['bloat_warn_bytes']:,} bytes wasted in one table or index, crit >= {t['bloat_crit_bytes']:,}",
            "no analyzed tables" if worst is None else f"most: {worst['kind']} {name}, about {worst['bloat_bytes']:,} bytes ({worst['bloat_percent']} %), estimated from statistics",
            "confirm with bloat(exact=True) on a quiet server, then rebuild online (pg_repack, or REINDEX INDEX CONCURRENTLY for an index)",
        )
    ]


def _prepared(t: dict) -> list[dict]:
    found = prepared_transactions()
    oldest = found.iloc[0] if len(found) else None
    return [
        _row(
            "prepared_transactions",
            _level(None if oldest is None else oldest["age_seconds"], t["prepared_warn_seconds"], t["prepared_crit_seconds"]),
            None if oldest is None else oldest["age_seconds"],
            f"warn: any older than {t['prepared_warn_seconds']} s, crit {t['prepared_crit_seconds']} s",
            "none" if oldest is None else f"{len(found)} prepared; oldest {oldest['gid']!r} in {oldest['database']}, {oldest['age_seconds']:.0f} s old",
            "finish each with COMMIT PREPARED 'gid' or ROLLBACK PREPARED 'gid' (as its owner, in its database); it holds locks and xmin until then",
        )
    ]


def _longest_transaction(t: dict) -> list[dict]:
    found = open_transactions().dropna(subset=["transaction_seconds"])
    top = found.iloc[0] if len(found) else None
    return [
        _row(
            "longest_transaction",
            _level(None if top is None else top["transaction_seconds"], t["transaction_warn_seconds"], t["transaction_crit_seconds"]),
            None if top is None else top["transaction_seconds"],
            f"warn: a transaction open >= {t['transaction_warn_seconds']} s, crit >= {t['transaction_crit_seconds']} s",
            "no open transactions" if top is None else f"pid {top['pid']} ({top['state']}, {top['application_name'] or 'no application name'}) open {top['transaction_seconds']:.0f} s: {_short(top['query'])}",
            "see open_transactions(); ask its owner, or end it with cancel_query(pid) (active) or terminate_backend(pid); set idle_in_transaction_session_timeout",
        )
    ]


def _disabled_triggers(t: dict) -> list[dict]:
    found = disabled_triggers()
    return [
        _any(
            "disabled_triggers",
            found,
            "warn: any",
            _names(found["table"] + "." + found["trigger"] + " (" + found["enabled"] + ")"),
            "enable each with ALTER TABLE ... ENABLE TRIGGER name, after checking why it was disabled (see disabled_triggers())",
        )
    ]


def _commit_ratio(t: dict) -> list[dict]:
    row = commit_ratio().iloc[0]
    total = int(row["commits"] + row["rollbacks"])
    judged = total >= t["commit_ratio_min_transactions"]
    return [
        _row(
            "commit_ratio",
            _level(row["commit_percent"] if judged else None, t["commit_ratio_warn_percent"], t["commit_ratio_crit_percent"], below=True),
            row["commit_percent"],
            f"warn < {t['commit_ratio_warn_percent']} %, crit < {t['commit_ratio_crit_percent']} % (after {t['commit_ratio_min_transactions']:,} transactions)",
            f"{int(row['rollbacks']):,} rollbacks of {total:,} transactions" + ("" if judged else "; too few to judge"),
            "find what rolls back: the application's error logs, failed statements in the server log (log_min_error_statement)",
        )
    ]


def _forecasts(t: dict) -> list[dict]:
    threshold = f"warn: under {t['forecast_warn_days']} days left, crit under {t['forecast_crit_days']}"
    rows = []
    try:
        every = sequence_forecast()
    except CopythatError as exc:
        rows.append(_row("sequence_forecast", "OK", None, threshold, f"not forecast: {exc.problem}", ""))
    else:
        found = every.dropna(subset=["days_left"])
        top = found.iloc[0] if len(found) else None
        basis = every.iloc[0] if len(every) else None
        rests = "" if basis is None else f"forecast from {_days(basis['history_days'])} of history ({basis['snapshots']} snapshots)"
        rows.append(
            _row(
                "sequence_forecast",
                _level(None if top is None else top["days_left"], t["forecast_warn_days"], t["forecast_crit_days"], below=True),
                None if top is None else top["days_left"],
                threshold,
                ("no sequence is growing" if top is None else
                 f"soonest: {top['sequence']} ({top['column_type']}) reaches {top['max_value']:,} "
                 + (f"in {top['days_left']:,.1f} days, on {top['runs_out_on']}" if pd.notna(top["runs_out_on"]) else "in over a thousand years")
                 + f", at {top['ids_per_day']:,.1f} ids/day") + (f"; {rests}" if rests else ""),
                "move the column and its sequence to bigint with an expand/contract migration before that date (see sequence_forecast())",
            )
        )  # fmt: skip
    if t["size_limit"] is None:
        rows.append(_row("size_forecast", "OK", None, threshold, "not checked: no size_limit given (e.g. size_limit='10 GB', a Neon plan's limit)", ""))
        return rows
    try:
        size = size_forecast(t["size_limit"]).iloc[0]
    except CopythatError as exc:
        rows.append(_row("size_forecast", "OK", None, threshold, f"not forecast: {exc.problem}", ""))
        return rows
    reached = size["size_bytes"] >= size["size_limit_bytes"]
    rows.append(
        _row(
            "size_forecast",
            "CRIT" if reached else _level(size["days_left"], t["forecast_warn_days"], t["forecast_crit_days"], below=True),
            size["days_left"],
            threshold,
            (f"{size['size_bytes']:,} of {size['size_limit_bytes']:,} bytes; " + ("limit reached" if reached else
             "not growing" if pd.isna(size["days_left"]) else f"reaches the limit in {size['days_left']:,.1f} days, on {size['reaches_limit_on'] if pd.notna(size['reaches_limit_on']) else 'a date over a thousand years away'}, at {size['bytes_per_day']:,.0f} bytes/day"))
            + f"; forecast from {_days(size['history_days'])} of history ({size['snapshots']} snapshots)",
            "free space (drop unused indexes, delete or archive old jobs) or move to a larger plan before that date (see size_forecast(), growth())",
        )
    )  # fmt: skip
    return rows


def _days(value) -> str:
    if value is None or pd.isna(value):
        return "the captured days"
    value = float(value)
    return f"{value:g} day" + ("" if value == 1 else "s")
