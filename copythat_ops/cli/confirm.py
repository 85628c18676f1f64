"""The one confirmation rule of the CLI: a command that changes a database that is not local asks first.

Local means this machine only (`config.is_local`: the embedded server, a Unix socket,
localhost or a loopback address). Anywhere else, the command names the database (URL
masked) and asks for its name to be typed; `--yes` answers for it. Without a terminal
(cron, CI, a pipe) or at end of input it refuses, changing nothing, with exit 2.

Example:
    $ copythat-ops migrate upgrade            # on a remote database: asks first
    $ copythat-ops migrate upgrade --yes      # no question
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from typing import TYPE_CHECKING

from ..errors import InputError

if TYPE_CHECKING:
    from sqlalchemy.engine import URL

YES_HELP = "change a database that is not local without asking"


def add_yes(parser) -> None:
    """Add the `--yes` flag that answers the confirmation."""
    parser.add_argument("--yes", action="store_true", help=YES_HELP)


def confirm_change(command: str, *, yes: bool, url: URL | None = None, preview: Callable[[], None] | None = None) -> None:
    """Return when `command` may change the database in use; raise InputError, nothing changed, when it may not.

    A local database (`config.is_local`) or `yes` needs no question. Otherwise, on a terminal,
    run `preview()` (what would change), name the database and ask for its name; without a
    terminal, or when the answer does not match, refuse.

    Example:
        >>> confirm_change("migrate stamp", yes=True)
    """
    if yes:
        return
    from ..config import is_local, mask_url  # on first use: building the parser loads no SQLAlchemy
    from ..engine import database_url

    url = url if url is not None else database_url()
    if is_local(url):
        return
    where = f"database '{url.database}' at {mask_url(url)}"
    if not sys.stdin.isatty():
        raise InputError(
            f"{command} would change {where}, which is not local; nothing was changed",
            fix="add --yes to confirm, or run the command in a terminal and type the database name when asked",
        )
    if preview is not None:
        preview()
    print(f"{command} will change {where}, which is not local. Type its name ({url.database}) to apply: ", end="", file=sys.stderr, flush=True)
    answer = sys.stdin.readline()
    if not answer:
        print(file=sys.stderr)
        raise InputError(f"no answer (end of input) before changing {where}; nothing was changed", fix="type the database name when asked, or add --yes")
    if answer.strip() != url.database:
        raise InputError("the name typed does not match the database; nothing was changed", fix=f"type {url.database} exactly, or add --yes")
