"""Point-in-time restore on Neon that looks before it leaps: the past into a new branch, what differs from now, then (only when asked) the switch.

`point_in_time(timestamp=...)` (or `lsn=...`) makes a NEW branch of the default branch as it
was then; nothing existing changes. `point_in_time_diff(branch_id)` compares that branch with
the database in use now: the schema (`monitor.schema_diff`) and each table's exact row count.
`finalize_point_in_time(branch_id)` makes the default branch that state (Neon's branch restore
from the new branch), keeping the state before it as a branch; `discard_point_in_time(branch_id)`
deletes the new branch instead. On the command line: `copythat-ops db pitr`.

Example:
    >>> restored = point_in_time(timestamp="2026-11-25T12:00:00Z")
    >>> restored["branch_id"], restored["parent_id"], restored["timestamp"]
    ('br-...', 'br-main', '2026-11-25T12:00:00Z')
    >>> discard_point_in_time(restored["branch_id"])
"""

from __future__ import annotations

from datetime import UTC, datetime

import pandas as pd
from sqlalchemy.engine import URL

from ..config import normalize_url
from ..engine import database_url, dispose_engines, get_engine, run_query
from ..errors import InputError
from .neon import Neon, iso_time

DIFF_COLUMNS = ["kind", "schema", "table", "name", "now", "restored", "change"]

# Every ordinary and partitioned table outside the system schemas (a partition counts in its parent), but the rollups:
# derived from extraction_jobs, their split between compacted rows and deltas changes with every compaction.
_TABLES = """
    SELECT n.nspname AS schema,
           c.relname AS "table"
    FROM pg_class c
    JOIN pg_namespace n ON n.oid = c.relnamespace
    WHERE c.relkind IN ('r', 'p')
      AND NOT c.relispartition
      AND n.nspname NOT IN ('pg_catalog', 'information_schema')
      AND n.nspname NOT LIKE 'pg\\_%'
      AND n.nspname <> 'copythat_rollups'
    ORDER BY schema, "table"
"""


def _quoted(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def table_row_counts(url: URL | str | None = None) -> pd.DataFrame:
    """Return every table's exact row count (count(*), not the planner's estimate): schema, table, rows.

    Example:
        >>> counts = table_row_counts()
        >>> counts.query("table == 'extraction_jobs'")["rows"].tolist()
        [500]
    """
    engine = get_engine(url)
    tables = run_query(_TABLES, name="recovery.tables", engine=engine)
    if tables.empty:
        return pd.DataFrame({"schema": pd.Series(dtype=object), "table": pd.Series(dtype=object), "rows": pd.Series(dtype="int64")})
    parts, params = [], {}
    for i, (schema, table) in enumerate(zip(tables["schema"], tables["table"])):
        parts.append(f"SELECT :s{i} AS schema, :t{i} AS \"table\", count(*) AS rows FROM {_quoted(schema)}.{_quoted(table)}")
        params |= {f"s{i}": schema, f"t{i}": table}
    sql = "\nUNION ALL\n".join(parts) + "\nORDER BY schema, \"table\""
    return run_query(sql, params, name="recovery.table_row_counts", engine=engine, timeout="5min")


def point_in_time(timestamp: str | datetime | None = None, *, lsn: str | None = None, name: str | None = None,
                  client: Neon | None = None, parent_id: str | None = None) -> dict:
    """Restore the default branch (or `parent_id`) as it was at `timestamp` (ISO 8601, UTC) or `lsn` into a NEW branch,
    with a compute to read it; nothing existing changes. Returns branch_id, name, parent_id, timestamp, lsn.

    Next: `point_in_time_diff(branch_id)`, then `finalize_point_in_time(branch_id)` or
    `discard_point_in_time(branch_id)`.

    Example:
        >>> point_in_time(lsn="0/1", name="pitr-example")["name"]
        'pitr-example'
    """
    if (timestamp is None) == (lsn is None):
        raise InputError("a point-in-time restore needs a time or an LSN (one of them)", fix="give timestamp= (e.g. 2026-11-25T12:00:00Z) or lsn= (e.g. 0/1A2B3C4)",
                         params=("timestamp", "lsn"))
    client = client or Neon()
    when = iso_time(timestamp)
    name = name or f"pitr-{(when or lsn or '').replace(':', '').replace('/', '-')}-{datetime.now(UTC).strftime('%H%M%S')}"
    dispose_engines()  # hold no idle connection to the parent while the branch is made
    made = client.create_branch(name, parent_id=parent_id, parent_timestamp=when, parent_lsn=lsn, endpoint=True)
    branch = made["branch"]
    return {"branch_id": branch["id"], "name": branch.get("name"), "parent_id": branch.get("parent_id"), "timestamp": when, "lsn": lsn}


def branch_url(branch_id: str, *, client: Neon | None = None, url: URL | str | None = None) -> URL:
    """The URL of the same database and role as `url` (default: DATABASE_URL) on another branch (password inside: print it masked).

    A branch without a read-write compute endpoint (a backup branch, one restored from a snapshot)
    gets one first: a branch is connected to through a compute; it goes when the branch is deleted.

    Example:
        >>> restored = point_in_time(timestamp="2026-11-25T12:00:00Z")
        >>> branch_url(restored["branch_id"]).username == database_url().username
        True
    """
    source = database_url() if url is None else normalize_url(url)
    client = client or Neon()
    client.read_write_endpoint(branch_id)
    return client.connection_uri(branch_id, source.database, source.username)


def point_in_time_diff(branch_id: str, *, client: Neon | None = None, url: URL | str | None = None) -> pd.DataFrame:
    """Return what differs between a restored branch and the database now (`url`, default DATABASE_URL).

    One row per table with its exact row counts (kind "rows": now, restored, change =
    restored - now), then one per schema difference (kind as `monitor.schema_diff` names it:
    column, index, table, ...; now and restored hold each side's definition, change says
    "only now", "only restored" or "differs"). Both databases are only read.

    Example:
        >>> from copythat_ops.engine import run_query
        >>> restored = point_in_time(timestamp=datetime.now(UTC))
        >>> _ = run_query("DELETE FROM extraction_jobs WHERE id <= 5 RETURNING id", read_only=False)
        >>> diff = point_in_time_diff(restored["branch_id"])
        >>> diff.query("table == 'extraction_jobs'")[["kind", "now", "restored", "change"]].values.tolist()
        [['rows', 495, 500, 5]]
    """
    from ..monitor.schema import schema_diff

    client = client or Neon()
    now = database_url() if url is None else normalize_url(url)
    then = branch_url(branch_id, client=client, url=now)
    try:
        counts_now = table_row_counts(now)
        counts_then = table_row_counts(then)
        schema = schema_diff(now, then)
    finally:
        dispose_engines()  # neither branch keeps a session of ours: a finalize restarts their computes
    rows = counts_now.merge(counts_then, on=["schema", "table"], how="outer", suffixes=("_now", "_then"))
    rows = pd.DataFrame({
        "kind": "rows", "schema": rows["schema"], "table": rows["table"], "name": "",
        "now": rows["rows_now"].astype("Int64").astype(object), "restored": rows["rows_then"].astype("Int64").astype(object),
        "change": (rows["rows_then"].fillna(0) - rows["rows_now"].fillna(0)).astype("int64").astype(object),
    })
    words = {"only in a": "only now", "only in b": "only restored", "differs": "differs"}
    shapes = pd.DataFrame({
        "kind": schema["kind"], "schema": schema["schema"], "table": schema["table"], "name": schema["name"],
        "now": schema["in_a"], "restored": schema["in_b"], "change": schema["difference"].map(words),
    }, columns=DIFF_COLUMNS)
    both = pd.concat([rows, shapes], ignore_index=True) if len(shapes) else rows
    both = both.astype(object).where(both.notna(), None)
    return both[DIFF_COLUMNS]


def finalize_point_in_time(branch_id: str, *, client: Neon | None = None, preserve_under_name: str | None = None,
                           target_branch_id: str | None = None) -> dict:
    """Make the default branch (or `target_branch_id`) the state of a branch from `point_in_time()`: Neon restores it from
    that branch, keeps the state before as a branch named `preserve_under_name` (default
    pre-pitr-<time>), and the point-in-time branch is deleted. Sessions on the default branch end
    (its computes restart). Returns branch_id, restored_from, preserved_as.

    Example:
        >>> restored = point_in_time(timestamp="2026-11-25T12:00:00Z")
        >>> done = finalize_point_in_time(restored["branch_id"])
        >>> done["branch_id"], done["preserved_as"]
        ('br-main', 'pre-pitr-...')
    """
    client = client or Neon()
    target = target_branch_id or client.default_branch()
    if target == branch_id:
        raise InputError("the point-in-time branch cannot replace itself", fix="give the id point_in_time() returned and the branch to restore (default: the default branch)",
                         params="branch_id")
    keep = preserve_under_name or f"pre-pitr-{datetime.now(UTC).strftime('%Y%m%d-%H%M%S')}"
    dispose_engines()
    client.restore_branch(target, source_branch_id=branch_id, preserve_under_name=keep)
    client.delete_branch(branch_id)
    return {"branch_id": target, "restored_from": branch_id, "preserved_as": keep}


def discard_point_in_time(branch_id: str, *, client: Neon | None = None) -> None:
    """Delete a branch made by `point_in_time()` without restoring anything.

    Example:
        >>> discard_point_in_time(point_in_time(timestamp="2026-11-25T12:00:00Z")["branch_id"])
    """
    client = client or Neon()
    dispose_engines()
    client.delete_branch(branch_id)
