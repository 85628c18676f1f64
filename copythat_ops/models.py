"""SQLAlchemy 2.0 models of the Copy That schema: the setup guide's tables as the migrations evolve them.

Example:
    >>> from copythat_ops.models import ExtractionJob, JobStatus
    >>> ExtractionJob.__table__.c.status.server_default.arg
    'pending'
    >>> [s.value for s in JobStatus]
    ['pending', 'processing', 'completed', 'failed']
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import BigInteger, CheckConstraint, DateTime, ForeignKey, Identity, Index, Integer, MetaData, String, Text, func, text
from sqlalchemy.dialects.postgresql import ARRAY, JSONB
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

# PostgreSQL's own default names, so later revisions name constraints as the server would.
NAMING_CONVENTION = {
    "pk": "%(table_name)s_pkey",
    "fk": "%(table_name)s_%(column_0_name)s_fkey",
    "uq": "%(table_name)s_%(column_0_name)s_key",
    "ck": "%(table_name)s_%(constraint_name)s_check",
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
}


class ExtractionType(StrEnum):
    """What a job extracts."""

    COLOR = "color"
    SPACING = "spacing"
    TYPOGRAPHY = "typography"
    ALL = "all"


class JobStatus(StrEnum):
    """Where a job is in its life."""

    PENDING = "pending"
    PROCESSING = "processing"
    COMPLETED = "completed"
    FAILED = "failed"


EXTRACTION_TYPES = tuple(t.value for t in ExtractionType)
JOB_STATUSES = tuple(s.value for s in JobStatus)


class Base(DeclarativeBase):
    """Base class of every model; its metadata is Alembic's target."""

    metadata = MetaData(naming_convention=NAMING_CONVENTION)


class Project(Base):
    """A design token extraction project."""

    __tablename__ = "projects"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(255), nullable=False)
    description: Mapped[str | None] = mapped_column(Text, nullable=True)
    created_at: Mapped[datetime] = mapped_column(nullable=False, server_default=func.now())
    updated_at: Mapped[datetime] = mapped_column(nullable=False, server_default=func.now(), onupdate=func.now())

    def __repr__(self) -> str:
        return f"Project(id={self.id!r}, name={self.name!r})"


class ExtractionJob(Base):
    """A token extraction job over an image, video or audio source."""

    __tablename__ = "extraction_jobs"
    __table_args__ = (
        Index("ix_extraction_jobs_status_created_at", "status", "created_at"),
        Index("ix_extraction_jobs_project_id", "project_id"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    project_id: Mapped[int] = mapped_column(Integer, ForeignKey("projects.id"), nullable=False)
    source_url: Mapped[str] = mapped_column(String(512), nullable=False)
    extraction_type: Mapped[str] = mapped_column(String(50), nullable=False)
    status: Mapped[str] = mapped_column(String(50), nullable=False, server_default=JobStatus.PENDING.value)
    result_data: Mapped[str | None] = mapped_column(Text, nullable=True)  # JSON text
    error_message: Mapped[str | None] = mapped_column(Text, nullable=True)
    created_at: Mapped[datetime] = mapped_column(nullable=False, server_default=func.now())
    completed_at: Mapped[datetime | None] = mapped_column(nullable=True)
    # When the job last changed state: DEFAULT now() on insert, a trigger on every change of state (NULL only mid-backfill).
    updated_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True, server_default=func.now())

    def __repr__(self) -> str:
        return f"ExtractionJob(id={self.id!r}, type={self.extraction_type!r}, status={self.status!r})"


class JobActionAudit(Base):
    """One applied job action (requeue, fail_stuck, cancel): who, when, which jobs, the rows before and after."""

    __tablename__ = "job_action_audit"
    __table_args__ = (CheckConstraint("action IN ('requeue', 'fail_stuck', 'cancel')", name="action"),)

    id: Mapped[int] = mapped_column(BigInteger, Identity(), primary_key=True)
    performed_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), nullable=False, server_default=func.now())
    database_user: Mapped[str] = mapped_column(Text, nullable=False, server_default=text("CURRENT_USER"))
    os_user: Mapped[str] = mapped_column(Text, nullable=False)
    action: Mapped[str] = mapped_column(Text, nullable=False)
    job_count: Mapped[int] = mapped_column(Integer, nullable=False)
    job_ids: Mapped[list[int]] = mapped_column(ARRAY(BigInteger), nullable=False)
    skipped_job_ids: Mapped[list[int]] = mapped_column(ARRAY(BigInteger), nullable=False, server_default=text("'{}'"))
    reason: Mapped[str | None] = mapped_column(Text, nullable=True)
    before: Mapped[list[dict[str, Any]]] = mapped_column(JSONB, nullable=False)
    after: Mapped[list[dict[str, Any]]] = mapped_column(JSONB, nullable=False)

    def __repr__(self) -> str:
        return f"JobActionAudit(id={self.id!r}, action={self.action!r}, job_count={self.job_count!r})"
