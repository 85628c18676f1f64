"""How the CLI prints results: a table, CSV or JSON."""

from __future__ import annotations

import json
import numbers
import shutil
import sys
import textwrap
from dataclasses import dataclass
from decimal import Decimal
from typing import TYPE_CHECKING

from .. import display

if TYPE_CHECKING:
    import pandas as pd

FORMATS = ("table", "csv", "json")
PLAIN = (str, bool, int, float, type(None))  # values a table or JSON writes without pandas


@dataclass(frozen=True)
class Report:
    """A command's result with the exit code it calls for, e.g. a health report with a CRIT check exits 3.

    Example:
        >>> Report("health: CRIT", exit_code=3).exit_code
        3
    """

    value: object
    exit_code: int = 0


def emit(value, fmt: str = "table") -> None:
    """Print a DataFrame, dict, list or text as a table, CSV or JSON: one document on stdout.

    CSV and JSON are exactly one document (text and lists become a one-column
    CSV, `value`) with every number exact: whole numbers to the last digit,
    floats as their shortest exact text, identifiers (pids, ids, OIDs) as
    bare digits. A table writes numbers readably, leaves missing values blank,
    leaves out the fields without a value and wraps long text to the
    terminal's width between words, never inside one.

    Example:
        >>> import pandas as pd
        >>> emit(pd.DataFrame({"status": ["failed"], "jobs": [3]}), "csv")
        status,jobs
        failed,3
        >>> emit("now at 0123456789ab", "csv")
        value
        now at 0123456789ab
        >>> emit({"max_value": 9223372036854775807, "pid": 4242.0, "error": None})
        field      value
        ---------  -------------------------
        max_value  9,223,372,036,854,775,807
        pid        4242
    """
    if fmt == "json":
        print(json.dumps(_jsonable(value), default=str, ensure_ascii=False, allow_nan=False))
        return
    if isinstance(value, dict) and fmt != "csv" and _plain(value):  # e.g. `db status`: the same table, without loading pandas
        rows = [[key, display.cell(item, key)] for key, item in value.items()]
        rows = [row for row in rows if row[1] != ""]  # a field without a value is not a row worth reading
        print(_layout(["field", "value"], rows, [False, False]) if rows else "(none)")
        return
    if isinstance(value, dict) or fmt == "csv":
        import pandas as pd
    if isinstance(value, dict):
        value = pd.DataFrame({"field": list(value), "value": pd.Series([_identifier(k, v) for k, v in value.items()], dtype=object)})
    if fmt == "csv":
        if not _is_frame(value):
            rows = [] if value is None else value if isinstance(value, list) else [value]
            value = pd.DataFrame({"value": pd.Series(rows, dtype=object)})
        print(_exact_ids(value).to_csv(index=False), end="")
    elif _is_frame(value):
        print("(none)" if value.empty else text_table(value))
    elif isinstance(value, list):
        print("\n".join(map(str, value)) if value else "(none)")
    else:
        print("(none)" if value is None else value)


def _jsonable(value, name: str = ""):
    """`value` as strict JSON's values (no NaN): NaN / NaT / NA as None, numpy scalars as Python ones, whole numbers exact, identifiers as ints."""
    if isinstance(value, dict):
        return {str(k): _jsonable(v, str(k)) for k, v in value.items()}
    if isinstance(value, list | tuple) or type(value).__name__ == "ndarray":
        return [_jsonable(v, name) for v in value]
    if _is_frame(value):
        return _json_records(value)
    if hasattr(value, "item") and getattr(value, "ndim", None) == 0:  # a numpy scalar
        value = value.item()
    if isinstance(value, float) and (value != value or value in (float("inf"), float("-inf"))):
        return None
    if isinstance(value, Decimal):  # a numeric: a whole one exactly, else the nearest float
        return None if not value.is_finite() else int(value) if value == value.to_integral_value() else float(value)
    if isinstance(value, PLAIN):  # none of them is NaT or NA
        return _identifier(name, value)
    import pandas as pd

    try:
        if pd.isna(value):
            return None
    except (TypeError, ValueError):
        pass
    if isinstance(value, pd.Timestamp | pd.Timedelta):
        return value.isoformat()
    return value


def _json_records(frame: pd.DataFrame) -> list[dict]:
    """`frame` as JSON records: dates as pandas writes them (ISO, UTC as Z), every number exact (pandas' own JSON rounds floats to 10 digits)."""
    import pandas as pd

    records = json.loads(frame.to_json(orient="records", date_format="iso", force_ascii=False, default_handler=str))
    for column in frame.columns:
        dtype = frame[column].dtype
        if (pd.api.types.is_numeric_dtype(dtype) and not pd.api.types.is_bool_dtype(dtype)) or dtype == object:
            for record, cell in zip(records, frame[column]):
                if isinstance(cell, numbers.Number | list | tuple | dict) or type(cell).__name__ == "ndarray":
                    if not isinstance(cell, bool) and type(cell).__name__ != "bool_":
                        record[str(column)] = _jsonable(cell, str(column))
    return records


def _identifier(name: str, value):
    """A whole number in an identifier's column (a pid read as 4242.0) as the int it is."""
    if display.is_identifier(name) and isinstance(value, float) and value.is_integer():
        return int(value)
    return value


def _exact_ids(frame: pd.DataFrame) -> pd.DataFrame:
    """`frame` with identifier columns of whole floats (NULLs made them float64) as integers, for CSV: 4242, not 4242.0."""
    import pandas as pd

    fixed = {}
    for column in frame.columns:
        values = frame[column]
        if display.is_identifier(str(column)) and pd.api.types.is_float_dtype(values):
            if all(pd.isna(v) or float(v).is_integer() for v in values):
                fixed[column] = display.whole_numbers(values)
    if not fixed:
        return frame
    frame = frame.copy()
    for column, values in fixed.items():
        frame[column] = values
    return frame


def text_table(frame: pd.DataFrame, width: int | None = None) -> str:
    """Return `frame` as a plain-text table no wider than `width` (default: the terminal's), long text wrapped between words.

    A word (a URL, a path, a qualified name, an id) is never cut across lines.
    A field / value table leaves out the fields without a value.

    Example:
        >>> import pandas as pd
        >>> print(text_table(pd.DataFrame({"check": ["sequences"], "detail": ["counters_id_seq at 93 % of its type"]}), width=28))
        check      detail
        ---------  ---------------
        sequences  counters_id_seq
                   at 93 % of its
                   type

    Too many columns for the width: one block per row, as psql's expanded display.

        >>> print(text_table(pd.DataFrame({"check": ["sequences"], "status": ["WARN"], "detail": ["counters_id_seq at 93 %"],
        ...                                "action": ["ALTER SEQUENCE counters_id_seq AS bigint"]}), width=34))
        -[ 1 ]----------------------------
        check   sequences
        status  WARN
        detail  counters_id_seq at 93 %
        action  ALTER SEQUENCE
                counters_id_seq AS bigint

    A word too long for the room beside the labels gets a line of its own, whole.

        >>> print(text_table(pd.DataFrame({"field": ["url", "error"], "value": ["postgresql://db.example.com/app?sslmode=require", None]}), width=50))
        field  value
        -----  -------------------------------------------
        url
           postgresql://db.example.com/app?sslmode=require
    """
    import pandas as pd

    text = display.cells(frame)
    numeric = [pd.api.types.is_numeric_dtype(frame[c]) and not pd.api.types.is_bool_dtype(frame[c]) for c in frame.columns]
    rows = text.values.tolist()
    if [str(c) for c in frame.columns] == ["field", "value"]:  # a field without a value is not a row worth reading
        rows = [row for row in rows if row[1] != ""]
        if not rows:
            return "(none)"
    return _layout([str(c) for c in text.columns], rows, numeric, width)


def _layout(columns: list[str], rows: list[list[str]], numeric: list[bool], width: int | None = None) -> str:
    """`rows` of cells already written as text under `columns`, as `text_table` lays them out."""
    width = width or shutil.get_terminal_size().columns
    cells = [[row[i] for row in rows] for i in range(len(columns))]
    headers = [len(c) + 2 for c in columns]  # tabulate keeps a header 2 wider than its text
    natural = [max([h, *(len(line) for cell in column for line in cell.splitlines() or [""])]) for h, column in zip(headers, cells)]
    budget = width - 2 * (len(natural) - 1)
    words = [max([0, *(len(word) for cell in column for word in cell.split())]) for column in cells]
    widths = _fit(natural, [not n for n in numeric], [max(h, w) for h, w in zip(headers, words)], budget)
    if sum(widths) > budget:  # whole words do not fit side by side
        return _pairs(rows, width) if columns == ["field", "value"] else _blocks(columns, rows, width)
    from tabulate import tabulate

    rows = [list(row) for row in rows]
    for i, (limit, wide) in enumerate(zip(widths, natural)):
        if limit < wide:
            for row in rows:
                row[i] = _wrap(row[i], limit)
    return tabulate(
        rows,
        headers=columns,
        tablefmt="simple",
        disable_numparse=True,
        colalign=["right" if n else "left" for n in numeric],
    )


def _blocks(columns: list[str], rows: list[list[str]], width: int) -> str:
    """Each row as a block of `column  value` lines, values wrapped between words to `width`."""
    label = max(len(c) for c in columns)
    room = max(width - label - 2, 20)
    blocks = []
    for number, row in enumerate(rows, start=1):
        lines = [f"-[ {number} ]".ljust(min(width, label + 2 + room), "-")]
        lines += _labelled(zip(columns, row), label, room, width)
        blocks.append("\n".join(lines))
    return "\n".join(blocks)


def _pairs(rows: list[list[str]], width: int) -> str:
    """A field / value table with its values wrapped between words to `width` (a field / value table's fallback: one block, as a table)."""
    label = max(len("field"), *(len(field) for field, _ in rows))
    room = max(width - label - 2, 20)
    longest = max(len(line) for _, cell in rows for line in _wrap(cell, room).splitlines() or [""])
    lines = _labelled(rows, label, room, width)
    return "\n".join([f"{'field':<{label}}  value", f"{'-' * label}  {'-' * max(5, min(room, longest))}", *lines])


def _labelled(items, label: int, room: int, width: int) -> list[str]:
    """`label  value` lines; a word too long for the room beside the labels goes on a line of its own, as far left as it needs to fit."""
    lines = []
    for column, cell in items:
        for i, part in enumerate(_wrap(cell, room).splitlines() or [""]):
            head = str(column) if i == 0 else ""
            if len(part) > room:
                lines += [head] if head else []
                lines.append(" " * max(0, min(label + 2, width - len(part))) + part)
            else:
                lines.append(f"{head:<{label}}  {part}".rstrip())
    return lines


def _fit(natural: list[int], wrappable: list[bool], floors: list[int], budget: int) -> list[int]:
    """Column widths within `budget`: the widest wrappable column gives way first, none below its floor or 12."""
    widths = list(natural)
    floors = [min(w, max(f, 12)) if ok else w for w, ok, f in zip(natural, wrappable, floors)]
    while sum(widths) > budget:
        shrinkable = [i for i, w in enumerate(widths) if w > floors[i]]
        if not shrinkable:
            break
        widest = max(shrinkable, key=lambda i: widths[i])
        widths[widest] -= 1
    return widths


def _wrap(cell: str, limit: int) -> str:
    """`cell` wrapped to `limit` between words only: a longer word (a URL, a path, an id) stays whole on a line of its own."""
    lines = [textwrap.fill(line, limit, break_long_words=False, break_on_hyphens=False) for line in cell.splitlines()]
    return "\n".join(lines)


def _is_frame(value) -> bool:
    """True for a pandas DataFrame; pandas is not imported for it (nothing is a DataFrame before pandas is loaded)."""
    pandas = sys.modules.get("pandas")
    return pandas is not None and isinstance(value, pandas.DataFrame)


def _plain(value: dict) -> bool:
    """True when `value` holds only text keys and plain values, which `display.cell` writes as `display.cells` does, without pandas."""
    return all(isinstance(key, str) for key in value) and all(isinstance(item, PLAIN) for item in value.values())
