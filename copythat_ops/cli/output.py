"""How the CLI prints results: a table, CSV or JSON."""

from __future__ import annotations

import json
from dataclasses import dataclass

import pandas as pd


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
    """Print a DataFrame, dict, list or text as a table, CSV or JSON.

    Example:
        >>> emit(pd.DataFrame({"status": ["failed"], "jobs": [3]}), "csv")
        status,jobs
        failed,3
    """
    if isinstance(value, dict):
        value = pd.DataFrame({"field": list(value), "value": list(value.values())}) if fmt != "json" else value
    if isinstance(value, pd.DataFrame):
        if fmt == "json":
            print(value.to_json(orient="records", date_format="iso", force_ascii=False))
        elif fmt == "csv":
            print(value.to_csv(index=False), end="")
        elif value.empty:
            print("(none)")
        else:
            print(value.to_markdown(index=False, tablefmt="simple"))
    elif fmt == "json":
        print(json.dumps(value, default=str, ensure_ascii=False))
    elif isinstance(value, list):
        print("\n".join(map(str, value)) if value else "(none)")
    else:
        print("(none)" if value is None else value)
