"""Logical backups before a change: `pg_dump -Fc` into a git-ignored folder, restored only into a new database.

A backup file is named `DATABASE__REVISION__YYYYMMDDTHHMMSSZ.dump` (REVISION is
`base` when none is applied) under `.copythat/backups` of the checkout, or
$COPYTHAT_BACKUP_DIR. pg_dump and pg_restore are taken to match the server: the
embedded wheel's own (PostgreSQL 18) for a server of that version, otherwise the
Debian client of the server's major version (/usr/lib/postgresql/NN/bin), else
the nearest newer one found; each result names the binary used. The password
reaches them in PGPASSWORD, never on the command line.

Example:
    >>> from copythat_ops.recovery import dumps
    >>> dumps.backup_dir().name
    'backups'
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import pandas as pd
from alembic.migration import MigrationContext
from sqlalchemy import text
from sqlalchemy.engine import URL

from ..config import libpq_url, mask_text, mask_url
from ..engine import connection, database_url, dispose_engines, get_engine
from ..errors import ConfigError, InputError
from ..validate import database_name
from .pgtools import client_env, pg_tool, server_major

BACKUP_DIR_VAR = "COPYTHAT_BACKUP_DIR"
CHECKOUT = Path(__file__).resolve().parents[2]
MAGIC = b"PGDMP"  # the first bytes of every pg_dump custom-format archive
_NAME = re.compile(r"^(?P<database>.+)__(?P<revision>[^_]+)__(?P<stamp>\d{8}T\d{6}Z)\.dump$")
COLUMNS = ["file", "database", "revision", "taken_at", "size_bytes", "size", "path"]


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


def backup(*, url: URL | str | None = None, folder: str | os.PathLike | None = None) -> dict:
    """Dump the database at `url` (default: the configured one) with `pg_dump -Fc`; return what was written.

    Returns a dict: path, database, revision, size_bytes, seconds, tool (the pg_dump used).

    Example:
        >>> taken = backup(folder="backups")
        >>> taken["path"].name.endswith(".dump"), taken["revision"] is not None
        (True, True)
    """
    target = database_url() if url is None else get_engine(url).url
    where = _writable(backup_dir(folder))
    tool = pg_tool("pg_dump", server_major(target))
    with connection(get_engine(target)) as conn:
        revision = ", ".join(MigrationContext.configure(conn).get_current_heads()) or None
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    path = where / f"{target.database}__{(revision or 'base').replace(', ', '+')}__{stamp}.dump"
    partial = path.with_suffix(".dump.partial")
    started = time.perf_counter()
    done = subprocess.run(
        [str(tool.path), "--format=custom", f"--file={partial}", "--dbname", libpq_url(target)],
        capture_output=True,
        text=True,
        env=client_env(target),
    )
    if done.returncode != 0:
        partial.unlink(missing_ok=True)
        raise ConfigError(f"pg_dump of {mask_url(target)} failed ({_last_line(done.stderr)})", fix="correct what pg_dump names and run again")
    partial.rename(path)
    return {
        "path": path,
        "database": target.database,
        "revision": revision,
        "size_bytes": path.stat().st_size,
        "seconds": round(time.perf_counter() - started, 3),
        "tool": str(tool),
    }


def backups(folder: str | os.PathLike | None = None) -> pd.DataFrame:
    """Return the backups in the folder, newest first: file, database, revision, taken_at, size_bytes, size, path.

    Example:
        >>> list(backups("no-such-folder").columns)[:3]
        ['file', 'database', 'revision']
    """
    where = backup_dir(folder)
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
                "size": _readable(size),
                "path": str(path),
            }
        )
    frame = pd.DataFrame(rows, columns=COLUMNS)
    return frame.sort_values("taken_at", ascending=False, kind="stable").reset_index(drop=True)


def is_dump(path: str | os.PathLike) -> bool:
    """Return True when the file is a pg_dump custom-format archive (what `backup()` writes).

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

    Never overwrites: an existing database of that name is refused, nothing changed. The
    restore runs in one transaction; when it fails the new database is dropped again.
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
            f"{source} is not a pg_dump custom-format backup (it does not start with PGDMP)",
            fix="name a .dump file written by backup() (`copythat-ops db backup`)",
            params="path",
        )
    if not database or not database.strip():
        raise InputError("restore needs the name of a new database", fix="pass database=NAME (a name not in use)", params="database")
    server = database_url() if url is None else get_engine(url).url
    target = server.set(database=database)
    _create_database(server, database)
    tool = pg_tool("pg_restore", server_major(server))
    started = time.perf_counter()
    done = subprocess.run(
        [str(tool.path), "--single-transaction", "--exit-on-error", "--no-owner", "--no-privileges", "--dbname", libpq_url(target), str(source)],
        capture_output=True,
        text=True,
        env=client_env(target),
    )
    if done.returncode != 0:
        drop_database(database, url=server)
        raise ConfigError(
            f"pg_restore into {database} failed and the new database was dropped ({_last_line(done.stderr)})",
            fix="correct what pg_restore names (a server older than the backup's, a missing extension or role) and run again",
        )
    return {"database": database, "url": mask_url(target), "seconds": round(time.perf_counter() - started, 3), "tool": str(tool)}


def _create_database(server: URL, database: str) -> None:
    with connection(get_engine(server)) as conn:
        exists = conn.scalar(text("SELECT 1 FROM pg_database WHERE datname = :d"), {"d": database})
    if exists:
        raise InputError(
            f"database {database} already exists; restore never overwrites a database",
            fix="choose a new name (database=...), or drop that one yourself first if it is really unwanted",
            params="database",
        )
    _autocommit(server, f'CREATE DATABASE "{database_name(database)}"')


def drop_database(database: str, *, url: URL | str | None = None) -> None:
    """Drop a database made by `restore()` or a rehearsal (closing its sessions); nothing happens when it is gone.

    Example:
        >>> drop_database("copythat_no_such_database")
    """
    server = database_url() if url is None else get_engine(url).url
    if database == server.database:
        raise InputError(f"{database} is the database in use; it is never dropped here", fix="name another database", params="database")
    dispose_engines()
    _autocommit(server, f'DROP DATABASE IF EXISTS "{database_name(database)}" WITH (FORCE)')


def _autocommit(server: URL, statement: str) -> None:
    engine = get_engine(server).execution_options(isolation_level="AUTOCOMMIT")
    with engine.connect() as conn:
        conn.execute(text(statement))


def _last_line(stderr: str) -> str:
    lines = [line.strip() for line in (stderr or "").splitlines() if line.strip()]
    return mask_text(lines[-1]) if lines else "no message"


def _readable(size: int) -> str:
    value = float(size)
    for unit in ("B", "kB", "MB", "GB"):
        if value < 1024 or unit == "GB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    return f"{size} B"
