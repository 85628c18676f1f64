"""How the CLI reads its arguments and speaks of them: one-line errors with a fix, in flags rather than Python names.

`Parser` prints argparse's complaints as `error: <what>. Fix: <how>` and exits 2.
The `type=` converters check a value with `copythat_ops.validate` before any
library call, so a bad value is named by its flag. `in_cli_words` rewrites a
library error's Python parameter names (`older_than`) as the flags of the
command that was run (`--older-than`).

Example:
    >>> parser = Parser(prog="copythat-ops jobs stuck")
    >>> _ = parser.add_argument("--older-than", type=duration)
    >>> parser.parse_args(["--older-than", "45min"]).older_than
    '45min'
"""

from __future__ import annotations

import argparse
import re
import sys
from collections.abc import Callable

from .. import validate
from ..errors import CopythatError, InputError

ARGUMENT = "ARGUMENT"  # how a converter names its value; Parser.error says the flag instead


class Parser(argparse.ArgumentParser):
    """An ArgumentParser whose errors are one line, `error: <what>. Fix: <how>`, exit code 2."""

    def parse_known_args(self, args=None, namespace=None):
        self._given = list(sys.argv[1:] if args is None else args)
        Parser.deepest = self  # subcommands parse after their parents: the last one set is the command run
        return super().parse_known_args(args, namespace)

    def error(self, message: str):
        self.exit(2, f"error: {self.plain(message)}\n")

    def plain(self, message: str) -> str:
        """Return argparse's `message` as `<what>. Fix: <how>`, naming flags as typed."""
        usage = " ".join(self.format_usage().split())
        argument, _, detail = message.partition(": ") if message.startswith("argument ") else ("", "", message)
        action = self._action_named(argument.removeprefix("argument "))
        if action is not None:
            name = _shown(action)
            if ARGUMENT in detail:  # a converter's message, already with its fix
                return _unquote(detail.replace(ARGUMENT, name))
            if match := re.match(r"invalid choice: '(.*)' \(choose from (.*)\)$", detail, re.S):
                allowed = match[2].replace("'", "")
                if isinstance(action, argparse._SubParsersAction):
                    return f"unknown command {_quoted(self.prog, match[1])}. Fix: use one of: {allowed} (see {self.prog} --help)"
                return f"unknown {name if action.option_strings else action.dest} {match[1]!r}. Fix: use one of: {allowed}"
            if match := re.match(r"invalid (\w+) value: (.*)$", detail):
                kind = {"int": "a whole number", "float": "a number"}.get(match[1], f"a valid {match[1]}")
                return f"{name} {_unquote(match[2])} is not {kind}. Fix: give {kind}, e.g. {name} {'10' if 'number' in kind else '...'}"
            if detail.startswith("expected"):
                return self._missing_value(action, name, usage)
            return f"{name}: {detail}. Fix: {usage}"
        if match := re.match(r"the following arguments are required: (.*)$", message):
            commands = [a for a in self._actions if isinstance(a, argparse._SubParsersAction)]
            if commands and match[1].split(", ")[0] == commands[0].dest:
                return f"{self.prog} needs a command. Fix: give one of: {', '.join(commands[0].choices)} (see {self.prog} --help)"
            return f"{self.prog} needs {match[1]}. Fix: {usage}"
        if match := re.match(r"unrecognized arguments: (.*)$", message):
            deepest = getattr(Parser, "deepest", self)
            return f"{deepest.prog} does not take {match[1]}. Fix: see {deepest.prog} --help"
        return f"{message}. Fix: see {self.prog} --help"

    def _action_named(self, name: str) -> argparse.Action | None:
        for action in self._actions:
            if name and name in ("/".join(action.option_strings), action.metavar, action.dest):
                return action
        return None

    def _missing_value(self, action: argparse.Action, name: str, usage: str) -> str:
        """`--older-than -5min`: argparse took the value for an option; check it as the value it was meant to be."""
        given = getattr(self, "_given", [])
        flags = [i for i, arg in enumerate(given) if arg in action.option_strings]
        value = given[flags[-1] + 1] if flags and flags[-1] + 1 < len(given) else None
        if value is None or not value.startswith("-"):
            return f"{name} needs a value. Fix: {usage}"
        try:
            self._get_values(action, [value])
        except argparse.ArgumentError as exc:
            return self.plain(str(exc))
        return f"{name} {value} looks like an option. Fix: write it as {name}={value}"


def in_cli_words(exc: CopythatError, words: dict[str, str], commands: dict[str, str] | None = None) -> str:
    """Return `exc`'s message in the CLI's words: Python parameters as flags (`words`), library functions as commands.

    Example:
        >>> in_cli_words(InputError("older_than '30' has no unit", fix="give a unit", params="older_than"), {"older_than": "--older-than"})
        '--older-than 30 has no unit. Fix: give a unit'
        >>> in_cli_words(InputError("no session has pid 7", fix="see blocked_queries()", params="pid"), {"pid": "PID"},
        ...              {"blocked_queries": "copythat-ops monitor activity blocked"})
        'no session has PID 7. Fix: see `copythat-ops monitor activity blocked`'
    """
    message = str(exc)
    for function, command in (commands or {}).items():
        message = re.sub(rf"(?<![\w.`]){re.escape(function)}\([^()]*\)", f"`{command}`", message)
    named = {p for p in exc.params if p in words} | {p for p in words if "_" in p}  # snake_case never reads as prose
    for param in sorted(named, key=len, reverse=True):
        message = re.sub(
            rf"(?<![\w\-]){re.escape(param)}(?!\w)(?:[= ]'([^'\s\"]*)')?",
            lambda m, flag=words[param]: flag + (f" {m[1]}" if m[1] is not None else ""),
            message,
        )
    return message


def cli_words(top: argparse.ArgumentParser, args: argparse.Namespace) -> dict[str, str]:
    """Return Python parameter -> flag (or positional NAME) for the command in `args` and the groups above it."""
    words: dict[str, str] = {}
    parser: argparse.ArgumentParser | None = top
    while parser is not None:
        following = None
        for action in parser._actions:
            if isinstance(action, argparse._SubParsersAction):
                following = action.choices.get(getattr(args, action.dest, None))
            elif action.dest is not argparse.SUPPRESS and not isinstance(action, argparse._HelpAction):
                words[action.dest] = _shown(action)
        parser = following
    return words


def _shown(action: argparse.Action) -> str:
    if action.option_strings:
        return max(action.option_strings, key=len)
    return action.metavar if isinstance(action.metavar, str) else action.dest.upper()


def _unquote(text: str) -> str:
    """`--id 'abc'` -> `--id abc` when the value needs no quotes in a shell."""
    return re.sub(r"'([\w.:+\-]*)'", r"\1", text)


def _quoted(prog: str, value: str) -> str:
    command = " ".join(prog.split()[1:] + [value])
    return repr(command)


# argparse `type=` converters: each checks the text with validate and returns it as typed (str) or as a number.


def _converter(check: Callable[[str], object]) -> Callable[[str], object]:
    def convert(text: str) -> object:
        try:
            return check(text)
        except InputError as exc:
            raise argparse.ArgumentTypeError(str(exc)) from None

    convert.__name__ = check.__name__
    return convert


@_converter
def duration(text: str) -> str:
    """A duration with a unit (30s, 30min, 2h, 1 day), zero or more."""
    validate.duration(text, name=ARGUMENT)
    return text


@_converter
def positive_duration(text: str) -> str:
    """A duration with a unit, more than zero."""
    validate.duration(text, name=ARGUMENT, positive=True)
    return text


@_converter
def duration_or_none(text: str) -> str:
    """A duration with a unit, or `none`."""
    if text.strip().lower() != "none":
        validate.duration(text, name=ARGUMENT)
    return text


@_converter
def since(text: str) -> str:
    """A duration back from now (24h) or a timestamp (2025-01-31 12:00)."""
    if not re.match(r"^\s*\d{4}-\d{2}-\d{2}", text):
        validate.duration(text, name=ARGUMENT)
    return text


def whole(minimum: int = 1) -> Callable[[str], int]:
    """A whole number of at least `minimum`."""

    @_converter
    def whole_number(text: str) -> int:
        value = int(text) if re.fullmatch(r"\s*[+-]?\d+\s*", text) else text
        return validate.number(value, name=ARGUMENT, minimum=minimum, integer=True)

    return whole_number


DURATIONS = (duration, positive_duration, duration_or_none, since)  # shown as DURATION in the help
