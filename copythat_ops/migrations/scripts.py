"""Where the migrations are and where a database is: Alembic's config, the scripts, heads, the current revision.

The floor the other migrations modules stand on.

Example:
    >>> current() in (None, *heads())
    True
"""

from __future__ import annotations

import io
import os
import re
import threading
from pathlib import Path

from alembic.config import Config
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy.engine import URL

from ..config import mask_text, normalize_url
from ..engine import connection, get_engine
from ..errors import ConfigError, MigrationError


INI_VAR = "COPYTHAT_ALEMBIC_INI"
CHECKOUT = Path(__file__).resolve().parents[2]
COMMAND_LOCK = threading.Lock()  # alembic.command keeps module-level state


def alembic_config(url: URL | str | None = None, *, output: io.StringIO | None = None) -> Config:
    """Return the Alembic Config of the project (alembic.ini of the checkout, or $COPYTHAT_ALEMBIC_INI).

    Example:
        >>> alembic_config().get_main_option("lock_timeout")
        '5s'
    """
    ini = Path(os.environ.get(INI_VAR) or CHECKOUT / "alembic.ini")
    if not ini.is_file():
        raise ConfigError(f"alembic.ini not found at {ini}", fix=f"run from a checkout of copythat-ops or set {INI_VAR}")
    cfg = Config(str(ini), output_buffer=output, stdout=output or io.StringIO())
    cfg.attributes["url"] = normalize_url(url) if url is not None else None
    cfg.attributes["configure_logger"] = False
    return cfg


def script_directory(cfg: Config | None = None) -> ScriptDirectory:
    """Return the migration scripts (alembic/ of the checkout) as Alembic's ScriptDirectory.

    Example:
        >>> script_directory().get_revision("c1a36d61036a").doc
        'Initial schema: projects and extraction_jobs'
    """
    return ScriptDirectory.from_config(cfg or alembic_config())


def heads() -> list[str]:
    """Return the newest revision(s) of the migration scripts.

    Example:
        >>> len(heads())      # one line of history: one head
        1
    """
    return list(script_directory().get_heads())


def current(*, url: URL | str | None = None) -> str | None:
    """Return the revision the database is at, or None when it has none.

    Example:
        >>> current() in (None, *heads())
        True
    """
    engine = get_engine(url)
    with connection(engine) as conn:
        heads = MigrationContext.configure(conn).get_current_heads()
    return ", ".join(heads) if heads else None


def revision_name(revision: str | None) -> str:
    return revision or "base (no revision applied)"


def explained(exc: Exception) -> MigrationError:
    message = mask_text(str(exc))
    known = ", ".join(r.revision for r in script_directory().walk_revisions()) or "none"
    missing = re.search(r"(?:Can't locate revision identified by|No such revision or branch) '([^']*)'", message)
    if missing:
        return MigrationError(
            f"no migration revision '{missing.group(1)}'",
            fix=f"use head, base, a relative step such as -1, or one of: {known} (see `copythat-ops migrate history`)",
        )
    if "Relative revision" in message or "didn't produce" in message or "not an ancestor" in message:
        return MigrationError(
            f"that step goes past the first or last revision ({message})",
            fix="`copythat-ops migrate current` shows where the database is; downgrade no lower than base",
        )
    return MigrationError(message, fix="see `copythat-ops migrate history` and the alembic output above")
