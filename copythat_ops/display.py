"""Readable tables for notebooks and reports: rounded numbers with units, no nan/NaT, long text wrapped, worst rows first.

Example:
    >>> import pandas as pd
    >>> from copythat_ops import display
    >>> styled = display.table(pd.DataFrame({"check": ["a", "b"], "status": ["OK", "CRIT"], "size_bytes": [2048, None]}))
    >>> styled.data["status"].tolist()
    ['CRIT', 'OK']
    >>> "2 kB" in styled.to_html()
    True
"""

from __future__ import annotations

import numbers
from collections.abc import Callable, Mapping
from datetime import timedelta

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


def table(data: pd.DataFrame | pd.Series | Mapping, *, rows: int | None = None) -> Styler:
    """Return `data` (a DataFrame, Series or dict) as a styled table to show in a notebook or an HTML report.

    Numbers are rounded with units read from the column name (`*_bytes` as kB/MB,
    `*_seconds` s, `*_ms` ms, `*percent*` %, `failure_rate` and `share` as %),
    ids keep their digits, dates are UTC to the second, durations h:mm:ss, missing
    values are blank, long text wraps. A `status` column of OK / WARN / CRIT sorts
    the worst rows first and colours them. A dict (or Series) becomes a
    field / value table, each number written by its field's name. An empty
    table says "no rows". `rows` keeps the first rows only.

    Example:
        >>> table({"jobs": 100000, "seconds": 1.23456}).data.to_dict("list")
        {'field': ['jobs', 'seconds'], 'value': [100000, 1.23456]}
        >>> ">100,000<" in table({"jobs": 100000}).to_html() and ">1.2 s<" in table({"seconds": 1.23456}).to_html()
        True
    """
    fields = not isinstance(data, pd.DataFrame)
    frame = _frame(data)
    if "status" in frame and frame["status"].isin(SEVERITY).all() and len(frame):
        frame = frame.sort_values("status", key=lambda s: s.map(SEVERITY.index), kind="stable")
    if rows is not None:
        frame = frame.head(rows)
    frame = frame.reset_index(drop=True)
    styled = frame.style.hide(axis="index").set_table_styles(CSS)
    for column in frame.columns:
        styled = styled.format(_formatter(str(column), frame[column]), subset=[column], escape="html")
        if pd.api.types.is_numeric_dtype(frame[column]) and not pd.api.types.is_bool_dtype(frame[column]):
            styled = styled.set_td_classes(pd.DataFrame("num", index=frame.index, columns=[column]))
        elif pd.api.types.is_datetime64_any_dtype(frame[column]) or pd.api.types.is_timedelta64_dtype(frame[column]):
            styled = styled.set_td_classes(pd.DataFrame("when", index=frame.index, columns=[column]))  # a date on one line
    if fields:  # one value per row: each written as its field's name says
        for row, (field, value) in enumerate(zip(frame["field"], frame["value"])):
            if _is_number(value):
                styled = styled.format(_formatter(field, pd.Series([value])), subset=pd.IndexSlice[[row], ["value"]], escape="html")
    if "status" in frame:
        styled = styled.map(lambda v: STATUS_COLOURS.get(v, ""), subset=["status"])
    if frame.empty:
        styled = styled.set_caption("no rows")
    return styled


def cells(data: pd.DataFrame | pd.Series | Mapping) -> pd.DataFrame:
    """Return `data` with every cell written as `table` writes it (units, no scientific notation, missing as ""), as text.

    Example:
        >>> cells(pd.DataFrame({"size_bytes": [2048.0, None], "value": [2146484000.0, 0.5]})).to_dict("list")
        {'size_bytes': ['2 kB', ''], 'value': ['2,146,484,000', '0.50']}
    """
    frame = _frame(data).reset_index(drop=True)
    return pd.DataFrame(
        {column: [_formatter(str(column), frame[column])(value) for value in frame[column]] for column in frame.columns},
        index=frame.index,
        dtype=object,
    )


def _frame(data) -> pd.DataFrame:
    if isinstance(data, pd.DataFrame):
        return data
    if isinstance(data, pd.Series):
        data = data.to_dict()
    return pd.DataFrame({"field": [str(k) for k in data], "value": pd.Series(list(data.values()), dtype=object)})


def _formatter(name: str, column: pd.Series) -> Callable[[object], str]:
    """How one column's cells are written, chosen from its name and type; a missing value is always blank."""
    if pd.api.types.is_datetime64_any_dtype(column):
        fmt = _timestamp
    elif pd.api.types.is_timedelta64_dtype(column):
        fmt = _duration
    elif pd.api.types.is_bool_dtype(column):
        fmt = str
    elif pd.api.types.is_numeric_dtype(column):
        fmt = _number_format(name)
    else:
        fmt = _text
    return lambda value: "" if _missing(value) else fmt(value)


def _number_format(name: str) -> Callable[[float], str]:
    from .charts import readable_bytes

    if name == "id" or name.endswith("_id") or name == "pid":
        return lambda v: f"{int(v)}"
    if name.endswith("bytes"):
        return readable_bytes
    if name == "seconds" or name.endswith("_seconds"):
        return lambda v: f"{v:,.1f} s"
    if name.endswith("_ms"):
        return lambda v: f"{v:,.1f} ms"
    if "percent" in name:
        return lambda v: f"{v:,.1f} %"
    if name in ("share", "failure_rate") or name.endswith("_rate"):
        return lambda v: f"{v * 100:,.1f} %"
    return _number


def _number(value) -> str:
    if isinstance(value, bool):
        return str(value)
    if float(value).is_integer():
        return f"{value:,.0f}"
    return f"{value:,.2f}"


def _timestamp(value) -> str:
    stamp = pd.Timestamp(value)
    return stamp.strftime("%Y-%m-%d %H:%M:%S") + (" UTC" if stamp.tzinfo is not None else "")


def _duration(value) -> str:
    seconds = int(pd.Timedelta(value) / timedelta(seconds=1))
    days, rest = divmod(abs(seconds), 86_400)
    hours, rest = divmod(rest, 3600)
    clock = f"{hours}:{rest // 60:02d}:{rest % 60:02d}"
    return ("-" if seconds < 0 else "") + (f"{days} d {clock}" if days else clock)


def _text(value) -> str:
    if isinstance(value, (list, tuple)):  # e.g. job ids: digits only, "2936, 15385", never "2,936, 15,385"
        return ", ".join(str(v) if isinstance(v, numbers.Integral) and not isinstance(v, bool) else _text(v) for v in value)
    if isinstance(value, (int, float)) and not isinstance(value, bool):  # numbers in a column of mixed values (health's value)
        return _number(value)
    if isinstance(value, (pd.Timestamp,)):
        return _timestamp(value)
    if isinstance(value, (timedelta, pd.Timedelta)):
        return _duration(value)
    return str(value)


def _is_number(value) -> bool:
    return isinstance(value, numbers.Number) and not isinstance(value, (bool, np.bool_)) and not _missing(value)


def _missing(value) -> bool:
    if isinstance(value, (list, tuple, dict)):
        return False
    try:
        return bool(pd.isna(value))
    except (TypeError, ValueError):  # an array-like cell
        return False
