"""Monitoring history tables

Revision ID: a41f008744a3
Revises: c0db8df4a585
Create Date: 2026-11-25 15:00:00.000000

`copythat-ops monitor capture` records snapshots of sizes, row estimates,
sequence positions, connections, statement totals and job counts into tables
of their own, in the schema `copythat_history` (kept apart from the
application's tables and from the models' comparison). One row in `snapshots`
per source and time bucket (UNIQUE (source, bucket)): captures from several
hosts in the same interval keep one. The rows of the other tables belong to a
snapshot and go with it (ON DELETE CASCADE), so retention deletes snapshots only.

Safe on a live database: a new schema and new, empty tables (no lock on any
existing table), under alembic.ini's lock_timeout, each statement re-runnable.
The downgrade drops the schema's tables and the schema, and with them the history.
"""
from typing import Sequence, Union

from alembic import op

# revision identifiers, used by Alembic.
revision: str = "a41f008744a3"
down_revision: Union[str, None] = "c0db8df4a585"
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None

SQUAWK_IGNORE = {
    "prefer-bigint-over-int": "interval_seconds, server_version and connections are small measurements, never ids (every id and counter is bigint)",
}

SCHEMA = "copythat_history"
# Each table's columns after its `snapshot_id` (the snapshot it belongs to).
CHILDREN = {
    "table_sizes": """
        "schema" text NOT NULL,
        "table" text NOT NULL,
        table_bytes bigint,
        index_bytes bigint,
        toast_bytes bigint,
        total_bytes bigint,
        live_rows bigint,
        dead_rows bigint""",
    "index_sizes": """
        "schema" text NOT NULL,
        "table" text NOT NULL,
        "index" text NOT NULL,
        size_bytes bigint""",
    "sequences": """
        "schema" text NOT NULL,
        "sequence" text NOT NULL,
        "table" text,
        "column" text,
        column_type text,
        last_value bigint,
        max_value bigint""",
    "connections": """
        state text,
        application_name text,
        connections integer NOT NULL""",
    "statements": """
        query_id bigint NOT NULL,
        user_name text,
        calls bigint NOT NULL,
        total_ms double precision NOT NULL,
        "rows" bigint""",
    "jobs": """
        status text NOT NULL,
        extraction_type text NOT NULL,
        jobs bigint NOT NULL""",
}


def upgrade() -> None:
    op.execute(f'CREATE SCHEMA IF NOT EXISTS "{SCHEMA}"')
    op.execute(
        f"""
        CREATE TABLE IF NOT EXISTS "{SCHEMA}".snapshots (
            id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
            source text NOT NULL,
            bucket timestamp with time zone NOT NULL,
            captured_at timestamp with time zone NOT NULL DEFAULT now(),
            interval_seconds integer NOT NULL CHECK (interval_seconds > 0),
            database_bytes bigint,
            server_version integer,
            synthetic boolean NOT NULL DEFAULT false,
            CONSTRAINT snapshots_source_bucket_key UNIQUE (source, bucket)
        )
        """
    )
    op.execute(f'CREATE INDEX IF NOT EXISTS snapshots_bucket_idx ON "{SCHEMA}".snapshots (bucket)')
    for table, columns in CHILDREN.items():
        op.execute(
            f"""
            CREATE TABLE IF NOT EXISTS "{SCHEMA}"."{table}" (
                snapshot_id bigint NOT NULL REFERENCES "{SCHEMA}".snapshots (id) ON DELETE CASCADE,{columns}
            )
            """
        )
        op.execute(f'CREATE INDEX IF NOT EXISTS "{table}_snapshot_id_idx" ON "{SCHEMA}"."{table}" (snapshot_id)')
    op.execute(
        f"""
        CREATE TABLE IF NOT EXISTS "{SCHEMA}".statement_texts (
            source text NOT NULL,
            query_id bigint NOT NULL,
            query text NOT NULL,
            first_seen timestamp with time zone NOT NULL DEFAULT now(),
            PRIMARY KEY (source, query_id)
        )
        """
    )


def downgrade() -> None:
    for table in [*CHILDREN, "statement_texts", "snapshots"]:
        op.execute(f'DROP TABLE IF EXISTS "{SCHEMA}"."{table}"')
    op.execute(f'DROP SCHEMA IF EXISTS "{SCHEMA}"')
