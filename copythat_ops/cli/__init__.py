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
import warnings

from ..errors import CopythatError
from . import db, jobs, migrate, monitor, notebooks, seed, serve, tenants, tokens
from .args import DURATIONS, Parser, cli_words, in_cli_words
from .failures import debug, plain_failure, print_traceback, show_warning
from .output import FORMATS, Report, emit

GROUPS = (db, migrate, jobs, tokens, tenants, seed, monitor, notebooks, serve)
# Library functions a message may point to, and the command that shows the same (monitor views: from monitor.VIEWS).
COMMANDS = {
    "job_summary": "copythat-ops jobs summary",
    "job_throughput": "copythat-ops jobs throughput",
    "failure_reasons": "copythat-ops jobs failures",
    "stuck_jobs": "copythat-ops jobs stuck",
    "audit_log": "copythat-ops jobs audit",
    "health": "copythat-ops monitor health",
    "cancel_query": "copythat-ops monitor cancel PID",
    "terminate_backend": "copythat-ops monitor terminate PID",
    **{
        view.__code__.co_names[1]: " ".join(["copythat-ops monitor", group, name] if len(views) > 1 else ["copythat-ops monitor", group])
        for group, views in monitor.VIEWS.items()
        for name, view in views.items()
    },
    **monitor.HISTORY_COMMANDS,
}


def parser() -> argparse.ArgumentParser:
    """Return the argument parser (one sub-command per public function).

    `--format` and `--env-file` are taken before the group or after any sub-command.

    Example:
        >>> parser().parse_args(["migrate", "current"]).action
        'current'
        >>> parser().parse_args(["db", "check", "--format", "json"]).format
        'json'
    """
    top = Parser(
        prog="copythat-ops",
        description="Operate the Copy That PostgreSQL database.",
        epilog="A DURATION takes a unit: 30s, 30min, 2h, 1 day or 00:30:00. Set COPYTHAT_DEBUG=1 to see a failure's traceback.",
    )
    top.add_argument("--env-file", help="read DATABASE_URL from this file instead of the nearest .env")
    top.add_argument("--format", choices=FORMATS, default="table", help="output format")
    groups = top.add_subparsers(dest="group", required=True, parser_class=Parser)
    for group in GROUPS:
        group.register(groups)
    for sub in _subparsers(top):  # SUPPRESS: given after a sub-command, it overrides; not given, the top-level value stays
        sub.add_argument("--env-file", default=argparse.SUPPRESS, help="read DATABASE_URL from this file instead of the nearest .env")
        sub.add_argument("--format", choices=FORMATS, default=argparse.SUPPRESS, help="output format (default table)")
        for action in sub._actions:
            if action.type in DURATIONS and action.metavar is None:
                action.metavar = "DURATION"
    return top


def _subparsers(parser: argparse.ArgumentParser) -> list[argparse.ArgumentParser]:
    """Every group and sub-command parser under `parser`, once each."""
    found: list[argparse.ArgumentParser] = []
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for sub in dict.fromkeys(action.choices.values()):
                found += [sub, *_subparsers(sub)]
    return found


def main(argv: list[str] | None = None) -> int:
    """Run the command line; return the exit code (0 ok, 1 failure, 2 bad input or configuration, 3 a health check failed).

    Every failure is one line on stderr, `error: <what>. Fix: <how>`, in the
    CLI's words (flags, not Python parameters) and without an exception name;
    `COPYTHAT_DEBUG=1` adds the traceback.
    """
    top = parser()
    args = top.parse_args(argv)
    from ..config import ENV_FILE_VAR  # after parsing: `--help` and a mistyped command load no SQLAlchemy

    before = os.environ.get(ENV_FILE_VAR)
    if args.env_file:
        os.environ[ENV_FILE_VAR] = args.env_file  # for the library and the notebooks' kernels, for this command only
    try:
        return _run(top, args)
    finally:
        if before is None:
            os.environ.pop(ENV_FILE_VAR, None)
        else:
            os.environ[ENV_FILE_VAR] = before


def _run(top: argparse.ArgumentParser, args: argparse.Namespace) -> int:
    try:
        with warnings.catch_warnings():
            if not debug():  # a library's warning as one plain line, without its class name
                warnings.showwarning = show_warning
            result = args.run(args)
            report = result if isinstance(result, Report) else Report(result)
            emit(report.value, args.format)
    except CopythatError as exc:
        _fail(exc, in_cli_words(exc, cli_words(top, args), COMMANDS))
        return exc.exit_code
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:  # the reader went away (`| head`): nothing more to say
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 1
    except Exception as exc:  # a library failure: one plain, masked line
        message, code = plain_failure(exc, vars(args), cli_words(top, args))
        _fail(exc, message)
        return code
    return report.exit_code


def _fail(exc: BaseException, message: str) -> None:
    from ..config import mask_text

    if debug():
        print_traceback(exc)
    print(f"error: {mask_text(message)}", file=sys.stderr)


if __name__ == "__main__":
    sys.exit(main())
