"""The job rollups the database keeps (revision 9e4b2c7d1f60): how far their fill got, a full check against the jobs, compaction.

`copythat_rollups.job_counts`, `job_minutes` and `failure_reasons` are views:
a compacted table (one row per key) plus the deltas the statement-level
triggers on extraction_jobs append (no unique key, so a writer never waits on
another), summed per key: exact at every commit. `copythat_rollups.compact()`
folds the deltas into the compacted tables; the triggers run it now and then,
`compact_rollups()` on demand. Until the revision's online fill is complete
they count only the jobs with id <= fill_state.filled_to (`rollup_state()`).
`rollup_drift()` recounts every rollup from extraction_jobs and returns the
rows that differ: empty when exact.

Example:
    >>> rollup_state()["complete"]
    True
    >>> rollup_drift().empty
    True
"""

from __future__ import annotations

import time

import pandas as pd
from sqlalchemy.engine import Engine

from ..engine import run_query
from ..errors import schema_required

SCHEMA = "copythat_rollups"
DRIFT_COLUMNS = ["rollup", "key", "column", "rollup_value", "full_count", "difference"]

_STATE = f"""
    SELECT s.complete,
           coalesce(s.filled_to, 0) AS filled_to,
           coalesce((SELECT max(id) FROM extraction_jobs), 0) AS max_job_id,
           (SELECT count(*) FROM "{SCHEMA}".job_count_deltas)
           + (SELECT count(*) FROM "{SCHEMA}".job_minute_deltas)
           + (SELECT count(*) FROM "{SCHEMA}".failure_reason_deltas) AS delta_rows
    FROM "{SCHEMA}".fill_state s
    ORDER BY s."only"
"""

# One statement, so the rollups and the jobs are read in one snapshot (a commit between them cannot look like drift).
_DRIFT = f"""
    WITH state AS (
        SELECT complete, coalesce(filled_to, 0) AS filled_to FROM "{SCHEMA}".fill_state
    ),
    counted AS (
        SELECT j.id, j.project_id, j.extraction_type, j.status, j.error_message, j.created_at, j.completed_at
        FROM extraction_jobs j
        CROSS JOIN state s
        WHERE s.complete OR j.id <= s.filled_to
    ),
    counts AS (
        SELECT project_id, extraction_type, status,
               "{SCHEMA}".duration_bucket(date_part('epoch', completed_at - created_at)) AS duration_bucket,
               count(*) AS jobs
        FROM counted
        GROUP BY 1, 2, 3, 4
    ),
    minutes AS (
        SELECT minute, sum(created) AS created, sum(completed) AS completed, sum(failed) AS failed
        FROM (
            SELECT date_trunc('minute', created_at) AS minute, 1 AS created, 0 AS completed, 0 AS failed
            FROM counted
            UNION ALL
            SELECT date_trunc('minute', completed_at), 0,
                   CASE WHEN status = 'completed' THEN 1 ELSE 0 END,
                   CASE WHEN status = 'failed' THEN 1 ELSE 0 END
            FROM counted
            WHERE completed_at IS NOT NULL AND status IN ('completed', 'failed')
        ) m
        GROUP BY minute
    ),
    reasons AS (
        SELECT "{SCHEMA}".failure_reason(error_message) AS reason, count(*) AS jobs
        FROM counted
        WHERE status = 'failed'
        GROUP BY 1
    ),
    drift AS (
        SELECT 'job_counts' AS rollup,
               format('project_id=%s extraction_type=%s status=%s duration_bucket=%s',
                      project_id, extraction_type, status, duration_bucket) AS key,
               'jobs' AS "column",
               coalesce(r.jobs, 0) AS rollup_value,
               coalesce(c.jobs, 0) AS full_count
        FROM "{SCHEMA}".job_counts r
        FULL JOIN counts c USING (project_id, extraction_type, status, duration_bucket)
        WHERE coalesce(r.jobs, 0) <> coalesce(c.jobs, 0)
        UNION ALL
        SELECT 'job_minutes', format('minute=%s', minute), v."column", v.rollup_value, v.full_count
        FROM "{SCHEMA}".job_minutes r
        FULL JOIN minutes c USING (minute)
        CROSS JOIN LATERAL (
            VALUES ('created', coalesce(r.created, 0), coalesce(c.created, 0)),
                   ('completed', coalesce(r.completed, 0), coalesce(c.completed, 0)),
                   ('failed', coalesce(r.failed, 0), coalesce(c.failed, 0))
        ) AS v("column", rollup_value, full_count)
        WHERE v.rollup_value <> v.full_count
        UNION ALL
        SELECT 'failure_reasons', format('reason=%s', reason), 'jobs', coalesce(r.jobs, 0), coalesce(c.jobs, 0)
        FROM "{SCHEMA}".failure_reasons r
        FULL JOIN reasons c USING (reason)
        WHERE coalesce(r.jobs, 0) <> coalesce(c.jobs, 0)
    )
    SELECT rollup, key, "column", rollup_value, full_count, rollup_value - full_count AS difference
    FROM drift
    ORDER BY rollup, key, "column"
"""


def rollup_state(*, engine: Engine | None = None) -> dict:
    """Return how far the rollups' fill got: complete, filled_to, max_job_id, share_filled (0 to 1) and delta_rows.

    Until `complete`, the rollups count only the jobs with id <= filled_to (the
    revision's fill adds one batch of ids per committed transaction; upgrade again
    to resume one that stopped), and the analyses read the table instead.
    `delta_rows` is the number of rows the triggers appended that no compaction
    has folded in yet (the views read them too; `compact_rollups()` folds them).

    Example:
        >>> state = rollup_state()
        >>> state["complete"], state["share_filled"], state["max_job_id"]
        (True, 1.0, 500)
        >>> state["delta_rows"] >= 0
        True
    """
    with schema_required("the job rollups"):
        row = run_query(_STATE, name="rollup_state", engine=engine).iloc[0]
    complete, filled_to, top = bool(row["complete"]), int(row["filled_to"]), int(row["max_job_id"])
    share = 1.0 if complete or top <= 0 else min(filled_to / top, 1.0)
    return {"complete": complete, "filled_to": filled_to, "max_job_id": top, "share_filled": share, "delta_rows": int(row["delta_rows"])}


def compact_rollups(*, wait: float = 10.0, engine: Engine | None = None) -> dict:
    """Fold every committed delta into the compacted rollup tables now; return compacted (bool) and delta_rows_moved.

    Runs `copythat_rollups.compact()`, which never waits: when another
    compaction holds its lock (a writer's trigger runs one now and then), it
    tries again every 50 ms for `wait` seconds, then returns compacted=False
    (nothing is wrong: that compaction folds the deltas). The answers do not
    change, only how many rows the views add up; deltas of transactions not
    yet committed stay for a later compaction.

    Example:
        >>> compact_rollups()["compacted"]
        True
        >>> rollup_state()["delta_rows"]
        0
    """
    deadline = time.monotonic() + wait
    with schema_required("the job rollups"):
        while True:
            moved = run_query(f'SELECT "{SCHEMA}".compact() AS moved', name="compact_rollups", engine=engine, read_only=False, timeout="10min")["moved"].iloc[0]
            if not pd.isna(moved) or time.monotonic() >= deadline:
                break
            time.sleep(0.05)
    return {"compacted": not pd.isna(moved), "delta_rows_moved": 0 if pd.isna(moved) else int(moved)}


def rollup_drift(*, timeout: str = "10min", engine: Engine | None = None) -> pd.DataFrame:
    """Return every rollup row that differs from a full count over extraction_jobs (empty when the rollups are exact).

    Columns: rollup (job_counts, job_minutes or failure_reasons), key (the row's
    key as text), column, rollup_value, full_count, difference (rollup_value -
    full_count). While the fill is not complete, the jobs counted are those with
    id <= filled_to, as the rollups count them. Reads the whole table in one
    statement (one snapshot): seconds per million jobs, so `timeout` is long.

    Example:
        >>> rollup_drift().columns.tolist()
        ['rollup', 'key', 'column', 'rollup_value', 'full_count', 'difference']
        >>> len(rollup_drift())
        0
    """
    with schema_required("the job rollups"):
        frame = run_query(_DRIFT, name="rollup_drift", engine=engine, timeout=timeout)
    frame = frame.reindex(columns=DRIFT_COLUMNS)
    return frame.astype({"rollup": "string", "key": "string", "column": "string", "rollup_value": "Int64", "full_count": "Int64", "difference": "Int64"})
