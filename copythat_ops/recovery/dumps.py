"""Logical backups before a change: `pg_dump -Fc` into a git-ignored folder, restored only into a new database.

A backup file is named `DATABASE__REVISION__YYYYMMDDTHHMMSSZ.dump` (REVISION is
`base` when none is applied) under `.copythat/backups` of the checkout, or
$COPYTHAT_BACKUP_DIR. pg_dump and pg_restore are taken to match the server: the
embedded wheel's own (PostgreSQL 18) for a server of that version, otherwise the
Debian client of the server's major version (/usr/lib/postgresql/NN/bin), else
the nearest newer one found; each result names the binary used. Every secret of
the URL reaches them in the environment, never on the command line.

Nothing waits forever: pg_dump gives up on a table lock after `lock_wait_timeout`
(5 s) and the error names the session holding it; every statement has a lock and
statement timeout. Nothing is left behind unexplained: while pg_dump writes, the
file is `NAME.dump.writer-PID@HOST.partial`, and pg_dump dies with the command; the
next `backup()` or `backups()` removes the partial file of a run that is gone and
says so (a `LeftoverWarning`). A restore marks its new database "restore in
progress" until it is done, so running the same restore again after an
interruption replaces the half-made database instead of refusing it.

Example:
    >>> from copythat_ops.recovery import dumps
    >>> dumps.backup_dir().name
    'backups'
"""

from __future__ import annotations

import json
import os
import re
import time
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pandas as pd
from alembic.migration import MigrationContext
from sqlalchemy import text
from sqlalchemy.engine import URL
from sqlalchemy.exc import DBAPIError

from ..config import libpq_url, mask_url
from ..display import readable_bytes
from ..engine import connect_error, connection, database_url, dispose_engines, drop_database_forced, get_engine
from ..errors import ConfigError, CopythatError, InputError, LockTimeout
from ..validate import database_name, duration
from .pgtools import (
    HOST, client_env, describe_holder, last_line, lock_holders, mark, parse_mark, pg_tool, run_is_alive, run_tool, server_major, wants_tls,
)

BACKUP_DIR_VAR = "COPYTHAT_BACKUP_DIR"
CHECKOUT = Path(__file__).resolve().parents[2]
MAGIC = b"PGDMP"  # the first bytes of every pg_dump custom-format archive
LOCK_WAIT_TIMEOUT = "5s"  # how long pg_dump, and every statement here, waits for a lock
STATEMENT_TIMEOUT = "60s"  # CREATE / DROP / COMMENT ON DATABASE and the lookups around them
LEGACY_PARTIAL_AGE = timedelta(minutes=10)  # a `.dump.partial` without its writer's name, untouched this long, is a leftover
_NAME = re.compile(r"^(?P<database>.+)__(?P<revision>[^_]+)__(?P<stamp>\d{8}T\d{6}Z)\.dump$")
_PARTIAL = re.compile(r"^(?P<final>.+\.dump)\.writer-(?P<pid>\d+)@(?P<host>[^/]+)\.partial$")
_LOCKED_TABLES = re.compile(r"LOCK TABLE (?P<tables>.+?) IN ACCESS SHARE MODE")  # one table, or (pg_dump 18) a list of them
_LOCK_TIMEOUT = re.compile(r"canceling statement due to (lock|statement) timeout|lock timeout", re.IGNORECASE)
COLUMNS = ["file", "database", "revision", "taken_at", "size_bytes", "size", "path"]


class LeftoverWarning(UserWarning):
    """Something an interrupted earlier run left behind was found: removed when it was safe, else how to remove it."""


def backup_dir(folder: str | os.PathLike | None = None) -> Path:
    """Return the backup folder: `folder`, else $COPYTHAT_BACKUP_DIR, else `.copythat/backups` of the checkout (git-ignored).

    Example:
        >>> backup_dir("/tmp/b").as_posix()
        '/tmp/b'
    """
    if folder is not None:
        return Path(folder).expanduser()
    if os.environ.get(BACKUP_DIR_VAR):
        return Path(os.environ[BACKUP_DIR_VAR]).expanduser()
    return CHECKOUT / ".copythat" / "backups"


def _writable(folder: Path) -> Path:
    try:
        folder.mkdir(parents=True, exist_ok=True)
        probe = folder / f".probe-{os.getpid()}"
        probe.write_bytes(b"")
        probe.unlink()
    except OSError as exc:
        raise ConfigError(
            f"the backup folder {folder} cannot be written ({exc.strerror or exc})",
            fix=f"pass a writable folder (--folder, or folder=) or set {BACKUP_DIR_VAR}",
        ) from None
    return folder


def backup(*, url: URL | str | None = None, folder: str | os.PathLike | None = None, lock_wait_timeout: str | timedelta = LOCK_WAIT_TIMEOUT) -> dict:
    """Dump the database at `url` (default: the configured one) with `pg_dump -Fc`; return what was written.

    pg_dump gives up when a table stays locked longer than `lock_wait_timeout` (default 5s);
    the error then names the session that holds the lock. Partial files of earlier runs that
    are gone are removed first (a `LeftoverWarning` says which).

    Returns a dict: path, database, revision, size_bytes, seconds, tool (the pg_dump used).

    Example:
        >>> taken = backup(folder="backups")
        >>> taken["path"].name.endswith(".dump"), taken["revision"] is not None
        (True, True)
    """
    wait = duration(lock_wait_timeout, name="lock_wait_timeout", positive=True)
    target = database_url() if url is None else get_engine(url).url
    where = _writable(backup_dir(folder))
    leftover_partials(where)
    tool = pg_tool("pg_dump", server_major(target), tls=wants_tls(target))
    revision = _revision(target, wait)
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    path = where / f"{target.database}__{(revision or 'base').replace(', ', '+')}__{stamp}.dump"
    partial = where / f"{path.name}.writer-{os.getpid()}@{HOST}.partial"
    sidecar = figures_path(path)
    started = time.perf_counter()
    try:
        with _pinned(target, wait) as pinned:
            with client_env(target) as env:
                done = run_tool(
                    [str(tool.path), "--format=custom", f"--lock-wait-timeout={_ms(wait)}", f"--snapshot={pinned.snapshot}", f"--file={partial}",
                     *pinned.row_security(), "--dbname", libpq_url(target)],
                    env=env,
                )
            if done.returncode != 0:
                locked = _LOCKED_TABLES.search(done.stderr or "")
                if locked and _LOCK_TIMEOUT.search(done.stderr or ""):
                    raise _lock_wait_error(target, [t.strip() for t in locked["tables"].split(",")], wait, "pg_dump")
                raise ConfigError(f"pg_dump of {mask_url(target)} failed ({last_line(done.stderr)}); nothing was kept", fix="correct what pg_dump names and run again")
            figures = pinned.figures()
        sidecar.write_text(json.dumps(figures, indent=1, default=str))
        partial.rename(path)
    except BaseException:
        sidecar.unlink(missing_ok=True)
        raise
    finally:
        partial.unlink(missing_ok=True)
    return {
        "path": path,
        "database": target.database,
        "revision": revision,
        "size_bytes": path.stat().st_size,
        "seconds": round(time.perf_counter() - started, 3),
        "tool": str(tool),
        "tables": len(figures["tables"]),
    }


def figures_path(path: str | os.PathLike) -> Path:
    """Return the file beside a backup holding what `backup()` counted in the dumped snapshot: `NAME.dump.json`.

    Example:
        >>> figures_path("/b/copythat__abc__20261130T120000Z.dump").name
        'copythat__abc__20261130T120000Z.dump.json'
    """
    path = Path(path)
    return path.with_name(path.name + ".json")


def backup_figures(path: str | os.PathLike) -> dict | None:
    """Return what `backup()` recorded with the backup at `path`, or None for a backup made without them (an older version's).

    A dict: database, revision, taken_at (ISO 8601, UTC, the moment of the dumped snapshot),
    checksum (how each table's checksum is computed) and tables, each schema, table, rows,
    key (its primary key columns, empty without one) and checksum (None without a primary key).

    Example:
        >>> backup_figures("no-such.dump") is None
        True
    """
    sidecar = figures_path(path)
    try:
        return json.loads(sidecar.read_text())
    except FileNotFoundError:
        return None
    except (OSError, ValueError) as exc:
        raise InputError(f"{sidecar} cannot be read ({exc})", fix=f"delete {sidecar.name}: the backup is then restored without its figures", params="path") from None


# The tables a dump holds (and a restore makes again): not the catalog's, not an extension's own, with their primary key columns.
# copythat_rollups is left out: its counts are derived from extraction_jobs (checked here) and how they split between
# compacted rows and deltas depends on when a compaction ran; jobs.rollup_drift() checks them against the jobs.
_TABLES = """
    SELECT n.nspname AS schema,
           c.relname AS "table",
           coalesce(
               (SELECT array_agg(a.attname::text ORDER BY k.position)
                FROM pg_index AS i
                CROSS JOIN LATERAL unnest(i.indkey) WITH ORDINALITY AS k(attnum, position)
                JOIN pg_attribute AS a ON a.attrelid = i.indrelid AND a.attnum = k.attnum
                WHERE i.indrelid = c.oid
                  AND i.indisprimary),
               '{}'::text[]
           ) AS key
    FROM pg_class AS c
    JOIN pg_namespace AS n ON n.oid = c.relnamespace
    WHERE c.relkind IN ('r', 'p')
      AND n.nspname NOT IN ('pg_catalog', 'information_schema')
      AND n.nspname NOT LIKE 'pg\\_toast%'
      AND n.nspname NOT LIKE 'pg\\_temp\\_%'
      AND n.nspname <> 'copythat_rollups'
      AND c.relpersistence <> 't'
      AND NOT EXISTS (SELECT 1 FROM pg_depend AS d WHERE d.classid = 'pg_class'::regclass AND d.objid = c.oid AND d.deptype = 'e')
    ORDER BY schema, "table"
"""
CHECKSUM = "sum(hashtextextended(ROW(primary key columns)::text, 0)) over every row: order-independent, one pass, no sort"
# The same text for the same key on any server and session: what ROW(...)::text writes depends on these.
_STABLE_TEXT = {"timezone": "UTC", "datestyle": "ISO, YMD", "intervalstyle": "postgres", "extra_float_digits": "3", "bytea_output": "hex"}
FIGURES_TIMEOUT = "30min"  # the longest one table's count and checksum may take


def table_figures(conn) -> list[dict]:
    """Return each table's row count and primary-key checksum, read on `conn` in its current transaction (see `CHECKSUM`).

    Example:
        >>> from copythat_ops.engine import connection
        >>> with connection() as conn:
        ...     found = table_figures(conn)
        >>> [t["rows"] for t in found if t["table"] == "projects"]
        [10]
    """
    for name, value in _STABLE_TEXT.items():
        conn.execute(text("SELECT set_config(:name, :value, true)"), {"name": name, "value": value})
    found = []
    for row in conn.execute(text(f"/* copythat-ops:backup.tables */ {_TABLES}")).all():
        table = f'"{_quote(row.schema)}"."{_quote(row.table)}"'
        key = list(row.key)
        checksum = f"sum(hashtextextended(ROW({', '.join(chr(34) + _quote(c) + chr(34) for c in key)})::text, 0)::numeric)::text" if key else "NULL::text"
        counted = conn.execute(text(f"/* copythat-ops:backup.figures */ SELECT count(*) AS n, {checksum} AS checksum FROM {table}")).one()
        found.append({"schema": row.schema, "table": row.table, "rows": int(counted.n), "key": key, "checksum": counted.checksum if key else None})
    return found


def _quote(identifier: str) -> str:
    return identifier.replace('"', '""')


class _Pinned:
    """An open REPEATABLE READ transaction whose snapshot pg_dump uses (`--snapshot`): the figures are of exactly what was dumped."""

    def __init__(self, conn, snapshot: str, target: URL) -> None:
        self.conn, self.snapshot, self.target = conn, snapshot, target

    def row_security(self) -> list[str]:
        """pg_dump's flag for a role that row-level security applies to: it reads every row through the operator policy.

        A member of the application's role (copythat_app) would see one organization's rows only: refused.
        """
        subject, tenant = self.conn.execute(
            text(
                "SELECT NOT (r.rolsuper OR r.rolbypassrls) AS subject,"
                " to_regrole('copythat_app') IS NOT NULL AND pg_has_role(current_user, 'copythat_app', 'USAGE') AS tenant"
                " FROM pg_roles AS r WHERE r.rolname = current_user ORDER BY 1"
            )
        ).one()
        if subject and tenant:
            raise ConfigError(
                f"{mask_url(self.target)} logs in as a member of copythat_app, which row-level security limits to one "
                "organization's rows: its backup would be partial; nothing was written",
                fix="back up as the tables' owner, or a role with BYPASSRLS that is not a member of copythat_app",
            )
        return ["--enable-row-security"] if subject else []

    def figures(self) -> dict:
        conn = self.conn
        facts = conn.execute(text("SELECT now() AS taken_at, current_database() AS database, to_regclass('public.alembic_version') IS NOT NULL AS has_version")).one()
        heads = [r[0] for r in conn.execute(text("SELECT version_num FROM public.alembic_version ORDER BY 1")).all()] if facts.has_version else []
        return {
            "database": facts.database,
            "revision": ", ".join(heads) or None,
            "taken_at": facts.taken_at.astimezone(UTC).isoformat(),
            "checksum": CHECKSUM,
            "tables": table_figures(conn),
        }


@contextmanager
def _pinned(target: URL, wait: timedelta) -> Iterator[_Pinned]:
    with connection(get_engine(target)) as conn:
        conn = conn.execution_options(isolation_level="REPEATABLE READ")
        conn.begin()
        try:
            conn.execute(text("SET TRANSACTION READ ONLY"))
            conn.execute(
                text("SELECT set_config('lock_timeout', :lock, true), set_config('statement_timeout', :statement, true)"),
                {"lock": f"{_ms(wait)}ms", "statement": FIGURES_TIMEOUT},
            )
            snapshot = conn.scalar(text("SELECT pg_export_snapshot()"))
            try:
                yield _Pinned(conn, snapshot, target)
            except DBAPIError as exc:  # counting after pg_dump: a lock taken since, held past the lock timeout
                if getattr(exc.orig, "pgcode", None) == "55P03":
                    raise _lock_wait_error(target, [], wait, "counting the rows of the backup") from None
                raise
        finally:
            conn.rollback()


def _ms(wait: timedelta) -> int:
    return max(1, int(wait / timedelta(milliseconds=1)))


def _revision(target: URL, wait: timedelta) -> str | None:
    """The revision(s) the database is at, read under the lock timeout (alembic_version may be locked too)."""
    with connection(get_engine(target)) as conn:
        try:
            conn.execute(
                text("SELECT set_config('lock_timeout', :lock, true), set_config('statement_timeout', :statement, true)"),
                {"lock": f"{_ms(wait)}ms", "statement": STATEMENT_TIMEOUT},
            )
            heads = MigrationContext.configure(conn).get_current_heads()
        except DBAPIError as exc:
            if getattr(exc.orig, "pgcode", None) in ("55P03", "57014"):
                raise _lock_wait_error(target, ["alembic_version"], wait, "reading the revision") from None
            raise
        finally:
            conn.rollback()
    return ", ".join(heads) or None


def _lock_wait_error(target: URL, tables: list[str], wait: timedelta, what: str) -> LockTimeout:
    """The error for a wait on a lock that ran out: who holds it, what it is doing, and how to end it."""
    seconds = f"{wait.total_seconds():g} s"
    try:
        holders = lock_holders(target, tables)
    except (CopythatError, DBAPIError):
        holders = []
    named_tables = sorted({h["table_name"] for h in holders})
    shown = ", ".join(named_tables) if named_tables else tables[0] if len(tables) == 1 else f"one of {len(tables)} tables" if tables else "a table"
    if not holders:
        return LockTimeout(
            f"{what} of {mask_url(target)} gave up after {seconds} waiting for a lock on {shown}; the session holding it has ended since; nothing was kept",
            fix="run the command again",
        )
    pid = holders[0]["pid"]
    named = "; ".join(describe_holder(h) for h in holders[:3]) + (f"; and {len(holders) - 3} more" if len(holders) > 3 else "")
    return LockTimeout(
        f"{what} of {mask_url(target)} gave up after {seconds} waiting for a lock on {shown}: {named}; nothing was kept",
        fix=f"wait for pid {pid} to end its transaction and run again, or end it with `copythat-ops monitor terminate {pid} --apply` (SQL: SELECT pg_terminate_backend({pid}))",
    )


def leftover_partials(folder: str | os.PathLike | None = None) -> list[dict]:
    """Find the partial backup files in the folder; remove those whose writer is gone; return them all.

    Each: file, size_bytes, pid, host, action ("removed", "being written", "left: another host"
    or "left: recent"). A `LeftoverWarning` says what was removed, and what was left and why.

    Example:
        >>> leftover_partials("no-such-folder")
        []
    """
    where = backup_dir(folder)
    found = []
    for path in sorted(where.glob("*.partial")) if where.is_dir() else []:
        match = _PARTIAL.match(path.name)
        try:
            status = path.stat()
        except FileNotFoundError:  # its writer finished meanwhile
            continue
        row = {"file": str(path), "size_bytes": status.st_size, "pid": None, "host": None, "action": None}
        size = readable_bytes(status.st_size)
        if match:
            row["pid"], row["host"] = int(match["pid"]), match["host"]
            alive = run_is_alive(row["pid"], row["host"], since=status.st_mtime)
            if alive is None:
                row["action"] = "left: another host"
                warnings.warn(
                    f"a partial backup {path} ({size}) was written by pid {row['pid']} on host {row['host']}; when that run is over, delete the file",
                    LeftoverWarning,
                    stacklevel=3,
                )
            elif alive:
                row["action"] = "being written"
            else:
                row["action"] = "removed"
        elif path.name.endswith(".dump.partial"):
            if time.time() - status.st_mtime > LEGACY_PARTIAL_AGE.total_seconds():
                row["action"] = "removed"
            else:
                row["action"] = "left: recent"
                warnings.warn(
                    f"a partial backup {path} ({size}) changed in the last {LEGACY_PARTIAL_AGE.seconds // 60} min and names no writer; when no backup is running, delete the file",
                    LeftoverWarning,
                    stacklevel=3,
                )
        else:
            continue
        if row["action"] == "removed":
            path.unlink(missing_ok=True)
            writer = f" (pid {row['pid']}, gone)" if row["pid"] else ""
            warnings.warn(f"removed a partial backup left by an interrupted run{writer}: {path} ({size})", LeftoverWarning, stacklevel=3)
        found.append(row)
    return found


def backups(folder: str | os.PathLike | None = None) -> pd.DataFrame:
    """Return the backups in the folder, newest first: file, database, revision, taken_at, size_bytes, size, path.

    Partial files of runs that are gone are removed first (a `LeftoverWarning` says which).

    Example:
        >>> list(backups("no-such-folder").columns)[:3]
        ['file', 'database', 'revision']
    """
    where = backup_dir(folder)
    leftover_partials(where)
    rows = []
    for path in sorted(where.glob("*.dump")) if where.is_dir() else []:
        match = _NAME.match(path.name)
        if not match:
            continue
        size = path.stat().st_size
        rows.append(
            {
                "file": path.name,
                "database": match["database"],
                "revision": None if match["revision"] == "base" else match["revision"].replace("+", ", "),
                "taken_at": pd.Timestamp(datetime.strptime(match["stamp"], "%Y%m%dT%H%M%SZ").replace(tzinfo=UTC)),
                "size_bytes": size,
                "size": readable_bytes(size),
                "path": str(path),
            }
        )
    frame = pd.DataFrame(rows, columns=COLUMNS)
    return frame.sort_values("taken_at", ascending=False, kind="stable").reset_index(drop=True)


def is_dump(path: str | os.PathLike) -> bool:
    """Return True when the file starts as a pg_dump custom-format archive does (what `backup()` writes).

    Example:
        >>> is_dump(__file__)
        False
    """
    try:
        with open(path, "rb") as handle:
            return handle.read(len(MAGIC)) == MAGIC
    except OSError:
        return False


def restore(path: str | os.PathLike, *, database: str, url: URL | str | None = None) -> dict:
    """Restore a backup into a NEW database `database` on the server at `url` (default: the configured one).

    The file is read through first (`pg_restore --list`, then all of it): a truncated or
    foreign file is refused before any database is made. Never overwrites: an existing
    database of that name is refused, nothing changed, except a half-made restore left by an
    interrupted run of this function (marked "restore in progress" on the server), which is
    dropped and made again (a `LeftoverWarning` says so). The restore runs in one transaction;
    when it fails the new database is dropped again.
    Returns a dict: database, url (masked), seconds, tool (the pg_restore used).

    Example:
        >>> taken = backup(folder="backups")
        >>> restore(taken["path"], database="copythat_restored_doc")["database"]
        'copythat_restored_doc'
        >>> drop_database("copythat_restored_doc")
    """
    source = Path(path).expanduser()
    if not source.is_file():
        raise InputError(f"no backup file {source}", fix="name a file listed by backups() (`copythat-ops db backups`)", params="path")
    if not is_dump(source):
        raise InputError(
            f"{source} is not a pg_dump custom-format backup (it does not start with PGDMP); no database was made",
            fix="name a .dump file listed by backups() (`copythat-ops db backups`)",
            params="path",
        )
    if not database or not database.strip():
        raise InputError("restore needs the name of a new database", fix="pass database=NAME (a name not in use)", params="database")
    database_name(database)
    server = database_url() if url is None else get_engine(url).url
    target = server.set(database=database)
    tool = pg_tool("pg_restore", server_major(server), tls=wants_tls(server))
    _check_archive(tool, source)
    _create_database(server, database, source)
    started = time.perf_counter()
    try:
        with client_env(target, options=f"-c lock_timeout={LOCK_WAIT_TIMEOUT}") as env:
            done = run_tool(
                [str(tool.path), "--single-transaction", "--exit-on-error", "--no-owner", "--no-privileges", "--dbname", libpq_url(target), str(source)],
                env=env,
            )
    except BaseException:  # Ctrl-C: the half-made database goes too
        _drop_half_made(server, database, "the restore was interrupted")
        raise
    if done.returncode != 0:
        _drop_half_made(server, database, f"pg_restore into {database} failed ({last_line(done.stderr)})")
        raise ConfigError(
            f"pg_restore into {database} failed ({last_line(done.stderr)}) and the new database was dropped",
            fix="correct what pg_restore names (a server older than the backup's, a missing extension or role) and run again",
        )
    _admin(server, f'COMMENT ON DATABASE "{database}" IS NULL')
    return {"database": database, "url": mask_url(target), "seconds": round(time.perf_counter() - started, 3), "tool": str(tool)}


def _check_archive(tool, source: Path) -> None:
    """Read the whole archive with pg_restore (its table of contents, then every entry to /dev/null); refuse it when that fails."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("PG")}
    for command in ([str(tool.path), "--list", str(source)], [str(tool.path), f"--file={os.devnull}", str(source)]):
        done = run_tool(command, env=env)
        if done.returncode == 0:
            continue
        reason = last_line(done.stderr)
        how = "`pg_restore --list`" if command[1] == "--list" else "reading it through with pg_restore"
        if re.search(r"unsupported version \(1\.\d+\) in file header", reason):
            raise ConfigError(
                f"{source} was written by a newer pg_dump than {tool} can read ({reason}); no database was made",
                fix="install the newer PostgreSQL client (apt-get install postgresql-client-NN) or restore on a newer server",
            )
        raise InputError(
            f"{source} is not a complete pg_dump custom-format backup ({how} fails: {reason}); no database was made",
            fix="name a complete .dump file listed by backups() (`copythat-ops db backups`); a file cut short by an interrupted backup or copy cannot be restored",
            params="path",
        )


def _create_database(server: URL, database: str, source: Path) -> None:
    """Make the new database, marked "restore in progress"; a half-made restore of a run that is gone is made again."""
    with connection(get_engine(server)) as conn, conn.begin():
        conn.execute(text("SELECT set_config('statement_timeout', :s, true), set_config('lock_timeout', :l, true)"), {"s": STATEMENT_TIMEOUT, "l": LOCK_WAIT_TIMEOUT})
        found = conn.execute(
            text(
                """
                SELECT shobj_description(d.oid, 'pg_database') AS note,
                       (SELECT count(*) FROM pg_stat_activity a WHERE a.datname = d.datname) AS sessions
                FROM pg_database d
                WHERE d.datname = :d
                ORDER BY 1
                """
            ),
            {"d": database},
        ).first()
    if found is not None:
        note = parse_mark(found.note)
        if not note or note["what"] != "restore":
            raise InputError(
                f"{database} already exists on the server, and restore only makes new databases",
                fix="give database another name (one not in use), or drop that one yourself first if it is really unwanted",
                params="database",
            )
        alive = run_is_alive(note["pid"], note["host"], note["since"])
        since = f"since {note['since']:%Y-%m-%d %H:%M:%S} UTC" if note["since"] else ""
        if alive or (alive is None and found.sessions):
            raise InputError(
                f"a restore into {database} is running now (pid {note['pid']} on host {note['host']} {since})",
                fix="wait for it to finish, or stop it and run this again",
                params="database",
            )
        _drop(server, database)
        warnings.warn(
            f"{database} was a half-made restore left by an interrupted run (pid {note['pid']} on host {note['host']} {since}, {note['detail'] or 'file unknown'}); dropped it to restore again",
            LeftoverWarning,
            stacklevel=3,
        )
    try:
        _admin(server, f'CREATE DATABASE "{database}" TEMPLATE template0')
    except DBAPIError as exc:
        if getattr(exc.orig, "pgcode", None) != "42501":  # insufficient_privilege
            raise
        raise ConfigError(
            f"role {server.username} may not create databases (permission denied to create {database})",
            fix=f"restore as a role that may (ALTER ROLE {server.username} CREATEDB, or the database owner's role)",
        ) from None
    _admin(server, f'COMMENT ON DATABASE "{database}" IS :note', {"note": mark("restore", f"from {source.name}")})


def _drop_half_made(server: URL, database: str, why: str) -> None:
    try:
        _drop(server, database)
    except (CopythatError, DBAPIError):
        raise ConfigError(
            f"{why}, and the half-made database {database} could not be dropped (the server cannot be reached)",
            fix="run the same restore again once the server is back: it recognises its half-made database and makes it again",
        ) from None


def drop_database(database: str, *, url: URL | str | None = None) -> None:
    """Drop a database made by `restore()` or a rehearsal (closing its sessions); nothing happens when it is gone.

    Example:
        >>> drop_database("copythat_no_such_database")
    """
    server = database_url() if url is None else get_engine(url).url
    if database == server.database:
        raise InputError(f"{database} is the database in use; it is never dropped here", fix="name another database", params="database")
    _drop(server, database)


def _drop(server: URL, database: str) -> None:
    dispose_engines()
    with _admin_connection(server) as conn:
        drop_database_forced(conn, database)


def _admin(server: URL, statement: str, params: dict | None = None) -> None:
    """Run one statement outside a transaction, under the lock and statement timeouts."""
    with _admin_connection(server) as conn:
        conn.execute(text(statement), params or {})


@contextmanager
def _admin_connection(server: URL) -> Iterator:
    """An autocommit connection under the lock and statement timeouts (reset afterwards: the connection is pooled)."""
    engine = get_engine(server).execution_options(isolation_level="AUTOCOMMIT")
    try:
        conn = engine.connect()
    except DBAPIError as exc:
        raise connect_error(exc, server) from None
    with conn:
        conn.execute(text(f"SET lock_timeout = '{LOCK_WAIT_TIMEOUT}'"))
        conn.execute(text(f"SET statement_timeout = '{STATEMENT_TIMEOUT}'"))
        try:
            yield conn
        finally:
            conn.execute(text("RESET lock_timeout"))
            conn.execute(text("RESET statement_timeout"))


PRUNE_COLUMNS = ["file", "database", "taken_at", "size_bytes", "size", "keep", "action", "path"]


def prune_backups(
    folder: str | os.PathLike | None = None,
    *,
    keep_daily: int = 7,
    keep_weekly: int = 4,
    keep_monthly: int = 6,
    database: str | None = None,
    apply: bool = False,
) -> pd.DataFrame:
    """Return the backups of the folder with what retention does to each; delete the others only with `apply=True`.

    Grandfather-father-son, per database, by UTC dates: the newest backup of each of the
    newest `keep_daily` days (default 7), of each of the newest `keep_weekly` ISO weeks (4)
    and of each of the newest `keep_monthly` months (6) is kept. Always kept as well: the
    newest backup of each database, and its newest backup that passed a drill (`drill()`),
    whatever its age. Partial files (a backup being written) are never touched; a deleted
    backup's figures file goes with it. With `database`, only that database's backups.

    Columns: file, database, taken_at, size_bytes, size, keep (why it is kept, "" when not),
    action ("keep", "delete", or "deleted" once `apply=True` removed it), path.

    Example:
        >>> plan = prune_backups("no-such-folder")
        >>> plan.columns.tolist()[:3], len(plan)
        (['file', 'database', 'taken_at'], 0)
    """
    from ..validate import number

    for name, value in (("keep_daily", keep_daily), ("keep_weekly", keep_weekly), ("keep_monthly", keep_monthly)):
        number(value, name=name, integer=True)
    listed = backups(folder)
    if database is not None:
        listed = listed[listed["database"] == database]
    rows = []
    for name, group in listed.groupby("database", sort=True):
        group = group.sort_values("taken_at", ascending=False, kind="stable")
        reasons: dict[str, list[str]] = {path: [] for path in group["path"]}
        reasons[group["path"].iloc[0]].append("newest")
        drilled = [p for p in group["path"] if _passed_drill(p)]
        if drilled:
            reasons[drilled[0]].append("newest that passed a drill")
        stamps = pd.to_datetime(group["taken_at"], utc=True)
        for label, keep, period in (("daily", keep_daily, stamps.dt.strftime("%Y-%m-%d")), ("weekly", keep_weekly, stamps.dt.strftime("%G-W%V")),
                                    ("monthly", keep_monthly, stamps.dt.strftime("%Y-%m"))):  # fmt: skip
            seen: list[str] = []
            for path, when in zip(group["path"], period, strict=True):
                if when in seen:
                    continue
                seen.append(when)
                if len(seen) > keep:
                    break
                reasons[path].append(label)
        for row in group.itertuples():
            kept = ", ".join(reasons[row.path])
            rows.append({"file": row.file, "database": name, "taken_at": row.taken_at, "size_bytes": row.size_bytes, "size": row.size,
                         "keep": kept, "action": "keep" if kept else "delete", "path": row.path})  # fmt: skip
    plan = pd.DataFrame(rows, columns=PRUNE_COLUMNS)
    if apply:
        for index, row in plan[plan["action"] == "delete"].iterrows():
            Path(row["path"]).unlink(missing_ok=True)
            figures_path(row["path"]).unlink(missing_ok=True)
            plan.loc[index, "action"] = "deleted"
    return plan.sort_values(["database", "taken_at"], ascending=[True, False], kind="stable").reset_index(drop=True)


def _passed_drill(path: str) -> bool:
    try:
        figures = backup_figures(path)
    except InputError:
        return False
    return bool(figures and any(d.get("status") == "passed" for d in figures.get("drills", [])))


def record_drill(path: str | os.PathLike, *, status: str, at: datetime) -> None:
    """Add a drill's outcome to the backup's figures file, so that retention keeps the newest backup that passed one.

    Example:
        >>> record_drill("no-such.dump", status="passed", at=datetime.now(UTC))   # no figures file: nothing to add to
    """
    figures = backup_figures(path)
    if figures is None:
        return
    figures.setdefault("drills", []).append({"status": status, "at": at.astimezone(UTC).isoformat()})
    sidecar = figures_path(path)
    fresh = sidecar.with_name(sidecar.name + f".{os.getpid()}.tmp")
    fresh.write_text(json.dumps(figures, indent=1, default=str))
    fresh.replace(sidecar)


def newest_backup(database: str, folder: str | os.PathLike | None = None) -> dict | None:
    """Return the newest backup of `database` in the folder (file, path, taken_at, revision, drilled), or None; touches nothing.

    `drilled` is the status of the newest drill of that file ("passed", "failed") or None. Unlike
    `backups()`, partial files are neither removed nor reported: a health check only reads.

    Example:
        >>> newest_backup("copythat", "no-such-folder") is None
        True
    """
    where = backup_dir(folder)
    found = []
    for path in where.glob(f"{glob_escape(database)}__*.dump") if where.is_dir() else []:
        match = _NAME.match(path.name)
        if match and match["database"] == database:
            found.append((match["stamp"], path, match))
    if not found:
        return None
    stamp, path, match = max(found, key=lambda item: item[0])
    try:
        figures = backup_figures(path) or {}
    except InputError:
        figures = {}
    taken_at = datetime.fromisoformat(figures["taken_at"]) if figures.get("taken_at") else datetime.strptime(stamp, "%Y%m%dT%H%M%SZ").replace(tzinfo=UTC)
    drills = figures.get("drills") or []
    return {
        "file": path.name,
        "path": path,
        "taken_at": taken_at.astimezone(UTC),
        "revision": None if match["revision"] == "base" else match["revision"].replace("+", ", "),
        "drilled": drills[-1]["status"] if drills else None,
    }


def glob_escape(name: str) -> str:
    """`name` with the characters glob reads as patterns ([ ] * ?) escaped.

    Example:
        >>> glob_escape("a*b")
        'a[*]b'
    """
    return re.sub(r"([\[\]*?])", r"[\1]", name)
