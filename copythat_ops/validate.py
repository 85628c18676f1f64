"""Checks for user-given values: each returns the clean value or raises an InputError naming it and what is allowed.

Example:
    >>> duration("30 min")
    datetime.timedelta(seconds=1800)
    >>> choices(["failed", "failed"], ["pending", "failed"], name="status")
    ['failed']
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from datetime import timedelta
from numbers import Real

from .errors import InputError

_BARE_NUMBER = re.compile(r"^\s*[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?\s*$")
_EXAMPLES = "30s, 30min, 2h, 1 day or 00:30:00"


def duration(value: str | timedelta, *, name: str = "older_than", positive: bool = False) -> timedelta:
    """Return `value` ("30 min", "1h30m", "2 days", "00:30:00" or a timedelta) as a non-negative timedelta.

    A number without a unit ("30", 30) is refused (30 seconds? minutes?), except 0;
    so is a negative duration, and zero too when `positive`.

    Example:
        >>> duration("1h30m")
        datetime.timedelta(seconds=5400)
        >>> duration("30")
        Traceback (most recent call last):
        ...
        copythat_ops.errors.InputError: older_than '30' has no unit. Fix: give a unit, e.g. 30min or 30s
    """
    if isinstance(value, bool) or not isinstance(value, str | timedelta | Real):
        raise InputError(f"{name} must be a duration, not {value!r}", fix=f"give e.g. {_EXAMPLES}", params=name)
    bare = str(value).strip() if isinstance(value, Real) or (isinstance(value, str) and _BARE_NUMBER.match(value)) else None
    if bare is not None and float(bare) != 0:
        if float(bare) < 0:
            raise InputError(f"{name} {value!r} is negative", fix=f"give a positive duration with a unit, e.g. {bare.lstrip('-')}min", params=name)
        raise InputError(f"{name} {value!r} has no unit", fix=f"give a unit, e.g. {bare}min or {bare}s", params=name)
    import pandas as pd  # on first use: the CLI imports this module to build its parser

    try:
        parsed = pd.Timedelta(0) if bare is not None else pd.Timedelta(value)
    except (ValueError, TypeError, OverflowError):
        raise InputError(f"{name} {value!r} is not a duration", fix=f"give e.g. {_EXAMPLES}", params=name) from None
    if pd.isna(parsed):
        raise InputError(f"{name} {value!r} is not a duration", fix=f"give e.g. {_EXAMPLES}", params=name)
    if parsed < pd.Timedelta(0):
        shown = value.strip().lstrip("-").strip() if isinstance(value, str) else "30min"
        raise InputError(f"{name} {value!r} is negative", fix=f"give a positive duration, e.g. {shown}", params=name)
    if positive and parsed == pd.Timedelta(0):
        raise InputError(f"{name} {value!r} is zero", fix="give a positive duration, e.g. 30min", params=name)
    return parsed.to_pytimedelta()


def choices(values: str | Iterable[str] | None, allowed: Iterable[str], *, name: str) -> list[str] | None:
    """Return `values` as a list, each once, when every one is in `allowed` (None stays None).

    Example:
        >>> choices(["image", "audio"], ["image", "video", "audio"], name="extraction_type")
        ['image', 'audio']
    """
    if values is None:
        return None
    allowed = list(allowed)
    given = list(dict.fromkeys([values] if isinstance(values, str) else values))
    unknown = [v for v in given if v not in allowed]
    if unknown:
        raise InputError(f"unknown {name} {', '.join(map(repr, unknown))}", fix=f"use one of: {', '.join(allowed)}", params=name)
    return given


def number(value: float, *, name: str, minimum: float = 0, maximum: float | None = None, integer: bool = False) -> float:
    """Return `value` when it is a number (an int if `integer`) within [minimum, maximum].

    Example:
        >>> number(90, name="warn_percent", maximum=100)
        90
    """
    kind = "a whole number" if integer else "a number"
    ok_type = isinstance(value, int) if integer else isinstance(value, Real)
    if isinstance(value, bool) or not ok_type:
        raise InputError(f"{name} must be {kind}, not {value!r}", fix=f"give {kind} of at least {minimum}", params=name)
    if value < minimum or (maximum is not None and value > maximum):
        bounds = f"between {minimum} and {maximum}" if maximum is not None else f"at least {minimum}"
        raise InputError(f"{name} {value!r} is out of range", fix=f"give {kind} {bounds}", params=name)
    return value


def database_name(value: str, *, name: str = "database") -> str:
    """Return `value` as a database name that can stand between double quotes in SQL; refuse one holding a quote.

    Example:
        >>> f'DROP DATABASE "{database_name("copythat_clone")}"'
        'DROP DATABASE "copythat_clone"'
    """
    if '"' in value or "\x00" in value:
        raise InputError(f"database name {value!r} has a double quote", fix="choose a name without quotes", params=name)
    return value
