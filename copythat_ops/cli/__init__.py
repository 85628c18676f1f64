"""`copythat-ops`: the library's functions from a terminal, cron or CI.

Each sub-command group is a module of this package with a `register(groups)`
function; the CLI adds no logic of its own.

Example:
    $ copythat-ops db check
    $ copythat-ops migrate upgrade
    $ copythat-ops --format json migrate history
"""

from __future__ import annotations

import argparse
import os
import sys

from ..config import ENV_FILE_VAR, mask_text
from ..errors import CopythatError
from . import db, jobs, migrate, monitor, notebooks, seed
from .output import Report, emit

GROUPS = (db, migrate, jobs, seed, monitor, notebooks)


def parser() -> argparse.ArgumentParser:
    """Return the argument parser (one sub-command per public function).

    Example:
        >>> parser().parse_args(["migrate", "current"]).action
        'current'
    """
    top = argparse.ArgumentParser(prog="copythat-ops", description="Operate the Copy That PostgreSQL database.")
    top.add_argument("--env-file", help="read DATABASE_URL from this file instead of the nearest .env")
    top.add_argument("--format", choices=["table", "csv", "json"], default="table", help="output format")
    groups = top.add_subparsers(dest="group", required=True)
    for group in GROUPS:
        group.register(groups)
    return top


def main(argv: list[str] | None = None) -> int:
    """Run the command line; return the exit code (0 ok, 1 failure, 2 bad input or configuration, 3 a health check failed)."""
    args = parser().parse_args(argv)
    if args.env_file:
        os.environ[ENV_FILE_VAR] = args.env_file
    try:
        result = args.run(args)
        report = result if isinstance(result, Report) else Report(result)
        emit(report.value, args.format)
    except CopythatError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130
    except Exception as exc:  # a library failure: one masked line, no traceback
        detail = (str(exc).strip().splitlines() or [""])[0]
        print(f"error: {type(exc).__name__}: {mask_text(detail)}", file=sys.stderr)
        return 1
    return report.exit_code


if __name__ == "__main__":
    sys.exit(main())
