"""The curated notebooks, executed headless with papermill.

Example:
    >>> from copythat_ops.runbooks import notebooks, run_notebooks
    >>> [p.name for p in notebooks()][:1]
    ['01_connect_and_migrate.ipynb']
    >>> run_notebooks("build/notebooks")["status"].tolist()   # doctest: +SKIP
    ['ok']
"""

from __future__ import annotations

import time
from pathlib import Path

import pandas as pd

from .errors import ConfigError

NOTEBOOK_DIR = Path(__file__).resolve().parents[1] / "notebooks"


def notebooks(folder: str | Path = NOTEBOOK_DIR) -> list[Path]:
    """Return the curated notebooks, in run order.

    Example:
        >>> all(p.suffix == ".ipynb" for p in notebooks())
        True
    """
    folder = Path(folder)
    if not folder.is_dir():
        raise ConfigError(f"notebook folder {folder} does not exist", fix="run from a checkout of copythat-ops")
    return sorted(folder.glob("[0-9]*.ipynb"))


def run_notebooks(
    output_dir: str | Path = "build/notebooks", *, parameters: dict | None = None, folder: str | Path = NOTEBOOK_DIR
) -> pd.DataFrame:
    """Execute every curated notebook top to bottom; return notebook, status, seconds, output, error.

    The sources are never modified: executed copies go to `output_dir`.
    One failing notebook does not stop the others.

    Example:
        >>> run_notebooks("/tmp/executed").columns.tolist()   # doctest: +SKIP
        ['notebook', 'status', 'seconds', 'output', 'error']
    """
    import papermill

    out = Path(output_dir).resolve()
    out.mkdir(parents=True, exist_ok=True)
    rows = []
    for source in notebooks(folder):
        target = out / source.name
        started = time.perf_counter()
        error = None
        try:
            papermill.execute_notebook(
                str(source),
                str(target),
                parameters=parameters or {},
                cwd=str(source.parent),
                progress_bar=False,
                kernel_name="python3",
                extra_arguments=["--IPKernelApp.log_level=ERROR"],  # no start-up chatter on stderr
            )
        except papermill.PapermillExecutionError as exc:
            error = f"cell {exc.exec_count}: {exc.ename}: {exc.evalue}"
        rows.append(
            {
                "notebook": source.name,
                "status": "failed" if error else "ok",
                "seconds": round(time.perf_counter() - started, 1),
                "output": str(target),
                "error": error,
            }
        )
    return pd.DataFrame(rows, columns=["notebook", "status", "seconds", "output", "error"])
