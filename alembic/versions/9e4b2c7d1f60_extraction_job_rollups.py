"""Extraction job rollups: counts the database keeps exact at every commit, and the indexes the analyses read

Revision ID: 9e4b2c7d1f60
Revises: 7d1e5c0a9b3f
Create Date: 2026-12-01 02:00:00.000000

In a schema of their own, `copythat_rollups` (kept apart from the application's
tables and from the models' comparison; the application role copythat_app gets
nothing there):

- `job_counts`: jobs per (project_id, extraction_type, status, duration_bucket),
  the bucket of date_part('epoch', completed_at - created_at) on a 10 % log
  scale (`duration_bucket(seconds)`, -32768 while completed_at is NULL,
  -32767 for zero; `bucket_seconds(bucket)` is its geometric middle, within
  4.9 % of any duration in it);
- `job_minutes`: jobs created per minute of created_at, completed and failed
  per minute of completed_at (the server's wall clock, like the job columns);
- `failure_reasons`: failed jobs per `failure_reason(error_message)` (the
  message with URLs, UUIDs, hex ids and numbers folded, as `failure_reasons()`
  has always grouped them).

Each is a view summing, per key, a compacted table (`job_counts_compacted`,
`job_minutes_compacted`, `failure_reasons_compacted`: one row per key) and a
deltas table (`job_count_deltas`, `job_minute_deltas`, `failure_reason_deltas`:
the same columns, NO unique constraint). Statement-level AFTER INSERT / UPDATE /
DELETE triggers with transition tables only append their statement's aggregated
change to the deltas: an insert into a table without a unique index never waits
on another transaction, so concurrent writers neither queue on a hot row (the
current minute, a project's pending jobs) nor deadlock over rollup rows, which
counters updated in place did. AFTER TRUNCATE empties them. Exact at every
commit, a rollback leaves no trace, nothing to refresh.

`compact()` folds the committed deltas into the compacted tables (DELETE ...
RETURNING, one upsert per rollup, keys in order; keys reaching zero are
deleted). It only tries its advisory lock: one compaction at a time, none ever
waits, and as only a compaction writes the compacted tables or deletes deltas,
no row it touches is locked by anyone else. The triggers run it after about one
statement in COMPACT_ODDS (or one adding COMPACT_ROWS deltas), under READ
COMMITTED only, so the deltas stay small with no scheduler;
`copythat_ops.jobs.rollups.compact_rollups()` runs it on demand.

The trigger and compaction functions are SECURITY DEFINER (owned by the
migrations' role, with `SET search_path = pg_catalog, pg_temp`), so the
application's writes under row-level security keep them current without any
right on the schema.

Safe on a live database:

1. the schema, its functions and empty tables, and the triggers (one short
   transaction; CREATE TRIGGER waits for in-flight writes of extraction_jobs
   under alembic.ini's lock_timeout);
2. three indexes built CONCURRENTLY (an invalid one a killed build left is
   dropped and built again): `ix_extraction_jobs_unfinished` (stuck jobs),
   `ix_extraction_jobs_created_at` (windowed summaries, index-only) and
   `ix_extraction_jobs_failure_reason` (first/last seen of a reason);
3. the online fill: `fill_state.filled_to` is a watermark; the triggers count
   only jobs with id <= filled_to until `complete`. Each batch of ids is its
   own committed transaction: it locks fill_state FOR UPDATE (waiting for the
   writes in flight, whose triggers hold it FOR SHARE), adds the batch's
   aggregates as a new snapshot sees them, and advances the watermark; a
   writer's trigger waits at most one batch, sized to take about
   BATCH_SECONDS. The batch's counts are appended as deltas too (never an
   update of a row a compaction holds), and compacted in a transaction of
   their own. Killed at any point, upgrade again: it resumes at the watermark
   without counting a job twice.

Until fill_state.complete the rollups are partial (`copythat_ops.jobs.rollup_state()`).
The downgrade drops the triggers, the indexes and the schema with its counts.
"""
from typing import Sequence, Union

from alembic import op

# revision identifiers, used by Alembic.
revision: str = "9e4b2c7d1f60"
down_revision: Union[str, None] = "7d1e5c0a9b3f"
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None

SQUAWK_IGNORE = {
    "prefer-timestamp-tz": "job_minutes.minute is a minute of the server's wall clock, as extraction_jobs' created_at and completed_at are (timestamp)",
    "prefer-bigint-over-smallint": "duration_bucket is a bucket number between -32768 and about 300, never an id",
    "prefer-bigint-over-int": "project_id and fill_state.filled_to hold extraction_jobs' integer ids as the table has them",
    "prefer-text-field": "extraction_type and status are varchar(50) as in extraction_jobs, so a job's values always fit",
}

SCHEMA = "copythat_rollups"
BATCH = 2_000
UNFINISHED = "ix_extraction_jobs_unfinished"
CREATED_AT = "ix_extraction_jobs_created_at"
FAILURE_REASON = "ix_extraction_jobs_failure_reason"
INDEXES = {
    UNFINISHED: """ON "extraction_jobs" ("status", "updated_at", "created_at") WHERE status IN ('pending', 'processing')""",
    CREATED_AT: """ON "extraction_jobs" ("created_at") INCLUDE ("project_id", "extraction_type", "status", "completed_at")""",
    FAILURE_REASON: f"""ON "extraction_jobs" ("{SCHEMA}".failure_reason(error_message), (coalesce(completed_at, created_at))) WHERE status = 'failed'""",
}

# The folding of copythat_ops.jobs.analyses._REASON as it was at this revision (frozen here: a revision never changes).
REASON = r"""
    pg_catalog.left(
        pg_catalog.regexp_replace(
            pg_catalog.regexp_replace(
                pg_catalog.regexp_replace(
                    pg_catalog.regexp_replace(
                        pg_catalog.regexp_replace(
                            coalesce(nullif(pg_catalog.btrim(error_message), ''), '(no error message)'),
                            '[a-z][a-z0-9+.-]*://[^\s''",;)]+', '<url>', 'gi'),
                        '[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}', '<uuid>', 'gi'),
                    '(^|[^0-9a-z])(0x)?(?=[0-9a-f]*[a-f])(?=[0-9a-f]*[0-9])[0-9a-f]{6,}(?![0-9a-z])', '\1<hex>', 'gi'),
                '[0-9]+', '<n>', 'g'),
            '\s+', ' ', 'g'),
        500)
"""

# No SET clause: SQL functions that inline, so they can back an index and cost nothing per call.
FUNCTIONS = [
    f"""
    CREATE OR REPLACE FUNCTION "{SCHEMA}".duration_bucket(seconds double precision) RETURNS smallint
    LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
        SELECT CASE
            WHEN seconds IS NULL THEN -32768
            WHEN seconds <= 0.001 THEN -32767
            ELSE pg_catalog.floor(pg_catalog.ln(seconds) / pg_catalog.ln(1.1::double precision))
        END::smallint
    $$
    """,
    f"""
    CREATE OR REPLACE FUNCTION "{SCHEMA}".bucket_seconds(bucket smallint) RETURNS double precision
    LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
        SELECT CASE
            WHEN bucket = -32768 THEN NULL
            WHEN bucket = -32767 THEN 0
            ELSE 1.1::double precision ^ (bucket + 0.5::double precision)
        END
    $$
    """,
    f"""
    CREATE OR REPLACE FUNCTION "{SCHEMA}".failure_reason(error_message text) RETURNS text
    LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
        SELECT {REASON.strip()}
    $$
    """,
]

# Each rollup is a compacted table (one row per key, written only by compact()) and a deltas table with the same
# columns and NO unique constraint: a writer's trigger only appends its statement's change there, and an insert into a
# table without a unique index never waits on another transaction. The public names are views summing both.
ROLLUPS = {
    # view: (compacted, deltas, key columns, counter columns)
    "job_counts": ("job_counts_compacted", "job_count_deltas", ["project_id", "extraction_type", "status", "duration_bucket"], ["jobs"]),
    "job_minutes": ("job_minutes_compacted", "job_minute_deltas", ["minute"], ["created", "completed", "failed"]),
    "failure_reasons": ("failure_reasons_compacted", "failure_reason_deltas", ["reason"], ["jobs"]),
}
COLUMN_TYPES = {
    "project_id": "integer",
    "extraction_type": "varchar(50)",
    "status": "varchar(50)",
    "duration_bucket": "smallint",
    "minute": "timestamp",
    "reason": "text",
}
# Any fixed key: compactions run one at a time, and never wait for each other (pg_try_advisory_xact_lock).
COMPACT_LOCK = 0x636F_7079_726F_6C6C  # "copyroll"
# The trigger compacts after about one statement in COMPACT_ODDS, or after a statement that added COMPACT_ROWS deltas.
COMPACT_ODDS = 32
COMPACT_ROWS = 1_000


def _columns(view: str, *, unique: bool) -> str:
    _, _, keys, counters = ROLLUPS[view]
    columns = [f"{k} {COLUMN_TYPES[k]}{'' if unique else ' NOT NULL'}" for k in keys] + [f"{c} bigint NOT NULL" for c in counters]
    if unique:
        columns.append(f"PRIMARY KEY ({', '.join(keys)})")
    return ",\n        ".join(columns)


def _view(view: str) -> str:
    """The compacted rows plus the deltas of their key, then the keys only deltas have; keys summing to zero left out.
    Not one GROUP BY over both: with a small deltas table this reads the compacted table once, as if alone (a
    hash of the deltas' sums), where re-aggregating every compacted row cost 3x on 220,000 keys."""
    compacted, deltas, keys, counters = ROLLUPS[view]
    summed = f"""SELECT {", ".join(keys)}, {", ".join(f"sum({c})::bigint AS {c}" for c in counters)}
        FROM "{SCHEMA}".{deltas}
        GROUP BY {", ".join(keys)}"""
    same = " AND ".join(f"x.{k} = c.{k}" for k in keys)
    totals = [f"c.{c} + coalesce(x.{c}, 0)" for c in counters]
    return f"""
    CREATE OR REPLACE VIEW "{SCHEMA}".{view} AS
    SELECT {", ".join(f"c.{k}" for k in keys)}, {", ".join(f"{t} AS {c}" for t, c in zip(totals, counters))}
    FROM "{SCHEMA}".{compacted} c
    LEFT JOIN ({summed}) x ON {same}
    WHERE {" OR ".join(f"{t} <> 0" for t in totals)}
    UNION ALL
    SELECT {", ".join(f"x.{k}" for k in keys)}, {", ".join(f"x.{c}" for c in counters)}
    FROM ({summed}) x
    WHERE ({" OR ".join(f"x.{c} <> 0" for c in counters)})
      AND NOT EXISTS (SELECT FROM "{SCHEMA}".{compacted} c WHERE {same})
    """


TABLES = [
    f"""
    CREATE TABLE IF NOT EXISTS "{SCHEMA}".fill_state (
        "only" boolean PRIMARY KEY DEFAULT true CHECK ("only"),
        filled_to integer,
        complete boolean NOT NULL DEFAULT false
    )
    """,
    *(
        f"""
    CREATE TABLE IF NOT EXISTS "{SCHEMA}".{table} (
        {_columns(view, unique=unique)}
    )
    """
        for view, (compacted, deltas, _, _) in ROLLUPS.items()
        for table, unique in ((compacted, True), (deltas, False))
    ),
    *(_view(view) for view in ROLLUPS),
    f'INSERT INTO "{SCHEMA}".fill_state (filled_to) VALUES (0) ON CONFLICT DO NOTHING',
]


def _compact_one(view: str) -> str:
    """Move every delta of `view` a new snapshot sees into its compacted table (keys in order), then drop the keys
    that reached zero; adds the deltas moved to `total`."""
    compacted, deltas, keys, counters = ROLLUPS[view]
    key_list = ", ".join(keys)
    sums = ", ".join(f"sum({c})" for c in counters)
    updates = ", ".join(f"{c} = t.{c} + excluded.{c}" for c in counters)
    zero = " AND ".join(f"t.{c} = 0" for c in counters)
    arrays = ", ".join(f"array_agg(u.{k})" for k in keys)
    into = ", ".join(f"zero_{k}" for k in keys)
    unnested = ", ".join(f"zero_{k}" for k in keys)
    matched = " AND ".join(f"t.{k} = z.{k}" for k in keys)
    return f"""
        WITH moved AS (
            DELETE FROM "{SCHEMA}".{deltas} RETURNING {", ".join([*keys, *counters])}
        ),
        upserted AS (
            INSERT INTO "{SCHEMA}".{compacted} AS t ({", ".join([*keys, *counters])})
            SELECT {key_list}, {sums}
            FROM moved
            GROUP BY {key_list}
            ORDER BY {key_list}
            ON CONFLICT ({key_list}) DO UPDATE SET {updates}
            RETURNING {", ".join(f"t.{k}" for k in keys)}, ({zero}) AS zero
        )
        SELECT (SELECT count(*) FROM moved), {arrays}
        INTO counted, {into}
        FROM upserted u
        WHERE u.zero;
        total := total + coalesce(counted, 0);
        IF zero_{keys[0]} IS NOT NULL THEN
            DELETE FROM "{SCHEMA}".{compacted} t
            USING unnest({unnested}) AS z({key_list})
            WHERE {matched} AND {zero};
        END IF;
    """


def _compact_function() -> str:
    # one array per key column name (job_counts' and the others' names do not collide)
    seen: dict[str, str] = {}
    for view in ROLLUPS:
        for k in ROLLUPS[view][2]:
            seen[k] = COLUMN_TYPES[k]
    declared = "".join(f"        zero_{k} {t}[];\n" for k, t in seen.items())
    return f"""
    CREATE OR REPLACE FUNCTION "{SCHEMA}".compact() RETURNS bigint
    LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
    DECLARE
        total bigint := 0;
        counted bigint;
{declared}    BEGIN
        -- One compaction at a time, and none ever waits: only a compaction writes the compacted tables or deletes
        -- deltas, so with this lock no row it touches is locked by another transaction.
        IF NOT pg_try_advisory_xact_lock({COMPACT_LOCK}) THEN
            RETURN NULL;
        END IF;
        {"".join(_compact_one(view) for view in ROLLUPS)}
        RETURN total;
    END
    $$
    """


def _apply(rows: str) -> str:
    """The three inserts appending `rows`' change (a relation of id, project_id, extraction_type, status,
    error_message, created_at, completed_at and sign: +1 counted in, -1 counted out) to the deltas, each aggregated
    once; adds the delta rows written to `added`."""
    return f"""
        WITH d AS ({rows})
        INSERT INTO "{SCHEMA}".job_count_deltas (project_id, extraction_type, status, duration_bucket, jobs)
        SELECT project_id, extraction_type, status,
               "{SCHEMA}".duration_bucket(pg_catalog.date_part('epoch', completed_at - created_at)), sum(sign)
        FROM d
        GROUP BY 1, 2, 3, 4
        HAVING sum(sign) <> 0;
        GET DIAGNOSTICS written = ROW_COUNT;
        added := added + written;

        WITH d AS ({rows}),
        m AS (
            SELECT pg_catalog.date_trunc('minute', created_at) AS minute, sign AS created, 0 AS completed, 0 AS failed
            FROM d
            UNION ALL
            SELECT pg_catalog.date_trunc('minute', completed_at), 0,
                   CASE WHEN status = 'completed' THEN sign ELSE 0 END,
                   CASE WHEN status = 'failed' THEN sign ELSE 0 END
            FROM d
            WHERE completed_at IS NOT NULL AND status IN ('completed', 'failed')
        )
        INSERT INTO "{SCHEMA}".job_minute_deltas (minute, created, completed, failed)
        SELECT minute, sum(created), sum(completed), sum(failed)
        FROM m
        GROUP BY minute
        HAVING sum(created) <> 0 OR sum(completed) <> 0 OR sum(failed) <> 0;
        GET DIAGNOSTICS written = ROW_COUNT;
        added := added + written;

        WITH d AS ({rows})
        INSERT INTO "{SCHEMA}".failure_reason_deltas (reason, jobs)
        SELECT "{SCHEMA}".failure_reason(error_message), sum(sign)
        FROM d
        WHERE status = 'failed'
        GROUP BY 1
        HAVING sum(sign) <> 0;
        GET DIAGNOSTICS written = ROW_COUNT;
        added := added + written;
    """


COLUMNS = "id, project_id, extraction_type, status, error_message, created_at, completed_at"
COUNTED = "(done OR {alias}.id <= filled)"


def _trigger_function(name: str, old: bool, new: bool) -> str:
    parts = []
    if new:
        parts.append(f"SELECT {COLUMNS}, 1 AS sign FROM new_rows n WHERE {COUNTED.format(alias='n')}")
    if old:
        parts.append(f"SELECT {COLUMNS}, -1 AS sign FROM old_rows o WHERE {COUNTED.format(alias='o')}")
    rows = " UNION ALL ".join(parts)
    return f"""
    CREATE OR REPLACE FUNCTION "{SCHEMA}".{name}() RETURNS trigger
    LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
    DECLARE
        done boolean;
        filled integer;
        added bigint := 0;
        written bigint;
    BEGIN
        -- complete never turns false again: once it reads true, no lock is needed.
        SELECT complete INTO done FROM "{SCHEMA}".fill_state;
        IF NOT coalesce(done, false) THEN
            -- FOR SHARE: the fill's next batch waits for this write to commit (and this trigger for a batch in flight).
            SELECT filled_to, complete INTO filled, done FROM "{SCHEMA}".fill_state FOR SHARE;
            done := coalesce(done, false);
            filled := coalesce(filled, 0);
        END IF;
        {_apply(rows)}
        -- Now and then (or after many deltas) fold the deltas into the compacted tables, so they stay small with no
        -- scheduler. Never waits (compact() only tries its lock), and only under READ COMMITTED: a compaction in a
        -- REPEATABLE READ or SERIALIZABLE transaction could meet deltas another compaction moved since its snapshot
        -- and fail the application's transaction with a serialization error.
        IF (added >= {COMPACT_ROWS} OR pg_catalog.random() < 1.0 / {COMPACT_ODDS})
           AND pg_catalog.current_setting('transaction_isolation') = 'read committed' THEN
            PERFORM "{SCHEMA}".compact();
        END IF;
        RETURN NULL;
    END
    $$
    """


TRUNCATE_FUNCTION = f"""
    CREATE OR REPLACE FUNCTION "{SCHEMA}".extraction_jobs_truncated() RETURNS trigger
    LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
    BEGIN
        -- A compaction in flight would move deltas this deletes: wait for it (TRUNCATE already holds the table).
        PERFORM pg_advisory_xact_lock({COMPACT_LOCK});
        {"".join(f'DELETE FROM "{SCHEMA}".{table};{chr(10)}        ' for compacted, deltas, _, _ in ROLLUPS.values() for table in (compacted, deltas))}
        UPDATE "{SCHEMA}".fill_state SET complete = true;  -- nothing is left to fill
        RETURN NULL;
    END
    $$
"""

TRIGGERS = {
    "extraction_jobs_rollups_insert": ("AFTER INSERT", "REFERENCING NEW TABLE AS new_rows", "extraction_jobs_inserted", False, True),
    "extraction_jobs_rollups_update": ("AFTER UPDATE", "REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows", "extraction_jobs_updated", True, True),
    "extraction_jobs_rollups_delete": ("AFTER DELETE", "REFERENCING OLD TABLE AS old_rows", "extraction_jobs_deleted", True, False),
}
TRUNCATE_TRIGGER = "extraction_jobs_rollups_truncate"

# One committed transaction per batch: a DO block may COMMIT when it runs outside a transaction (autocommit).
# The batch is sized to take about BATCH_SECONDS (writers wait for at most one batch): it starts at BATCH ids and
# follows the time the last one took, at most doubling, between MIN_BATCH and MAX_BATCH ids.
BATCH_SECONDS = 0.05
MIN_BATCH, MAX_BATCH = 100, 100_000
PAUSE_SECONDS = 0.01
FILL = f"""
DO $$
DECLARE
    low integer;
    high integer;
    top integer;
    done boolean;
    size integer := {BATCH};
    started timestamptz;
    took double precision;
    added bigint := 0;
    written bigint;
BEGIN
    LOOP
        -- Its own statement: waits for the writes in flight; what follows sees them committed (a new snapshot).
        SELECT filled_to, complete INTO low, done FROM "{SCHEMA}".fill_state FOR UPDATE;
        EXIT WHEN done;
        -- Writers wait for this transaction: its commit need not wait for the disk. A crash loses the newest batches
        -- whole (counts and watermark together), and a writer's own commit flushes the batches it waited for.
        PERFORM set_config('synchronous_commit', 'off', true);
        started := clock_timestamp();
        low := coalesce(low, 0);
        SELECT coalesce(max(id), 0) INTO top FROM extraction_jobs;
        IF top <= low THEN
            UPDATE "{SCHEMA}".fill_state SET complete = true;
            COMMIT;
            PERFORM "{SCHEMA}".compact();
            COMMIT;
            EXIT;
        END IF;
        high := least(low::bigint + size, top);
        {_apply(f"SELECT {COLUMNS}, 1 AS sign FROM extraction_jobs WHERE id > low AND id <= high")}
        UPDATE "{SCHEMA}".fill_state SET filled_to = high, complete = (high >= top);
        took := extract(epoch FROM clock_timestamp() - started);
        COMMIT;
        -- The batch's deltas folded in its own transaction, holding no lock a writer waits for.
        PERFORM "{SCHEMA}".compact();
        COMMIT;
        -- A moment for the writers that queued on this batch to take their FOR SHARE: a row lock is granted to whoever
        -- finds the row free, so without it the next batch's FOR UPDATE would often get in first, again and again.
        PERFORM pg_sleep({PAUSE_SECONDS});
        size := greatest({MIN_BATCH}, least({MAX_BATCH}, 2 * size, (size * {BATCH_SECONDS} / greatest(took, 0.001))::integer));
    END LOOP;
END
$$
"""


def _drop_invalid(index: str) -> str:
    return f"""
    DO $$
    BEGIN
        IF EXISTS (SELECT FROM pg_index WHERE indexrelid = to_regclass('{index}') AND NOT indisvalid) THEN
            EXECUTE 'DROP INDEX "{index}"';
        END IF;
    END
    $$
    """


def upgrade() -> None:
    op.execute(f'CREATE SCHEMA IF NOT EXISTS "{SCHEMA}"')
    op.execute(f'REVOKE ALL ON SCHEMA "{SCHEMA}" FROM PUBLIC')
    for statement in FUNCTIONS + TABLES:
        op.execute(statement)
    op.execute(_compact_function())
    for name, (_, _, function, old, new) in TRIGGERS.items():
        op.execute(_trigger_function(function, old, new))
    op.execute(TRUNCATE_FUNCTION)
    for name, (when, referencing, function, _, _) in TRIGGERS.items():
        op.execute(
            f'CREATE OR REPLACE TRIGGER "{name}" {when} ON "extraction_jobs" {referencing} '
            f'FOR EACH STATEMENT EXECUTE FUNCTION "{SCHEMA}".{function}()'
        )
    op.execute(
        f'CREATE OR REPLACE TRIGGER "{TRUNCATE_TRIGGER}" AFTER TRUNCATE ON "extraction_jobs" '
        f'FOR EACH STATEMENT EXECUTE FUNCTION "{SCHEMA}".extraction_jobs_truncated()'
    )
    with op.get_context().autocommit_block():
        for index, definition in INDEXES.items():
            op.execute(_drop_invalid(index))
            op.execute(f'CREATE INDEX CONCURRENTLY IF NOT EXISTS "{index}" {definition}')
        op.execute(FILL)


def downgrade() -> None:
    for name in [*TRIGGERS, TRUNCATE_TRIGGER]:
        op.execute(f'DROP TRIGGER IF EXISTS "{name}" ON "extraction_jobs"')
    with op.get_context().autocommit_block():
        for index in INDEXES:
            op.execute(f'DROP INDEX CONCURRENTLY IF EXISTS "{index}"')
    for view, (compacted, deltas, _, _) in ROLLUPS.items():
        op.execute(f'DROP VIEW IF EXISTS "{SCHEMA}".{view}')
        op.execute(f'DROP TABLE IF EXISTS "{SCHEMA}".{deltas}')
        op.execute(f'DROP TABLE IF EXISTS "{SCHEMA}".{compacted}')
    op.execute(f'DROP TABLE IF EXISTS "{SCHEMA}".fill_state')
    for function in [*(f for _, _, f, _, _ in TRIGGERS.values()), "extraction_jobs_truncated", "compact"]:
        op.execute(f'DROP FUNCTION IF EXISTS "{SCHEMA}".{function}()')
    op.execute(f'DROP FUNCTION IF EXISTS "{SCHEMA}".failure_reason(text)')
    op.execute(f'DROP FUNCTION IF EXISTS "{SCHEMA}".bucket_seconds(smallint)')
    op.execute(f'DROP FUNCTION IF EXISTS "{SCHEMA}".duration_bucket(double precision)')
    op.execute(f'DROP SCHEMA IF EXISTS "{SCHEMA}"')
