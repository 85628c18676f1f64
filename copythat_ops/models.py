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

from decimal import Decimal

from sqlalchemy import (
    DDL, BigInteger, CheckConstraint, DateTime, ForeignKey, Identity, Index, Integer, MetaData, Numeric, String, Text, UniqueConstraint,
    event, func, text,
)
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


class MembershipRole(StrEnum):
    """What a user may do in an organization."""

    OWNER = "owner"
    ADMIN = "admin"
    MEMBER = "member"


TOKEN_UNITS = ("px", "rem")  # the Design Tokens format's dimension units


class Organization(Base):
    """A tenant: it owns projects, and users belong to it through memberships."""

    __tablename__ = "organizations"
    __table_args__ = (
        CheckConstraint("length(btrim(name)) BETWEEN 1 AND 200", name="name"),
        CheckConstraint("slug ~ '^[a-z0-9]+(-[a-z0-9]+)*$' AND length(slug) <= 63", name="slug"),
    )

    id: Mapped[int] = mapped_column(BigInteger, Identity(always=False), primary_key=True)
    name: Mapped[str] = mapped_column(Text, nullable=False)
    slug: Mapped[str] = mapped_column(Text, nullable=False, unique=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), nullable=False, server_default=func.now())

    def __repr__(self) -> str:
        return f"Organization(id={self.id!r}, slug={self.slug!r})"


class User(Base):
    """A person who signs in; the email is unique whatever its case."""

    __tablename__ = "users"
    __table_args__ = (
        CheckConstraint("email ~ '^[^@[:space:]]+@[^@[:space:]]+$' AND length(email) <= 320", name="email"),
        Index("ix_users_email_lower", func.lower(text("email")), unique=True),
    )

    id: Mapped[int] = mapped_column(BigInteger, Identity(always=False), primary_key=True)
    email: Mapped[str] = mapped_column(Text, nullable=False)
    name: Mapped[str | None] = mapped_column(Text, nullable=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), nullable=False, server_default=func.now())

    def __repr__(self) -> str:
        return f"User(id={self.id!r}, email={self.email!r})"


class Membership(Base):
    """A user's role in an organization."""

    __tablename__ = "memberships"
    __table_args__ = (
        CheckConstraint("role IN ('owner', 'admin', 'member')", name="role"),
        Index("ix_memberships_user_id", "user_id"),
    )

    organization_id: Mapped[int] = mapped_column(BigInteger, ForeignKey("organizations.id", ondelete="CASCADE"), primary_key=True)
    user_id: Mapped[int] = mapped_column(BigInteger, ForeignKey("users.id", ondelete="CASCADE"), primary_key=True)
    role: Mapped[str] = mapped_column(Text, nullable=False, server_default=MembershipRole.MEMBER.value)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), nullable=False, server_default=func.now())

    def __repr__(self) -> str:
        return f"Membership(organization_id={self.organization_id!r}, user_id={self.user_id!r}, role={self.role!r})"


class Project(Base):
    """A design token extraction project, owned by an organization."""

    __tablename__ = "projects"
    __table_args__ = (
        Index("ix_projects_organization_id", "organization_id"),
        Index("ix_projects_name_trgm", "name", postgresql_using="gin", postgresql_ops={"name": "gin_trgm_ops"}),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    organization_id: Mapped[int] = mapped_column(BigInteger, ForeignKey("organizations.id"), nullable=False)
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
        # Revision 9e4b2c7d1f60 (extraction job rollups): the indexes the analyses read.
        Index(
            "ix_extraction_jobs_unfinished", "status", "updated_at", "created_at",
            postgresql_where=text("status IN ('pending', 'processing')"),
        ),
        Index("ix_extraction_jobs_created_at", "created_at", postgresql_include=["project_id", "extraction_type", "status", "completed_at"]),
        Index(
            "ix_extraction_jobs_failure_reason",
            text("copythat_rollups.failure_reason(error_message)"), text("(coalesce(completed_at, created_at))"),
            postgresql_where=text("status = 'failed'"),
        ),
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


class _Token:
    """The columns every token table shares: its project, the job it came from (if any), its name."""

    id: Mapped[int] = mapped_column(BigInteger, Identity(always=False), primary_key=True)
    name: Mapped[str] = mapped_column(Text, nullable=False)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), nullable=False, server_default=func.now())

    @classmethod
    def _shared(cls, table: str) -> tuple:
        return (
            UniqueConstraint("extraction_job_id", "name", name=f"{table}_extraction_job_id_key"),
            CheckConstraint("length(btrim(name)) BETWEEN 1 AND 200", name="name"),
            Index(f"ix_{table}_project_id", "project_id"),
            Index(f"ix_{table}_name_trgm", "name", postgresql_using="gin", postgresql_ops={"name": "gin_trgm_ops"}),  # tokens.search
        )


class ColorToken(_Token, Base):
    """A color: '#rrggbb' (lowercase) and an opacity from 0 to 1."""

    __tablename__ = "color_tokens"
    __table_args__ = (
        *_Token._shared("color_tokens"),
        CheckConstraint("hex ~ '^#[0-9a-f]{6}$'", name="hex"),
        CheckConstraint("opacity >= 0 AND opacity <= 1", name="opacity"),
    )

    project_id: Mapped[int] = mapped_column(Integer, ForeignKey("projects.id", ondelete="CASCADE"), nullable=False)
    extraction_job_id: Mapped[int | None] = mapped_column(Integer, ForeignKey("extraction_jobs.id", ondelete="SET NULL"), nullable=True)
    hex: Mapped[str] = mapped_column(Text, nullable=False)
    opacity: Mapped[Decimal] = mapped_column(Numeric(4, 3), nullable=False, server_default=text("1"))


class SpacingToken(_Token, Base):
    """A spacing: a value of 0 or more in px or rem."""

    __tablename__ = "spacing_tokens"
    __table_args__ = (
        *_Token._shared("spacing_tokens"),
        CheckConstraint("value >= 0", name="value"),
        CheckConstraint("unit IN ('px', 'rem')", name="unit"),
    )

    project_id: Mapped[int] = mapped_column(Integer, ForeignKey("projects.id", ondelete="CASCADE"), nullable=False)
    extraction_job_id: Mapped[int | None] = mapped_column(Integer, ForeignKey("extraction_jobs.id", ondelete="SET NULL"), nullable=True)
    value: Mapped[Decimal] = mapped_column(Numeric(10, 3), nullable=False)
    unit: Mapped[str] = mapped_column(Text, nullable=False, server_default="px")


class TypographyToken(_Token, Base):
    """A text style: font family, size and unit, weight, line height (a multiplier) and letter spacing."""

    __tablename__ = "typography_tokens"
    __table_args__ = (
        *_Token._shared("typography_tokens"),
        CheckConstraint("length(btrim(font_family)) BETWEEN 1 AND 200", name="font_family"),
        CheckConstraint("font_size > 0", name="font_size"),
        CheckConstraint("font_size_unit IN ('px', 'rem')", name="font_size_unit"),
        CheckConstraint("font_weight BETWEEN 1 AND 1000", name="font_weight"),
        CheckConstraint("line_height > 0", name="line_height"),
        CheckConstraint("letter_spacing_unit IN ('px', 'rem')", name="letter_spacing_unit"),
        Index("ix_typography_tokens_font_family_trgm", "font_family", postgresql_using="gin", postgresql_ops={"font_family": "gin_trgm_ops"}),
    )

    project_id: Mapped[int] = mapped_column(Integer, ForeignKey("projects.id", ondelete="CASCADE"), nullable=False)
    extraction_job_id: Mapped[int | None] = mapped_column(Integer, ForeignKey("extraction_jobs.id", ondelete="SET NULL"), nullable=True)
    font_family: Mapped[str] = mapped_column(Text, nullable=False)
    font_size: Mapped[Decimal] = mapped_column(Numeric(10, 3), nullable=False)
    font_size_unit: Mapped[str] = mapped_column(Text, nullable=False, server_default="px")
    font_weight: Mapped[int] = mapped_column(Integer, nullable=False, server_default=text("400"))
    line_height: Mapped[Decimal] = mapped_column(Numeric(6, 3), nullable=False, server_default=text("1.5"))
    letter_spacing: Mapped[Decimal] = mapped_column(Numeric(10, 3), nullable=False, server_default=text("0"))
    letter_spacing_unit: Mapped[str] = mapped_column(Text, nullable=False, server_default="px")


TOKEN_MODELS = {"color": ColorToken, "spacing": SpacingToken, "typography": TypographyToken}


# A failed job's reason: its error message with the parts that differ between jobs failing for the same reason
# (URLs, UUIDs, hex ids, numbers) folded to placeholders. The body of copythat_rollups.failure_reason(error_message).
FAILURE_REASON = r"""pg_catalog.left(
        pg_catalog.regexp_replace(
            pg_catalog.regexp_replace(
                pg_catalog.regexp_replace(
                    pg_catalog.regexp_replace(
                        pg_catalog.regexp_replace(
                            coalesce(nullif(pg_catalog.btrim(error_message), ''), '(no error message)'),
                            '[a-z][a-z0-9+.-]*://[^\s''",;)]+', '<url>', 'gi'),
                        '[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}', '<uuid>', 'gi'),
                    '(^|[^0-9a-z])(0x)?(?=[0-9a-f]*[a-f])(?=[0-9a-f]*[0-9])[0-9a-f]{6,}(?![0-9a-z])', '\1<hex>', 'gi'),
                '[0-9]+', '<n>', 'g'),
            '\s+', ' ', 'g'),
        500)"""
# The function ix_extraction_jobs_failure_reason indexes, as revision 9e4b2c7d1f60 makes it (with the rollups it
# keeps): a database made from the models (metadata.create_all) gets the function and the index, not the rollups.
FAILURE_REASON_FUNCTION = (
    "CREATE SCHEMA IF NOT EXISTS copythat_rollups;\n"
    "CREATE OR REPLACE FUNCTION copythat_rollups.failure_reason(error_message text) RETURNS text\n"
    f"LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$\n    SELECT {FAILURE_REASON}\n$$\n"
)
event.listen(ExtractionJob.__table__, "before_create", DDL(FAILURE_REASON_FUNCTION).execute_if(dialect="postgresql"))
