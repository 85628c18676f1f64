"""Schema migrations: Alembic's commands as functions, plus what the schema is now.

Every function takes an optional `url` (default: the configured database) and
behaves as the `alembic` command line does with the project's alembic.ini.

Example:
    >>> from copythat_ops import migrations
    >>> migrations.upgrade()            # to head; returns the revision now applied
    'c1a36d61036a'
    >>> migrations.pending().empty
    True
"""

from __future__ import annotations

import io
import os
import re
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pandas as pd
from alembic import command
from alembic.config import Config
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory
from alembic.script.revision import RevisionError
from alembic.util import CommandError
from sqlalchemy import text
from sqlalchemy.engine import URL, Connection
from sqlalchemy.exc import DBAPIError

from .config import mask_text, normalize_url
from .engine import connection, get_engine, run_query
from .errors import ConfigError, MigrationError

INI_VAR = "COPYTHAT_ALEMBIC_INI"
CHECKOUT = Path(__file__).resolve().parents[1]
# Session advisory lock taken by every online migration run ("copythat" in hex).
MIGRATION_LOCK_KEY = 0x636F707974686174
_DURATION = re.compile(r"^\d+\s*(ms|s|min|h)?$")
_MISSING_TABLE = re.compile(r'(relation|column) ("[^"]+"|\S+) does not exist')
_command_lock = threading.Lock()  # alembic.command keeps module-level state


@contextmanager
def schema_required(purpose: str) -> Iterator[None]:
    """Turn "relation / column ... does not exist" from the block into a MigrationError saying to migrate first.

    Example:
        >>> with schema_required("the job analyses"):      # doctest: +SKIP
        ...     run_query("SELECT count(*) FROM extraction_jobs")
    """
    try:
        yield
    except Exception as exc:
        missing = _MISSING_TABLE.search(str(getattr(exc, "orig", None) or exc))
        if not missing:
            raise
        raise MigrationError(
            f"the database lacks a {'table' if missing.group(1) == 'relation' else 'column'} {purpose} need ({missing.group(0)})",
            fix="migrate it to head: copythat-ops migrate upgrade",
        ) from None


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


def _script(cfg: Config | None = None) -> ScriptDirectory:
    return ScriptDirectory.from_config(cfg or alembic_config())


def lock_timeout(cfg: Config) -> str:
    """Return alembic.ini's `lock_timeout` (default 5s), checked to be a duration.

    Example:
        >>> lock_timeout(alembic_config())
        '5s'
    """
    value = cfg.get_main_option("lock_timeout", "5s").strip()
    if not _DURATION.match(value):
        raise ConfigError(f"alembic.ini lock_timeout '{value}' is not a duration", fix="write it like 5s, 500ms or 1min")
    return value


@contextmanager
def locked_for_migration(cfg: Config, *, lock_timeout: str = "5s") -> Iterator[Connection]:
    """Yield a connection holding the migration advisory lock, with `lock_timeout` set.

    Raises MigrationError at once when another process holds the lock.

    Example:
        >>> with locked_for_migration(alembic_config()) as conn:   # doctest: +SKIP
        ...     pass
    """
    engine = get_engine(cfg.attributes.get("url"))
    if "-pooler" in (engine.url.host or ""):
        raise MigrationError(
            f"{engine.url.host} is a connection pooler, which cannot hold the migration lock for a session",
            fix="migrate through the direct host: remove '-pooler' from the host name in DATABASE_URL (or pass --env-file with the direct URL)",
        )
    with connection(engine) as conn:
        if not conn.scalar(text("SELECT pg_try_advisory_lock(:k)"), {"k": MIGRATION_LOCK_KEY}):
            holder = conn.scalar(
                text(
                    "SELECT string_agg(pid::text, ', ') FROM pg_locks"
                    " WHERE locktype = 'advisory' AND granted"
                    " AND (classid::bigint << 32) + objid::bigint = :k"
                ),
                {"k": MIGRATION_LOCK_KEY},
            )
            conn.rollback()
            raise MigrationError(
                f"another migration is running on this database (backend pid {holder})",
                fix="wait for it to finish and run again; if it is stuck, end it with SELECT pg_terminate_backend(PID)",
            )
        try:
            conn.execute(text("SELECT set_config('lock_timeout', :t, false)"), {"t": lock_timeout})
            conn.commit()
            yield conn
        finally:
            if conn.in_transaction():
                conn.rollback()
            conn.execute(text("SELECT pg_advisory_unlock(:k)"), {"k": MIGRATION_LOCK_KEY})
            conn.execute(text("RESET lock_timeout"))
            conn.commit()


def _run(fn, cfg: Config, *args, **kwargs) -> None:
    with _command_lock:
        try:
            fn(cfg, *args, **kwargs)
        except (CommandError, RevisionError) as exc:
            raise _explain(exc) from None
        except DBAPIError as exc:
            raise _failed(exc) from None


def _failed(exc: DBAPIError) -> MigrationError:
    detail = mask_text((str(exc.orig).strip().splitlines() or ["?"])[0])
    if "lock timeout" in detail:
        fix = "a long transaction holds a lock on the table: find it with pg_stat_activity and retry when it ends, or raise lock_timeout in alembic.ini"
    else:
        fix = "correct the migration or the data it trips on, then run again"
    return MigrationError(f"the migration failed and was rolled back ({detail})", fix=fix)


def _explain(exc: Exception) -> MigrationError:
    message = mask_text(str(exc))
    known = ", ".join(r.revision for r in _script().walk_revisions()) or "none"
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


def _apply(fn, target: str, url: URL | str | None) -> str | None:
    _run(fn, alembic_config(url), target)
    return current(url=url)


def upgrade(target: str = "head", *, url: URL | str | None = None) -> str | None:
    """Apply migrations up to `target` (default head), each revision in its own transaction; return the revision now applied.

    Example:
        >>> upgrade("c1a36d61036a")
        'c1a36d61036a'
    """
    return _apply(command.upgrade, target, url)


def downgrade(target: str, *, url: URL | str | None = None) -> str | None:
    """Revert migrations down to `target` (a revision, `-1`, or `base`); return the revision now applied.

    Reverting drops what those revisions created, data included.

    Example:
        >>> downgrade("base") is None
        True
    """
    return _apply(command.downgrade, target, url)


def stamp(revision: str, *, url: URL | str | None = None) -> str | None:
    """Record `revision` as applied without running it (for a schema made some other way).

    Example:
        >>> stamp("c1a36d61036a")
        'c1a36d61036a'
    """
    return _apply(command.stamp, revision, url)


def current(*, url: URL | str | None = None) -> str | None:
    """Return the revision the database is at, or None when it has none.

    Example:
        >>> current() in (None, 'c1a36d61036a')
        True
    """
    engine = get_engine(url)
    with connection(engine) as conn:
        heads = MigrationContext.configure(conn).get_current_heads()
    return ", ".join(heads) if heads else None


def heads() -> list[str]:
    """Return the newest revision(s) of the migration scripts.

    Example:
        >>> heads()
        ['c1a36d61036a']
    """
    return list(_script().get_heads())


def history(*, url: URL | str | None = None) -> pd.DataFrame:
    """Return every revision, oldest first: revision, down_revision, description, is_head, applied.

    Example:
        >>> history()[["revision", "applied"]].to_dict("records")  # doctest: +SKIP
        [{'revision': 'c1a36d61036a', 'applied': True}]
    """
    script = _script()
    at = current(url=url)
    applied = set()
    if at:
        for head in at.split(", "):
            applied.update(r.revision for r in script.iterate_revisions(head, "base"))
    rows = [
        {
            "revision": rev.revision,
            "down_revision": rev.down_revision if isinstance(rev.down_revision, str | None) else ", ".join(rev.down_revision),
            "description": rev.doc,
            "is_head": rev.is_head,
            "applied": rev.revision in applied,
        }
        for rev in reversed(list(script.walk_revisions()))
    ]
    return pd.DataFrame(rows, columns=["revision", "down_revision", "description", "is_head", "applied"])


def pending(target: str = "head", *, url: URL | str | None = None) -> pd.DataFrame:
    """Return the revisions `upgrade(target)` would apply, in that order (the columns of `history()`).

    Example:
        >>> list(pending().columns)[:2]
        ['revision', 'down_revision']
    """
    frame = history(url=url)
    at = current(url=url)
    try:
        todo = {r.revision for r in _script().iterate_revisions(target, at.split(", ")[0] if at else "base")}
    except (CommandError, RevisionError) as exc:
        raise _explain(exc) from None
    return frame[frame["revision"].isin(todo)].reset_index(drop=True)


def sql(start: str | None = None, end: str = "head") -> str:
    """Return the SQL script that migrates from `start` (default: empty database) to `end`, without a database.

    When `end` is older than `start` the script downgrades. Review it, or feed it to a linter.

    Example:
        >>> "CREATE TABLE projects" in sql(None, "c1a36d61036a")
        True
    """
    output = io.StringIO()
    cfg = alembic_config(output=output)
    script = _script(cfg)
    going_down = start is not None and (end == "base" or end.startswith("-") or _is_older(script, end, start))
    span = f"{start}:{end}" if start else end
    _run(command.downgrade if going_down else command.upgrade, cfg, span, sql=True)
    return output.getvalue()


def _is_older(script: ScriptDirectory, rev: str, than: str) -> bool:
    try:
        return rev != than and rev in {r.revision for r in script.iterate_revisions(than, "base")}
    except (CommandError, RevisionError) as exc:
        raise _explain(exc) from None


def check(*, url: URL | str | None = None) -> list:
    """Return the differences between the models and the database (empty when they agree), like `alembic check`.

    Example:
        >>> check()
        []
    """
    from alembic.autogenerate import compare_metadata

    from .models import Base

    engine = get_engine(url)
    with connection(engine) as conn:
        ctx = MigrationContext.configure(conn, opts={"compare_server_default": True, "target_metadata": Base.metadata})
        return compare_metadata(ctx, Base.metadata)


def schema_columns(*, url: URL | str | None = None) -> pd.DataFrame:
    """Return every column of the public schema's tables as the catalog has it.

    Columns: table_name, column_name, data_type, nullable, column_default, position.

    Example:
        >>> schema_columns().query("table_name == 'projects'")["column_name"].tolist()  # doctest: +SKIP
        ['id', 'name', 'description', 'created_at', 'updated_at']
    """
    return run_query(
        """
        SELECT c.relname AS table_name,
               a.attname AS column_name,
               format_type(a.atttypid, a.atttypmod) AS data_type,
               NOT a.attnotnull AS nullable,
               pg_get_expr(d.adbin, d.adrelid) AS column_default,
               a.attnum AS position
        FROM pg_attribute a
        JOIN pg_class c ON c.oid = a.attrelid
        JOIN pg_namespace n ON n.oid = c.relnamespace
        LEFT JOIN pg_attrdef d ON d.adrelid = a.attrelid AND d.adnum = a.attnum
        WHERE n.nspname = 'public'
          AND c.relkind IN ('r', 'p')
          AND c.relname <> 'alembic_version'
          AND a.attnum > 0
          AND NOT a.attisdropped
        ORDER BY c.relname, a.attnum
        """,
        name="schema_columns",
        engine=get_engine(url),
    )


# The safe-migration steps, reachable from here too: migrations.lint(), migrations.revision(),
# migrations.rehearse(), migrations.backup() / restore() / backups() (modules lint, revisions,
# rehearse and backup).
from .backup import backup, backups, restore  # noqa: E402
from .lint import lint  # noqa: E402
from .rehearse import rehearse  # noqa: E402
from .revisions import revision  # noqa: E402
