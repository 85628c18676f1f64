"""CLI messages name commands and flags, never Python functions or parameters, with one `Fix:` each."""

from __future__ import annotations

import json
import re

import pandas as pd
import pytest
from sqlalchemy import text
from test_cli import run

from copythat_ops import migrations
from copythat_ops.engine import get_engine

PYTHON_CALL = re.compile(r"(?<![\w`])[a-z][a-z0-9_]*\([^()]*\)")  # unused_indexes(), cancel_query(pid), revision("...")


@pytest.fixture(scope="module")
def url(db_url):
    migrations.upgrade(url=db_url)
    with get_engine(db_url).begin() as conn:
        conn.execute(text("CREATE TABLE counters (id serial PRIMARY KEY, n int)"))
        conn.execute(text("SELECT setval('counters_id_seq', 2000000000)"))  # 93 % of INTEGER: WARN, with an action
        conn.execute(text("CREATE INDEX counters_n ON counters (n)"))
        conn.execute(text("CREATE INDEX counters_n_again ON counters (n)"))  # a duplicate: WARN, with an action
    return db_url


def error_line(result) -> str:
    lines = result.stderr.strip().splitlines()
    assert result.returncode != 0 and lines and lines[-1].startswith("error: "), result.stderr
    line = lines[-1]
    assert line.count("Fix:") == 1, line
    assert not PYTHON_CALL.search(line), line
    return line


def test_the_health_report_points_to_commands(url):
    result = run("--format", "json", "monitor", "health", url=url)
    report = pd.DataFrame(json.loads(result.stdout)).set_index("check")
    assert report.loc["sequences", "status"] == "WARN" and report.loc["duplicate_indexes", "status"] == "WARN"
    for check, row in report.iterrows():
        for column in ("detail", "action"):
            assert not PYTHON_CALL.search(row[column] or ""), (check, column, row[column])
    assert "`copythat-ops monitor sequences`" in report.loc["sequences", "action"]
    assert "`copythat-ops monitor indexes duplicate`" in report.loc["duplicate_indexes", "action"]
    assert "--threshold size_limit='10 GB'" in report.loc["size_forecast", "detail"]


@pytest.mark.parametrize(
    ("args", "says"),
    [
        (("jobs", "throughput", "--freq", "1s", "--since", "365d"), "--freq 1s --since 365d makes more than 100,000 buckets"),
        (("jobs", "cancel", "--id", "1", "--reason", " "), "--reason must be a non-empty text"),
        (("jobs", "summary", "--since", "2025-13-45"), "--since 2025-13-45 is not a time"),
        (("monitor", "history", "--prune", "0s"), "--prune 0s is zero"),
        (("monitor", "capture", "--keep", "1s"), "--keep 1s is shorter than --interval 5min"),
        (("migrate", "new", " "), 'give one, e.g. "add jobs.priority"'),
    ],
)
def test_library_errors_speak_in_flags(url, args, says):
    assert says in error_line(run(*args, url=url))
