"""${message}

Revision ID: ${up_revision}
Revises: ${down_revision | comma,n}
Create Date: ${create_date}

Say here why this revision is safe on a live table (`copythat-ops migrate lint`
checks it with squawk; `copythat-ops migrate rehearse` runs it on a copy first):
- new columns nullable or with a constant default (no rewrite);
- indexes CONCURRENTLY inside `with op.get_context().autocommit_block():`,
  with if_not_exists / if_exists so a failed build can run again;
- foreign keys and checks NOT VALID, then VALIDATE CONSTRAINT in an autocommit block;
- large backfills in batches that commit on their own;
- renames and drops across two releases (expand, then contract).
A rule that does not apply here goes in SQUAWK_IGNORE with its reason.
"""
from typing import Sequence, Union

from alembic import op
import sqlalchemy as sa
${imports if imports else ""}

# revision identifiers, used by Alembic.
revision: str = ${repr(up_revision)}
down_revision: Union[str, None] = ${repr(down_revision)}
branch_labels: Union[str, Sequence[str], None] = ${repr(branch_labels)}
depends_on: Union[str, Sequence[str], None] = ${repr(depends_on)}

# squawk rules this revision turns off (`copythat-ops migrate lint`), each with its reason.
SQUAWK_IGNORE: dict[str, str] = {
% if "postgresql_not_valid=True" in (upgrades or ""):
    "ban-drop-constraint": "the foreign key is dropped only when a failed run left it half made, and added again at once",
% endif
}


def upgrade() -> None:
    ${upgrades if upgrades else "pass"}
% if "op." in context.get("concurrent_upgrades", ""):
    # Outside the transaction: indexes CONCURRENTLY, foreign keys validated; the table keeps taking writes.
    with op.get_context().autocommit_block():
        ${context.get("concurrent_upgrades").replace("\n    ", "\n        ")}
% endif


def downgrade() -> None:
    ${downgrades if downgrades else "pass"}
% if "op." in context.get("concurrent_downgrades", ""):
    # Outside the transaction: indexes CONCURRENTLY, foreign keys validated; the table keeps taking writes.
    with op.get_context().autocommit_block():
        ${context.get("concurrent_downgrades").replace("\n    ", "\n        ")}
% endif
