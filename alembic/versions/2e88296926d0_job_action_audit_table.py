"""Job action audit table

Revision ID: 2e88296926d0
Revises: c1a36d61036a
Create Date: 2026-11-24 21:41:28.248739

Every applied job action (requeue, fail_stuck, cancel) leaves one row: who
(database role and OS user), when, which jobs, and the rows before and after.
A new, empty table: safe on a live database.
"""
from typing import Sequence, Union

from alembic import op
import sqlalchemy as sa
from sqlalchemy.dialects import postgresql

# revision identifiers, used by Alembic.
revision: str = "2e88296926d0"
down_revision: Union[str, None] = "c1a36d61036a"
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None

# squawk rules this revision turns off (`copythat-ops migrate lint`), each with its reason.
SQUAWK_IGNORE = {
    "prefer-bigint-over-int": "job_count counts the jobs of one action (the ids of jobs, which may grow, are bigint)",
}


def upgrade() -> None:
    op.create_table(
        "job_action_audit",
        sa.Column("id", sa.BigInteger(), sa.Identity(), nullable=False),
        sa.Column("performed_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.Column("database_user", sa.Text(), server_default=sa.text("CURRENT_USER"), nullable=False),
        sa.Column("os_user", sa.Text(), nullable=False),
        sa.Column("action", sa.Text(), nullable=False),
        sa.Column("job_count", sa.Integer(), nullable=False),
        sa.Column("job_ids", postgresql.ARRAY(sa.BigInteger()), nullable=False),
        sa.Column("skipped_job_ids", postgresql.ARRAY(sa.BigInteger()), server_default=sa.text("'{}'"), nullable=False),
        sa.Column("reason", sa.Text(), nullable=True),
        sa.Column("before", postgresql.JSONB(), nullable=False),
        sa.Column("after", postgresql.JSONB(), nullable=False),
        sa.CheckConstraint("action IN ('requeue', 'fail_stuck', 'cancel')", name="action"),
        sa.PrimaryKeyConstraint("id", name="job_action_audit_pkey"),
    )


def downgrade() -> None:
    op.drop_table("job_action_audit")
