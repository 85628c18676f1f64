"""Alembic's verbs as functions: upgrade, downgrade, stamp, and the offline SQL, under the migration lock.

Every function takes an optional `url` (default: the configured database) and
behaves as the `alembic` command line does with the project's alembic.ini.

Example:
    >>> upgrade() == heads()[0]   # to head; returns the revision now applied
    True
"""

from __future__ import annotations

import io
import re
from collections.abc import Iterator
from contextlib import contextmanager

from alembic import command
from alembic.config import Config
from alembic.script import ScriptDirectory
from alembic.script.revision import RevisionError
from alembic.util import CommandError
from sqlalchemy import text
from sqlalchemy.engine import URL, Connection
from sqlalchemy.exc import DBAPIError

from ..config import mask_text
from ..engine import connection, get_engine, run_query
from ..errors import ConfigError, CopythatError, MigrationError
from .plans import MigrationPlan, downgrade_plan, upgrade_plan
from .scripts import COMMAND_LOCK, alembic_config, current, explained, heads, revision_name, script_directory



# Session advisory lock taken by every online migration run ("copythat" in hex).
MIGRATION_LOCK_KEY = 0x636F707974686174

_DURATION = re.compile(r"^\d+\s*(ms|s|min|h)$")


def lock_timeout(cfg: Config) -> str:
    """Return alembic.ini's `lock_timeout` (default 5s), checked to be a duration.

    Example:
        >>> lock_timeout(alembic_config())
        '5s'
    """
    value = cfg.get_main_option("lock_timeout", "5s").strip()
    if value.isdigit():  # PostgreSQL would read milliseconds; the toolkit's rule is a unit always
        raise ConfigError(f"alembic.ini lock_timeout '{value}' has no unit", fix=f"give a unit, e.g. {value}s or {value}ms")
    if not _DURATION.match(value):
        raise ConfigError(f"alembic.ini lock_timeout '{value}' is not a duration", fix="write it like 5s, 500ms or 1min")
    return value


@contextmanager
def locked_for_migration(cfg: Config, *, lock_timeout: str = "5s") -> Iterator[Connection]:
    """Yield a connection holding the migration advisory lock, with `lock_timeout` set.

    Raises MigrationError at once when another process holds the lock.

    Example:
        >>> with locked_for_migration(alembic_config()) as conn:
        ...     conn.exec_driver_sql("SHOW lock_timeout").scalar()
        '5s'
    """
    engine = get_engine(cfg.attributes.get("url"))
    _refuse_pooler(engine.url)
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
            # A session the server dropped took its advisory lock with it: nothing to release, and the error that ended it stands.
            if not conn.invalidated:
                try:
                    if conn.in_transaction():
                        conn.rollback()
                    conn.execute(text("SELECT pg_advisory_unlock(:k)"), {"k": MIGRATION_LOCK_KEY})
                    conn.execute(text("RESET lock_timeout"))
                    conn.commit()
                except DBAPIError as exc:
                    if not exc.connection_invalidated:
                        raise


def _refuse_pooler(url: URL) -> None:
    if "-pooler" in (url.host or ""):
        raise MigrationError(
            f"{url.host} is a connection pooler, which cannot hold the migration lock for a session",
            fix="migrate through the direct host: remove '-pooler' from the host name in DATABASE_URL (or pass --env-file with the direct URL)",
        )


def _run(fn, cfg: Config, *args, **kwargs) -> None:
    with COMMAND_LOCK:
        try:
            fn(cfg, *args, **kwargs)
        except (CommandError, RevisionError) as exc:
            raise explained(exc) from None
        except Exception as exc:
            lost = _disconnect(exc)
            if lost is not None:
                raise _lost(lost, cfg) from None
            if isinstance(exc, DBAPIError):
                raise _failed(exc) from None
            raise


def _disconnect(exc: BaseException | None) -> DBAPIError | None:
    """The lost-connection error behind `exc` (itself, or what it was raised while handling), if the server went away."""
    seen = set()
    while exc is not None and id(exc) not in seen:
        seen.add(id(exc))
        if isinstance(exc, DBAPIError) and exc.connection_invalidated:
            return exc
        exc = exc.__cause__ or exc.__context__
    return None

_BUILDING = re.compile(r'CREATE\s+(?:UNIQUE\s+)?INDEX\s+CONCURRENTLY\s+(?:IF\s+NOT\s+EXISTS\s+)?"?([\w$]+)"?', re.IGNORECASE)


def _lost(exc: DBAPIError, cfg: Config) -> MigrationError:
    """Say what a run cut short by the server going away did: the revision running, where the database is, what may be left."""
    plan: MigrationPlan | None = cfg.attributes.get("plan")
    done = len(cfg.attributes.get("applied", ()))
    running = plan.steps[min(done, len(plan.steps) - 1)] if plan and plan.steps else None
    what = f"revision {running[0]} ({running[1]})" if running else "a migration"
    building = _BUILDING.search(exc.statement or "")
    detail = mask_text((str(exc.orig).strip().splitlines() or ["connection lost"])[0])
    url = cfg.attributes.get("url")
    rerun = "copythat-ops migrate upgrade"
    if plan and plan.action == "downgrade":
        rerun = f"copythat-ops migrate downgrade {plan.lands_on or 'base'}"
    elif plan and plan.lands_on not in heads():
        rerun += f" {plan.lands_on}"
    try:
        get_engine(url).dispose()  # the pooled sessions went with the server
        at = current(url=url)
        invalid = run_query(
            "SELECT i.indexrelid::regclass::text AS name FROM pg_index i JOIN pg_class c ON c.oid = i.indrelid"
            " WHERE NOT i.indisvalid AND c.relnamespace = 'public'::regnamespace ORDER BY 1",
            name="migrations.invalid_indexes",
            engine=get_engine(url),
            timeout="5s",
        )["name"].tolist()
    except (CopythatError, DBAPIError):
        again = f"when the server is back (`copythat-ops db check` says so), run `{rerun}` again"
        before = plan.current if plan else None
        where = f"the server is unreachable; the database was at {revision_name(before)} before this run"
        if done:
            where += f" and this run had applied {', '.join(rev for rev, _ in plan.steps[:done])}"
        left = (
            f"it may have left an invalid index {building.group(1)} (its CREATE INDEX CONCURRENTLY was cut short)"
            if building
            else "a revision that builds indexes CONCURRENTLY may have left an invalid index"
        )
    else:
        again = f"run `{rerun}` again (the server answers again)"
        where = f"the database is now at {revision_name(at)}"
        if invalid:
            left = f"it left {'an invalid index' if len(invalid) == 1 else 'invalid indexes'} {', '.join(invalid)} (a CREATE INDEX CONCURRENTLY cut short)"
        else:
            left = "it left nothing half-built (the revision's transaction was rolled back)"
    return MigrationError(
        f"the connection to the server was lost while {what} was running ({detail}); {where}; {left}",
        fix=f"{again}: each revision can run again"
        + (", and the re-run drops an invalid index and builds it again" if plan is None or plan.action == "upgrade" else ""),
    )


def _failed(exc: DBAPIError) -> MigrationError:
    detail = mask_text((str(exc.orig).strip().splitlines() or ["?"])[0])
    if "lock timeout" in detail:
        fix = (
            "a long transaction holds a lock on the table: find it with `copythat-ops monitor activity blocked`"
            " and run again when it ends, or raise lock_timeout in alembic.ini"
        )
    else:
        fix = "correct the migration or the data it trips on, then run again"
    kept = "what its transaction did was rolled back; batches and concurrent index builds it had committed stay, and a re-run goes on from them"
    return MigrationError(f"the migration failed ({detail}); {kept}", fix=fix)


def _apply(fn, target: str, url: URL | str | None, plan: MigrationPlan | None = None) -> str | None:
    cfg = alembic_config(url)
    cfg.attributes["plan"] = plan
    applied = cfg.attributes["applied"] = []
    cfg.attributes["on_version_apply"] = lambda **step: applied.append(step["step"])  # alembic/env.py hands it to Alembic
    _run(fn, cfg, target)
    return current(url=url)


def upgrade(target: str = "head", *, url: URL | str | None = None) -> str | None:
    """Apply migrations up to `target` (default head), each revision in its own transaction; return the revision now applied.

    The target is resolved first (`upgrade_plan`): an unknown one, one older than the
    database (that is a downgrade) or past head raises MigrationError with the fix.
    When the server goes away mid-run, the MigrationError names the revision that was
    running, where the database is now (or was, when it cannot be reached), what may be
    left (an invalid index), and to run the upgrade again.

    Example:
        >>> upgrade() == heads()[0]
        True
        >>> upgrade("c1a36d61036a")       # older than the database: refused, nothing changes
        Traceback (most recent call last):
        copythat_ops.errors.MigrationError: upgrade c1a36d61036a would go back: ... Fix: to revert to it, run `copythat-ops migrate downgrade c1a36d61036a` ...
    """
    _refuse_pooler(get_engine(url).url)
    plan = upgrade_plan(target, url=url)
    return _apply(command.upgrade, plan.lands_on, url, plan) if plan.steps else plan.current


def downgrade(target: str, *, url: URL | str | None = None) -> str | None:
    """Revert migrations down to `target` (a revision, `-1`, or `base`); return the revision now applied.

    Reverting drops what those revisions created, data included. The target is
    resolved first (`downgrade_plan`): an unknown one, past base or ahead of the
    database raises MigrationError with the fix, and nothing changes.

    Example:
        >>> downgrade("base") is None
        True
    """
    _refuse_pooler(get_engine(url).url)
    plan = downgrade_plan(target, url=url)
    return _apply(command.downgrade, plan.lands_on or "base", url, plan) if plan.steps else plan.current


def stamp(revision: str, *, url: URL | str | None = None) -> str | None:
    """Record `revision` as applied without running it (for a schema made some other way).

    Example:
        >>> stamp("c1a36d61036a")
        'c1a36d61036a'
    """
    return _apply(command.stamp, revision, url)


def sql(start: str | None = None, end: str = "head") -> str:
    """Return the SQL script that migrates from `start` (default: empty database) to `end`, without a database.

    When `end` is older than `start` the script downgrades. Review it, or feed it to a linter.

    Example:
        >>> "CREATE TABLE projects" in sql(None, "c1a36d61036a")
        True
    """
    output = io.StringIO()
    cfg = alembic_config(output=output)
    script = script_directory(cfg)
    going_down = start is not None and (end == "base" or end.startswith("-") or _is_older(script, end, start))
    span = f"{start}:{end}" if start else end
    _run(command.downgrade if going_down else command.upgrade, cfg, span, sql=True)
    return output.getvalue()


def _is_older(script: ScriptDirectory, rev: str, than: str) -> bool:
    try:
        return rev != than and rev in {r.revision for r in script.iterate_revisions(than, "base")}
    except (CommandError, RevisionError) as exc:
        raise explained(exc) from None
