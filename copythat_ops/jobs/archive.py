"""Old finished jobs moved out of the database into Parquet files any engine reads (DuckDB, Spark, Athena), and back.

Layout: `DIR/extraction_jobs/month=YYYY-MM/part-<first id>-<last id>.parquet`
(zstd; month = created_at's month in UTC). A file being written is named
`.part-<first id>.parquet.tmp` and renamed when complete and flushed to disk,
so no reader (nor a `*.parquet` glob) ever sees half a file. The token rows
that pointed at an archived job are remembered next to it, in
`DIR/token_links/month=YYYY-MM/` (token_table, token_id, extraction_job_id):
deleting a job sets their extraction_job_id to NULL (the foreign key's
ON DELETE SET NULL), restoring the month links them again.

`archive_jobs` writes, verifies, then deletes, one month at a time, and can be
killed at any point: run it again and it finishes the work without losing or
duplicating a job. `restore_archive` puts a month back. Both are dry runs
unless `apply=True`.

Example:
    >>> print(archive_jobs("archive", older_than="2026-10-10"))
    dry run: would archive 98 job(s) created before 2026-10-10 00:00 UTC, 1 month(s) (2026-10), ... in the table; run with apply=True to write and delete them
    >>> archive_jobs("archive", older_than="2026-10-10", apply=True).deleted
    98
    >>> read_archive("archive").num_rows
    98
"""

from __future__ import annotations

import json
import os
import re
import time
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.dataset as ds
import pyarrow.parquet as pq
from sqlalchemy import text
from sqlalchemy.engine import Engine

from ..engine import APP_NAME, LOCK_TIMEOUT, connection, explain_lock_waits, get_engine, is_lock_timeout, lock_wait_error, run_query
from ..errors import InputError, LockTimeout, schema_required
from ..validate import duration, number
from .adbc import adbc_connection
from .filters import AT_UTC, checked_values, time_bound, timestamp_bound

TABLE = "extraction_jobs"
LINKS = "token_links"
FINISHED = ("completed", "failed")
TOKEN_TABLES = ("color_tokens", "spacing_tokens", "typography_tokens")
PART_ROWS = 500_000  # rows per Parquet file at most
ROW_GROUP_ROWS = 100_000
READ_BATCH_BYTES = 4 * 2**20  # the driver hands over the rows in batches of about this size (memory stays flat)
DELETE_LOCK_TIMEOUT = "1s"  # a delete batch waits this long for a lock, then tries again (a writer is never held up longer)
DELETE_TRIES = 5
_CHECK_MODULUS = 1_000_000_007  # the id checksum: count, sum(id), sum(id * id mod this)
_ADVISORY = "copythat-ops:archive"
_TIME = pa.timestamp("us", tz="UTC")
SCHEMA = pa.schema(
    [
        ("id", pa.int64()),
        ("project_id", pa.int64()),
        ("source_url", pa.string()),
        ("extraction_type", pa.string()),
        ("status", pa.string()),
        ("result_data", pa.string()),
        ("error_message", pa.string()),
        ("created_at", _TIME),
        ("completed_at", _TIME),
        ("updated_at", _TIME),
    ]
)
LINK_SCHEMA = pa.schema([("token_table", pa.string()), ("token_id", pa.int64()), ("extraction_job_id", pa.int64())])
_MONTH = re.compile(r"^\d{4}-(0[1-9]|1[0-2])$")
_PART = re.compile(r"^part-(\d+)-(\d+)\.parquet$")


# ---------------------------------------------------------------------------------------------------------------- reading


def read_archive(
    directory: str | Path,
    *,
    status: str | list[str] | None = None,
    extraction_type: str | list[str] | None = None,
    project_id: int | list[int] | None = None,
    since: str | timedelta | datetime | None = None,
    until: str | timedelta | datetime | None = None,
) -> pa.Table:
    """Return the archived jobs under `directory` (written by `archive_jobs`) as an Arrow table, ids ascending.

    Filters as jobs_frame's: `status`, `extraction_type`, `project_id` (one or a
    list), created `since` / `until` (a duration back from now such as "30 days",
    or a timestamp; naive = UTC); they are pushed down to the files (whole months
    are skipped by their folder name, row groups by their statistics). Columns:
    id, project_id, source_url, extraction_type, status, result_data,
    error_message, created_at, completed_at, updated_at (UTC). A directory with
    no archive gives no rows.

    Example:
        >>> read_archive("no-archive-here", status="failed").column_names[:5]
        ['id', 'project_id', 'source_url', 'extraction_type', 'status']
    """
    where, months = _archive_filter(status, extraction_type, project_id, since, until)
    root = Path(directory) / TABLE
    if not root.is_dir():
        return SCHEMA.empty_table()
    if months is not None:
        where = _and(where, months)
    table = _dataset(root).to_table(columns=SCHEMA.names, filter=where)
    return table.sort_by("id") if table.num_rows else table


def _dataset(root: Path, schema: pa.Schema = SCHEMA) -> ds.Dataset:
    """The month partitions under `root` as one dataset; files starting with '.' or '_' (being written) are skipped."""
    partitioning = ds.partitioning(pa.schema([("month", pa.string())]), flavor="hive")
    return ds.dataset(root, format="parquet", partitioning=partitioning, schema=schema.append(pa.field("month", pa.string())), ignore_prefixes=[".", "_"])


def _and(left, right):
    return right if left is None else left & right


def _moment(value, name: str, now: datetime) -> pd.Timestamp:
    """A bound as a UTC instant: a timestamp (naive = UTC), or a duration back from `now`."""
    moment = timestamp_bound(value, name)
    return pd.Timestamp(now - duration(value, name=name)) if moment is None else moment


def _archive_filter(status, extraction_type, project_id, since, until):
    """The filters as an Arrow expression on the rows, and one on the month folders (or None)."""
    where, months = None, None
    for column, values in checked_values(status, extraction_type, project_id).items():
        if values is not None:
            where = _and(where, pc.field(column).isin(values))
    now = datetime.now(UTC)
    if since is not None:
        moment = _moment(since, "since", now)
        where = _and(where, pc.field("created_at") >= pa.scalar(moment.to_pydatetime(), _TIME))
        months = _and(months, pc.field("month") >= moment.strftime("%Y-%m"))
    if until is not None:
        moment = _moment(until, "until", now)
        where = _and(where, pc.field("created_at") < pa.scalar(moment.to_pydatetime(), _TIME))
        months = _and(months, pc.field("month") <= moment.strftime("%Y-%m"))
    return where, months


# ---------------------------------------------------------------------------------------------------------------- result


@dataclass(frozen=True, eq=False, repr=False)
class ArchiveResult:
    """What `archive_jobs` or `restore_archive` did, or would do, month by month.

    `months` has one row per month. Archive, dry run: month, jobs (finished
    jobs created before the cutoff), bytes (their size in the table, by
    pg_column_size: an upper bound for the files, which zstd compresses),
    in_archive (rows of that month already in the files). Archive, applied:
    month, written, in_archive (already there from an earlier run: skipped),
    deleted, kept, files, file_bytes. Restore: month, in_archive, present
    (already in the database), restored, links. `kept` lists the jobs left
    in the database because they changed (or a worker held them) after they
    were written; their copy was taken out of the files.

    Example:
        >>> archive_jobs("archive", older_than="2026-10-10").months[["month", "jobs"]]
             month  jobs
        0  2026-10   98
    """

    action: str
    applied: bool
    directory: Path
    months: pd.DataFrame
    cutoff: pd.Timestamp | None = None
    kept: tuple[int, ...] = ()
    write_seconds: float = 0.0
    delete_seconds: float = 0.0
    notes: tuple[str, ...] = field(default=())

    @property
    def written(self) -> int:
        """Rows written to Parquet files by this run."""
        return self._total("written")

    @property
    def deleted(self) -> int:
        """Rows deleted from the database by this run."""
        return self._total("deleted")

    @property
    def restored(self) -> int:
        """Rows put back into the database by this run."""
        return self._total("restored")

    @property
    def rows_per_second(self) -> dict[str, float]:
        """Throughput of the run: rows written per second of writing, rows deleted per second of deleting."""
        return {
            "written": self.written / self.write_seconds if self.write_seconds else 0.0,
            "deleted": self.deleted / self.delete_seconds if self.delete_seconds else 0.0,
        }

    def _total(self, column: str) -> int:
        return int(self.months[column].sum()) if column in self.months else 0

    def summary(self) -> str:
        """Return one line saying what happened (or would happen).

        Example:
            >>> archive_jobs("archive", older_than="2026-10-10", apply=True, progress=False).summary()
            'archived 98 job(s) created before 2026-10-10 00:00 UTC to archive: 98 written, 98 deleted, 1 month(s) (2026-10)'
            >>> restore_archive("archive", "2026-10").summary()
            'dry run: would restore 98 job(s) of 2026-10 from archive and remove its files; run with apply=True to restore them'
        """
        months = self.months["month"].tolist()
        span = f"{len(months)} month(s)" + (f" ({months[0]}{' .. ' + months[-1] if len(months) > 1 else ''})" if months else "")
        if self.action == "archive":
            before = f"created before {self.cutoff:%Y-%m-%d %H:%M} UTC"
            if not self.applied:
                jobs = self._total("jobs")
                if not jobs:
                    line = f"dry run: no finished job {before}; nothing to archive"
                else:
                    line = (
                        f"dry run: would archive {jobs} job(s) {before}, {span}, {_size(self._total('bytes'))} in the table;"
                        " run with apply=True to write and delete them"
                    )
            else:
                line = f"archived {self.deleted} job(s) {before} to {self.directory}: {self.written} written, {self.deleted} deleted, {span}"
        else:
            month = months[0] if months else "?"
            if not self._total("in_archive") and not self._total("links"):
                return f"{'dry run: ' if not self.applied else ''}no archived job of {month} in {self.directory}; nothing to restore"
            if not self.applied:
                present = self._total("present")
                line = f"dry run: would restore {self._total('in_archive') - present} job(s) of {month} from {self.directory}"
                line += f" ({present} already in the database)" if present else ""
                line += " and remove its files; run with apply=True to restore them"
            else:
                line = f"restored {self.restored} job(s) of {month} from {self.directory}" + (
                    "; its files are removed" if not self.notes else ""
                )
        if self.kept:
            line += f"; kept {len(self.kept)} job(s) changed or held by a worker meanwhile: {_listed(self.kept)}"
        for note in self.notes:
            line += f"; {note}"
        return line

    def __str__(self) -> str:
        return self.summary()

    def __repr__(self) -> str:
        return f"ArchiveResult({self.summary()!r})"

    def _repr_html_(self) -> str:
        return f"<p>{self.summary()}</p>" + self.months.to_html(index=False)


def _size(n: int) -> str:
    for unit in ("B", "kB", "MB", "GB"):
        if n < 1000 or unit == "GB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1000
    return f"{n:.1f} TB"


def _listed(items, limit: int = 20) -> str:
    items = [str(i) for i in items]
    return ", ".join(items[:limit]) + (f" and {len(items) - limit} more" if len(items) > limit else "")


# ---------------------------------------------------------------------------------------------------------------- archive

_MONTHS = f"""
    SELECT to_char({AT_UTC.format("j.created_at")} AT TIME ZONE 'UTC', 'YYYY-MM') AS month,
           count(*) AS jobs{{bytes}}
    FROM extraction_jobs j
    WHERE j.status IN ('completed', 'failed')
      AND j.created_at < :cutoff
    GROUP BY 1
    ORDER BY 1
"""
# A month's wall-clock bounds on the server (created_at is the server's wall clock), the cutoff included.
# The bounds are read back from a transaction-local setting (set by _BOUNDS), so the query has no parameters and ADBC streams it by binary COPY.
_BOUNDS_SETTING = "copythat.archive_bounds"
_BOUNDS = "SELECT set_config($1, $2, true)"
_IN_MONTH = f"""
    j.created_at >= (SELECT {AT_UTC.format("CAST(current_setting('" + _BOUNDS_SETTING + "')::jsonb ->> 'start' AS timestamptz)")})
    AND j.created_at < (SELECT {AT_UTC.format("CAST(current_setting('" + _BOUNDS_SETTING + "')::jsonb ->> 'end' AS timestamptz)")})
    AND j.created_at < (SELECT CAST(current_setting('{_BOUNDS_SETTING}')::jsonb ->> 'cutoff' AS timestamp))
"""
_ROWS = f"""
    SELECT CAST(j.id AS bigint) AS id,
           CAST(j.project_id AS bigint) AS project_id,
           CAST(j.source_url AS text) AS source_url,
           CAST(j.extraction_type AS text) AS extraction_type,
           CAST(j.status AS text) AS status,
           j.result_data,
           j.error_message,
           {AT_UTC.format("j.created_at")} AS created_at,
           {AT_UTC.format("j.completed_at")} AS completed_at,
           j.updated_at
    FROM extraction_jobs j
    WHERE j.status IN ('completed', 'failed')
      AND {_IN_MONTH}
    ORDER BY j.id
"""
_LINKS = " UNION ALL ".join(
    f"SELECT '{table}' AS token_table, CAST(t.id AS bigint) AS token_id, CAST(t.extraction_job_id AS bigint) AS extraction_job_id"
    f' FROM "{table}" t JOIN archive_ids a ON a.id = t.extraction_job_id'
    for table in TOKEN_TABLES
) + " ORDER BY 1, 2"
_CHECKSUM = f"""
    SELECT count(*) AS n, coalesce(sum(id), 0) AS total, coalesce(sum(CAST(id AS bigint) * id % {_CHECK_MODULUS}), 0) AS squares
    FROM extraction_jobs
    WHERE id = ANY(CAST(:ids AS integer[]))
"""
_PRESENT = """
    SELECT id
    FROM extraction_jobs
    WHERE id = ANY(CAST(:ids AS integer[]))
    ORDER BY id
"""
# Deleted only if still finished and unchanged since written (same status and updated_at); rows a worker holds are skipped.
_DELETE = """
    DELETE FROM extraction_jobs j
    USING unnest(CAST(:ids AS integer[]), CAST(:statuses AS text[]), CAST(:updated AS timestamptz[])) AS a(id, status, updated_at)
    WHERE j.id = a.id
      AND j.status = a.status
      AND j.status IN ('completed', 'failed')
      AND j.updated_at IS NOT DISTINCT FROM a.updated_at
      AND j.id IN (SELECT id FROM extraction_jobs WHERE id = ANY(CAST(:ids AS integer[])) ORDER BY id FOR UPDATE SKIP LOCKED)
    RETURNING j.id
"""


def archive_jobs(
    to: str | Path,
    older_than: str | timedelta | datetime = "180 days",
    *,
    apply: bool = False,
    batch_rows: int = 10_000,
    progress: bool | None = None,
    engine: Engine | None = None,
) -> ArchiveResult:
    """Move finished jobs (completed, failed) created more than `older_than` ago into Parquet files under `to` (a dry run unless `apply=True`).

    `older_than` is a duration ("180 days") or a timestamp (jobs created before it;
    naive = UTC). The dry run counts the jobs and their bytes per month, writing
    and changing nothing. Applied, month by month, oldest first: the jobs not yet
    in that month's files are written (zstd), the files are read back and checked
    (row count and a checksum of their ids against the database rows), and only
    then the jobs are deleted in committed batches of `batch_rows`, each waiting
    at most 1s for a lock; a job changed meanwhile (or held by a worker) is kept
    in the database, left out of the files and reported. Killed at any point, a
    run again finishes the work: no job is lost or written twice. One run at a
    time per database (an advisory lock); a progress bar shows on a terminal
    unless `progress=False`.

    Example:
        >>> result = archive_jobs("archive", older_than="2026-10-10", apply=True, progress=False)
        >>> result.months[["month", "written", "deleted", "kept"]]
             month  written  deleted  kept
        0  2026-10      98      98     0
    """
    number(batch_rows, name="batch_rows", minimum=1, integer=True)
    root = Path(to)
    bound, params = _cutoff_bound(older_than)
    engine = engine or get_engine()
    with schema_required("archiving jobs"):
        cutoff_wall, cutoff_utc = run_query(
            f"SELECT {bound} AS wall, {AT_UTC.format(bound)} AS utc", params, name="archive.cutoff", engine=engine
        ).iloc[0]
        cutoff_utc = pd.Timestamp(cutoff_utc).tz_convert("UTC")
        sql = _MONTHS.format(bytes=",\n           sum(pg_column_size(j.*)) AS bytes" if not apply else "")
        months = run_query(sql, {"cutoff": cutoff_wall}, name="archive.months", engine=engine, timeout="10min")
        if not apply:
            months["bytes"] = months["bytes"].astype("int64")
            months["in_archive"] = [_month_ids(root, month).size for month in months["month"]]
            return ArchiveResult("archive", False, root, months.reset_index(drop=True), cutoff=cutoff_utc)
        _writable(root, "to")
        rows, kept, timing = [], [], {"write": 0.0, "delete": 0.0}
        with _exclusive(engine, "archive_jobs"):
            # Months with files but no job left to archive may still hold jobs a killed run wrote and did not delete.
            todo = sorted(set(months["month"]) | set(_months_on_disk(root)))
            total = int(months["jobs"].sum())
            with _bar(total, progress, "archiving") as bar:
                for month in todo:
                    if month not in set(months["month"]) and not _month_in_database(month, engine):
                        continue  # archived earlier, nothing of it left in the database: no need to read its files
                    row, month_kept = _archive_month(root, month, cutoff_wall, batch_rows, engine, timing, bar)
                    rows.append(row)
                    kept.extend(month_kept)
    frame = pd.DataFrame(rows, columns=["month", "written", "in_archive", "deleted", "kept", "files", "file_bytes"])
    frame = frame[(frame[["written", "deleted", "kept"]].sum(axis=1) > 0) | frame["month"].isin(months["month"])].reset_index(drop=True)
    return ArchiveResult(
        "archive", True, root, frame, cutoff=cutoff_utc, kept=tuple(sorted(kept)),
        write_seconds=timing["write"], delete_seconds=timing["delete"],
    )


def _cutoff_bound(older_than) -> tuple[str, dict]:
    """The cutoff as SQL on the server's wall clock; a duration must be positive."""
    if timestamp_bound(older_than, "older_than") is None:
        duration(older_than, name="older_than", positive=True)
    return time_bound(older_than, "older_than")


def _archive_month(root: Path, month: str, cutoff_wall, batch_rows: int, engine: Engine, timing: dict, bar) -> tuple[list, list[int]]:
    """Write, verify, delete and tidy one month; return its row of the result and the ids kept in the database."""
    folder = root / TABLE / f"month={month}"
    _remove_temporary(folder)
    _remove_temporary(root / LINKS / f"month={month}")
    before = _month_ids(root, month)
    started = time.perf_counter()
    written = _write_month(root, month, cutoff_wall, before, engine, bar)
    timing["write"] += time.perf_counter() - started
    on_disk = _month_rows(root, month)
    _verify(month, on_disk, before, written, engine)
    started = time.perf_counter()
    deleted, kept = _delete_month(on_disk, batch_rows, engine)
    timing["delete"] += time.perf_counter() - started
    if kept:
        _drop_from_files(folder, kept)
    files = sorted(folder.glob("part-*.parquet")) if folder.is_dir() else []
    row = [month, int(written.size), int(before.size), deleted, len(kept), len(files), sum(f.stat().st_size for f in files)]
    return row, kept


def _write_month(root: Path, month: str, cutoff_wall, skip: np.ndarray, engine: Engine, bar) -> np.ndarray:
    """Stream the month's finished jobs not in `skip` into part files of PART_ROWS rows at most; return the ids written."""
    start, end = _month_bounds(month)
    written: list[np.ndarray] = []
    skip_array = pa.array(skip, pa.int64())
    lock_millis = int(duration(LOCK_TIMEOUT, name="lock_timeout") / timedelta(milliseconds=1))
    waits = explain_lock_waits("archive.rows", _ROWS, engine=engine)
    with waits, adbc_connection(engine) as conn, conn.cursor() as cursor:
        cursor.execute("SET TRANSACTION READ ONLY")
        cursor.execute("SET LOCAL statement_timeout = '1h'")
        cursor.execute(f"SET LOCAL lock_timeout = {lock_millis}")
        cursor.adbc_statement.set_options(**{"adbc.postgresql.batch_size_hint_bytes": str(READ_BATCH_BYTES)})
        cursor.execute(_BOUNDS, (_BOUNDS_SETTING, json.dumps({"start": start, "end": end, "cutoff": str(cutoff_wall)})))
        cursor.execute(f"/* {APP_NAME}:archive.rows */ {_ROWS}")
        reader = cursor.fetch_record_batch()
        part = None
        for batch in reader:
            batch = _conform(batch)
            if skip.size:
                batch = batch.filter(pc.invert(pc.is_in(batch["id"], value_set=skip_array)))
            while batch.num_rows:
                if part is None:
                    part = _Part(root, month, int(batch["id"][0].as_py()))
                room = PART_ROWS - part.rows
                head, batch = batch.slice(0, room), batch.slice(room)
                part.write(head)
                written.append(head["id"].to_numpy().copy())  # a copy: a view would keep the whole batch alive
                bar.update(head.num_rows)
                if part.rows >= PART_ROWS:
                    part.finish(engine)
                    part = None
        if part is not None:
            part.finish(engine)
    return np.concatenate(written) if written else np.empty(0, np.int64)


class _Part:
    """One Parquet file being written: `.part-<first>.parquet.tmp`, renamed to `part-<first>-<last>.parquet` when done."""

    def __init__(self, root: Path, month: str, first: int):
        self.root, self.month, self.first, self.last, self.rows = root, month, first, first, 0
        self.folder = root / TABLE / f"month={month}"
        self.folder.mkdir(parents=True, exist_ok=True)
        self.temporary = self.folder / f".part-{first}.parquet.tmp"
        self.writer = pq.ParquetWriter(self.temporary, SCHEMA, compression="zstd")

    def write(self, table: pa.RecordBatch) -> None:
        self.writer.write_batch(table, row_group_size=ROW_GROUP_ROWS)
        self.rows += table.num_rows
        self.last = int(table["id"][-1].as_py())

    def finish(self, engine: Engine) -> None:
        """Close and flush the file; remember its jobs' token links first; then make it visible under its final name."""
        self.writer.close()
        links = _token_links(pq.read_table(self.temporary, columns=["id"])["id"], engine)
        name = f"part-{self.first}-{self.last}.parquet"
        if links.num_rows:
            _write_atomically(links, self.root / LINKS / f"month={self.month}", name, LINK_SCHEMA)
        _publish(self.temporary, self.folder / name)


def _conform(batch: pa.RecordBatch) -> pa.RecordBatch:
    """The reader's batch with the archive's exact column types."""
    columns = []
    for column in SCHEMA:
        values = batch.column(batch.schema.get_field_index(column.name))
        if pa.types.is_timestamp(column.type) and values.type.tz is None:
            values = pc.assume_timezone(values, "UTC")
        columns.append(values.cast(column.type))
    return pa.RecordBatch.from_arrays(columns, schema=SCHEMA)


def _token_links(ids: pa.ChunkedArray, engine: Engine) -> pa.Table:
    """The token rows pointing at the jobs `ids`: (token_table, token_id, extraction_job_id), joined on a temporary table of the ids."""
    with adbc_connection(engine) as conn, conn.cursor() as cursor:
        cursor.adbc_ingest("archive_ids", pa.table({"id": ids.cast(pa.int32())}), mode="create", temporary=True)
        cursor.execute("ANALYZE archive_ids")
        cursor.execute(f"/* {APP_NAME}:archive.links */ {_LINKS}")
        links = cursor.fetch_arrow_table()
    return pa.Table.from_arrays([links[c].cast(f.type) for c, f in zip(LINK_SCHEMA.names, LINK_SCHEMA, strict=True)], schema=LINK_SCHEMA)


def _write_atomically(table: pa.Table, folder: Path, name: str, schema: pa.Schema = SCHEMA) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    temporary = folder / f".{name}.tmp"
    pq.write_table(table.cast(schema), temporary, compression="zstd", row_group_size=ROW_GROUP_ROWS)
    _publish(temporary, folder / name)


def _publish(temporary: Path, final: Path) -> None:
    """fsync the file, rename it into place, fsync the folder: after this the file survives a crash whole or not at all."""
    with open(temporary, "rb") as handle:
        os.fsync(handle.fileno())
    os.replace(temporary, final)
    _sync_folder(final.parent)


def _sync_folder(folder: Path) -> None:
    with suppress(OSError):  # some file systems cannot open a folder for fsync
        descriptor = os.open(folder, os.O_RDONLY)
        try:
            os.fsync(descriptor)
        finally:
            os.close(descriptor)


def _remove_temporary(folder: Path) -> None:
    """Files a killed run left half-written: never visible to readers, removed before the month is written again."""
    if folder.is_dir():
        for leftover in folder.glob(".*.tmp"):
            leftover.unlink(missing_ok=True)


def _verify(month: str, on_disk: pa.Table, before: np.ndarray, written: np.ndarray, engine: Engine) -> None:
    """The files read back hold each id once, exactly the ids there before plus those written, and the database holds the written ones."""
    ids = on_disk["id"].to_numpy()
    expected = np.concatenate([before, written])
    if len(np.unique(ids)) != len(ids):
        raise _damaged(month, "an id appears twice in the files")
    if _checksum(ids) != _checksum(expected):
        raise _damaged(month, f"the files hold {len(ids)} row(s) (checksum {_checksum(ids)}), not the {len(expected)} expected (checksum {_checksum(expected)})")
    database = (0, 0, 0)
    for chunk in _chunks(written, 100_000):
        found = run_query(_CHECKSUM, {"ids": chunk.tolist()}, name="archive.verify", engine=engine, timeout="5min").iloc[0]
        database = tuple(int(a) + int(b) for a, b in zip(database, (found["n"], found["total"], found["squares"]), strict=True))
    if database != _checksum(written):
        raise _damaged(month, f"the database rows of the ids written (checksum {database}) differ from the files (checksum {_checksum(written)})")


def _damaged(month: str, problem: str) -> InputError:
    return InputError(
        f"the archive of {month} did not verify: {problem}; nothing of that month was deleted",
        fix=f"look at the files under month={month} (another program writing there?) and run again; the database still holds every job",
    )


def _checksum(ids: np.ndarray) -> tuple[int, int, int]:
    ids = ids.astype(np.int64)
    return int(ids.size), int(ids.sum()), int(((ids * ids) % _CHECK_MODULUS).sum())


def _chunks(values: np.ndarray, size: int) -> Iterator[np.ndarray]:
    for start in range(0, len(values), size):
        yield values[start : start + size]


def _delete_month(on_disk: pa.Table, batch_rows: int, engine: Engine) -> tuple[int, list[int]]:
    """Delete the month's archived jobs still in the database, batch by batch; return how many and the ids kept (changed or held)."""
    if not on_disk.num_rows:
        return 0, []
    present = np.concatenate([
        run_query(_PRESENT, {"ids": chunk.tolist()}, name="archive.present", engine=engine, timeout="5min")["id"].to_numpy(dtype="int64")
        for chunk in _chunks(on_disk["id"].to_numpy(), 100_000)
    ])
    rows = on_disk.filter(pc.is_in(on_disk["id"], value_set=pa.array(present, pa.int64())))
    deleted, kept = 0, []
    for start in range(0, rows.num_rows, batch_rows):
        batch = rows.slice(start, batch_rows)
        wanted = batch["id"].to_pylist()
        params = {
            "ids": wanted,
            "statuses": batch["status"].to_pylist(),
            "updated": [None if v is None else v.isoformat() for v in batch["updated_at"].to_pylist()],
        }
        gone = _delete_batch(params, engine)
        deleted += len(gone)
        kept.extend(sorted(set(wanted) - set(gone)))
    return deleted, kept


def _delete_batch(params: dict, engine: Engine) -> list[int]:
    """One committed DELETE of at most batch_rows jobs, waiting DELETE_LOCK_TIMEOUT at most for a lock, tried DELETE_TRIES times."""
    for attempt in range(DELETE_TRIES):
        try:
            with connection(engine) as conn, conn.begin():
                conn.execute(text("SELECT set_config('statement_timeout', '60s', true), set_config('lock_timeout', :lock, true)"), {"lock": DELETE_LOCK_TIMEOUT})
                return [row[0] for row in conn.execute(text(f"/* {APP_NAME}:archive.delete */ {_DELETE}"), params)]
        except Exception as exc:
            if not is_lock_timeout(exc):
                raise
            if attempt == DELETE_TRIES - 1:
                raise lock_wait_error("archive.delete", _DELETE, engine=engine, lock_timeout=DELETE_LOCK_TIMEOUT, read_only=False) from None
            time.sleep(0.2 * 2**attempt)
    return []


def _drop_from_files(folder: Path, kept: list[int]) -> None:
    """Take the kept jobs out of the part files holding them (rewritten whole under the same name), so no job is both archived and in the database."""
    value_set = pa.array(kept, pa.int64())
    for path in sorted(folder.glob("part-*.parquet")):
        table = pq.read_table(path, schema=SCHEMA)
        keep = pc.invert(pc.is_in(table["id"], value_set=value_set))
        if pc.all(keep).as_py():
            continue
        remaining = table.filter(keep)
        if remaining.num_rows:
            _write_atomically(remaining, folder, path.name)
        else:
            path.unlink()
            _sync_folder(folder)


def _month_in_database(month: str, engine: Engine) -> bool:
    """Whether any job (in any state) created in `month` is in the database (an index probe on created_at)."""
    start, end = _month_bounds(month)
    sql = f"""
        SELECT EXISTS (
            SELECT FROM extraction_jobs j
            WHERE j.created_at >= ({AT_UTC.format("CAST(:start AS timestamptz)")})
              AND j.created_at < ({AT_UTC.format("CAST(:end AS timestamptz)")})
        ) AS found
    """
    return bool(run_query(sql, {"start": start, "end": end}, name="archive.month_left", engine=engine)["found"].iloc[0])


def _month_bounds(month: str) -> tuple[str, str]:
    start = pd.Timestamp(f"{month}-01", tz="UTC")
    return start.isoformat(), (start + pd.offsets.MonthBegin(1)).isoformat()


def _months_on_disk(root: Path) -> list[str]:
    folder = root / TABLE
    if not folder.is_dir():
        return []
    return sorted(p.name.removeprefix("month=") for p in folder.iterdir() if p.is_dir() and p.name.startswith("month=") and _MONTH.match(p.name[6:]))


def _month_rows(root: Path, month: str, columns=("id", "status", "updated_at")) -> pa.Table:
    folder = root / TABLE / f"month={month}"
    if not folder.is_dir():
        return SCHEMA.empty_table().select(list(columns))
    dataset = ds.dataset(folder, format="parquet", schema=SCHEMA, ignore_prefixes=[".", "_"])
    table = dataset.to_table(columns=list(columns))
    return table.sort_by("id") if table.num_rows else table


def _month_ids(root: Path, month: str) -> np.ndarray:
    return _month_rows(root, month, ("id",))["id"].to_numpy()


def _writable(root: Path, name: str) -> None:
    """Make the archive folder, or say why it cannot be written (an InputError naming `name`)."""
    probe = root / f".write-check-{os.getpid()}.tmp"
    try:
        root.mkdir(parents=True, exist_ok=True)
        probe.write_bytes(b"")
        probe.unlink()
    except OSError as exc:
        raise InputError(f"{name} {str(root)!r} cannot be written: {exc.strerror or exc}", fix="give a folder this user may write in", params=name) from None


@contextmanager
def _exclusive(engine: Engine, what: str) -> Iterator[None]:
    """Hold the database's archive advisory lock for the block: one archive or restore run at a time."""
    with connection(engine) as conn:
        got = conn.scalar(text("SELECT pg_try_advisory_lock(hashtext(:key))"), {"key": _ADVISORY})
        conn.commit()
        if not got:
            holder = conn.scalar(
                text("SELECT min(pid) FROM pg_locks WHERE locktype = 'advisory' AND objid = CAST(hashtext(:key) AS oid) AND granted"),
                {"key": _ADVISORY},
            )
            raise LockTimeout(
                f"{what}: another archive or restore run is going on (session {holder})",
                fix="wait for it to finish and run again; a killed run leaves nothing held",
            )
        try:
            yield
        finally:
            conn.execute(text("SELECT pg_advisory_unlock(hashtext(:key))"), {"key": _ADVISORY})
            conn.commit()


@contextmanager
def _bar(total: int, progress: bool | None, desc: str):
    import sys

    from tqdm.auto import tqdm

    show = (total > 0 and (sys.stderr.isatty() or "ipykernel" in sys.modules)) if progress is None else progress  # a terminal or a notebook
    with tqdm(total=total, unit="jobs", desc=desc, disable=not show) as bar:
        yield bar


# ---------------------------------------------------------------------------------------------------------------- restore

_RESTORE = """
    INSERT INTO extraction_jobs (id, project_id, source_url, extraction_type, status, result_data, error_message, created_at, completed_at, updated_at)
    SELECT r.id, r.project_id, r.source_url, r.extraction_type, r.status, r.result_data, r.error_message,
           r.created_at AT TIME ZONE current_setting('TimeZone'),
           r.completed_at AT TIME ZONE current_setting('TimeZone'),
           r.updated_at
    FROM archive_restore r
    WHERE EXISTS (SELECT FROM projects p WHERE p.id = r.project_id)
    ORDER BY r.id
    ON CONFLICT (id) DO NOTHING
"""
_RELINK = """
    UPDATE "{table}" t
    SET extraction_job_id = l.extraction_job_id
    FROM archive_links l
    WHERE l.token_table = '{table}'
      AND t.id = l.token_id
      AND t.extraction_job_id IS NULL
      AND EXISTS (SELECT FROM extraction_jobs j WHERE j.id = l.extraction_job_id)
      AND NOT EXISTS (SELECT FROM "{table}" o WHERE o.extraction_job_id = l.extraction_job_id AND o.name = t.name)
"""


def restore_archive(
    from_: str | Path,
    month: str,
    *,
    apply: bool = False,
    batch_rows: int = 10_000,
    engine: Engine | None = None,
) -> ArchiveResult:
    """Put the archived jobs of `month` ("YYYY-MM") back into the database with their ids (a dry run unless `apply=True`).

    Inserted in committed batches of `batch_rows` (a job already in the database
    is left as it is), token links restored, and only when every job of the
    month is in the database are the month's files removed. Killed at any
    point, a run again finishes it. A job whose project no longer exists cannot
    go back: it stays in the files, which are then kept, and is reported.

    Example:
        >>> _ = archive_jobs("archive", older_than="2026-10-10", apply=True, progress=False)
        >>> print(restore_archive("archive", "2026-10", apply=True))
        restored 98 job(s) of 2026-10 from archive; its files are removed
    """
    if not isinstance(month, str) or not _MONTH.match(month.strip()):
        raise InputError(f"month {month!r} is not of the form YYYY-MM", fix="give e.g. 2025-03", params="month")
    month = month.strip()
    number(batch_rows, name="batch_rows", minimum=1, integer=True)
    root = Path(from_)
    if not root.is_dir():
        raise InputError(f"from_ {str(root)!r} is not a folder", fix="give the folder the archive was written in", params="from_")
    engine = engine or get_engine()
    folder, links_folder = root / TABLE / f"month={month}", root / LINKS / f"month={month}"
    ids = _month_ids(root, month)
    with schema_required("restoring archived jobs"):
        present = _present(ids, engine)
        has_links = links_folder.is_dir() and any(links_folder.glob("part-*.parquet"))
        if not apply:
            months = pd.DataFrame({"month": [month], "in_archive": [int(ids.size)], "present": [present], "restored": [0], "links": [int(has_links)]})
            return ArchiveResult("restore", False, root, months)
        _writable(root, "from_")
        with _exclusive(engine, "restore_archive"):
            _remove_temporary(folder)
            _remove_temporary(links_folder)
            restored = _insert_month(folder, batch_rows, engine)
            relinked = _relink(links_folder, engine)
            missing = int(ids.size) - _present(ids, engine)
            notes = ()
            if missing:
                notes = (f"{missing} job(s) could not go back (their project no longer exists): the month's files are kept",)
            else:
                for path in [*folder.glob("part-*.parquet"), *(links_folder.glob("part-*.parquet") if links_folder.is_dir() else [])]:
                    path.unlink()
                for emptied in (folder, links_folder):
                    if emptied.is_dir():
                        _sync_folder(emptied)
                        with suppress(OSError):
                            emptied.rmdir()
                            _sync_folder(emptied.parent)
    months = pd.DataFrame({"month": [month], "in_archive": [int(ids.size)], "present": [present], "restored": [restored], "links": [relinked]})
    return ArchiveResult("restore", True, root, months, notes=notes)


def _present(ids: np.ndarray, engine: Engine) -> int:
    """How many of `ids` are in extraction_jobs."""
    found = 0
    for chunk in _chunks(ids, 100_000):
        found += int(run_query(_CHECKSUM, {"ids": chunk.tolist()}, name="archive.present", engine=engine, timeout="5min")["n"].iloc[0])
    return found


def _insert_month(folder: Path, batch_rows: int, engine: Engine) -> int:
    """Insert the month's archived jobs, one committed transaction per batch; return how many went in."""
    if not folder.is_dir():
        return 0
    restored = 0
    dataset = ds.dataset(folder, format="parquet", schema=SCHEMA, ignore_prefixes=[".", "_"])
    waits = explain_lock_waits("archive.restore", _RESTORE, engine=engine, read_only=False)
    with waits, adbc_connection(engine) as conn, conn.cursor() as cursor:
        millis = int(duration(LOCK_TIMEOUT, name="lock_timeout") / timedelta(milliseconds=1))
        for batch in dataset.to_batches(batch_size=batch_rows):
            if batch.num_rows:
                restored += _restore_batch(conn, cursor, batch, millis)
    return restored


def _restore_batch(conn, cursor, batch: pa.RecordBatch, lock_millis: int) -> int:
    """Insert one batch of archived jobs (those already in the database left alone) and commit; return how many went in."""
    cursor.execute(f"SET LOCAL lock_timeout = {lock_millis}")
    cursor.execute("SET LOCAL statement_timeout = 300000")
    cursor.adbc_ingest("archive_restore", pa.Table.from_batches([batch]), mode="create_append", temporary=True)
    cursor.execute(f"/* {APP_NAME}:archive.restore */ {_RESTORE}")
    inserted = cursor.rowcount
    cursor.execute("TRUNCATE archive_restore")
    conn.commit()
    return max(inserted, 0)


def _relink(links_folder: Path, engine: Engine) -> int:
    """Point the archived token links back at their restored jobs (tokens unlinked since, whose job is back); return the files read."""
    if not links_folder.is_dir():
        return 0
    files = sorted(links_folder.glob("part-*.parquet"))
    if not files:
        return 0
    links = pa.concat_tables([pq.read_table(f, schema=LINK_SCHEMA) for f in files])
    with adbc_connection(engine) as conn, conn.cursor() as cursor:
        cursor.execute("SET LOCAL statement_timeout = 300000")
        cursor.adbc_ingest("archive_links", links, mode="create", temporary=True)
        for table in TOKEN_TABLES:
            cursor.execute(f"/* {APP_NAME}:archive.relink */ {_RELINK.format(table=table)}")
        conn.commit()
    return len(files)
