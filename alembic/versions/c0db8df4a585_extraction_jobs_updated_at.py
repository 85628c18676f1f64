"""Extraction jobs record when they last changed state

Revision ID: c0db8df4a585
Revises: 3ca76145171f
Create Date: 2026-11-25 14:50:00.000000

extraction_jobs.updated_at (timestamptz) says since when a job has been in its
current state, so "stuck" is measured from the last change, not from creation.
The safe form for a live table:
- The column is added without a default (a catalog change, no table rewrite),
  then given DEFAULT now() for the rows inserted from then on.
- A BEFORE UPDATE trigger sets it to now() whenever a job's state changes
  (status, completed_at, error_message or result_data), so the application's
  own writes keep it right without any change to the application.
- Existing rows are backfilled in batches of BATCH rows, each committed on its
  own (short row locks, no long transaction): finished jobs from completed_at,
  the others from created_at (the schema records no start time).
Every step runs under alembic.ini's lock_timeout and can run again, so after
any failure fix the cause and upgrade again.
"""
from typing import Sequence, Union

from alembic import op

# revision identifiers, used by Alembic.
revision: str = "c0db8df4a585"
down_revision: Union[str, None] = "3ca76145171f"
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None

# squawk rules this revision turns off (`copythat-ops migrate lint`), each with its reason.
SQUAWK_IGNORE = {
    "prefer-robust-stmts": "ALTER COLUMN ... SET DEFAULT runs again harmlessly when the backfill after it failed and the upgrade is rerun",
}

FUNCTION = "extraction_jobs_set_updated_at"
TRIGGER = "extraction_jobs_set_updated_at"
STATE = ("status", "completed_at", "error_message", "result_data")
BATCH = 10_000

SET_UPDATED_AT = f"""
CREATE OR REPLACE FUNCTION "{FUNCTION}"() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    NEW.updated_at := now();
    RETURN NEW;
END
$$
"""

CREATE_TRIGGER = f"""
CREATE TRIGGER "{TRIGGER}"
    BEFORE UPDATE ON "extraction_jobs"
    FOR EACH ROW
    WHEN ({" OR ".join(f'OLD."{c}" IS DISTINCT FROM NEW."{c}"' for c in STATE)})
    EXECUTE FUNCTION "{FUNCTION}"()
"""

# Outside a transaction block, so each batch commits on its own (PostgreSQL 11+); the same text online and offline.
BACKFILL = f"""
DO $$
DECLARE
    last_id integer := 0;
    batch_end integer;
BEGIN
    LOOP
        SELECT max(id) INTO batch_end
        FROM (SELECT id FROM "extraction_jobs" WHERE id > last_id ORDER BY id LIMIT {BATCH}) AS batch;
        EXIT WHEN batch_end IS NULL;
        UPDATE "extraction_jobs"
        SET updated_at = coalesce(completed_at, created_at)
        WHERE id > last_id AND id <= batch_end AND updated_at IS NULL;
        COMMIT;
        last_id := batch_end;
    END LOOP;
END
$$
"""


def upgrade() -> None:
    op.execute('ALTER TABLE "extraction_jobs" ADD COLUMN IF NOT EXISTS "updated_at" timestamp with time zone')
    op.execute('ALTER TABLE "extraction_jobs" ALTER COLUMN "updated_at" SET DEFAULT now()')
    op.execute(SET_UPDATED_AT)
    op.execute(f'DROP TRIGGER IF EXISTS "{TRIGGER}" ON "extraction_jobs"')
    op.execute(CREATE_TRIGGER)
    with op.get_context().autocommit_block():
        op.execute(BACKFILL)


def downgrade() -> None:
    op.execute(f'DROP TRIGGER IF EXISTS "{TRIGGER}" ON "extraction_jobs"')
    op.execute(f'DROP FUNCTION IF EXISTS "{FUNCTION}"()')
    op.execute('ALTER TABLE "extraction_jobs" DROP COLUMN IF EXISTS "updated_at"')
