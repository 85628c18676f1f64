"""Schema migrations: Alembic's commands as functions, plus what the schema is now.

Every function takes an optional `url` (default: the configured database) and
behaves as the `alembic` command line does with the project's alembic.ini.

Example:
    >>> from copythat_ops import migrations
    >>> migrations.upgrade() == migrations.heads()[0]   # to head; returns the revision now applied
    True
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
from dataclasses import dataclass
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
from .errors import ConfigError, CopythatError, MigrationError

INI_VAR = "COPYTHAT_ALEMBIC_INI"
CHECKOUT = Path(__file__).resolve().parents[1]
# Session advisory lock taken by every online migration run ("copythat" in hex).
MIGRATION_LOCK_KEY = 0x636F707974686174
_DURATION = re.compile(r"^\d+\s*(ms|s|min|h)$")
_MISSING_TABLE = re.compile(r'(relation|column) ("[^"]+"|\S+) does not exist')
_command_lock = threading.Lock()  # alembic.command keeps module-level state


@contextmanager
def schema_required(purpose: str) -> Iterator[None]:
    """Turn "relation / column ... does not exist" from the block into a MigrationError saying to migrate first.

    Example:
        >>> with schema_required("the job analyses"):
        ...     int(run_query("SELECT count(*) AS n FROM extraction_jobs")["n"][0])
        500
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
    with _command_lock:
        try:
            fn(cfg, *args, **kwargs)
        except (CommandError, RevisionError) as exc:
            raise _explain(exc) from None
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
        where = f"the server is unreachable; the database was at {_named(before)} before this run"
        if done:
            where += f" and this run had applied {', '.join(rev for rev, _ in plan.steps[:done])}"
        left = (
            f"it may have left an invalid index {building.group(1)} (its CREATE INDEX CONCURRENTLY was cut short)"
            if building
            else "a revision that builds indexes CONCURRENTLY may have left an invalid index"
        )
    else:
        again = f"run `{rerun}` again (the server answers again)"
        where = f"the database is now at {_named(at)}"
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


def heads() -> list[str]:
    """Return the newest revision(s) of the migration scripts.

    Example:
        >>> heads() == [history()["revision"].iloc[-1]]
        True
    """
    return list(_script().get_heads())


def history(*, url: URL | str | None = None) -> pd.DataFrame:
    """Return every revision, oldest first: revision, down_revision, description, is_head, applied.

    Example:
        >>> history()[["revision", "applied"]].head(1).to_dict("records")
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


@dataclass(frozen=True)
class MigrationPlan:
    """What `upgrade` or `downgrade` to a target would do: where the database is, where it lands, each revision on the way.

    `steps` lists (revision, description) in the order they run: oldest first for
    an upgrade, newest first for a downgrade. Empty steps: nothing to do.

    Example:
        >>> plan = MigrationPlan("downgrade", "-1", "c0db8df4a585", "3ca76145171f", (("c0db8df4a585", "Extraction jobs record when they last changed state"),))
        >>> print(plan.summary())
        Would downgrade from c0db8df4a585 to 3ca76145171f, reverting 1 revision (newest first):
          c0db8df4a585  Extraction jobs record when they last changed state
    """

    action: str
    target: str
    current: str | None
    lands_on: str | None
    steps: tuple[tuple[str, str], ...]

    def summary(self, *, done: bool = False) -> str:
        """Return the plan in words: the revision the database lands on and each revision applied or reverted, or "nothing to do".

        Example:
            >>> MigrationPlan("upgrade", "head", "c0db8df4a585", "c0db8df4a585", ()).summary()
            'Nothing to do: the database is already at c0db8df4a585.'
        """
        if not self.steps:
            return f"Nothing to do: the database is already at {_named(self.current)}."
        verb, ing, order = {
            "upgrade": ("upgrade", "applying", "oldest first"),
            "downgrade": ("downgrade", "reverting", "newest first"),
        }[self.action]
        head = "Upgrading" if done and self.action == "upgrade" else "Downgrading" if done else f"Would {verb}"
        count = len(self.steps)
        lines = [f"{head} from {_named(self.current)} to {_named(self.lands_on)}, {ing} {count} revision{'s' if count > 1 else ''} ({order}):"]
        width = max(len(rev) for rev, _ in self.steps)
        lines += [f"  {rev:<{width}}  {doc}" for rev, doc in self.steps]
        return "\n".join(lines)


def _named(revision: str | None) -> str:
    return revision or "base (no revision applied)"


_RELATIVE = re.compile(r"^(?P<anchor>.*?)(?P<sign>[+-])(?P<steps>\d+)$")


def _chain(script: ScriptDirectory) -> list:
    """The revisions, oldest first; the history must be one line (no branches to merge)."""
    heads = script.get_heads()
    if len(heads) > 1:
        raise MigrationError(
            f"the migration scripts have {len(heads)} heads ({', '.join(heads)})",
            fix="merge them into one: alembic merge heads -m 'merge', then run again",
        )
    return list(reversed(list(script.walk_revisions())))


def _position(script: ScriptDirectory, chain: list, name: str) -> int:
    """Where `name` (a revision id or prefix, head, heads or base) is in the chain: 0 for base, 1 for the first revision."""
    if name in ("base", ""):
        return 0
    if name in ("head", "heads"):
        return len(chain)
    try:
        revision = script.get_revision(name)
    except (CommandError, RevisionError) as exc:
        raise _explain(exc) from None
    if revision is None:
        raise _explain(CommandError(f"No such revision or branch '{name}'"))
    return [r.revision for r in chain].index(revision.revision) + 1


def _plan(action: str, target: str, url: URL | str | None) -> MigrationPlan:
    cfg = alembic_config(url)
    script = _script(cfg)
    chain = _chain(script)
    ids = [r.revision for r in chain]
    at = current(url=url)
    if at is not None and at not in ids:
        raise MigrationError(
            f"the database is at revision {at}, which these migration scripts do not have (it was migrated by a newer copythat-ops, or by other scripts)",
            fix="update this checkout (git pull) to a version that has that revision, then run again",
        )
    now = ids.index(at) + 1 if at else 0
    target = str(target).strip()
    relative = _RELATIVE.match(target)
    if relative:
        anchor = relative["anchor"]
        start = now if anchor == "" else _position(script, chain, anchor)
        to = start + (1 if relative["sign"] == "+" else -1) * int(relative["steps"])
    else:
        to = _position(script, chain, target)
    where = f"the database is at {_named(at)}"
    if to < 0:
        raise MigrationError(
            f"{action} {target} goes past base: " + (f"{where}, {now} revision(s) above base" if now else "no revision is applied"),
            fix=f"go down at most {now} step(s): `copythat-ops migrate downgrade -{now}` or `copythat-ops migrate downgrade base` (base drops every table)"
            if now
            else "nothing is applied, so there is nothing to downgrade; `copythat-ops migrate upgrade` applies every revision",
        )
    if to > len(chain):
        raise MigrationError(
            f"{action} {target} goes past head: {where}, head is {ids[-1]} ({len(chain) - now} revision(s) to apply)",
            fix="upgrade to head: `copythat-ops migrate upgrade`" + (" (nothing to apply: the database is at head)" if now == len(chain) else ""),
        )
    lands_on = ids[to - 1] if to else None
    if action == "downgrade" and to > now:
        raise MigrationError(
            f"downgrade {target} would go forward: {_named(lands_on)} is ahead of the database ({where}); downgrade only reverts",
            fix=f"to apply it, run `copythat-ops migrate upgrade {lands_on}`",
        )
    if action == "upgrade" and to < now:
        raise MigrationError(
            f"upgrade {target} would go back: {_named(lands_on)} is older than the database's revision ({where}); upgrade only applies",
            fix=f"to revert to it, run `copythat-ops migrate downgrade {lands_on or 'base'}` (without --yes it shows what would be reverted and dropped)",
        )
    span = chain[now:to] if action == "upgrade" else list(reversed(chain[to:now]))
    return MigrationPlan(action, target, at, lands_on, tuple((r.revision, r.doc) for r in span))


def upgrade_plan(target: str = "head", *, url: URL | str | None = None) -> MigrationPlan:
    """Return what `upgrade(target)` would apply; raise MigrationError naming the fix for a target that is unknown, older or past head.

    Example:
        >>> upgrade_plan().steps        # at head: nothing to apply
        ()
    """
    return _plan("upgrade", target, url)


def downgrade_plan(target: str, *, url: URL | str | None = None) -> MigrationPlan:
    """Return what `downgrade(target)` would revert; raise MigrationError naming the fix for a target that is unknown, past base or ahead.

    `target`: a revision id or a unique prefix of one, `base`, or a relative step such as `-1`.

    Example:
        >>> plan = downgrade_plan("-1")     # describes; changes nothing
        >>> plan.lands_on == history()["revision"].iloc[-2]
        True
    """
    return _plan("downgrade", target, url)


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


def check(*, url: URL | str | None = None) -> list[str]:
    """Return the differences between the models and the database, one readable line each (empty when they agree), like `alembic check`.

    Example:
        >>> check()
        []
    """
    from alembic.autogenerate import compare_metadata

    from .models import Base

    engine = get_engine(url)
    with connection(engine) as conn:
        ctx = MigrationContext.configure(conn, opts={"compare_server_default": True, "target_metadata": Base.metadata})
        diffs = compare_metadata(ctx, Base.metadata)
    return [_describe(d) for diff in diffs for d in (diff if isinstance(diff, list) else [diff])]


def schema_status(*, url: URL | str | None = None) -> dict:
    """Return whether the database matches the models, and if not, why and the fix.

    Keys: ok, current, head, pending (revisions not applied), differences (readable
    lines), problem and fix (None when ok). A database behind head needs
    `migrate upgrade`; one at head that still differs needs a new migration.

    Example:
        >>> schema_status()["ok"]
        True
    """
    at = current(url=url)
    head = ", ".join(heads())
    todo = pending(url=url) if at is None or at in {r.revision for r in _script().walk_revisions()} else None
    differences = check(url=url)
    status = {"ok": False, "current": at, "head": head, "pending": [], "differences": differences, "problem": None, "fix": None}
    if todo is None:
        status["problem"] = f"the database is at revision {at}, which these migration scripts do not have, so the models here are older than it"
        status["fix"] = "update this checkout (git pull) to the version that made that revision, then check again"
    elif len(todo):
        status["pending"] = [f"{r.revision}  {r.description}" for r in todo.itertuples()]
        status["problem"] = (
            f"the database is behind: it is at {_named(at)} and head is {head}, {len(todo)} revision(s) not applied "
            f"({', '.join(todo['revision'])})" + ("; the differences listed are what they add" if differences else "")
        )
        status["fix"] = "run `copythat-ops migrate upgrade` (see the plan with `copythat-ops migrate pending`), then `copythat-ops migrate check` again"
    elif differences:
        status["problem"] = f"the database is at head ({head}) but the models differ from it in {len(differences)} place(s)"
        status["fix"] = "write a migration for those changes (alembic revision --autogenerate -m '...'), review it, then `copythat-ops migrate upgrade`"
    else:
        status["ok"] = True
    return status


def _describe(diff: tuple) -> str:
    """One autogenerate difference as a line a person reads: what, where, in the models or the database."""
    kind = diff[0]
    models, database = "in the models, not in the database", "in the database, not in the models"
    if kind in ("add_table", "remove_table"):
        return f"table {diff[1].name}: {models if kind == 'add_table' else database}"
    if kind in ("add_column", "remove_column"):
        column = diff[3]
        return f"column {diff[2]}.{column.name} ({_column(column)}): {models if kind == 'add_column' else database}"
    if kind in ("add_index", "remove_index"):
        index = diff[1]
        unique = "unique index" if index.unique else "index"
        return f"{unique} {index.name} on {index.table.name} ({', '.join(_names(index.expressions))}): {models if kind == 'add_index' else database}"
    if kind in ("add_fk", "remove_fk"):
        fk = diff[1]
        target = fk.elements[0].target_fullname.rsplit(".", 1)[0] if fk.elements else "?"
        columns = ", ".join(e.target_fullname.rsplit(".", 1)[-1] for e in fk.elements)
        return (
            f"foreign key {fk.name or '(unnamed)'} {fk.table.name}({', '.join(fk.column_keys)}) -> {target}({columns}): "
            f"{models if kind == 'add_fk' else database}"
        )
    if kind in ("add_constraint", "remove_constraint"):
        constraint = diff[1]
        label = type(constraint).__name__.replace("Constraint", "").lower() or "constraint"
        return f"{label} constraint {constraint.name or '(unnamed)'} on {constraint.table.name}: {models if kind == 'add_constraint' else database}"
    if kind.startswith("modify_"):
        _, _, table, column, _, old, new = diff
        what = {"modify_type": "type", "modify_nullable": "nullable", "modify_default": "default", "modify_comment": "comment"}.get(kind, kind[7:])
        if kind == "modify_nullable":
            old, new = ("NULL allowed" if v else "NOT NULL" for v in (old, new))
        elif kind == "modify_type":
            old, new = (_type(t) for t in (old, new))
        elif kind == "modify_default":
            old, new = (_default(d) or "none" for d in (old, new))
        return f"column {table}.{column} {what}: {old} in the database, {new} in the models"
    if kind in ("add_table_comment", "remove_table_comment"):
        return f"comment on table {diff[1].name}: {'differs' if kind == 'add_table_comment' else database}"
    return f"{kind.replace('_', ' ')}: " + ", ".join(str(getattr(part, "name", part)) for part in diff[1:] if part is not None)


def _type(type_) -> str:
    from sqlalchemy.dialects import postgresql

    try:
        return type_.compile(dialect=postgresql.dialect())
    except Exception:  # a type this dialect cannot render: its class name is still readable
        return type(type_).__name__


def _default(default) -> str | None:
    if default is None:
        return None
    arg = getattr(default, "arg", default)
    return str(getattr(arg, "text", arg))


def _column(column) -> str:
    parts = [_type(column.type), "NULL allowed" if column.nullable else "NOT NULL"]
    if column.server_default is not None:
        parts.append(f"default {_default(column.server_default)}")
    return ", ".join(parts)


def _names(expressions) -> list[str]:
    return [getattr(e, "name", None) or str(e) for e in expressions]


def schema_columns(*, url: URL | str | None = None) -> pd.DataFrame:
    """Return every column of the public schema's tables as the catalog has it.

    Columns: table_name, column_name, data_type, nullable, column_default, position.

    Example:
        >>> schema_columns().query("table_name == 'projects'")["column_name"].tolist()
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
