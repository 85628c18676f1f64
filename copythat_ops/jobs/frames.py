"""Extraction jobs as typed DataFrames: the bulk read (ADBC, binary COPY straight into Arrow columns).

`jobs_frame` and `iter_jobs_frames` stream rows with the ADBC PostgreSQL
driver: about as fast as COPY itself, and many times faster than
`pandas.read_sql`. On a large table `jobs_frame` reads several id ranges at
once, each over its own connection, all in one exported snapshot (so the
frame is one consistent moment, as a single query would be). They read the
replica when DATABASE_REPLICA_URL is set, and the Parquet archive of old jobs
(`jobs.archive`) with `include_archive=`.

Example:
    >>> from copythat_ops import jobs
    >>> len(jobs.jobs_frame(status="failed"))
    38
"""

from __future__ import annotations

import json
import math
import os
import re
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack, contextmanager
from datetime import datetime, timedelta
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
from sqlalchemy.engine import Engine
from tqdm.auto import tqdm

from ..engine import APP_NAME, LOCK_TIMEOUT, explain_lock_waits, get_engine
from ..validate import duration, number
from .adbc import adbc_connection
from .filters import AT_UTC, categorised, job_filters

BULK_TIMEOUT = "10min"
STREAM_ROWS = 250_000  # automatic streams: one per this many matching rows (planner estimate) ...
MAX_STREAMS = 4  # ... up to this many
EXACT_COUNT_ROWS = 1_000_000  # iter_jobs_frames counts the matching rows exactly below this table size, else estimates
STRING_COLUMNS = ("organization", "project_name", "source_url", "error_message", "result_data")


def jobs_frame(
    status: str | list[str] | None = None,
    extraction_type: str | list[str] | None = None,
    project_id: int | list[int] | None = None,
    since: str | timedelta | datetime | None = None,
    until: str | timedelta | datetime | None = None,
    limit: int | None = None,
    *,
    with_project: bool = False,
    parse_results: bool = False,
    include_archive: str | os.PathLike | None = None,
    streams: int | None = None,
    engine: Engine | None = None,
    timeout: str = BULK_TIMEOUT,
    lock_timeout: str = LOCK_TIMEOUT,
) -> pd.DataFrame:
    """Return extraction jobs, oldest id first, as a typed DataFrame (the bulk path: ADBC, binary COPY to Arrow).

    Filters: `status`, `extraction_type`, `project_id` (one or a list), created
    `since` / `until` (a duration back from now such as "24h", or a timestamp),
    `limit`. Columns: id, project_id (Int64), organization_id (Int64) and
    organization (its slug) once the schema has organizations (revision
    ef6a8e0d2805; left out before it), [project_name with `with_project`],
    extraction_type, status (categories with every known value), source_url,
    created_at, completed_at, updated_at (UTC), duration (timedelta: completed_at
    - created_at), error_message, result_data; with `parse_results` also result
    (the parsed JSON, None when absent or malformed) and result_malformed (True
    when result_data is not valid JSON). Text columns are Arrow-backed strings
    (`str`), read without a copy.

    `streams` COPY streams read id ranges in parallel, each on its own
    connection, in one snapshot exported by the first (`pg_export_snapshot`);
    `None` (default) picks 1 for `limit` or under 500,000 matching rows (the
    planner's estimate), else one per 250,000 up to 4. Where the server cannot
    export a snapshot, one stream reads it all. `include_archive` (a folder
    written by `jobs.archive.archive_jobs`) adds the archived jobs matching the
    same filters, with their project's name and organization from the database;
    a job both archived and in the database (a month being restored) is taken
    once, from the database. A lock held on the tables is waited on for
    `lock_timeout` (default 3s) at most, then a LockWaitError names its holder.

    Example:
        >>> failed = jobs_frame(status="failed", project_id=2, with_project=True)
        >>> failed[["id", "project_name", "extraction_type"]].head(3)
            id      project_name extraction_type
        0   20  Hooli campaign 2         spacing
        1   61  Hooli campaign 2           color
        2  108  Hooli campaign 2           color
        >>> jobs_frame(streams=3)["id"].equals(jobs_frame(streams=1)["id"])
        True
    """
    filters = {"status": status, "extraction_type": extraction_type, "project_id": project_id, "since": since, "until": until}
    sql, params = _jobs_query(**filters, limit=limit, with_project=with_project)
    if streams is not None:
        number(streams, name="streams", minimum=1, maximum=16, integer=True)
    with _reader(engine, timeout, lock_timeout, "jobs_frame", sql, snapshot=True) as (cursor, connect, restart):
        schema = _schema(cursor)
        query = dict(filters, limit=limit, with_project=with_project, **schema)
        wanted = 1 if limit is not None else streams or _automatic_streams(cursor, query)
        ranges = _id_ranges(cursor, query, wanted) if wanted > 1 else []
        snapshot = _export_snapshot(cursor, restart) if len(ranges) > 1 else None
        if snapshot is None:
            table = _copy(cursor, "jobs_frame", query).read_all()
        else:
            table = _read_ranges(cursor, connect, snapshot, query, ranges)
        if include_archive is not None:
            table = _with_archive(cursor, table, include_archive, filters, limit, with_project, **schema)
        tables = [table]
        del table  # _typed lets each column go once converted
        return _typed(tables, parse_results)


def iter_jobs_frames(
    chunk_rows: int = 100_000,
    *,
    progress: bool | None = None,
    parse_results: bool = False,
    engine: Engine | None = None,
    timeout: str = BULK_TIMEOUT,
    lock_timeout: str = LOCK_TIMEOUT,
    **filters,
) -> Iterator[pd.DataFrame]:
    """Yield the DataFrames of `jobs_frame` (same filters and columns) `chunk_rows` rows at a time, in flat memory.

    `filters` are jobs_frame's: status, extraction_type, project_id, since,
    until, limit, with_project. One streamed query: the driver hands over
    batches of about 16 MB and only the rows of one chunk are held at a time,
    so memory stays within a few chunks whatever the number of jobs. A progress
    bar (tqdm.auto: a text bar on a terminal, a widget in a notebook) shows when
    there is more than one chunk, unless `progress=False` (`True` forces it). Its
    total is an exact count on a table under 1,000,000 jobs (a scan that cheap
    costs little) and the planner's estimate above (no second scan), corrected
    to the rows read when the read ends.

    Example:
        >>> sum(len(chunk) for chunk in iter_jobs_frames(200, status="completed", progress=False))
        459
    """
    number(chunk_rows, name="chunk_rows", minimum=1, integer=True)
    sql, params = _jobs_query(**filters)
    with _reader(engine, timeout, lock_timeout, "iter_jobs_frames", sql) as (cursor, _, _):
        query = dict(filters, **_schema(cursor))
        total = _expected_rows(cursor, query)
        reader = _copy(cursor, "iter_jobs_frames", query)
        show = total > chunk_rows if progress is None else progress
        with tqdm(total=total, unit="jobs", desc="extraction_jobs", disable=not show) as bar:
            batches, rows, done = [], 0, 0
            for batch in reader:
                batches.append(batch)
                rows += batch.num_rows
                while rows >= chunk_rows:
                    table = pa.Table.from_batches(batches, schema=reader.schema)
                    batches, rows = table.slice(chunk_rows).to_batches(), rows - chunk_rows
                    done += chunk_rows
                    _advance(bar, chunk_rows, done)
                    chunk = [table.slice(0, chunk_rows)]
                    del table
                    yield _typed(chunk, parse_results)
            if rows:
                done += rows
                _advance(bar, rows, done)
                chunk = [pa.Table.from_batches(batches, schema=reader.schema)]
                del batches
                yield _typed(chunk, parse_results)
            if bar.total != done:  # the estimate was off: end the bar on what was read
                bar.total = done
                bar.refresh()


def _advance(bar: tqdm, rows: int, done: int) -> None:
    if bar.total is not None and done > bar.total:  # an estimate below the truth: grow the bar as it goes
        bar.total = done
    bar.update(rows)


def _jobs_query(
    status=None,
    extraction_type=None,
    project_id=None,
    since=None,
    until=None,
    limit=None,
    with_project=False,
    organization=True,
    updated_at=True,
    id_range=False,
    named=False,
) -> tuple[str, tuple | dict]:
    """jobs_frame's SQL with positional ($n) parameters for the ADBC driver (`named`: `:name` ones and their dict).

    `organization` adds the project's organization (id and slug), `updated_at` the
    column (revision c0db8df4a585 on), `id_range` two more parameters: the first
    and last id to read (id_from, id_to).
    """
    where, params = job_filters(status, extraction_type, project_id, since, until)
    if limit is not None:
        params["limit"] = number(limit, name="limit", minimum=1, integer=True)
    if id_range:
        where = f"{where}\n          AND j.id BETWEEN :id_from AND :id_to" if where else "WHERE j.id BETWEEN :id_from AND :id_to"
        params.update(id_from=id_range[0], id_to=id_range[1])
    sql = f"""
        SELECT j.id,
               j.project_id,{" p.organization_id, o.slug AS organization," if organization else ""}{" p.name AS project_name," if with_project else ""}
               j.extraction_type,
               j.status,
               j.source_url,
               {AT_UTC.format("j.created_at")} AS created_at,
               {AT_UTC.format("j.completed_at")} AS completed_at,{" j.updated_at," if updated_at else ""}
               j.error_message,
               j.result_data
        FROM extraction_jobs j
        {"LEFT JOIN projects p ON p.id = j.project_id" if with_project or organization else ""}
        {"LEFT JOIN organizations o ON o.id = p.organization_id" if organization else ""}
        {where}
        ORDER BY j.id
        {"LIMIT :limit" if limit is not None else ""}
    """
    return (sql, params) if named else _positional(sql, params)


FILTERS_SETTING = "copythat_ops.jobs_frame_filters"


def _copy(cursor, name: str, query: dict):
    """Start jobs_frame's query as a binary COPY on `cursor`; return its stream of record batches (about 16 MB each).

    The driver reads a query with bound parameters another way: slower, and
    holding the whole result at once in libpq. So the values go first into a
    transaction-local setting (bound: `set_config`, JSON), and the query reads
    each back once (an InitPlan: `(SELECT CAST(current_setting(...)::jsonb ->> 'name' AS type))`).
    No value is ever written into the SQL.
    """
    sql, params = _jobs_query(**query, named=True)

    def setting(match: re.Match) -> str:
        value = params[match.group(1)]
        kind = "bigint" if isinstance(value, int) else "double precision" if isinstance(value, float) else "text"
        return f"(SELECT CAST(current_setting('{FILTERS_SETTING}')::jsonb ->> '{match.group(1)}' AS {kind}))"

    if params:
        cursor.execute("SELECT set_config($1, $2, true)", (FILTERS_SETTING, json.dumps(params)))
        cursor.fetchall()
    cursor.execute(f"/* {APP_NAME}:{name} */ {re.sub(r'(?<!:):([a-z_0-9]+)', setting, sql)}")
    return cursor.fetch_record_batch()


def _positional(sql: str, params: dict) -> tuple[str, tuple]:
    """`:name` parameters to ADBC's `$n`, with their values in order."""
    order = []

    def positional(match: re.Match) -> str:
        order.append(match.group(1))
        return f"${len(order)}"

    sql = re.sub(r"(?<!:):([a-z_0-9]+)", positional, sql)
    return sql, tuple(params[name] for name in order)


def _count_query(query: dict) -> tuple[str, tuple]:
    """The matching jobs of a jobs_frame query, without its joins, order or columns: `SELECT j.id FROM ... WHERE ...`."""
    where, params = job_filters(*(query.get(name) for name in ("status", "extraction_type", "project_id", "since", "until")))
    return _positional(f"SELECT j.id FROM extraction_jobs j {where}", params)


def _planned_rows(cursor, query: dict) -> int:
    """The planner's estimate of the jobs matching `query`'s filters (EXPLAIN: nothing is read), capped by its limit."""
    sql, params = _count_query(query)
    cursor.adbc_statement.set_options(**{"adbc.postgresql.use_copy": "false"})  # EXPLAIN cannot run inside COPY
    try:
        cursor.execute(f"EXPLAIN (FORMAT JSON) {sql}", params)
        plan = cursor.fetchone()[0]
    finally:
        cursor.adbc_statement.set_options(**{"adbc.postgresql.use_copy": "true"})
    rows = int((json.loads(plan) if isinstance(plan, str) else plan)[0]["Plan"]["Plan Rows"])
    return min(rows, query["limit"]) if query.get("limit") is not None else rows


def _expected_rows(cursor, query: dict) -> int:
    """The rows iter_jobs_frames will read: counted on a table under EXACT_COUNT_ROWS jobs, else the planner's estimate."""
    cursor.execute("SELECT reltuples::bigint FROM pg_class WHERE oid = 'extraction_jobs'::regclass")
    if cursor.fetchone()[0] >= EXACT_COUNT_ROWS:
        return _planned_rows(cursor, query)
    sql, params = _count_query(query)
    cursor.execute(f"/* {APP_NAME}:iter_jobs_frames */ SELECT count(*) FROM ({sql}) AS matching", params)
    count = int(cursor.fetchone()[0])
    return min(count, query["limit"]) if query.get("limit") is not None else count


def _automatic_streams(cursor, query: dict) -> int:
    """One stream under 2 x STREAM_ROWS matching rows (planner's estimate), else one per STREAM_ROWS up to MAX_STREAMS."""
    rows = _planned_rows(cursor, query)
    return 1 if rows < 2 * STREAM_ROWS else min(MAX_STREAMS, math.ceil(rows / STREAM_ROWS))


def _id_ranges(cursor, query: dict, streams: int) -> list[tuple[int, int]]:
    """`streams` contiguous id ranges covering the matching jobs (from their first to their last id), each of equal width."""
    sql, params = _count_query(query)
    cursor.execute(f"/* {APP_NAME}:jobs_frame */ SELECT min(id), max(id) FROM ({sql}) AS matching", params)
    first, last = cursor.fetchone()
    if first is None:
        return []
    span = last - first + 1
    streams = max(1, min(streams, span))
    edges = [first + span * i // streams for i in range(streams + 1)]
    return [(edges[i], edges[i + 1] - 1) for i in range(streams)]


def _export_snapshot(cursor, restart) -> str | None:
    """The reader's snapshot exported for the other streams, or None where the server refuses (its transaction is then begun again by `restart`)."""
    from adbc_driver_manager import Error as AdbcError

    try:
        cursor.execute("SELECT pg_export_snapshot()")
        return cursor.fetchone()[0]
    except AdbcError:
        restart()
        return None


def _read_ranges(cursor, connect, snapshot: str, query: dict, ranges: list[tuple[int, int]]) -> pa.Table:
    """Read each id range over its own connection (the first over `cursor`'s), all in `snapshot`, concatenated in id order."""

    def read(reader, bounds: tuple[int, int]) -> pa.Table:
        return _copy(reader, "jobs_frame", dict(query, id_range=bounds)).read_all()

    with ExitStack() as stack:
        others = [stack.enter_context(connect(snapshot)) for _ in ranges[1:]]
        with ThreadPoolExecutor(len(others), thread_name_prefix="jobs_frame") as pool:
            futures = [pool.submit(read, other, bounds) for other, bounds in zip(others, ranges[1:])]
            try:
                tables = [read(cursor, ranges[0])]
            finally:
                tables += [future.result() for future in futures]
    return pa.concat_tables(tables)


def _with_archive(cursor, table: pa.Table, directory, filters: dict, limit, with_project: bool, *, organization: bool, updated_at: bool) -> pa.Table:
    """`table` (the database's rows) with the archived jobs matching `filters` added, in id order; an id in both is the database's."""
    from .archive import read_archive

    archived = read_archive(Path(directory), **filters)
    if "month" in archived.column_names:
        archived = archived.drop_columns(["month"])
    archived = archived.filter(pc.invert(pc.is_in(archived["id"], value_set=table["id"].combine_chunks().cast(pa.int64()))))
    if archived.num_rows == 0:
        return table
    if organization or with_project:
        cursor.execute(
            "SELECT p.id AS project_id"
            + (", p.organization_id, o.slug AS organization" if organization else "")
            + (", p.name AS project_name" if with_project else "")
            + " FROM projects p"
            + (" LEFT JOIN organizations o ON o.id = p.organization_id" if organization else "")
            + " ORDER BY p.id"
        )
        projects = cursor.fetch_arrow_table()
        projects = projects.set_column(0, "project_id", projects["project_id"].cast(pa.int64()))
        archived = archived.join(projects, "project_id", join_type="left outer")
    columns = [field.name for field in table.schema]
    archived = archived.select(columns).cast(table.schema)
    merged = pa.concat_tables([archived, table])
    ids = merged["id"]
    if len(ids) > 1 and not pc.all(pc.greater(pc.subtract(ids[1:].combine_chunks(), ids[:-1].combine_chunks()), 0)).as_py():
        merged = merged.sort_by("id")
    return merged.slice(0, limit) if limit is not None else merged


def _schema(cursor) -> dict:
    """Which optional parts of the schema the reader's transaction sees: organizations (revision ef6a8e0d2805 on), extraction_jobs.updated_at."""

    def column(table: str, name: str) -> str:
        return f"EXISTS (SELECT FROM pg_attribute WHERE attrelid = to_regclass('{table}') AND attname = '{name}' AND NOT attisdropped)"

    cursor.execute(f"SELECT to_regclass('organizations') IS NOT NULL AND {column('projects', 'organization_id')}, {column('extraction_jobs', 'updated_at')}")
    organization, updated_at = cursor.fetchone()
    return {"organization": bool(organization), "updated_at": bool(updated_at)}


_SNAPSHOT_ID = re.compile(r"^[0-9A-Fa-f]+(-[0-9A-Fa-f]+)+$")


@contextmanager
def _reader(engine: Engine | None, timeout: str, lock_timeout: str, name: str, sql: str, *, snapshot: bool = False) -> Iterator:
    """An ADBC cursor in a read-only transaction under `timeout`, waiting `lock_timeout` at most for a lock (then naming its holder).

    Yields (cursor, connect, restart): `connect(snapshot_id)` opens another such cursor on
    a connection of its own whose transaction reads the exported snapshot. With
    `snapshot` the first transaction is REPEATABLE READ (so it can export its
    snapshot); `restart()` rolls it back and begins it again.
    """
    millis = int(duration(timeout, name="timeout") / timedelta(milliseconds=1))
    lock_millis = int(duration(lock_timeout, name="lock_timeout") / timedelta(milliseconds=1))
    engine = engine or get_engine(replica=True)

    def begin(cursor, imported: str | None = None) -> None:
        if imported is not None:
            if not _SNAPSHOT_ID.match(imported):
                raise ValueError(f"unexpected snapshot id {imported!r}")
            cursor.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")
            cursor.execute(f"SET TRANSACTION SNAPSHOT '{imported}'")
        elif snapshot:
            cursor.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")
        else:
            cursor.execute("SET TRANSACTION READ ONLY")
        cursor.execute(f"SET LOCAL statement_timeout = {millis}")
        cursor.execute(f"SET LOCAL lock_timeout = {lock_millis}")

    @contextmanager
    def connect(imported: str) -> Iterator:
        with adbc_connection(engine) as conn, conn.cursor() as cursor:
            begin(cursor, imported)
            yield cursor

    with explain_lock_waits(name, sql, engine=engine, lock_timeout=lock_timeout), adbc_connection(engine) as conn, conn.cursor() as cursor:
        begin(cursor)

        def restart() -> None:
            conn.rollback()
            begin(cursor)

        yield cursor, connect, restart


def _typed(tables: list[pa.Table], parse_results: bool) -> pd.DataFrame:
    """Arrow columns to the frame's dtypes: Int64 ids, categories with every known value, UTC times, duration, Arrow-backed strings.

    Takes the table out of `tables` and converts it a column at a time, each
    Arrow column let go once converted, so the peak holds little more than the
    frame: strings keep the driver's data buffers (pandas' `str`, Arrow-backed),
    the fixed-width columns are copied one at a time.
    """
    table = tables.pop()
    strings = pd.StringDtype("pyarrow", na_value=float("nan"))  # pandas' `str`: the Arrow buffers themselves
    rows, columns = table.num_rows, {}
    while table.num_columns:
        name, column = table.column_names[0], table.column(0)
        table = table.remove_column(0)
        kind = column.type
        if name in ("status", "extraction_type"):
            columns[name] = pc.dictionary_encode(column).to_pandas()
        elif pa.types.is_integer(kind):
            columns[name] = pd.array(column.cast(pa.int64()), dtype=pd.Int64Dtype()) if rows else pd.array([], dtype=pd.Int64Dtype())
        elif pa.types.is_string(kind) or pa.types.is_large_string(kind):
            columns[name] = strings.__from_arrow__(column) if rows else pd.array([], dtype=strings)
        elif pa.types.is_timestamp(kind):
            columns[name] = column.cast(pa.timestamp("us", "UTC")).to_pandas().astype("datetime64[us, UTC]")
        else:
            columns[name] = column.to_pandas()
        del column
    frame = categorised(pd.DataFrame({name: pd.Series(values, copy=False).reset_index(drop=True) for name, values in columns.items()}, copy=False))
    frame.insert(frame.columns.get_loc("completed_at") + 1, "duration", frame["completed_at"] - frame["created_at"])
    if parse_results:
        parsed = [_parse(text) for text in frame["result_data"]]
        frame["result"] = pd.Series([value for value, _ in parsed], index=frame.index, dtype=object)
        frame["result_malformed"] = pd.Series([bad for _, bad in parsed], index=frame.index, dtype=bool)
    return frame


def _parse(text: str | None) -> tuple[object, bool]:
    if text is None or text is pd.NA or (isinstance(text, float) and pd.isna(text)):
        return None, False
    try:
        return json.loads(text), False
    except ValueError:
        return None, True
