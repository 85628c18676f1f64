"""Readable tables for notebooks and reports: whole numbers exact, units from column names, no nan/NaT, long text wrapped, worst rows first.

Example:
    >>> import pandas as pd
    >>> from copythat_ops import display
    >>> styled = display.table(pd.DataFrame({"check": ["a", "b"], "status": ["OK", "CRIT"], "size_bytes": [2048, None]}))
    >>> styled.data["status"].tolist()
    ['CRIT', 'OK']
    >>> ">2,048<" in styled.to_html()
    True
"""

from __future__ import annotations

import math
import numbers
import re
import sys
from collections.abc import Callable, Iterable, Mapping, Sequence
from datetime import datetime, timedelta
from decimal import ROUND_HALF_UP, Decimal
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # pandas is imported where a frame is at hand: one value is written without it (`db status` loads no pandas)
    import numpy as np
    import pandas as pd
    from pandas.io.formats.style import Styler

SEVERITY = ("CRIT", "WARN", "UNKNOWN", "OK")  # worst first
CSS = [
    {"selector": "", "props": "border-collapse: collapse; font-size: 12px;"},
    {"selector": "th", "props": "text-align: left; padding: 3px 8px; border-bottom: 1px solid #999; white-space: nowrap;"},
    {"selector": "td", "props": "text-align: left; vertical-align: top; padding: 3px 8px; border-bottom: 1px solid #ddd;"
                                "white-space: normal; overflow-wrap: break-word; max-width: 36em;"},
    {"selector": "td.num", "props": "text-align: right; white-space: nowrap;"},
    {"selector": "td.when", "props": "white-space: nowrap;"},
    {"selector": "caption", "props": "caption-side: bottom; text-align: left; color: #666; font-style: italic; padding: 3px 8px;"},
]  # fmt: skip
STATUS_COLOURS = {"CRIT": "background-color: #f8d0d0;", "WARN": "background-color: #fbecc5;", "UNKNOWN": "background-color: #e4e4e4;"}
# Names of identifiers (a pid, a job, snapshot or query id, an OID): written with their digits only, to paste into `kill` or `--id`.
IDENTIFIER = re.compile(r"^(?:.*_)?(?:id|ids|pid|pids|oid|oids|relid|relation|queryid|xid|xmin)$")
# pg_size_pretty's units: name, the size below which it is used, whether it is rounded (half away from zero), its power of 2.
_SIZE_UNITS = (("bytes", 10 * 1024, False, 0), ("kB", 20 * 1024 - 1, True, 10), ("MB", 20 * 1024 - 1, True, 20),
               ("GB", 20 * 1024 - 1, True, 30), ("TB", 20 * 1024 - 1, True, 40), ("PB", 20 * 1024 - 1, True, 50))  # fmt: skip


def table(data: pd.DataFrame | pd.Series | Mapping, *, rows: int | None = None) -> Styler:
    """Return `data` (a DataFrame, Series or dict) as a styled table to show in a notebook or an HTML report.

    Whole numbers are exact (9,223,372,036,854,775,807, never ...808), with
    units read from the column name (`*_seconds` s, `*_ms` ms, `*percent*` %,
    `failure_rate` and `share` as %, a `usual_low` / `usual_high` band in the
    unit of the column it bounds); `*_bytes` stay bytes (a `size` column is the
    readable one); identifiers (`id`, `*_id`, `pid`, `*_oid`) keep their bare
    digits; dates are UTC to the second, durations h:mm:ss, missing values are
    blank, long text wraps. A `status` column of OK / WARN / CRIT sorts
    the worst rows first and colours them. A dict (or Series) becomes a
    field / value table, each number written by its field's name, without the
    fields that have no value. An empty table says "no rows". `rows` keeps the first rows only.

    Example:
        >>> table({"jobs": 100000, "seconds": 1.23456, "error": None}).data.to_dict("list")
        {'field': ['jobs', 'seconds'], 'value': [100000, 1.23456]}
        >>> ">100,000<" in table({"jobs": 100000}).to_html() and ">1.2 s<" in table({"seconds": 1.23456}).to_html()
        True
    """
    import pandas as pd

    fields = not isinstance(data, pd.DataFrame)
    frame = _frame(data)
    if fields:  # a field without a value is not a row worth reading
        frame = frame[[not _missing(value) for value in frame["value"]]]
    if "status" in frame and frame["status"].isin(SEVERITY).all() and len(frame):
        frame = frame.sort_values("status", key=lambda s: s.map(SEVERITY.index), kind="stable")
    if rows is not None:
        frame = frame.head(rows)
    frame = frame.reset_index(drop=True)
    styled = frame.style.hide(axis="index").set_table_styles(CSS)
    for column in frame.columns:
        name = unit_name(str(column), [str(c) for c in frame.columns])
        styled = styled.format(_formatter(name, frame[column]), subset=[column], escape="html")
        if pd.api.types.is_numeric_dtype(frame[column]) and not pd.api.types.is_bool_dtype(frame[column]):
            styled = styled.set_td_classes(pd.DataFrame("num", index=frame.index, columns=[column]))
        elif pd.api.types.is_datetime64_any_dtype(frame[column]) or pd.api.types.is_timedelta64_dtype(frame[column]):
            styled = styled.set_td_classes(pd.DataFrame("when", index=frame.index, columns=[column]))  # a date on one line
    if fields:  # one value per row: each written as its field's name says
        for row, (field, value) in enumerate(zip(frame["field"], frame["value"])):
            if _is_number(value):
                styled = styled.format(lambda v, field=field: cell(v, field), subset=pd.IndexSlice[[row], ["value"]], escape="html")
    if "status" in frame:
        styled = styled.map(lambda v: STATUS_COLOURS.get(v, ""), subset=["status"])
    if frame.empty:
        styled = styled.set_caption("no rows")
    return styled


def cells(data: pd.DataFrame | pd.Series | Mapping) -> pd.DataFrame:
    """Return `data` with every cell written as `table` writes it (exact whole numbers, units, missing as ""), as text.

    A field / value table (a dict, or a frame of exactly those two columns)
    writes each value by its field's name.

    Example:
        >>> import pandas as pd
        >>> cells(pd.DataFrame({"size_bytes": [2048.0, None], "value": [2146484000.0, 0.5], "pid": [4242, 7]})).to_dict("list")
        {'size_bytes': ['2,048', ''], 'value': ['2,146,484,000', '0.50'], 'pid': ['4242', '7']}
        >>> cells({"latency_ms": 1.234, "max_value": 9223372036854775807})["value"].tolist()
        ['1.2 ms', '9,223,372,036,854,775,807']
    """
    import pandas as pd

    frame = _frame(data).reset_index(drop=True)
    names = [str(c) for c in frame.columns]
    text = {}
    for column, name in zip(frame.columns, names):
        write = _formatter(unit_name(name, names), frame[column])
        text[column] = [write(value) for value in frame[column]]
    if names == ["field", "value"]:
        text["value"] = [cell(value, str(field)) if _is_number(value) else written for field, value, written in zip(frame["field"], frame["value"], text["value"])]
    return pd.DataFrame(text, index=frame.index, columns=frame.columns, dtype=object)


def readable_bytes(value: float) -> str:
    """Return `value` bytes as PostgreSQL's pg_size_pretty writes them: a whole number of bytes, kB, MB, GB, TB or PB (units of 1024).

    The same text as the `size` columns the database writes; never in scientific notation.

    Example:
        >>> readable_bytes(3 * 1024**2), readable_bytes(2048), readable_bytes(1_048_000), readable_bytes(2**63 - 1)
        ('3072 kB', '2048 bytes', '1023 kB', '8192 PB')
    """
    size = _whole(value)
    for (name, limit, rounded, bits), following in zip(_SIZE_UNITS, (*_SIZE_UNITS[1:], None)):
        if following is None or abs(size) < limit:
            if rounded:
                size = _truncate(size + (-1 if size < 0 else 1), 2)  # half away from zero
            return f"{size} {name}"
        size = _truncate(size, 2 ** (following[3] - bits - following[2] + rounded))
    raise AssertionError("unreachable")


def cell(value, name: str = "") -> str:
    """Return one value as a table writes it in a column (or a field) called `name`: whole numbers exact, identifiers bare, units by name, missing as "".

    A fraction is rounded for reading; one too large or too small for that
    (1e+300, 1e-300) is written as PostgreSQL writes the float. Needs no pandas.

    Example:
        >>> cell(2**53 + 1), cell(4242, "pid"), cell(0.1234, "failure_rate"), cell(1e-300), cell(None), cell(True)
        ('9,007,199,254,740,993', '4242', '12.3 %', '1e-300', '', 'True')
    """
    if _missing(value):
        return ""
    return _number_format(name)(value) if _is_number(value) else _identifier(value) if is_identifier(name) else _text(value)


def is_identifier(name: str) -> bool:
    """Return True for a column whose numbers identify something (`id`, `*_id`, `pid`, `*_pids`, `oid`, `relid`, `relation`, ...): written as bare digits.

    Example:
        >>> [is_identifier(n) for n in ("pid", "blocking_pid", "example_job_id", "query_id", "table_oid", "ids_per_day", "xid_age")]
        [True, True, True, True, True, False, False]
    """
    return bool(IDENTIFIER.match(name))


def unit_name(name: str, columns: Sequence[str] = ()) -> str:
    """Return the name whose unit column `name` is written in: its own, or for a `usual_*` band the column to its left that it bounds.

    Example:
        >>> unit_name("usual_high", ["bucket", "failure_rate", "usual_low", "usual_high"])
        'failure_rate'
    """
    if name.startswith("usual_") and name in columns:
        before = [c for c in columns[: list(columns).index(name)] if not c.startswith("usual_")]
        if before:
            return before[-1]
    return name


def whole_numbers(values: Iterable) -> pd.api.extensions.ExtensionArray | np.ndarray:
    """Return whole numbers (ints, their text, Decimals; None / NaN missing) exactly: nullable Int64, or Python ints past the int64 range.

    For columns that may be NULL or hold bigint extremes: a float64 column would make 9223372036854775807 into ...808.

    Example:
        >>> whole_numbers(["9223372036854775807", None]).tolist(), whole_numbers([2**64, 1]).tolist()
        ([9223372036854775807, <NA>], [18446744073709551616, 1])
    """
    import numpy as np
    import pandas as pd

    exact = [None if _missing(v) else int(v) for v in values]
    if all(v is None or -(2**63) <= v < 2**63 for v in exact):
        return pd.array(exact, dtype="Int64")
    return np.array(exact, dtype=object)


def exact_frame(rows: Iterable[Sequence], columns: Sequence[str]) -> pd.DataFrame:
    """Return database rows as a DataFrame whose whole numbers stay exact: an integer column with NULLs is Int64 (not float64), one past int64 holds Python ints.

    For `run_query` and anything else building a frame from fetched rows; other columns are as pandas makes them.

    Example:
        >>> exact_frame([(2**53 + 1, "a"), (None, "b")], ["id", "name"])["id"].tolist()
        [9007199254740993, <NA>]
    """
    import pandas as pd

    rows = list(rows)
    frame = pd.DataFrame(rows, columns=list(columns))
    for position, column in enumerate(frame.columns):
        if not (pd.api.types.is_float_dtype(frame[column]) or frame[column].dtype == object):
            continue  # int64 holds every bigint exactly
        values = [row[position] for row in rows]
        present = [v for v in values if v is not None]
        if present and all(isinstance(v, numbers.Integral) and not _is_bool(v) for v in present):
            frame[column] = whole_numbers(values)  # NULLs made it float64, or ints past int64 made it object
    return frame


def _frame(data) -> pd.DataFrame:
    import pandas as pd

    if isinstance(data, pd.DataFrame):
        return data
    if isinstance(data, pd.Series):
        data = data.to_dict()
    return pd.DataFrame({"field": [str(k) for k in data], "value": pd.Series(list(data.values()), dtype=object)})


def _formatter(name: str, column: pd.Series) -> Callable[[object], str]:
    """How one column's cells are written, chosen from its name and type; a missing value is always blank."""
    import pandas as pd

    if pd.api.types.is_datetime64_any_dtype(column):
        fmt = _timestamp
    elif pd.api.types.is_timedelta64_dtype(column):
        fmt = _duration
    elif pd.api.types.is_bool_dtype(column):
        fmt = str
    elif pd.api.types.is_numeric_dtype(column):
        fmt = _number_format(name)
    elif is_identifier(name):
        fmt = _identifier
    else:
        fmt = _text
    return lambda value: "" if _missing(value) else fmt(value)


def _number_format(name: str) -> Callable[[object], str]:
    if is_identifier(name):
        return _identifier
    if name == "seconds" or name.endswith("_seconds"):
        return lambda v: _unit(v, 1, "s")
    if name.endswith("_ms"):
        return lambda v: _unit(v, 1, "ms")
    if "percent" in name:
        return lambda v: _unit(v, 1, "%")
    if name in ("share", "failure_rate") or name.endswith("_rate"):
        return lambda v: _unit(v, 1, "%", scale=100)
    return _number


def _number(value) -> str:
    """A number without a unit: whole numbers exact with separators, fractions to 2 places (or as PostgreSQL writes the float when that would hide it)."""
    if _is_bool(value):
        return str(value)
    return _decimals(value, 0 if _is_whole(value) else 2)


def _unit(value, places: int, unit: str, scale: int = 1) -> str:
    if _is_bool(value):
        return str(value)
    if scale != 1:
        value = Decimal(value) * scale if isinstance(value, Decimal) else value * scale
    return f"{_decimals(value, 0 if isinstance(value, numbers.Integral) else places)} {unit}"


def _decimals(value, places: int) -> str:
    """`value` with thousands separators and `places` decimals; exact for whole numbers of any size."""
    if isinstance(value, numbers.Integral):
        return f"{int(value):,}"
    if isinstance(value, Decimal):  # a numeric: its own text when rounding would hide it
        if not value.is_finite() or (value != 0 and (abs(value) >= Decimal("1e15") or abs(value) < Decimal(5).scaleb(-places - 1))):
            return str(value)
        return f"{value:,.{places}f}"
    value = float(value)
    if not math.isfinite(value) or (value != 0 and (abs(value) >= 1e15 or abs(value) < 0.5 * 10.0**-places)):
        return _float_text(value)  # past what a rounded fixed point can show: 1e+300, 1e-300, as the database writes them
    return f"{value:,.{places}f}"


def _float_text(value: float) -> str:
    """A float as PostgreSQL writes a float8: the shortest exact digits, an exponent from 1e+15 and below 1e-4, Infinity / NaN by name."""
    if math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return "Infinity" if value > 0 else "-Infinity"
    text = repr(value)
    if "e" not in text and abs(value) >= 1e15:
        sign, digits, exponent = Decimal(text).normalize().as_tuple()
        mantissa = "".join(map(str, digits))
        mantissa = mantissa[0] + ("." + mantissa[1:] if len(mantissa) > 1 else "")
        return f"{'-' if sign else ''}{mantissa}e+{len(digits) - 1 + exponent:02d}"
    return text[:-2] if text.endswith(".0") else text


def _identifier(value) -> str:
    if isinstance(value, (list, tuple)) or type(value).__name__ == "ndarray":
        return ", ".join(_identifier(v) for v in value)
    if _is_number(value) and _is_whole(value):
        return str(int(value))
    return _text(value)


def _timestamp(value) -> str:
    if not isinstance(value, datetime):  # a numpy datetime64, in a frame's column
        import pandas as pd

        value = pd.Timestamp(value)
    return value.strftime("%Y-%m-%d %H:%M:%S") + (" UTC" if value.tzinfo is not None else "")


def _duration(value) -> str:
    if not isinstance(value, timedelta):  # a numpy timedelta64, in a frame's column
        import pandas as pd

        value = pd.Timedelta(value)
    seconds = int(value / timedelta(seconds=1))
    days, rest = divmod(abs(seconds), 86_400)
    hours, rest = divmod(rest, 3600)
    clock = f"{hours}:{rest // 60:02d}:{rest % 60:02d}"
    return ("-" if seconds < 0 else "") + (f"{days} d {clock}" if days else clock)


def _text(value) -> str:
    if isinstance(value, (list, tuple)):  # e.g. job ids: digits only, "2936, 15385", never "2,936, 15,385"
        return ", ".join(str(v) if isinstance(v, numbers.Integral) and not isinstance(v, bool) else _text(v) for v in value)
    if _is_number(value):  # numbers in a column of mixed values (health's value)
        return _number(value)
    if isinstance(value, datetime):  # pandas' Timestamp too
        return _timestamp(value)
    if isinstance(value, timedelta):  # pandas' Timedelta too
        return _duration(value)
    return str(value)


def _is_whole(value) -> bool:
    if isinstance(value, numbers.Integral):
        return True
    if isinstance(value, Decimal):
        return value.is_finite() and value == value.to_integral_value()
    return math.isfinite(float(value)) and float(value).is_integer()


def _whole(value) -> int:
    """`value` as a whole number, halves away from zero; exact for ints and their text."""
    if isinstance(value, numbers.Integral):
        return int(value)
    return int(Decimal(str(value)).to_integral_value(rounding=ROUND_HALF_UP))


def _truncate(size: int, divisor: int) -> int:
    """Integer division towards zero, as C's (and pg_size_pretty's)."""
    quotient = abs(size) // divisor
    return -quotient if size < 0 else quotient


def _is_number(value) -> bool:
    return isinstance(value, numbers.Number) and not _is_bool(value) and not _missing(value)


def _is_bool(value) -> bool:
    return isinstance(value, bool) or type(value).__name__ == "bool_"  # numpy's, without importing numpy


def _missing(value) -> bool:
    """None, NaN, and (when pandas is loaded: nothing else makes them) NaT and NA; a list or dict is a value."""
    if value is None:
        return True
    if isinstance(value, float):  # numpy's float64 too
        return math.isnan(value)
    if isinstance(value, Decimal):
        return value.is_nan()
    if isinstance(value, (str, bool, numbers.Integral, list, tuple, dict)) or type(value).__name__ == "ndarray":
        return False
    pandas = sys.modules.get("pandas")
    if pandas is None:
        return False
    try:
        return bool(pandas.isna(value))
    except (TypeError, ValueError):  # an array-like cell
        return False
