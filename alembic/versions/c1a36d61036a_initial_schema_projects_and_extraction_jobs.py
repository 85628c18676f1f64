"""Initial schema: projects and extraction_jobs

Revision ID: c1a36d61036a
Revises:
Create Date: 2025-11-19

"""
from typing import Sequence, Union

from alembic import op
import sqlalchemy as sa

# revision identifiers, used by Alembic.
revision: str = "c1a36d61036a"
down_revision: Union[str, None] = None
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None

# squawk rules this revision turns off (`copythat-ops migrate lint`), each with its reason.
_AS_GIVEN = "the initial schema exactly as the setup guide gives it: production databases are already stamped at this revision"
SQUAWK_IGNORE = {
    "prefer-text-field": _AS_GIVEN,
    "prefer-bigint-over-int": _AS_GIVEN,
    "prefer-identity": _AS_GIVEN,
    "prefer-timestamp-tz": _AS_GIVEN,
}


def upgrade() -> None:
    op.create_table(
        "projects",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=255), nullable=False),
        sa.Column("description", sa.Text(), nullable=True),
        sa.Column("created_at", sa.DateTime(), server_default=sa.text("now()"), nullable=False),
        sa.Column("updated_at", sa.DateTime(), server_default=sa.text("now()"), nullable=False),
        sa.PrimaryKeyConstraint("id", name="projects_pkey"),
    )
    op.create_table(
        "extraction_jobs",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("project_id", sa.Integer(), nullable=False),
        sa.Column("source_url", sa.String(length=512), nullable=False),
        sa.Column("extraction_type", sa.String(length=50), nullable=False),
        sa.Column("status", sa.String(length=50), server_default="pending", nullable=False),
        sa.Column("result_data", sa.Text(), nullable=True),
        sa.Column("error_message", sa.Text(), nullable=True),
        sa.Column("created_at", sa.DateTime(), server_default=sa.text("now()"), nullable=False),
        sa.Column("completed_at", sa.DateTime(), nullable=True),
        sa.PrimaryKeyConstraint("id", name="extraction_jobs_pkey"),
    )


def downgrade() -> None:
    op.drop_table("extraction_jobs")
    op.drop_table("projects")
