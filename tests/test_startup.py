"""The CLI starts at once: what a command imports before it runs, not how long it takes (benchmarks/startup.py times it).

Every command builds the whole parser first, so the command modules import no
library module at the top; the light commands (`db url`, `db status`) load no
pandas. Each check runs in a fresh interpreter and reads its sys.modules.
"""

from __future__ import annotations

import inspect
import json
import os
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

from copythat_ops import runbooks
from copythat_ops.cli import job_actions, jobs, monitor, notebooks, safety
from copythat_ops.cli.output import emit, text_table
from copythat_ops.jobs import actions, analyses
from copythat_ops.monitor import health
from copythat_ops.recovery import dumps

HEAVY = ("pandas", "numpy", "alembic", "pyarrow", "matplotlib", "nbconvert", "papermill", "sqlalchemy.orm")
REPORT = "import json, sys; print(json.dumps(sorted(name for name in {modules!r} if name in sys.modules)), file=sys.__stderr__)"


def loaded(code: str, *, url=None, cwd: Path, modules: tuple[str, ...] = HEAVY) -> list[str]:
    """Run `code` in a fresh interpreter; return which of `modules` it had imported at the end (a SystemExit too)."""
    env = {k: v for k, v in os.environ.items() if k != "DATABASE_URL"}
    if url is not None:
        env["DATABASE_URL"] = url if isinstance(url, str) else url.render_as_string(hide_password=False)
    script = f"try:\n    {code}\nexcept SystemExit:\n    pass\n{REPORT.format(modules=modules)}"
    done = subprocess.run([sys.executable, "-c", script], env=env, cwd=cwd, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stderr.strip().splitlines()[-1])


def test_building_the_parser_imports_no_library(tmp_path):
    assert loaded("import copythat_ops.cli; copythat_ops.cli.parser()", cwd=tmp_path) == []


@pytest.mark.parametrize("args", [["--help"], ["jobs", "summary", "--help"], ["monitor", "health", "--help"], ["db", "nosuch"]])
def test_help_and_a_mistyped_command_load_neither_pandas_nor_sqlalchemy(args, tmp_path):
    code = f"from copythat_ops.cli import main; main({args!r})"
    assert loaded(code, cwd=tmp_path, modules=(*HEAVY, "sqlalchemy")) == []


def test_db_url_imports_neither_pandas_nor_alembic(tmp_path):
    code = "from copythat_ops.cli import main; main(['db', 'url'])"
    assert loaded(code, url="postgresql://ops@db.example.com/copythat", cwd=tmp_path) == []


def test_db_status_reads_the_database_without_pandas(db_url, tmp_path):
    code = "from copythat_ops.cli import main; main(['db', 'status'])"
    assert "pandas" not in loaded(code, url=db_url, cwd=tmp_path)


def test_the_parsers_copies_of_library_constants_agree_with_the_library():
    assert (job_actions.STUCK_AFTER, job_actions.STUCK_REASON) == (actions.STUCK_AFTER, actions.STUCK_REASON)
    assert jobs.analyses.SUMMARY_GROUPS == analyses.SUMMARY_GROUPS
    assert monitor.THRESHOLDS == [name for name in inspect.signature(health).parameters if name != "engine"]
    assert (safety.backup.BACKUP_DIR_VAR, safety.backup.LOCK_WAIT_TIMEOUT) == (dumps.BACKUP_DIR_VAR, dumps.LOCK_WAIT_TIMEOUT)
    assert (notebooks.NOTEBOOK_DIR, notebooks.REPORTS_DIR) == (runbooks.NOTEBOOK_DIR, runbooks.REPORTS_DIR)


@pytest.mark.parametrize("width", [200, 60, 30])
def test_a_dict_without_pandas_is_the_table_pandas_writes(width, capsys, monkeypatch):
    facts = {"url": "postgresql+psycopg2://ops@/copythat?host=/tmp/" + "x" * 40, "reachable": True, "pid": 12345,
             "ratio": 0.5, "nan": float("nan"), "revision": None, "error": "could not connect " * 6}  # fmt: skip
    monkeypatch.setenv("COLUMNS", str(width))
    emit(facts)
    frame = pd.DataFrame({"field": list(facts), "value": pd.Series(list(facts.values()), dtype=object)})
    assert capsys.readouterr().out == text_table(frame, width) + "\n"
