"""The databases `/metrics?target=NAME` scrapes: a targets file of named URLs, each with a small pool of its own.

One process watches several databases, as postgres_exporter's multi-target mode
does. The file is picked by its extension:

- `.toml`: a `[targets]` table, `prod = "postgresql://..."`, or a table per target,
  `[targets.prod]` with `url = "..."` and optionally `backup_dir = "..."` (the folder
  whose backups of it count for `copythat_backup_*`; the default is $COPYTHAT_BACKUP_DIR);
- anything else (`targets.env`, `.env`): one `NAME=URL` a line, read as python-dotenv
  reads `.env` (comments, `export`, quotes, and `${VAR}` taken from the environment,
  so a password can stay out of the file).

A name is a letter then letters, digits, `_`, `.` or `-` (at most 63). The file is
read again when it changes. Each target gets one engine (pool of 2, 1 more on demand,
`application_name=copythat-ops-metrics`, a 2 s connect timeout), cached; a target
dropped from the file has its engine closed. No error shows a password.

Example:
    >>> from pathlib import Path
    >>> _ = Path("targets.env").write_text("prod=postgresql://app:s3cret@db.example.com/neondb?sslmode=require\\n")
    >>> [t.name for t in targets("targets.env")]
    ['prod']
    >>> target("prod", targets_file="targets.env")
    Target(name='prod', url='postgresql+psycopg2://app:***@db.example.com/neondb?sslmode=require')
"""

from __future__ import annotations

import io
import os
import re
import threading
import tomllib
from dataclasses import dataclass, field
from pathlib import Path

from dotenv import dotenv_values
from dotenv.parser import parse_stream
from sqlalchemy import create_engine
from sqlalchemy.engine import URL, Engine

from ..config import mask_url, normalize_url
from ..errors import ConfigError, InputError

TARGETS_FILE_VAR = "COPYTHAT_TARGETS_FILE"
DEFAULT = "default"  # the name of the configured database (DATABASE_URL, .env, embedded) when no target is asked for
APP_NAME = "copythat-ops-metrics"
POOL = {"pool_size": 2, "max_overflow": 1, "pool_timeout": 1, "pool_pre_ping": True}  # a scrape, the background reads, and a second Prometheus scraping at the same time
CONNECT_TIMEOUT = 2  # seconds; libpq's smallest
_NAME = re.compile(r"^[A-Za-z][A-Za-z0-9_.-]{0,62}$")

_lock = threading.Lock()
_files: dict[Path, tuple[tuple[int, int], list[Target]]] = {}
_engines: dict[str, Engine] = {}


@dataclass(frozen=True)
class Target:
    """A database to scrape: its name, its URL (normalised to psycopg2) and the folder of its backups (None: the default)."""

    name: str
    url: URL = field(repr=False)
    backup_dir: Path | None = field(default=None, repr=False)

    def __repr__(self) -> str:
        return f"Target(name={self.name!r}, url={mask_url(self.url)!r})"

    @property
    def shown(self) -> str:
        """The URL for display, password masked."""
        return mask_url(self.url)


def targets_path(path: str | os.PathLike | None = None) -> Path | None:
    """Return the targets file in use: `path`, else $COPYTHAT_TARGETS_FILE, else None (only the default database).

    Example:
        >>> targets_path("targets.toml").name
        'targets.toml'
    """
    named = path or os.environ.get(TARGETS_FILE_VAR)
    return Path(named).expanduser() if named else None


def targets(path: str | os.PathLike) -> list[Target]:
    """Return the targets a file names, in file order; ConfigError naming the file, line and fix for anything wrong.

    Read again only when the file changed (its modification time or size).

    Example:
        >>> from pathlib import Path
        >>> _ = Path("t.toml").write_text('[targets]\\nstaging = "postgresql+asyncpg://app:pw@db/neondb?ssl=require"\\n')
        >>> targets("t.toml")[0].shown
        'postgresql+psycopg2://app:***@db/neondb?sslmode=require'
    """
    path = Path(path).expanduser()
    try:
        stat = path.stat()
    except OSError:
        raise ConfigError(
            f"the targets file {path} does not exist",
            fix=f"create it (NAME=URL lines, or TOML [targets] name = \"url\"), or point --targets / {TARGETS_FILE_VAR} at an existing file",
        ) from None
    stamp = (stat.st_mtime_ns, stat.st_size)
    with _lock:
        cached = _files.get(path)
        if cached and cached[0] == stamp:
            return cached[1]
    found = _read(path)
    with _lock:
        old = {t.url.render_as_string(hide_password=False) for _, listed in _files.values() for t in listed}
        _files[path] = (stamp, found)
        kept = {t.url.render_as_string(hide_password=False) for _, listed in _files.values() for t in listed}
        for key in old - kept:  # a target dropped from the file: close its connections
            engine = _engines.pop(key, None)
            if engine is not None:
                engine.dispose()
    return found


def target(name: str | None = None, *, targets_file: str | os.PathLike | None = None) -> Target:
    """Return the target called `name` in the targets file; None is the configured database (DATABASE_URL, .env, else embedded).

    An unknown name raises InputError listing the known ones.

    Example:
        >>> target().name
        'default'
        >>> from pathlib import Path
        >>> _ = Path("targets.env").write_text("prod=postgresql://app:s3cret@db.example.com/neondb\\n")
        >>> target("nope", targets_file="targets.env")
        Traceback (most recent call last):
        ...
        copythat_ops.errors.InputError: unknown target 'nope' (known: prod). Fix: ...
    """
    if name is None:
        from ..engine import database_url

        return Target(DEFAULT, database_url())
    path = targets_path(targets_file)
    if path is None:
        raise InputError(
            f"target '{name}' asked for, but no targets file is configured",
            fix=f"start the server with --targets FILE (or set {TARGETS_FILE_VAR}), or leave target out for the default database",
            params="target",
        )
    listed = targets(path)
    for found in listed:
        if found.name == name:
            return found
    known = ", ".join(t.name for t in listed)
    raise InputError(
        f"unknown target '{name}' (known: {known})",
        fix=f"use one of the names in {path}, or leave target out for the default database",
        params="target",
    )


def target_engine(found: Target) -> Engine:
    """Return the small engine of a target (pool of 2, 1 more on demand, 1 s wait for a free connection), one per URL, cached.

    Example:
        >>> target_engine(target()) is target_engine(target())
        True
    """
    key = found.url.render_as_string(hide_password=False)
    with _lock:
        engine = _engines.get(key)
        if engine is None:
            args = {}
            if "application_name" not in found.url.query:
                args["application_name"] = APP_NAME
            if "connect_timeout" not in found.url.query:
                args["connect_timeout"] = CONNECT_TIMEOUT
            engine = _engines[key] = create_engine(found.url, connect_args=args, **POOL)
        return engine


def dispose_target_engines() -> None:
    """Close every target's engine (they are made again on next use).

    Example:
        >>> dispose_target_engines()
    """
    with _lock:
        for engine in _engines.values():
            engine.dispose()
        _engines.clear()
        _files.clear()


def _read(path: Path) -> list[Target]:
    try:
        raw = path.read_bytes().decode("utf-8-sig")
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"cannot read the targets file {path} ({getattr(exc, 'strerror', None) or 'not UTF-8 text'})", fix="check its permissions and that it is UTF-8 text") from None
    entries = _read_toml(path, raw) if path.suffix.lower() == ".toml" else _read_env(path, raw)
    if not entries:
        raise ConfigError(
            f"the targets file {path} names no targets",
            fix='add one NAME=URL line per database' if path.suffix.lower() != ".toml" else 'add a [targets] table with name = "postgresql://..." entries',
        )
    found = []
    for name, url, where, backups in entries:
        if not isinstance(name, str) or not _NAME.match(name):
            raise ConfigError(
                f"the targets file {path} has a target name {str(name)[:70]!r} ({where}) that is not a name",
                fix="start it with a letter and use only letters, digits, '_', '.' or '-' (at most 63)",
            )
        if not isinstance(url, str) or not url.strip():
            raise ConfigError(f"the targets file {path} gives target '{name}' no URL ({where})", fix=f"write {name}=postgresql://USER:PASSWORD@HOST/DB")
        try:
            normalized = normalize_url(url)
        except ConfigError as exc:
            problem = exc.problem.replace("DATABASE_URL", f"the URL of target '{name}'")
            raise ConfigError(f"{problem} ({path}, {where})", fix=exc.fix) from None
        found.append(Target(name, normalized, Path(backups).expanduser() if backups else None))
    return found


def _read_env(path: Path, raw: str) -> list[tuple]:
    lines: dict[str, int] = {}
    for binding in parse_stream(io.StringIO(raw)):
        line = binding.original.line
        if binding.error:
            start = re.match(r"\s*(?:export\s+)?([A-Za-z_][A-Za-z0-9_.-]*)", binding.original.string)  # the name only, never a value
            raise ConfigError(
                f"the targets file {path} has a line it cannot read (line {line}{f', {start[1]!r}' if start else ''})",
                fix="write one target a line as NAME=URL (quote a URL that holds spaces or #)",
            )
        if binding.key is None:
            continue
        if binding.key in lines:
            raise ConfigError(f"the targets file {path} names target '{binding.key}' twice (lines {lines[binding.key]} and {line})", fix="keep one of them")
        lines[binding.key] = line
    values = dotenv_values(stream=io.StringIO(raw), interpolate=True)
    return [(name, values.get(name), f"line {number}", None) for name, number in lines.items()]


def _read_toml(path: Path, raw: str) -> list[tuple]:
    try:
        data = tomllib.loads(raw)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"the targets file {path} is not valid TOML ({exc})", fix='write it as [targets] then name = "postgresql://..." lines') from None
    table = data.get("targets")
    if not isinstance(table, dict):
        raise ConfigError(f"the targets file {path} has no [targets] table", fix='write it as [targets] then name = "postgresql://..." lines')
    entries = []
    for name, value in table.items():
        where = f"[targets] {name}"
        if isinstance(value, dict):
            unknown = set(value) - {"url", "backup_dir"}
            if unknown:
                raise ConfigError(f"the targets file {path} gives target '{name}' unknown keys: {', '.join(sorted(unknown))}", fix="use url and backup_dir only")
            entries.append((name, value.get("url"), f"[targets.{name}]", value.get("backup_dir")))
        else:
            entries.append((name, value, where, None))
    return entries
