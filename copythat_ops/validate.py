"""Checks for user-given values: each returns the clean value or raises an InputError naming it and what is allowed.

Example:
    >>> duration("30 min")
    datetime.timedelta(seconds=1800)
    >>> choices("failed", ["pending", "failed"], name="status")
    ['failed']
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import timedelta
from numbers import Real

import pandas as pd

from .errors import InputError


def duration(value: str | float | timedelta, *, name: str = "older_than") -> timedelta:
    """Return `value` ("30 min", "1h", "2 days", "00:30:00", a timedelta, or seconds) as a non-negative timedelta.

    Example:
        >>> duration("1h30m")
        datetime.timedelta(seconds=5400)
    """
    if isinstance(value, bool):
        raise InputError(f"{name} must be a duration, not {value!r}", fix="give e.g. '30 min', '2h' or '1 day'")
    try:
        parsed = pd.Timedelta(seconds=value) if isinstance(value, Real) else pd.Timedelta(value)
    except (ValueError, TypeError):
        raise InputError(f"{name} {value!r} is not a duration", fix="give e.g. '30 min', '2h', '1 day' or '00:30:00'") from None
    if pd.isna(parsed):
        raise InputError(f"{name} {value!r} is not a duration", fix="give e.g. '30 min', '2h', '1 day' or '00:30:00'")
    if parsed < pd.Timedelta(0):
        raise InputError(f"{name} {value!r} is negative", fix="give a positive duration such as '30 min'")
    return parsed.to_pytimedelta()


def choices(values: str | Iterable[str] | None, allowed: Iterable[str], *, name: str) -> list[str] | None:
    """Return `values` as a list when every one is in `allowed` (None stays None).

    Example:
        >>> choices(["image", "audio"], ["image", "video", "audio"], name="extraction_type")
        ['image', 'audio']
    """
    if values is None:
        return None
    allowed = list(allowed)
    given = [values] if isinstance(values, str) else list(values)
    unknown = [v for v in given if v not in allowed]
    if unknown:
        raise InputError(f"unknown {name} {', '.join(map(repr, unknown))}", fix=f"use one of: {', '.join(allowed)}")
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
        raise InputError(f"{name} must be {kind}, not {value!r}", fix=f"give {kind} of at least {minimum}")
    if value < minimum or (maximum is not None and value > maximum):
        bounds = f"between {minimum} and {maximum}" if maximum is not None else f"at least {minimum}"
        raise InputError(f"{name} {value!r} is out of range", fix=f"give {kind} {bounds}")
    return value
