"""`copythat-ops notebooks run`: execute the curated runbooks headless, write their reports, end with the verdict.

A line per notebook as it finishes goes to stderr; the summary is the result
on stdout (with `--format json` one document with the summary and a row per
notebook, with `--format csv` the rows).
Exit 1 when a notebook fails, 3 with `--fail-on crit|warn` at that verdict or
worse, 2 for bad input.

Example:
    $ copythat-ops notebooks run
    $ copythat-ops notebooks run --notebook 03 --fail-on crit --keep 30
    $ copythat-ops notebooks run -p SINCE 24h -p 03:TOP 5
"""

from __future__ import annotations

import sys
from pathlib import Path

from .args import whole
from .output import Report

FAIL_EXIT = 3
# runbooks' folders, written here so that building the parser imports no library (tests/test_startup.py compares them).
NOTEBOOK_DIR = Path(__file__).resolve().parents[2] / "notebooks"
REPORTS_DIR = Path("build/reports")


def register(groups) -> None:
    """Add the `notebooks` sub-commands."""
    nb = groups.add_parser("notebooks", help="the curated runbooks")
    actions = nb.add_subparsers(dest="action", required=True)
    run_ = actions.add_parser("run", help="execute the notebooks headless into a dated folder of reports")
    run_.add_argument("--output-dir", default=str(REPORTS_DIR), help=f"where the dated run folders go (default {REPORTS_DIR})")
    run_.add_argument("--notebook", action="append", metavar="NAME", help="run only this notebook, by number (03) or name; repeatable")
    run_.add_argument("-p", "--parameter", nargs=2, action="append", metavar=("NAME", "VALUE"), default=[],
                      help="set a parameter in every notebook that has it, or in one with NN:NAME (e.g. -p 03:TOP 5); repeatable")  # fmt: skip
    run_.add_argument("--keep", type=whole(1), metavar="N", help="keep only the newest N run folders (older ones are deleted)")
    run_.add_argument("--fail-on", choices=["crit", "warn"], help=f"exit {FAIL_EXIT} when the health verdict is this or worse")
    run_.add_argument("--show-code", action="store_true", help="show the code cells in the HTML reports")
    run_.add_argument("--folder", default=str(NOTEBOOK_DIR), help="run the numbered notebooks of this folder instead of the curated ones")
    nb.set_defaults(run=run)


def run(args) -> Report:
    from ..runbooks import SEVERITY, parameter_value, run_notebooks, summary_text

    def progress(notebook: str, status: str, seconds: float) -> None:
        print(f"  {notebook:<28} {status:<6} {seconds:5.1f} s", file=sys.stderr, flush=True)

    result = run_notebooks(
        args.output_dir,
        notebooks=args.notebook,
        parameters={name: parameter_value(value) for name, value in args.parameter},
        keep=args.keep,
        show_code=args.show_code,
        folder=args.folder,
        progress=progress,
    )
    table = result.results[["notebook", "status", "seconds", "database", "report", "error"]]
    if args.format == "json":
        value = {"summary": result.summary, "notebooks": table.to_dict(orient="records")}
    elif args.format == "csv":
        value = table
    else:  # the run ends with its summary; the lines per notebook came before it, on stderr
        value = summary_text(result.summary)
    for row in result.failed.itertuples():
        where = row.report or row.executed
        if ". Fix: " in (row.error or ""):  # the library's own error says its fix: once, without the exception name
            cell, _, message = row.error.partition(": ")
            print(f"error: notebook {row.notebook} failed at {cell}: {message.partition(': ')[2]} (the failing cell: {where})", file=sys.stderr)
        else:
            print(f"error: notebook {row.notebook} failed at {row.error}. Fix: open {where} to see the failing cell", file=sys.stderr)
    if not result.failed.empty:
        return Report(value, exit_code=1)
    worst = SEVERITY.index(args.fail_on.upper()) if args.fail_on else None
    verdict = result.summary["verdict"]
    failing = worst is not None and (verdict not in SEVERITY or SEVERITY.index(verdict) >= worst)
    return Report(value, exit_code=FAIL_EXIT if failing else 0)
