"""Extraction job indexes and project foreign key

Revision ID: 3ca76145171f
Revises: 2e88296926d0
Create Date: 2026-11-24 21:41:30.154132

The safe form for a live table:
- Orphaned project ids stop the migration before it changes anything, with
  the ids and how to fix them.
- The foreign key is added NOT VALID (a brief lock; new rows are checked from
  then on), then validated in its own transaction (existing rows are scanned
  without blocking writes).
- The indexes are built CONCURRENTLY, outside a transaction; an INVALID index
  left by an earlier failed build is dropped and built again.
Every step runs under alembic.ini's lock_timeout (a session setting, kept in
autocommit mode) and can run again, so after any failure fix the cause and
upgrade again.
"""
from typing import Sequence, Union

from alembic import context, op
import sqlalchemy as sa

from copythat_ops.errors import MigrationError

# revision identifiers, used by Alembic.
revision: str = "3ca76145171f"
down_revision: Union[str, None] = "2e88296926d0"
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None

# squawk rules this revision turns off (`copythat-ops migrate lint`), each with its reason.
SQUAWK_IGNORE = {
    "prefer-robust-stmts": "VALIDATE CONSTRAINT runs again harmlessly (squawk cannot see that the DO block above it added the constraint NOT VALID)",
}

FOREIGN_KEY = "extraction_jobs_project_id_fkey"
INDEXES = {
    "ix_extraction_jobs_status_created_at": '"status", "created_at"',
    "ix_extraction_jobs_project_id": '"project_id"',
}
SHOWN = 20  # orphaned project ids named in the error

ORPHANS = """
    SELECT j.project_id,
           count(*) AS jobs
    FROM extraction_jobs AS j
    WHERE NOT EXISTS (SELECT FROM projects AS p WHERE p.id = j.project_id)
    GROUP BY j.project_id
    ORDER BY j.project_id
"""

# Offline (--sql) scripts cannot ask in Python, so the server checks (no '%': offline output would double it).
REFUSE_ORPHANS = f"""
DO $$
DECLARE
    listed text;
BEGIN
    SELECT string_agg(project_id || ' (' || jobs || ' jobs)', ', ')
    INTO listed
    FROM ({ORPHANS}    LIMIT {SHOWN}) AS orphans;
    IF listed IS NOT NULL THEN
        RAISE EXCEPTION USING
            MESSAGE = 'extraction_jobs has project ids with no project: ' || listed,
            HINT = 'delete or reassign those jobs, or create the projects, then migrate again';
    END IF;
END
$$
"""

# NOT VALID: a brief lock, and only new rows are checked. Skipped when an earlier run added it.
ADD_FOREIGN_KEY = f"""
DO $$
BEGIN
    IF NOT EXISTS (SELECT FROM pg_constraint WHERE conname = '{FOREIGN_KEY}' AND conrelid = 'extraction_jobs'::regclass) THEN
        ALTER TABLE "extraction_jobs" ADD CONSTRAINT "{FOREIGN_KEY}"
            FOREIGN KEY ("project_id") REFERENCES "projects" ("id") NOT VALID;
    END IF;
END
$$
"""


def _refuse_orphans() -> None:
    if context.is_offline_mode():
        op.execute(REFUSE_ORPHANS)
        return
    orphans = op.get_bind().execute(sa.text(ORPHANS)).all()
    if orphans:
        jobs = sum(row.jobs for row in orphans)
        listed = ", ".join(f"{row.project_id} ({row.jobs} jobs)" for row in orphans[:SHOWN])
        more = f" and {len(orphans) - SHOWN} more" if len(orphans) > SHOWN else ""
        raise MigrationError(
            f"cannot add the foreign key extraction_jobs.project_id -> projects.id: {jobs} job(s) name "
            f"{len(orphans)} project id(s) that do not exist: {listed}{more}; nothing was changed",
            fix="delete those jobs or reassign them to an existing project (UPDATE extraction_jobs SET project_id = ...), "
            "or create the missing projects, then migrate again",
        )


def _add_foreign_key() -> None:
    op.execute(ADD_FOREIGN_KEY)
    try:
        op.execute(f'ALTER TABLE "extraction_jobs" VALIDATE CONSTRAINT "{FOREIGN_KEY}"')
    except sa.exc.IntegrityError:  # a job naming a missing project came in after the check
        op.execute(f'ALTER TABLE "extraction_jobs" DROP CONSTRAINT "{FOREIGN_KEY}"')
        _refuse_orphans()
        raise


def _create_index(name: str, columns: str) -> None:
    invalid = "SELECT 1 FROM pg_index WHERE indexrelid = to_regclass(:name) AND NOT indisvalid"
    if not context.is_offline_mode() and op.get_bind().execute(sa.text(invalid), {"name": name}).scalar():
        op.execute(f'DROP INDEX CONCURRENTLY IF EXISTS "{name}"')
    op.execute(f'CREATE INDEX CONCURRENTLY IF NOT EXISTS "{name}" ON "extraction_jobs" ({columns})')


def upgrade() -> None:
    _refuse_orphans()
    with op.get_context().autocommit_block():
        _add_foreign_key()
        for name, columns in INDEXES.items():
            _create_index(name, columns)


def downgrade() -> None:
    op.execute(f'ALTER TABLE "extraction_jobs" DROP CONSTRAINT IF EXISTS "{FOREIGN_KEY}"')
    with op.get_context().autocommit_block():
        for name in INDEXES:
            op.execute(f'DROP INDEX CONCURRENTLY IF EXISTS "{name}"')
