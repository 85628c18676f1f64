"""What the CLI says when a command fails with something other than a CopythatError: a plain line, never an exception name.

Database errors (SQLAlchemy, psycopg2, ADBC) are told by what happened (a
timeout, a lock, a lost connection, a schema behind the code) with the fix;
file errors name the path and the flag it came from. `COPYTHAT_DEBUG=1` adds
the traceback (passwords masked).

Example:
    >>> plain_failure(PermissionError(13, "Permission denied", "/srv/reports/x"), {"output_dir": "/srv/reports"}, {"output_dir": "--output-dir"})
    ('cannot write /srv/reports/x (--output-dir /srv/reports): permission denied. Fix: give --output-dir a folder you may write to', 2)
"""

from __future__ import annotations

import os
import sys
import traceback
from pathlib import Path

DEBUG_VAR = "COPYTHAT_DEBUG"
DEBUG_HINT = f"run again with {DEBUG_VAR}=1 to see where it failed"
RETRY = "check the server with `copythat-ops db check`, then run the command again"
_LOST = {"57P01", "57P02", "57P03", "53300", "53400"}  # shut down, crashed, starting, too many connections


def debug() -> bool:
    """True when `COPYTHAT_DEBUG` asks for tracebacks."""
    return os.environ.get(DEBUG_VAR, "").strip().lower() not in ("", "0", "false", "no")


def print_traceback(exc: BaseException) -> None:
    """The traceback of `exc` on stderr, passwords masked."""
    from ..config import mask_text

    print(mask_text("".join(traceback.format_exception(exc))), file=sys.stderr, end="")


def show_warning(message, category, filename, lineno, file=None, line=None) -> None:
    """`warnings.showwarning` for the CLI: `warning: <first line>` on stderr, masked, without the class or source line.

    Example:
        >>> show_warning(UserWarning("pool size 3 is small\\nmore"), UserWarning, "x.py", 1, file=sys.stdout)
        warning: pool size 3 is small
    """
    from ..config import mask_text

    print(f"warning: {mask_text((str(message).strip().splitlines() or [''])[0])}", file=file or sys.stderr)


def plain_failure(exc: BaseException, values: dict[str, object], words: dict[str, str]) -> tuple[str, int]:
    """Return (one line `<what>. Fix: <how>`, exit code) for an unexpected failure of a command.

    `values` are the command's parsed arguments and `words` their flags, to name
    the flag a failing path came from.
    """
    from sqlalchemy.exc import SQLAlchemyError  # here: building the parser loads no SQLAlchemy

    if isinstance(exc, OSError) and not _from_driver(exc):
        return _file_failure(exc, values, words)
    if isinstance(exc, SQLAlchemyError) or _from_driver(exc):
        return _database_failure(exc), 1
    return f"unexpected failure: {_first_line(exc) or 'no detail'}. Fix: {DEBUG_HINT}, and report it", 1


def _from_driver(exc: BaseException) -> bool:
    module = type(exc).__module__ or ""
    return module.startswith(("psycopg2", "adbc_driver", "sqlalchemy")) or hasattr(exc, "pgcode") or hasattr(exc, "sqlstate")


def _database_failure(exc: BaseException) -> str:
    from sqlalchemy.exc import DBAPIError

    orig = exc.orig if isinstance(exc, DBAPIError) and exc.orig is not None else exc
    state = getattr(orig, "pgcode", None) or getattr(orig, "sqlstate", None) or ""
    reason = _first_line(orig) or "no detail from the server"
    where = _database()
    if state == "57014":
        return f"a query on {where} ran past its time limit ({reason}). Fix: run it again when the database is less busy; `copythat-ops monitor activity` shows what is running"
    if state == "55P03":
        return f"a lock on {where} was not granted in time ({reason}). Fix: another session holds it: see which with `copythat-ops monitor activity locks`, then wait for it or end it (`copythat-ops monitor cancel PID`) and run the command again"
    if state in ("40P01", "40001"):
        return f"{where} stopped a transaction that conflicted with another ({reason}). Fix: run the command again"
    if state in ("42P01", "42703", "42883"):
        return f"the schema of {where} is not the one this version expects ({reason}). Fix: run `copythat-ops migrate upgrade`, or check `copythat-ops migrate current`"
    if state == "42501":
        return f"the role in DATABASE_URL may not do this on {where} ({reason}). Fix: use a role with the needed privileges"
    if state in _LOST or state.startswith("08") or (not state and _is_connection_error(exc)):
        return f"cannot connect to {where}: {reason}. Fix: {RETRY}"
    code = f" (SQLSTATE {state})" if state else ""
    return f"{where} reported an error{code}: {reason}. Fix: {DEBUG_HINT}"


def _is_connection_error(exc: BaseException) -> bool:
    from sqlalchemy.exc import InterfaceError, OperationalError, PendingRollbackError

    return isinstance(exc, OperationalError | InterfaceError | PendingRollbackError) or "connection" in type(exc).__name__.lower() or "Operational" in type(exc).__name__


def _database() -> str:
    """The configured database, masked, or the embedded one (without starting it); 'the database' when that cannot be told."""
    try:
        from .. import embedded
        from ..config import mask_url, settings

        url = settings().url
        return mask_url(url) if url is not None else f"the embedded PostgreSQL in {embedded.data_dir()}"
    except Exception:
        return "the database"


def _file_failure(exc: OSError, values: dict[str, object], words: dict[str, str]) -> tuple[str, int]:
    path = exc.filename or ""
    what = {
        FileNotFoundError: "does not exist",
        PermissionError: "permission denied",
        IsADirectoryError: "is a folder",
        NotADirectoryError: "is not a folder",
    }.get(type(exc), (exc.strerror or _first_line(exc) or "failed").lower())
    origin = _flag_for(str(path), values, words)
    if origin is None:
        shown = f"{path}: " if path else ""
        return f"cannot use {shown}{what}. Fix: check the path and its permissions; {DEBUG_HINT}", 1
    flag, value = origin
    source = f" ({flag} {value})" if str(value) != str(path) else ""
    fix = {
        FileNotFoundError: f"give {flag} a path that exists or can be created",
        PermissionError: f"give {flag} a folder you may write to",
    }.get(type(exc), f"check {flag}")
    verb = "write" if type(exc) is PermissionError else "use"
    return f"cannot {verb} {path}{source}: {what}. Fix: {fix}", 2


def _flag_for(path: str, values: dict[str, object], words: dict[str, str]) -> tuple[str, object] | None:
    """The flag whose value `path` is or lies under, e.g. ('--output-dir', '/proc/x')."""
    if not path:
        return None
    for dest, value in values.items():
        if dest in words and isinstance(value, str) and value and (path == value or _under(Path(path), Path(value))):
            return words[dest], value
    return None


def _under(path: Path, folder: Path) -> bool:
    try:
        return path.resolve().is_relative_to(folder.resolve())
    except OSError:
        return False


def _first_line(exc: BaseException) -> str:
    from ..config import mask_text

    return mask_text((str(exc).strip().splitlines() or [""])[0].strip())
