"""Token rows from completed extraction jobs' `result_data`, in committed batches, re-runnable.

A completed job's result is JSON text such as
`{"colors": [{"name": "primary", "value": "#1A2B3C"}], "spacing": [{"name": "space-1", "value": 4}],
"typography": [{"name": "base", "font": "Inter", "size": 16, "weight": 400}]}`. Each item
becomes a row of color_tokens, spacing_tokens or typography_tokens that records its job.

What an item may say (anything else in it is ignored):
- a color: `name`, `value` (or `hex`) as '#rgb', '#rrggbb' or '#rrggbbaa' in any case
  (stored as lowercase '#rrggbb'; the alpha pair becomes the opacity), `opacity` (or `alpha`) 0-1;
- a spacing: `name`, `value` as a number (px) or a string '8px' / '0.5rem', `unit` 'px' or 'rem';
- a typography: `name`, `font` (or `fontFamily`, `font_family`), `size` (or `fontSize`,
  `font_size`) like a spacing value and > 0, `unit`, `weight` (or `fontWeight`, `font_weight`)
  a whole number 1-1000 (default 400), `lineHeight` (or `line_height`) a multiplier > 0 (default 1.5),
  `letterSpacing` (or `letter_spacing`) like a spacing value, negative allowed (default 0).

A job is taken whole or not at all: when its JSON does not parse, is not an object, has none
of the three lists, or any one item does not fit (a missing name, a hex that is not a color, a
negative or non-numeric size, an unknown unit, a name given twice in one list, ...), none of its
tokens are written and the job is listed in `rejected` with the first problem found and how many
there are. Fix the result (or the worker) and run again: jobs already done are skipped
(UNIQUE (extraction_job_id, name), ON CONFLICT DO NOTHING), so a re-run writes only what is missing.

Each batch is one statement over the next `batch_size` completed jobs by id (keyset), committed
on its own, under a statement timeout and `lock_timeout`: row locks on one batch of new rows, never
a table lock. The JSON is parsed in the server, set-based (jsonb_array_elements), with a pg_temp
function that turns a parse failure into NULL (PostgreSQL 15 has no pg_input_is_valid).

Revision 458d9b0f4a48 runs the same statement in a DO block that commits after each batch.

Example:
    >>> from copythat_ops.tokens import backfill_tokens
    >>> done = backfill_tokens()
    >>> sorted(done)
    ['batches', 'colors', 'jobs', 'rejected', 'spacing', 'tokens', 'typography']
    >>> done["rejected"].columns.tolist()
    ['job_id', 'project_id', 'reason', 'problems']
    >>> backfill_tokens()["tokens"]          # a second run finds everything done
    0
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from ..engine import LOCK_TIMEOUT, connection, explain_lock_waits
from ..errors import InputError
from ..validate import duration

if TYPE_CHECKING:
    import pandas as pd
    from sqlalchemy.engine import Connection, Engine

BATCH_SIZE = 10_000
STATEMENT_TIMEOUT = "5min"  # one batch
REJECTED_COLUMNS = ["job_id", "project_id", "reason", "problems"]

# result_data as jsonb, or NULL when it does not parse (an exception block: PostgreSQL 15 lacks pg_input_is_valid).
PARSE_FUNCTION = """
CREATE OR REPLACE FUNCTION pg_temp.copythat_jsonb(doc text) RETURNS jsonb
LANGUAGE plpgsql IMMUTABLE AS $fn$
BEGIN
    RETURN doc::jsonb;
EXCEPTION WHEN others THEN
    RETURN NULL;
END
$fn$
"""

# A number, or a string such as '16', '16px', '1.5rem', '-0.5px': the number and the unit (NULL when not given).
_DIMENSION = r"^\s*(-?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+))\s*([a-z]*)\s*$"


def _number(expr: str) -> str:
    """SQL: the number in jsonb `expr` (a JSON number or a numeric string, a unit after it allowed), else NULL."""
    return (
        f"CASE jsonb_typeof({expr}) WHEN 'number' THEN ({expr})::numeric "
        f"WHEN 'string' THEN (substring(lower({expr} #>> ARRAY[]::text[]) from '{_DIMENSION}'))::numeric END"
    )


def _unit(expr: str, unit_expr: str) -> str:
    """SQL: the unit written after the number in `expr` ('16px'), else the item's own unit field, else 'px'."""
    return (
        f"coalesce(nullif(CASE WHEN jsonb_typeof({expr}) = 'string' "
        f"THEN (regexp_match(lower({expr} #>> ARRAY[]::text[]), '{_DIMENSION}'))[2] END, ''), lower(btrim({unit_expr})), 'px')"
    )


def _is_number(expr: str) -> str:
    return f"(jsonb_typeof({expr}) = 'number' OR (jsonb_typeof({expr}) = 'string' AND lower({expr} #>> ARRAY[]::text[]) ~ '{_DIMENSION}'))"


def _first(item: str, *keys: str) -> str:
    """SQL: the first of the item's fields `keys` that is present, as jsonb."""
    return "coalesce(" + ", ".join(f"{item} -> '{key}'" for key in keys) + ")"


_HEX = "lower(btrim(coalesce(c.item ->> 'value', c.item ->> 'hex')))"
_SIZE = _first("t.item", "size", "fontSize", "font_size")
_SPACE = "s.item -> 'value'"
_LETTER = _first("t.item", "letterSpacing", "letter_spacing")
_WEIGHT = _first("t.item", "weight", "fontWeight", "font_weight")
_LINE = _first("t.item", "lineHeight", "line_height")
_ALPHA = _first("c.item", "opacity", "alpha")
_FONT = "btrim(coalesce(t.item ->> 'font', t.item ->> 'fontFamily', t.item ->> 'font_family'))"
_LIMIT = 9999999  # numeric(10, 3)


def _where(kind: str, n: str) -> str:
    return f"'{kind}[' || {n} || ']'"


# One batch: the next completed jobs after __AFTER__ (keyset, at most __BATCH__), their items checked and written.
# __AFTER__/__BATCH__ are bind parameters for the library, plpgsql variables in the revision's DO block; __INTO__ is
# empty for the library and `INTO ...` there. No '%' anywhere: Alembic's offline (--sql) output would double it.
BATCH = f"""
WITH jobs AS (
    SELECT j.id AS job_id,
           j.project_id,
           j.result_data IS NULL AS missing,
           pg_temp.copythat_jsonb(j.result_data) AS doc
    FROM extraction_jobs AS j
    WHERE j.status = 'completed'
      AND j.id > __AFTER__
    ORDER BY j.id
    LIMIT __BATCH__
),
lists AS (
    SELECT jobs.job_id,
           jobs.project_id,
           jobs.doc,
           CASE
               WHEN jobs.missing THEN 'completed without result_data'
               WHEN jobs.doc IS NULL THEN 'result_data is not valid JSON'
               WHEN jsonb_typeof(jobs.doc) <> 'object' THEN 'result_data is a JSON ' || jsonb_typeof(jobs.doc) || ', not an object'
               WHEN NOT jobs.doc ?| ARRAY['colors', 'spacing', 'typography'] THEN 'result_data has no colors, spacing or typography list'
               WHEN jsonb_typeof(jobs.doc -> 'colors') <> 'array' THEN 'colors is not a list'
               WHEN jsonb_typeof(jobs.doc -> 'spacing') <> 'array' THEN 'spacing is not a list'
               WHEN jsonb_typeof(jobs.doc -> 'typography') <> 'array' THEN 'typography is not a list'
           END AS problem
    FROM jobs
),
fine AS (
    SELECT job_id, project_id, doc FROM lists WHERE problem IS NULL
),
colors AS (
    SELECT c.job_id,
           c.project_id,
           c.n,
           c.name,
           CASE
               WHEN c.hex ~ '^#[0-9a-f]{{6}}([0-9a-f]{{2}})?$' THEN left(c.hex, 7)
               WHEN c.hex ~ '^#[0-9a-f]{{3}}$' THEN '#' || repeat(substr(c.hex, 2, 1), 2) || repeat(substr(c.hex, 3, 1), 2) || repeat(substr(c.hex, 4, 1), 2)
           END AS hex,
           CASE
               WHEN c.hex ~ '^#[0-9a-f]{{8}}$' THEN round(('x' || substr(c.hex, 8, 2))::bit(8)::integer / 255.0, 3)
               WHEN jsonb_typeof({_ALPHA}) = 'number' THEN ({_ALPHA})::numeric
               ELSE 1
           END AS opacity,
           CASE
               WHEN jsonb_typeof(c.item) <> 'object' THEN {_where('colors', 'c.n')} || ' is not an object'
               WHEN c.name IS NULL OR length(c.name) NOT BETWEEN 1 AND 200 THEN {_where('colors', 'c.n')} || ' has no name (1-200 characters)'
               WHEN c.hex IS NULL THEN 'color ' || quote_literal(c.name) || ' has no value'
               WHEN NOT c.hex ~ '^#([0-9a-f]{{3}}|[0-9a-f]{{6}}|[0-9a-f]{{8}})$' THEN 'color ' || quote_literal(c.name) || ': ' || quote_literal(c.hex) || ' is not a hex color (#rgb, #rrggbb or #rrggbbaa)'
               WHEN {_ALPHA} IS NOT NULL AND (jsonb_typeof({_ALPHA}) <> 'number' OR ({_ALPHA})::numeric NOT BETWEEN 0 AND 1) THEN 'color ' || quote_literal(c.name) || ': opacity is not a number from 0 to 1'
               WHEN count(*) OVER (PARTITION BY c.job_id, c.name) > 1 THEN 'color ' || quote_literal(c.name) || ' is given twice'
           END AS problem
    FROM (
        SELECT fine.job_id, fine.project_id, e.n, e.item, btrim(e.item ->> 'name') AS name, {_HEX.replace('c.item', 'e.item')} AS hex
        FROM fine
        CROSS JOIN LATERAL jsonb_array_elements(coalesce(fine.doc -> 'colors', '[]')) WITH ORDINALITY AS e(item, n)
    ) AS c
),
spacings AS (
    SELECT s.job_id,
           s.project_id,
           s.n,
           s.name,
           round({_number(_SPACE)}, 3) AS value,
           {_unit(_SPACE, "s.item ->> 'unit'")} AS unit,
           CASE
               WHEN jsonb_typeof(s.item) <> 'object' THEN {_where('spacing', 's.n')} || ' is not an object'
               WHEN s.name IS NULL OR length(s.name) NOT BETWEEN 1 AND 200 THEN {_where('spacing', 's.n')} || ' has no name (1-200 characters)'
               WHEN NOT {_is_number(_SPACE)} THEN 'spacing ' || quote_literal(s.name) || ': value is not a number'
               WHEN {_number(_SPACE)} NOT BETWEEN 0 AND {_LIMIT} THEN 'spacing ' || quote_literal(s.name) || ': value ' || ({_number(_SPACE)}) || ' is negative or too large'
               WHEN {_unit(_SPACE, "s.item ->> 'unit'")} NOT IN ('px', 'rem') THEN 'spacing ' || quote_literal(s.name) || ': unknown unit ' || quote_literal({_unit(_SPACE, "s.item ->> 'unit'")}) || ' (px or rem)'
               WHEN count(*) OVER (PARTITION BY s.job_id, s.name) > 1 THEN 'spacing ' || quote_literal(s.name) || ' is given twice'
           END AS problem
    FROM (
        SELECT fine.job_id, fine.project_id, e.n, e.item, btrim(e.item ->> 'name') AS name
        FROM fine
        CROSS JOIN LATERAL jsonb_array_elements(coalesce(fine.doc -> 'spacing', '[]')) WITH ORDINALITY AS e(item, n)
    ) AS s
),
typographies AS (
    SELECT t.job_id,
           t.project_id,
           t.n,
           t.name,
           {_FONT} AS font_family,
           round({_number(_SIZE)}, 3) AS font_size,
           {_unit(_SIZE, "t.item ->> 'unit'")} AS font_size_unit,
           coalesce({_number(_WEIGHT)}, 400) AS font_weight,
           round(coalesce({_number(_LINE)}, 1.5), 3) AS line_height,
           round(coalesce({_number(_LETTER)}, 0), 3) AS letter_spacing,
           {_unit(_LETTER, "t.item ->> 'letterSpacingUnit'")} AS letter_spacing_unit,
           CASE
               WHEN jsonb_typeof(t.item) <> 'object' THEN {_where('typography', 't.n')} || ' is not an object'
               WHEN t.name IS NULL OR length(t.name) NOT BETWEEN 1 AND 200 THEN {_where('typography', 't.n')} || ' has no name (1-200 characters)'
               WHEN {_FONT} IS NULL OR length({_FONT}) NOT BETWEEN 1 AND 200 THEN 'typography ' || quote_literal(t.name) || ' has no font (1-200 characters)'
               WHEN NOT {_is_number(_SIZE)} THEN 'typography ' || quote_literal(t.name) || ': size is not a number'
               WHEN {_number(_SIZE)} <= 0 OR {_number(_SIZE)} > {_LIMIT} THEN 'typography ' || quote_literal(t.name) || ': size ' || ({_number(_SIZE)}) || ' is not more than 0 or too large'
               WHEN {_unit(_SIZE, "t.item ->> 'unit'")} NOT IN ('px', 'rem') THEN 'typography ' || quote_literal(t.name) || ': unknown size unit ' || quote_literal({_unit(_SIZE, "t.item ->> 'unit'")}) || ' (px or rem)'
               WHEN {_WEIGHT} IS NOT NULL AND (jsonb_typeof({_WEIGHT}) <> 'number' OR ({_WEIGHT})::numeric NOT BETWEEN 1 AND 1000 OR ({_WEIGHT})::numeric <> trunc(({_WEIGHT})::numeric)) THEN 'typography ' || quote_literal(t.name) || ': weight is not a whole number from 1 to 1000'
               WHEN {_LINE} IS NOT NULL AND (jsonb_typeof({_LINE}) <> 'number' OR ({_LINE})::numeric <= 0 OR ({_LINE})::numeric > 999) THEN 'typography ' || quote_literal(t.name) || ': line height is not a multiplier more than 0'
               WHEN {_LETTER} IS NOT NULL AND (NOT {_is_number(_LETTER)} OR abs({_number(_LETTER)}) > {_LIMIT}) THEN 'typography ' || quote_literal(t.name) || ': letter spacing is not a number'
               WHEN {_unit(_LETTER, "t.item ->> 'letterSpacingUnit'")} NOT IN ('px', 'rem') THEN 'typography ' || quote_literal(t.name) || ': unknown letter spacing unit ' || quote_literal({_unit(_LETTER, "t.item ->> 'letterSpacingUnit'")}) || ' (px or rem)'
               WHEN count(*) OVER (PARTITION BY t.job_id, t.name) > 1 THEN 'typography ' || quote_literal(t.name) || ' is given twice'
           END AS problem
    FROM (
        SELECT fine.job_id, fine.project_id, e.n, e.item, btrim(e.item ->> 'name') AS name
        FROM fine
        CROSS JOIN LATERAL jsonb_array_elements(coalesce(fine.doc -> 'typography', '[]')) WITH ORDINALITY AS e(item, n)
    ) AS t
),
problems AS (
    SELECT job_id, project_id, 0 AS kind, 0 AS n, problem FROM lists WHERE problem IS NOT NULL
    UNION ALL
    SELECT job_id, project_id, 1, n, problem FROM colors WHERE problem IS NOT NULL
    UNION ALL
    SELECT job_id, project_id, 2, n, problem FROM spacings WHERE problem IS NOT NULL
    UNION ALL
    SELECT job_id, project_id, 3, n, problem FROM typographies WHERE problem IS NOT NULL
),
rejected AS (
    SELECT job_id,
           project_id,
           (array_agg(problem ORDER BY kind, n))[1] AS reason,
           count(*) AS problems
    FROM problems
    GROUP BY job_id, project_id
),
color_rows AS (
    INSERT INTO color_tokens (project_id, extraction_job_id, name, hex, opacity)
    SELECT project_id, job_id, name, hex, opacity
    FROM colors
    WHERE job_id NOT IN (SELECT job_id FROM rejected)
    ORDER BY job_id, n
    ON CONFLICT (extraction_job_id, name) DO NOTHING
    RETURNING 1
),
spacing_rows AS (
    INSERT INTO spacing_tokens (project_id, extraction_job_id, name, value, unit)
    SELECT project_id, job_id, name, value, unit
    FROM spacings
    WHERE job_id NOT IN (SELECT job_id FROM rejected)
    ORDER BY job_id, n
    ON CONFLICT (extraction_job_id, name) DO NOTHING
    RETURNING 1
),
typography_rows AS (
    INSERT INTO typography_tokens (project_id, extraction_job_id, name, font_family, font_size, font_size_unit,
                                   font_weight, line_height, letter_spacing, letter_spacing_unit)
    SELECT project_id, job_id, name, font_family, font_size, font_size_unit,
           font_weight::integer, line_height, letter_spacing, letter_spacing_unit
    FROM typographies
    WHERE job_id NOT IN (SELECT job_id FROM rejected)
    ORDER BY job_id, n
    ON CONFLICT (extraction_job_id, name) DO NOTHING
    RETURNING 1
)
SELECT (SELECT count(*) FROM jobs) AS jobs,
       (SELECT max(job_id) FROM jobs) AS last_job_id,
       (SELECT count(*) FROM color_rows) AS colors,
       (SELECT count(*) FROM spacing_rows) AS spacing,
       (SELECT count(*) FROM typography_rows) AS typography,
       (SELECT coalesce(array_agg(job_id ORDER BY job_id), '{{}}') FROM rejected) AS rejected_job_ids,
       (SELECT coalesce(array_agg(project_id ORDER BY job_id), '{{}}') FROM rejected) AS rejected_project_ids,
       (SELECT coalesce(array_agg(reason ORDER BY job_id), '{{}}') FROM rejected) AS rejected_reasons,
       (SELECT coalesce(array_agg(problems ORDER BY job_id), '{{}}') FROM rejected) AS rejected_problems
__INTO__
"""

REJECTS_TABLE = "copythat_rejected_results"
SHOWN = 10  # rejected job ids the revision names

# The revision's form: the same batch in a loop that commits after each (a DO block may COMMIT outside a transaction block),
# the rejected jobs kept in a temporary table of the session, and a NOTICE that counts them.
DO_BLOCK = """
DO $do$
DECLARE
    v_after bigint := 0;
    v_jobs bigint;
    v_last_job_id bigint;
    v_colors bigint;
    v_spacing bigint;
    v_typography bigint;
    v_rejected_job_ids bigint[];
    v_rejected_project_ids bigint[];
    v_rejected_reasons text[];
    v_rejected_problems bigint[];
    v_written bigint := 0;
BEGIN
    LOOP
        {batch}
        EXIT WHEN v_jobs = 0;
        INSERT INTO pg_temp.{table} (job_id, project_id, reason, problems)
        SELECT * FROM unnest(v_rejected_job_ids, v_rejected_project_ids, v_rejected_reasons, v_rejected_problems);
        v_written := v_written + v_colors + v_spacing + v_typography;
        v_after := v_last_job_id;
        COMMIT;
    END LOOP;
    RAISE NOTICE USING MESSAGE = 'tokens from job results: ' || v_written || ' tokens written, '
        || (SELECT count(*) FROM pg_temp.{table}) || ' jobs rejected'
        || coalesce(' (first: ' || (SELECT string_agg(job_id::text || ' (' || reason || ')', '; ' ORDER BY job_id)
                                     FROM (SELECT * FROM pg_temp.{table} ORDER BY job_id LIMIT {shown}) AS first) || ')', '');
END
$do$
"""

REJECTS_TABLE_SQL = f"""
CREATE TEMPORARY TABLE IF NOT EXISTS {REJECTS_TABLE} (
    job_id bigint,
    project_id bigint,
    reason text,
    problems bigint
)
"""


def revision_statements(batch_size: int = BATCH_SIZE) -> list[str]:
    """Return the SQL statements revision 458d9b0f4a48 runs (in autocommit): the parse function, the rejects table, the DO block.

    The same in online and offline (`--sql`) mode; the DO block commits after each batch of `batch_size` jobs.

    Example:
        >>> [sql.split()[0] for sql in revision_statements()]
        ['CREATE', 'CREATE', 'TRUNCATE', 'DO']
    """
    size = _batch_size(batch_size)
    into = "INTO v_jobs, v_last_job_id, v_colors, v_spacing, v_typography, v_rejected_job_ids, v_rejected_project_ids, v_rejected_reasons, v_rejected_problems"
    batch = _batch_sql("v_after", str(size), into).strip() + ";"
    return [
        PARSE_FUNCTION.strip(),
        REJECTS_TABLE_SQL.strip(),
        f"TRUNCATE pg_temp.{REJECTS_TABLE}",
        DO_BLOCK.format(batch=batch, table=REJECTS_TABLE, shown=SHOWN).strip(),
    ]


def _batch_sql(after: str, batch: str, into: str) -> str:
    return BATCH.replace("__AFTER__", after).replace("__BATCH__", batch).replace("__INTO__", into)


def _batch_size(batch_size: object) -> int:
    if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
        raise InputError(f"batch_size must be a whole number of jobs, 1 or more (got {batch_size!r})", fix="pass e.g. batch_size=10_000", params="batch_size")
    return batch_size


def backfill_tokens(
    *,
    batch_size: int = BATCH_SIZE,
    engine: Engine | None = None,
    conn: Connection | None = None,
    lock_timeout: str = LOCK_TIMEOUT,
    dry_run: bool = False,
) -> dict:
    """Write token rows from completed jobs' result_data, `batch_size` jobs (default 10,000) per committed batch; return what it did.

    Returns a dict: `jobs` (completed jobs read), `colors`, `spacing`, `typography` and `tokens`
    (rows written now: 0 when everything was done before), `batches`, and `rejected`, a DataFrame
    of the jobs whose tokens were not written (job_id, project_id, reason: the first problem,
    problems: how many). Each batch waits at most `lock_timeout` (default 3s) for a lock.
    With `dry_run=True` every batch is rolled back: the counts say what a run would write.
    With `conn`, batches run on that open connection (not in a transaction); else on one of `engine`.

    Example:
        >>> from copythat_ops.tokens import backfill_tokens
        >>> first = backfill_tokens(batch_size=100, dry_run=True)
        >>> first["batches"] == -(-first["jobs"] // 100)                # every completed job, 100 a batch
        True
        >>> backfill_tokens(batch_size=100, dry_run=True)["tokens"] == first["tokens"]   # nothing was kept
        True
    """
    import pandas as pd
    from sqlalchemy import text

    size = _batch_size(batch_size)
    duration(lock_timeout, name="lock_timeout")
    statement = text(_batch_sql(":after", ":batch", ""))
    totals = {"jobs": 0, "colors": 0, "spacing": 0, "typography": 0, "batches": 0}
    rejected: list[tuple] = []
    with connection(engine) if conn is None else _given(conn) as db:
        after = 0
        while True:
            with explain_lock_waits("backfill_tokens", "INSERT INTO color_tokens spacing_tokens typography_tokens", engine=engine, conn=conn, lock_timeout=lock_timeout, read_only=False):
                transaction = db.begin()
                try:
                    db.execute(text("SELECT set_config('statement_timeout', :timeout, true), set_config('lock_timeout', :lock, true)"),
                               {"timeout": _millis(STATEMENT_TIMEOUT), "lock": _millis(lock_timeout)})
                    db.execute(text(PARSE_FUNCTION))
                    row = db.execute(statement, {"after": after, "batch": size}).mappings().one()
                except BaseException:
                    transaction.rollback()
                    raise
                if dry_run:
                    transaction.rollback()
                else:
                    transaction.commit()
            if row["jobs"] == 0:
                break
            totals["batches"] += 1
            for key in ("jobs", "colors", "spacing", "typography"):
                totals[key] += int(row[key])
            rejected += zip(row["rejected_job_ids"], row["rejected_project_ids"], row["rejected_reasons"], row["rejected_problems"])
            after = int(row["last_job_id"])
    frame = pd.DataFrame(rejected, columns=REJECTED_COLUMNS).astype({"job_id": "int64", "project_id": "int64", "problems": "int64"})
    return {**totals, "tokens": totals["colors"] + totals["spacing"] + totals["typography"], "rejected": frame}


def _millis(value: str) -> str:
    from datetime import timedelta

    return f"{duration(value) // timedelta(milliseconds=1)}ms"


class _given:
    """`conn` as the context manager `connection()` would give; it stays open afterwards."""

    def __init__(self, conn: Connection) -> None:
        self.conn = conn

    def __enter__(self) -> Connection:
        return self.conn

    def __exit__(self, *exc: object) -> None:
        return None


def rejected_summary(rejected: pd.DataFrame, shown: int = SHOWN) -> str:
    """Return one line counting the rejected jobs and naming the first `shown` ids with their reasons.

    Example:
        >>> import pandas as pd
        >>> rejected_summary(pd.DataFrame({"job_id": [7], "project_id": [1], "reason": ["result_data is not valid JSON"], "problems": [1]}))
        '1 job rejected (its tokens not written): 7 (result_data is not valid JSON)'
        >>> rejected_summary(pd.DataFrame(columns=["job_id", "project_id", "reason", "problems"]))
        'no job rejected'
    """
    if rejected.empty:
        return "no job rejected"
    first = "; ".join(f"{row.job_id} ({row.reason})" for row in rejected.head(shown).itertuples())
    more = f"; and {len(rejected) - shown} more" if len(rejected) > shown else ""
    jobs, their = ("job", "its") if len(rejected) == 1 else ("jobs", "their")
    return f"{len(rejected)} {jobs} rejected ({their} tokens not written): {first}{more}"

