"""The job charts draw headless from the DataFrames the jobs functions return."""

from __future__ import annotations

from datetime import UTC, datetime

import matplotlib

matplotlib.use("Agg")

import pytest  # noqa: E402

from copythat_ops import charts, jobs, migrations  # noqa: E402
from copythat_ops.engine import get_engine  # noqa: E402
from copythat_ops.seed import seed_database  # noqa: E402


@pytest.fixture(scope="module")
def engine(db_url):
    migrations.upgrade(url=db_url)
    engine = get_engine(db_url)
    seed_database(2000, 10, seed=5, window="2 days", now=datetime.now(UTC), engine=engine)
    return engine


def test_throughput_chart_has_one_line_per_series_over_every_bucket(engine):
    frame = jobs.job_throughput("1h", since="2 days", engine=engine)
    fig = charts.throughput_chart(frame)
    lines = fig.axes[0].lines
    assert [line.get_label() for line in lines] == ["created", "completed", "failed"]
    assert all(len(line.get_xdata()) == len(frame) for line in lines)
    assert sum(line.get_ydata().sum() for line in lines[:1]) == frame["created"].sum()
    assert fig.get_suptitle() == "Extraction jobs per 1 h"
    fig.canvas.draw()


def test_duration_chart_draws_one_histogram_per_type_with_counts(engine):
    frame = jobs.jobs_frame(status="completed", engine=engine)
    fig = charts.duration_chart(frame)
    ax = fig.axes[0]
    labels = [text.get_text() for text in ax.get_legend().get_texts()]
    expected = frame.groupby("extraction_type", observed=True).size()
    assert labels == [f"{name} (n={count:,})" for name, count in expected.items()]
    assert ax.get_xscale() == "log"
    fig.canvas.draw()


def test_duration_chart_of_no_finished_jobs_says_so(engine):
    fig = charts.duration_chart(jobs.jobs_frame(status="completed", engine=engine).iloc[0:0])
    assert fig.axes[0].texts[0].get_text() == "no finished jobs"
