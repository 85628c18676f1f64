"""Trigram search: pg_trgm and GIN trigram indexes on project and token names and font families

Revision ID: 2a6198f96b79
Revises: b11509538edf
Create Date: 2026-11-30 23:50:00.000000

`copythat_ops.tokens.search` finds names like a text, typos tolerated
(`text <% name`, pg_trgm's word similarity); these indexes let it do so
without reading whole tables:
- the extension pg_trgm, `CREATE EXTENSION IF NOT EXISTS` (a trusted
  extension: the database's owner may create it, as on Neon);
- GIN indexes with gin_trgm_ops on projects.name, color_tokens.name,
  spacing_tokens.name, typography_tokens.name and typography_tokens.font_family.

Safe on a live database: each index is built CONCURRENTLY, outside a
transaction (writes go on; the build waits for transactions already running),
under alembic.ini's lock_timeout; an INVALID index an interrupted build left is
dropped and built again, so after a failure upgrade again.

The downgrade drops the indexes (CONCURRENTLY) and leaves the extension in
place, as other objects may use it; drop it by hand (DROP EXTENSION pg_trgm)
when nothing does.
"""
from typing import Sequence, Union

from alembic import op

# revision identifiers, used by Alembic.
revision: str = "2a6198f96b79"
down_revision: Union[str, None] = "b11509538edf"
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None

INDEXES = {
    "ix_projects_name_trgm": ("projects", "name"),
    "ix_color_tokens_name_trgm": ("color_tokens", "name"),
    "ix_spacing_tokens_name_trgm": ("spacing_tokens", "name"),
    "ix_typography_tokens_name_trgm": ("typography_tokens", "name"),
    "ix_typography_tokens_font_family_trgm": ("typography_tokens", "font_family"),
}

DROP_INVALID_INDEX = """
DO $$
BEGIN
    IF EXISTS (SELECT FROM pg_index WHERE indexrelid = to_regclass('{index}') AND NOT indisvalid) THEN
        EXECUTE 'DROP INDEX "{index}"';
    END IF;
END
$$
"""


def upgrade() -> None:
    with op.get_context().autocommit_block():
        op.execute("CREATE EXTENSION IF NOT EXISTS pg_trgm")
        for index, (table, column) in INDEXES.items():
            op.execute(DROP_INVALID_INDEX.format(index=index))
            op.execute(f'CREATE INDEX CONCURRENTLY IF NOT EXISTS "{index}" ON "{table}" USING gin ("{column}" gin_trgm_ops)')


def downgrade() -> None:
    with op.get_context().autocommit_block():
        for index in reversed(INDEXES):
            op.execute(f'DROP INDEX CONCURRENTLY IF EXISTS "{index}"')
