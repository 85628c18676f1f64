"""Rehearse a migration on a copy of the database before it touches the real one.

The setup guide's safe procedure (branch, migrate the branch, test it, then migrate
main) as one call. Locally (any server where the role may create databases) the
copy is a clone: `CREATE DATABASE ... TEMPLATE` when nobody else is connected to
the source, else `pg_dump | pg_restore` (sessions on a template make CREATE
DATABASE fail). On Neon the copy is a branch (`neon.py`). On the copy:

1. each pending revision is applied on its own, timed, with the statements it sent,
   the table locks it held and the longest time a statement waited for a lock;
2. `check()` (models and schema agree, when the target is head) and the
   health checks (no CRIT) run;
3. the last revision is downgraded one step and upgraded again, so a downgrade
   that does not work is found before anyone needs it.

The copy is dropped at the end, also after a failure or Ctrl-C. A clone is named
`SOURCE_rehearsal_HOST_PID_XXXX` (HOST: six hex digits naming the machine) and noted
"rehearsal in progress" on the server, so a run killed outright (`kill -9`, a lost
terminal) is recognised by the next rehearsal: a clone whose run is gone from this
machine is dropped, its sessions ended, and a `LeftoverWarning` says so; one made on
another machine is named with the statement that drops it. The source
database is only read (or dumped). The clone has no other sessions, so lock waits
show what the migration waits for by itself (e.g. CONCURRENTLY waiting on older
transactions), not what production traffic would add.

Example:
    >>> from copythat_ops.migrations.rehearsal import rehearse
    >>> report = rehearse()
    >>> bool(report.attrs["ok"])
    True
"""

from __future__ import annotations

import os
import re
import threading
import time
import uuid
import warnings
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from datetime import UTC, datetime

import pandas as pd
from sqlalchemy import create_engine, event, text
from sqlalchemy.engine import URL, Engine
from sqlalchemy.exc import DBAPIError
from sqlalchemy.pool import NullPool

from ..config import mask_text, mask_url, normalize_url
from ..engine import database_url, dispose_engines, drop_database_forced, get_engine
from ..errors import CopythatError, InputError, MigrationError
from ..monitor import health, verdict
from ..recovery import dumps
from ..recovery.dumps import LeftoverWarning
from ..recovery.neon import Neon
from ..recovery.pgtools import HOST, host_tag, mark, parse_mark, run_is_alive
from ..validate import database_name
from .compare import check
from .plans import history, pending
from .scripts import current, heads
from .verbs import downgrade, upgrade

COLUMNS = ["revision", "description", "seconds", "statements", "locks_taken", "longest_lock_wait_s", "downgrade_ok", "checks_ok", "error"]
SAMPLE_SECONDS = 0.02  # how often lock waits are sampled
LOCK_TIMEOUT = "5s"  # every statement on the maintenance database gives up waiting for a lock after this
STATEMENT_TIMEOUT = "30min"  # ... and runs at most this long (CREATE DATABASE ... TEMPLATE copies the files)
# SOURCE_rehearsal_HOST_PID_XXXX: the clone of a run, which the next run can tell is gone.
_CLONE = re.compile(r"^(?P<source>.*)_rehearsal_(?P<host>[0-9a-f]{6})_(?P<pid>\d+)_[0-9a-f]{4}$")
_LEGACY_CLONE = re.compile(r"^(?P<source>.*)_rehearsal_[0-9a-f]{8}$")  # made before clones carried their run
KEPT = "copythat-ops rehearsal clone kept"
DUMP_FOLDER = "copythat-rehearsal-"  # + PID-: the temporary folder of a clone made by pg_dump
# The toolkit's and Alembic's own bookkeeping, not the migration's statements.
_HOUSEKEEPING = re.compile(
    r"pg_try_advisory_lock|pg_advisory_unlock|set_config\('lock_timeout'|RESET lock_timeout|FROM pg_locks|alembic_version|pg_catalog\.pg_class",
    re.IGNORECASE,
)
_LOCKS_HELD = """
    SELECT c.relname, l.mode
    FROM pg_locks l
    JOIN pg_class c ON c.oid = l.relation
    JOIN pg_namespace n ON n.oid = c.relnamespace
    WHERE l.pid = pg_backend_pid()
      AND l.locktype = 'relation'
      AND l.granted
      AND c.relkind IN ('r', 'p')
      AND n.nspname NOT IN ('pg_catalog', 'information_schema', 'pg_toast')
      AND c.relname <> 'alembic_version'
    ORDER BY c.relname, l.mode
"""
# Locks other sessions on the clone hold (the migration's, seen while a statement outside a transaction runs).
_LOCKS_SEEN = _LOCKS_HELD.replace("l.pid = pg_backend_pid()", "l.pid IN (SELECT pid FROM pg_stat_activity WHERE datname = :db AND pid <> pg_backend_pid())")
_LONGEST_WAIT = """
    SELECT coalesce(max(extract(epoch FROM clock_timestamp() - l.waitstart)), 0)
    FROM pg_locks l
    JOIN pg_stat_activity a ON a.pid = l.pid
    WHERE NOT l.granted
      AND a.datname = :db
"""
# The strongest lock first: what blocks the most traffic.
_STRENGTH = [
    "AccessExclusiveLock",
    "ExclusiveLock",
    "ShareRowExclusiveLock",
    "ShareLock",
    "ShareUpdateExclusiveLock",
    "RowExclusiveLock",
    "RowShareLock",
    "AccessShareLock",
]


def rehearse(target: str = "head", *, url: URL | str | None = None, keep: bool = False, clone_name: str | None = None) -> pd.DataFrame:
    """Migrate a clone of the database at `url` (default: the configured one) to `target`; return one row per revision.

    Columns: revision, description, seconds, statements, locks_taken (table: strongest lock
    held; in a transaction after every statement, outside one sampled every 20 ms), longest_lock_wait_s, downgrade_ok (tested for the last revision), checks_ok,
    error. `report.attrs` holds ok (everything passed), clone, method ("template" or
    "dump"), seconds (wall time) and health (the clone's verdict). The clone is dropped at
    the end unless `keep=True`.

    Example:
        >>> report = rehearse("head")
        >>> list(report.columns[:3]), bool(report.attrs["ok"])
        (['revision', 'description', 'seconds'], True)
    """
    started = time.perf_counter()
    source = database_url() if url is None else get_engine(url).url
    todo = revisions_to_rehearse(target, source)
    name = clone_name or clone_name_for(source.database)
    rows: list[dict] = []
    attrs = {"ok": False, "clone": name, "method": None, "seconds": None, "health": None, "source": mask_url(source), "leftovers": []}
    admin = admin_engine(source)
    try:
        attrs["leftovers"] = leftover_clones(admin, source.database) + leftover_dump_folders()
        with admin.connect() as conn:
            taken = conn.scalar(text("SELECT 1 FROM pg_database WHERE datname = :n"), {"n": name})
    except BaseException:
        admin.dispose()
        raise
    if taken:
        admin.dispose()
        raise InputError(f"database {name} already exists; a rehearsal copies into a new database and drops it", fix="leave clone_name unset or name a database that does not exist", params="clone_name")
    try:
        attrs["method"] = clone_database(source, name, admin=admin)
        _note(admin, name, mark("rehearsal", f"clone of {source.database}"))
        rows, attrs["health"] = rehearse_copy(source.set(database=name), todo, target)
        attrs["ok"] = bool(rows) and all(not r["error"] for r in rows)
    finally:
        if not keep:
            drop_clone(name, admin=admin)
        else:
            with suppress(DBAPIError):
                _note(admin, name, f"{KEPT}: clone of {source.database}, made by pid {os.getpid()} at {datetime.now(UTC):%Y-%m-%d %H:%M:%S} UTC")
        admin.dispose()
        attrs["seconds"] = round(time.perf_counter() - started, 3)
    report = pd.DataFrame(rows, columns=COLUMNS)
    report.attrs.update(attrs)
    return report


def rehearse_copy(copy: URL, todo: list[tuple[str, str]], target: str) -> tuple[list[dict], str | None]:
    """Apply `todo` (revision, description) one at a time to the copy at `copy`, then check it and
    downgrade / upgrade its last revision; return the report rows and the copy's health verdict."""
    rows: list[dict] = []
    for revision, description in todo:
        rows.append(_apply(revision, description, copy))
        if rows[-1]["error"]:
            return rows, None
    if not rows:
        return rows, None
    last = rows[-1]
    last["checks_ok"], level, problem = _checks(copy, target)
    last["downgrade_ok"], down_error = _down_and_up(copy, last["revision"])
    last["error"] = "; ".join(e for e in (problem, down_error) if e) or None
    return rows, level


def summary(report: pd.DataFrame) -> str:
    """One line on a rehearsal report: passed or failed, how long, which copy.

    Example:
        >>> summary(pd.DataFrame(columns=COLUMNS))
        'rehearsal FAILED: 0 revision(s)'
    """
    attrs = report.attrs
    verdict = "passed" if attrs.get("ok") else "FAILED"
    how = f" on {attrs['method']}" if str(attrs.get("method", "")).startswith("Neon") else f" on a clone made by {attrs['method']}" if attrs.get("method") else ""
    took = f" in {attrs['seconds']:.1f} s" if attrs.get("seconds") is not None else ""
    return f"rehearsal {verdict}: {len(report)} revision(s){took}{how}"


def revisions_to_rehearse(target: str, source: URL) -> list[tuple[str, str]]:
    todo = pending(target, url=source)
    if not todo.empty:
        return list(zip(todo["revision"], todo["description"]))
    at = current(url=source)
    if at is None:
        raise MigrationError("the database has no revision applied and nothing to apply", fix="name a target revision, e.g. head")
    frame = history(url=source)
    row = frame[frame["revision"] == at.split(", ")[0]]
    return [(at, row["description"].iloc[0] if len(row) else "")]  # nothing pending: rehearse the last one's downgrade


def clone_name_for(source: str) -> str:
    """The name of a new clone of database `source`: `SOURCE_rehearsal_HOST_PID_XXXX`, at most 63 characters.

    Example:
        >>> bool(_CLONE.match(clone_name_for("copythat")))
        True
    """
    tail = f"_rehearsal_{host_tag()}_{os.getpid()}_{uuid.uuid4().hex[:4]}"
    return source[: 63 - len(tail)] + tail


def leftover_clones(admin: Engine, source: str | None = None) -> list[dict]:
    """Find rehearsal clones on the server whose run is over: drop those made on this machine, say how to drop the others.

    With `source`, only clones of that database (a rehearsal of it cleans up after its own earlier runs).

    A clone is its run's while the run's process lives (pid and host from the clone's note,
    else from its name); kept clones (`keep=True`) and those of live runs are left alone.
    Returns one dict per leftover: clone, pid, host, sessions, action ("dropped" or "left: another host").
    A `LeftoverWarning` says what was done.

    Example:
        >>> leftover_clones(admin_engine(database_url()))
        []
    """
    with admin.connect() as conn:
        found = conn.execute(
            text(
                """
                SELECT d.datname,
                       shobj_description(d.oid, 'pg_database') AS note,
                       (SELECT count(*) FROM pg_stat_activity a WHERE a.datname = d.datname) AS sessions
                FROM pg_database d
                WHERE d.datname LIKE '%\\_rehearsal\\_%'
                   OR shobj_description(d.oid, 'pg_database') LIKE 'copythat-ops rehearsal%'
                ORDER BY d.datname
                """
            )
        ).all()
    leftovers = []
    for row in found:
        note, named, legacy = parse_mark(row.note), _CLONE.match(row.datname), _LEGACY_CLONE.match(row.datname)
        if (row.note or "").startswith(KEPT):
            continue
        if source is not None and not _clone_of(source, row.datname, row.note):
            continue
        if note is not None:
            pid, host, since = note["pid"], note["host"], note["since"]
            alive = run_is_alive(pid, host, since)
        elif named is not None:
            pid, since = int(named["pid"]), None
            mine = named["host"] == host_tag()
            host = HOST if mine else f"tagged {named['host']}"
            alive = run_is_alive(pid) if mine else None
        elif legacy is not None and not row.note:
            pid, host, since, alive = None, "unknown", None, None
        else:
            continue
        if alive:
            continue
        entry = {"clone": row.datname, "pid": pid, "host": host, "sessions": int(row.sessions), "action": None}
        run = f"pid {pid} on host {host}" if pid else "a run of an earlier version"
        if alive is False:
            try:
                drop_clone(row.datname, admin=admin)
            except DBAPIError as exc:  # e.g. a session of a role this one may not end: the rehearsal goes on, the leftover is named
                entry["action"] = "left: could not drop"
                warnings.warn(
                    f"the rehearsal clone {row.datname} was left by an interrupted run ({run}, gone) but could not be dropped "
                    f"({mask_text(str(exc.orig).strip().splitlines()[0])}); drop it as its owner or a superuser: DROP DATABASE \"{row.datname}\" WITH (FORCE)",
                    LeftoverWarning,
                    stacklevel=2,
                )
                leftovers.append(entry)
                continue
            entry["action"] = "dropped"
            ended = f"; ended its {entry['sessions']} session(s) still running" if entry["sessions"] else ""
            warnings.warn(f"dropped the rehearsal clone {row.datname} left by an interrupted run ({run}, gone){ended}", LeftoverWarning, stacklevel=2)
        else:
            entry["action"] = "left: another host"
            busy = f", {entry['sessions']} session(s) on it" if entry["sessions"] else ""
            warnings.warn(
                f"the rehearsal clone {row.datname} was made by {run}{busy}; when that run is over, drop it: DROP DATABASE \"{row.datname}\" WITH (FORCE)",
                LeftoverWarning,
                stacklevel=2,
            )
        leftovers.append(entry)
    return leftovers


def _clone_of(source: str, clone: str, note: str | None) -> bool:
    """Whether `clone` is a rehearsal clone of database `source`, by its note or else by its name (the source, cut to fit)."""
    if note and note.startswith("copythat-ops rehearsal"):
        return note.endswith(f"clone of {source}")
    prefix = clone.rsplit("_rehearsal_", 1)[0]
    return bool(prefix) and source.startswith(prefix)


def leftover_dump_folders(where: str | None = None) -> list[dict]:
    """Remove the temporary dump folders (`copythat-rehearsal-PID-*` in the temp folder) of rehearsals whose process is gone.

    Returns one dict per folder removed: clone (the folder), pid, host, sessions (0), action "removed folder".
    A `LeftoverWarning` says what was removed.

    Example:
        >>> leftover_dump_folders("no-such-folder")
        []
    """
    import shutil
    import tempfile
    from pathlib import Path

    base = Path(where or tempfile.gettempdir())
    removed = []
    for folder in sorted(base.glob(f"{DUMP_FOLDER}*-*")) if base.is_dir() else []:
        found = re.match(rf"^{DUMP_FOLDER}(\d+)-", folder.name)
        if not found or not folder.is_dir():
            continue
        pid = int(found[1])
        try:
            since = folder.stat().st_mtime
        except FileNotFoundError:
            continue
        if run_is_alive(pid, since=since) is not False:
            continue
        size = sum(f.stat().st_size for f in folder.rglob("*") if f.is_file())
        shutil.rmtree(folder, ignore_errors=True)
        removed.append({"clone": str(folder), "pid": pid, "host": HOST, "sessions": 0, "action": "removed folder"})
        warnings.warn(f"removed the dump folder {folder} ({size / 1048576:.1f} MB) left by an interrupted rehearsal (pid {pid}, gone)", LeftoverWarning, stacklevel=2)
    return removed


def _note(admin: Engine, name: str, note: str) -> None:
    with admin.connect() as conn:
        conn.execute(text(f'COMMENT ON DATABASE "{database_name(name)}" IS :note'), {"note": note})


def admin_engine(source: URL) -> Engine:
    """An AUTOCOMMIT engine on the same server as `source` but another database (CREATE DATABASE ... TEMPLATE needs the source idle).

    Its sessions give up waiting for a lock after 5 s and on a statement after 30 min."""
    connect_args = {} if "connect_timeout" in source.query else {"connect_timeout": 10}
    for maintenance in ("postgres", "template1"):
        if maintenance == source.database:
            continue
        engine = create_engine(source.set(database=maintenance), poolclass=NullPool, isolation_level="AUTOCOMMIT", connect_args=connect_args)
        event.listen(engine, "connect", _timeouts)
        try:
            with engine.connect():
                return engine
        except DBAPIError:
            engine.dispose()
    raise MigrationError(
        f"cannot connect to the maintenance database (postgres or template1) of {mask_url(source)} to make the clone",
        fix="let the role connect to the postgres database, or rehearse on Neon",
    )


def _timeouts(dbapi_connection, record) -> None:
    with dbapi_connection.cursor() as cursor:
        cursor.execute(f"SET lock_timeout = '{LOCK_TIMEOUT}'; SET statement_timeout = '{STATEMENT_TIMEOUT}'; SET application_name = 'copythat-ops'")
    dbapi_connection.commit()


def clone_database(source: URL, name: str, *, admin: Engine) -> str:
    """Make database `name` a copy of `source`; return how: "template" or "dump" (other sessions were on the source)."""
    dispose_engines()  # our own pooled connections to the source would count as other sessions
    with admin.connect() as conn:
        others = conn.scalar(
            text("SELECT count(*) FROM pg_stat_activity WHERE datname = :db AND pid <> pg_backend_pid()"), {"db": source.database}
        )
        if not others:
            try:
                conn.execute(text(f'CREATE DATABASE "{database_name(name)}" TEMPLATE "{database_name(source.database)}"'))
                return "template"
            except DBAPIError as exc:
                if "being accessed by other users" not in str(exc.orig):
                    raise _clone_failed(exc, source, name) from None
    _clone_by_dump(source, name)
    return "dump"


def _clone_by_dump(source: URL, name: str) -> None:
    import tempfile

    with tempfile.TemporaryDirectory(prefix=f"{DUMP_FOLDER}{os.getpid()}-") as folder:
        try:
            taken = dumps.backup(url=source, folder=folder)
        except CopythatError as exc:
            raise MigrationError(
                f"the rehearsal could not copy {source.database} (other sessions are connected to it, so the copy is made with pg_dump): {exc.problem}",
                fix=exc.fix,
            ) from None
        try:
            dumps.restore(taken["path"], database=name, url=source)
        except CopythatError as exc:
            if "permission denied" in str(exc).lower():
                raise _permission(source, name) from None
            raise


def _clone_failed(exc: DBAPIError, source: URL, name: str) -> MigrationError:
    detail = mask_text(str(exc.orig).strip().splitlines()[0])
    if "permission denied" in detail:
        return _permission(source, name)
    if "No space left" in detail or "disk full" in detail.lower():
        return MigrationError(f"the server has no disk space for the clone {name} ({detail}); nothing was changed", fix="free space on the server, or rehearse on Neon")
    return MigrationError(f"could not make the clone {name} of {source.database} ({detail}); nothing was changed", fix="correct what the server names, or rehearse on Neon")


def _permission(source: URL, name: str) -> MigrationError:
    return MigrationError(
        f"role {source.username} may not create databases, so the clone {name} cannot be made; nothing was changed",
        fix=f"grant it (ALTER ROLE {source.username} CREATEDB) or rehearse on a Neon branch (rehearse_on_neon / `migrate rehearse --neon`)",
    )


def drop_clone(name: str, *, admin: Engine) -> None:
    """Drop the clone (its sessions closed first, an autovacuum worker on it waited out); nothing happens when it does not exist."""
    dispose_engines()
    with admin.connect() as conn:
        drop_database_forced(conn, name)


def _apply(revision: str, description: str, clone: URL) -> dict:
    row = {c: None for c in COLUMNS} | {"revision": revision, "description": description}
    with _observed(clone) as seen:
        began = time.perf_counter()
        try:
            upgrade(revision, url=clone)
        except CopythatError as exc:
            row["error"] = exc.problem
        row["seconds"] = round(time.perf_counter() - began, 3)
    row["statements"] = seen["statements"]
    row["locks_taken"] = ", ".join(f"{table}: {mode}" for table, mode in sorted(seen["locks"].items())) or "none"
    row["longest_lock_wait_s"] = round(seen["longest_wait"], 3)
    return row


def _checks(clone: URL, target: str) -> tuple[bool, str | None, str | None]:

    problems = []
    if target == "head" or target in heads():
        diffs = check(url=clone)
        if diffs:
            problems.append(f"models and schema differ after the upgrade ({len(diffs)} difference(s): {mask_text(str(diffs[0]))[:120]})")
    report = health(engine=get_engine(clone))
    level = verdict(report)
    if level == "CRIT":
        failing = ", ".join(report.loc[report["status"] == "CRIT", "check"])
        problems.append(f"health CRIT on the clone ({failing})")
    return not problems, level, "; ".join(problems) or None


def _down_and_up(clone: URL, revision: str) -> tuple[bool, str | None]:
    try:
        downgrade("-1", url=clone)
        upgrade(revision, url=clone)
    except CopythatError as exc:
        return False, f"downgrade one step and upgrade again failed: {exc.problem}"
    return True, None


@contextmanager
def _observed(clone: URL) -> Iterator[dict]:
    """Count the statements sent to the clone, the table locks they held, and sample lock waits meanwhile."""
    seen: dict = {"statements": 0, "locks": {}, "longest_wait": 0.0}
    engine = get_engine(clone)

    def after(conn, cursor, statement, parameters, context, executemany):
        if _HOUSEKEEPING.search(statement):
            return
        seen["statements"] += 1
        if conn.in_transaction() and not _autocommit(conn):
            _record_locks(cursor, seen["locks"])

    event.listen(engine, "after_cursor_execute", after)
    stop = threading.Event()
    sampler = threading.Thread(target=_sample_waits, args=(clone, stop, seen), daemon=True)
    sampler.start()
    try:
        yield seen
    finally:
        stop.set()
        sampler.join()
        event.remove(engine, "after_cursor_execute", after)


def _autocommit(conn) -> bool:
    return bool(getattr(conn.connection.dbapi_connection, "autocommit", False))


def _record_locks(cursor, locks: dict) -> None:
    try:
        with cursor.connection.cursor() as probe:
            probe.execute(_LOCKS_HELD)
            _strongest(locks, probe.fetchall())
    except Exception:  # an aborted transaction: the statement's own error is what the report shows
        pass


def _strongest(locks: dict, rows) -> None:
    for table, mode in rows:
        held = locks.get(table)
        if mode in _STRENGTH and (held is None or _STRENGTH.index(mode) < _STRENGTH.index(held)):
            locks[table] = mode


def _sample_waits(clone: URL, stop: threading.Event, seen: dict) -> None:
    engine = create_engine(clone, poolclass=NullPool, isolation_level="AUTOCOMMIT")
    try:
        with engine.connect() as conn:
            while not stop.wait(SAMPLE_SECONDS):
                waited = float(conn.scalar(text(_LONGEST_WAIT), {"db": clone.database}) or 0)
                seen["longest_wait"] = max(seen["longest_wait"], waited)
                _strongest(seen["locks"], conn.execute(text(_LOCKS_SEEN), {"db": clone.database}).all())
    except DBAPIError:
        pass
    finally:
        engine.dispose()


def rehearse_on_neon(target: str = "head", *, keep: bool = False, url: URL | str | None = None, client: Neon | None = None,
                     parent_id: str | None = None) -> pd.DataFrame:
    """`rehearse()` on a Neon branch: branch the parent (default: the default branch) at its head,
    migrate the branch, check it, downgrade / upgrade its last revision, delete the branch (unless `keep`).

    The database and role are those of `url` (default: DATABASE_URL). Same report as `rehearse()`;
    attrs["clone"] is the branch id.

    Example:
        >>> report = rehearse_on_neon()
        >>> report.attrs["ok"], report.attrs["method"]
        (True, 'Neon branch')
    """
    started = time.perf_counter()
    client = client or Neon()
    client.project()  # a rejected key or an unknown project stops here, before anything is made
    source = database_url() if url is None else normalize_url(url)
    todo = revisions_to_rehearse(target, source)
    name = f"rehearsal-{datetime.now(UTC).strftime('%Y%m%d-%H%M%S')}"
    attrs = {"ok": False, "clone": None, "method": "Neon branch", "seconds": None, "health": None, "source": mask_url(source)}
    rows: list[dict] = []
    dispose_engines()  # hold no idle connection to the parent while the branch is made
    made = client.create_branch(name, parent_id=parent_id, wait=False)
    branch_id = made["branch"]["id"]
    attrs["clone"] = branch_id
    try:
        client.wait(made.get("operations", []))
        copy = client.connection_uri(branch_id, source.database, source.username)
        rows, attrs["health"] = rehearse_copy(copy, todo, target)
        attrs["ok"] = bool(rows) and all(not r["error"] for r in rows)
    except BaseException:
        dispose_engines()
        if not keep:
            with suppress(CopythatError):  # the first error is the one to report
                client.delete_branch(branch_id)
        raise
    dispose_engines()
    if not keep:
        client.delete_branch(branch_id)
    attrs["seconds"] = round(time.perf_counter() - started, 3)
    report = pd.DataFrame(rows, columns=COLUMNS)
    report.attrs.update(attrs)
    return report
