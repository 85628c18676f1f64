"""`copythat-ops notebooks`: execute the curated runbooks headless."""

from __future__ import annotations

import os

from ..errors import CopythatError
from ..runbooks import run_notebooks
from .output import emit


def register(groups) -> None:
    """Add the `notebooks` sub-commands."""
    nb = groups.add_parser("notebooks", help="the curated runbooks")
    actions = nb.add_subparsers(dest="action", required=True)
    actions.add_parser("run", help="execute every notebook headless").add_argument("--output-dir", default="build/notebooks")
    nb.set_defaults(run=run)


def run(args) -> object:
    result = run_notebooks(args.output_dir)
    emit(result[["notebook", "status", "seconds", "error"]], args.format)
    failed = result[result["status"] != "ok"]
    if not failed.empty:
        raise CopythatError(f"{len(failed)} notebook(s) failed", fix=f"open the executed copies in {args.output_dir} to see the failing cell")
    return f"Executed notebooks are in {os.path.abspath(args.output_dir)}"
