"""Tokens from job results: completed jobs' result_data becomes color, spacing and typography rows

Revision ID: 458d9b0f4a48
Revises: 4c8c7e4bda45
Create Date: 2026-11-30 23:40:00.000000

Data only, no schema change. The statement is copythat_ops.tokens.backfill's
(`copythat-ops tokens backfill` runs the same again at any time): completed
jobs are read by id in batches of BATCH, each batch parsed in the server and
its tokens inserted and COMMITTED on its own (a DO block looping outside a
transaction block), so a database with millions of jobs holds row locks on
one batch of new rows at a time and never a table lock. Every statement runs
under alembic.ini's lock_timeout. Re-runnable: a job's tokens already there
are skipped (UNIQUE (extraction_job_id, name), ON CONFLICT DO NOTHING).

A job whose result does not parse or does not fit (see the module's
docstring) is taken whole or not at all: none of its tokens are written, and
the upgrade prints how many jobs were rejected and the first job ids with the
reason (a NOTICE in offline `--sql` scripts). `copythat-ops tokens backfill`
lists them all.

The downgrade DELETES every token that came from a job (extraction_job_id
NOT NULL), in committed batches; tokens made by hand (no job) stay, and so do
tokens whose job was deleted (their extraction_job_id became NULL).
"""
from typing import Sequence, Union

from alembic import context, op
import sqlalchemy as sa

from copythat_ops.tokens.backfill import REJECTS_TABLE, SHOWN, revision_statements

# revision identifiers, used by Alembic.
revision: str = "458d9b0f4a48"
down_revision: Union[str, None] = "4c8c7e4bda45"
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None

SQUAWK_IGNORE = {
    "ban-drop-table": "the dropped table is this session's own temporary list of rejected jobs, read just before",
}

BATCH = 10_000
TABLES = ("color_tokens", "spacing_tokens", "typography_tokens")

DELETE_FROM_JOBS = """
DO $do$
DECLARE
    deleted bigint;
BEGIN
    LOOP
        DELETE FROM {table}
        WHERE id IN (SELECT id FROM {table} WHERE extraction_job_id IS NOT NULL ORDER BY id LIMIT {batch});
        GET DIAGNOSTICS deleted = ROW_COUNT;
        COMMIT;
        EXIT WHEN deleted = 0;
    END LOOP;
END
$do$
"""


def upgrade() -> None:
    with op.get_context().autocommit_block():
        for statement in revision_statements(BATCH):
            op.execute(statement)
        if not context.is_offline_mode():
            _say_rejected()
        op.execute(f"DROP TABLE IF EXISTS pg_temp.{REJECTS_TABLE}")  # the session may go back to a pool


def _say_rejected() -> None:
    rows = op.get_bind().execute(
        sa.text(f"SELECT job_id, reason, count(*) OVER () AS total FROM pg_temp.{REJECTS_TABLE} ORDER BY job_id LIMIT {SHOWN}")
    ).all()
    if rows:
        first = "; ".join(f"{row.job_id} ({row.reason})" for row in rows)
        print(
            f"458d9b0f4a48: {rows[0].total} completed jobs rejected, their tokens not written; first: {first}. "
            "List them all with `copythat-ops tokens backfill --dry-run`"
        )


def downgrade() -> None:
    with op.get_context().autocommit_block():
        for table in TABLES:
            op.execute(DELETE_FROM_JOBS.format(table=table, batch=BATCH))
