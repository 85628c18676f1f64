"""How the CLI prints results: a table, CSV or JSON."""

from __future__ import annotations

import json
import shutil
import sys
import textwrap
from dataclasses import dataclass
from typing import TYPE_CHECKING

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
    CSV, `value`); a table writes numbers readably, leaves missing values blank
    and wraps long text to the terminal's width.

    Example:
        >>> import pandas as pd
        >>> emit(pd.DataFrame({"status": ["failed"], "jobs": [3]}), "csv")
        status,jobs
        failed,3
        >>> emit("now at 0123456789ab", "csv")
        value
        now at 0123456789ab
    """
    if fmt == "json":
        if _is_frame(value):
            print(value.to_json(orient="records", date_format="iso", force_ascii=False, default_handler=str))
        else:
            print(json.dumps(_jsonable(value), default=str, ensure_ascii=False, allow_nan=False))
        return
    if isinstance(value, dict) and fmt != "csv" and _plain(value):  # e.g. `db status`: the same table, without loading pandas
        print(_layout(["field", "value"], [[key, _cell(item)] for key, item in value.items()], [False, False]) if value else "(none)")
        return
    if isinstance(value, dict) or fmt == "csv":
        import pandas as pd
    if isinstance(value, dict):
        value = pd.DataFrame({"field": list(value), "value": pd.Series(list(value.values()), dtype=object)})
    if fmt == "csv":
        if not _is_frame(value):
            rows = [] if value is None else value if isinstance(value, list) else [value]
            value = pd.DataFrame({"value": pd.Series(rows, dtype=object)})
        print(value.to_csv(index=False), end="")
    elif _is_frame(value):
        print("(none)" if value.empty else text_table(value))
    elif isinstance(value, list):
        print("\n".join(map(str, value)) if value else "(none)")
    else:
        print("(none)" if value is None else value)


def _jsonable(value):
    """`value` with NaN / NaT / NA as None and numpy scalars as Python ones: strict JSON, which has no NaN."""
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_jsonable(v) for v in value]
    if _is_frame(value):
        return json.loads(value.to_json(orient="records", date_format="iso", force_ascii=False, default_handler=str))
    if hasattr(value, "item") and getattr(value, "ndim", None) == 0:  # a numpy scalar
        value = value.item()
    if isinstance(value, float) and (value != value or value in (float("inf"), float("-inf"))):
        return None
    if isinstance(value, PLAIN):  # none of them is NaT or NA
        return value
    import pandas as pd

    try:
        if pd.isna(value):
            return None
    except (TypeError, ValueError):
        pass
    if isinstance(value, pd.Timestamp | pd.Timedelta):
        return value.isoformat()
    return value


def text_table(frame: pd.DataFrame, width: int | None = None) -> str:
    """Return `frame` as a plain-text table no wider than `width` (default: the terminal's), long text wrapped.

    Example:
        >>> import pandas as pd
        >>> print(text_table(pd.DataFrame({"check": ["sequences"], "detail": ["counters_id_seq at 93 % of its type"]}), width=28))
        check      detail
        ---------  ---------------
        sequences  counters_id_seq
                   at 93 % of its
                   type

    Too many columns for the width: one block per row.

        >>> print(text_table(pd.DataFrame({"check": ["sequences"], "status": ["WARN"], "detail": ["counters_id_seq at 93 %"],
        ...                                "action": ["ALTER SEQUENCE counters_id_seq AS bigint"]}), width=34))
        -[ 1 ]----------------------------
        check   sequences
        status  WARN
        detail  counters_id_seq at 93 %
        action  ALTER SEQUENCE
                counters_id_seq AS bigint
    """
    import pandas as pd

    from .. import display

    text = display.cells(frame)
    numeric = [pd.api.types.is_numeric_dtype(frame[c]) and not pd.api.types.is_bool_dtype(frame[c]) for c in frame.columns]
    return _layout([str(c) for c in text.columns], text.values.tolist(), numeric, width)


def _layout(columns: list[str], rows: list[list[str]], numeric: list[bool], width: int | None = None) -> str:
    """`rows` of cells already written as text under `columns`, as `text_table` lays them out."""
    width = width or shutil.get_terminal_size().columns
    cells = [[row[i] for row in rows] for i in range(len(columns))]
    headers = [len(c) + 2 for c in columns]  # tabulate keeps a header 2 wider than its text
    natural = [max([h, *(len(line) for cell in column for line in cell.splitlines() or [""])]) for h, column in zip(headers, cells)]
    budget = width - 2 * (len(natural) - 1)
    words = [max([0, *(len(word) for cell in column for word in cell.split())]) for column in cells]
    for longest in (None, 32, 24, 20, 16):  # whole words first; then cut the longest words (paths, qualified names) shorter
        floors = [max(h, w if longest is None else min(w, longest)) for h, w in zip(headers, words)]
        widths = _fit(natural, [not n for n in numeric], floors, budget)
        if sum(widths) <= budget:
            break
    else:  # columns this narrow would not read: one block per row instead, as psql's expanded display
        return _records(columns, rows, width)
    from tabulate import tabulate

    split_words = longest is not None
    rows = [list(row) for row in rows]
    for i, (limit, wide) in enumerate(zip(widths, natural)):
        if limit < wide:
            for row in rows:
                row[i] = _wrap(row[i], limit, split_words)
    return tabulate(
        rows,
        headers=columns,
        tablefmt="simple",
        disable_numparse=True,
        colalign=["right" if n else "left" for n in numeric],
    )


def _records(columns: list[str], rows: list[list[str]], width: int) -> str:
    """Each row as a block of `column  value` lines, values wrapped to `width`."""
    label = max(len(c) for c in columns)
    room = max(width - label - 2, 20)
    blocks = []
    for number, row in enumerate(rows, start=1):
        lines = [f"-[ {number} ]".ljust(min(width, label + 2 + room), "-")]
        for column, cell in zip(columns, row):
            wrapped = textwrap.wrap(cell, room, break_on_hyphens=False) or [""]
            lines += [f"{column if i == 0 else '':<{label}}  {part}".rstrip() for i, part in enumerate(wrapped)]
        blocks.append("\n".join(lines))
    return "\n".join(blocks)


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


def _wrap(cell: str, limit: int, split_words: bool) -> str:
    lines = [textwrap.fill(line, limit, break_long_words=split_words, break_on_hyphens=False) for line in cell.splitlines()]
    return "\n".join(lines)


def _is_frame(value) -> bool:
    """True for a pandas DataFrame; pandas is not imported for it (nothing is a DataFrame before pandas is loaded)."""
    pandas = sys.modules.get("pandas")
    return pandas is not None and isinstance(value, pandas.DataFrame)


def _plain(value: dict) -> bool:
    """True when `value` holds only text keys and plain values, which `_cell` writes as `display.cells` does."""
    return all(isinstance(key, str) for key in value) and all(isinstance(item, PLAIN) for item in value.values())


def _cell(value) -> str:
    """A plain value as `display.cells` writes it in a column of mixed values: missing blank, numbers with separators."""
    if value is None or value != value:  # None or NaN
        return ""
    if isinstance(value, str | bool):
        return str(value)
    return f"{value:,.0f}" if float(value).is_integer() else f"{value:,.2f}"
