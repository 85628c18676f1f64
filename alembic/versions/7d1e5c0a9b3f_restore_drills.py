"""Restore drills

Revision ID: 7d1e5c0a9b3f
Revises: 2a6198f96b79
Create Date: 2026-12-01 00:00:00.000000

`copythat-ops db drill` restores the newest backup into a scratch database,
verifies it against the figures recorded when the backup was taken (revision,
each table's row count and a checksum over its primary keys), and records the
result here, one row per drill, in the monitoring history's schema
`copythat_history`: how long the restore took (restore_seconds, the recovery
time) and how old the backup was when the drill ran (rpo_seconds, the data a
restore would lose). `health()` reads the newest row for `last_drill`.

Safe on a live database: a new, empty table in the history's schema (made if
missing), no lock on any existing table, under alembic.ini's lock_timeout,
each statement re-runnable. The downgrade drops the table and the drills it held.
"""
from typing import Sequence, Union

from alembic import op

# revision identifiers, used by Alembic.
revision: str = "7d1e5c0a9b3f"
down_revision: Union[str, None] = "2a6198f96b79"
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None

SCHEMA = "copythat_history"


def upgrade() -> None:
    op.execute(f'CREATE SCHEMA IF NOT EXISTS "{SCHEMA}"')
    op.execute(
        f"""
        CREATE TABLE IF NOT EXISTS "{SCHEMA}".drills (
            id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
            source text NOT NULL,
            backup text NOT NULL,
            backup_kind text NOT NULL,
            backup_taken_at timestamp with time zone,
            revision text,
            started_at timestamp with time zone NOT NULL DEFAULT now(),
            restore_seconds double precision,
            verify_seconds double precision,
            rpo_seconds double precision,
            status text NOT NULL,
            tables_checked bigint NOT NULL DEFAULT 0,
            tables_failed bigint NOT NULL DEFAULT 0,
            detail text NOT NULL DEFAULT '',
            host text,
            CONSTRAINT drills_backup_kind_check CHECK (backup_kind IN ('pg_dump', 'neon_snapshot', 'neon_branch')),
            CONSTRAINT drills_status_check CHECK (status IN ('passed', 'failed'))
        )
        """
    )
    op.execute(f'CREATE INDEX IF NOT EXISTS drills_source_started_at_idx ON "{SCHEMA}".drills (source, started_at)')


def downgrade() -> None:
    op.execute(f'DROP TABLE IF EXISTS "{SCHEMA}".drills')
