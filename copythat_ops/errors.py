"""The toolkit's exceptions: each message names what is wrong and how to fix it.

No message ever carries a password: URLs in them are masked.

Example:
    >>> from copythat_ops.errors import ConfigError
    >>> str(ConfigError("DATABASE_URL is empty", fix="set it in .env"))
    'DATABASE_URL is empty. Fix: set it in .env'
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager


class CopythatError(Exception):
    """Base class; the CLI prints these as one line, without a traceback.

    `params` names the Python parameters the message speaks of (e.g. "older_than"),
    so a front end can say them in its own words (the CLI says `--older-than`).
    `exit_code` is the CLI's: 2 for what the user can fix in what they typed or configured.
    """

    exit_code = 2

    def __init__(self, problem: str, *, fix: str | None = None, params: str | tuple[str, ...] = ()):
        self.problem = problem
        self.fix = fix
        self.params = (params,) if isinstance(params, str) else tuple(params)
        super().__init__(f"{problem}. Fix: {fix}" if fix else problem)


class ConfigError(CopythatError):
    """DATABASE_URL, .env or another setting is missing or malformed."""


class ConnectError(CopythatError):
    """The database could not be reached or refused the login."""


class EmbeddedError(CopythatError):
    """The embedded PostgreSQL could not be started, found or stopped."""


class MigrationError(CopythatError):
    """A migration target is unknown, out of range, or a migration failed."""


class LockTimeout(CopythatError):
    """A command gave up waiting for a lock another session holds; the message names it. The CLI exits 1: the input was fine."""

    exit_code = 1


class InputError(CopythatError, ValueError):
    """A value given to a function or command is unknown, malformed or out of range; nothing was changed."""


_MISSING_TABLE = re.compile(r'(relation|column) ("[^"]+"|\S+) does not exist')


@contextmanager
def schema_required(purpose: str) -> Iterator[None]:
    """Turn "relation / column ... does not exist" from the block into a MigrationError saying to migrate first.

    Example:
        >>> from copythat_ops.engine import run_query
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
