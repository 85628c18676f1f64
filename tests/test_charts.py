"""Monitoring charts: each is a Figure drawn headless from the DataFrame a monitoring function returns."""

from __future__ import annotations

import io

import matplotlib.colors as mcolors
import pandas as pd
import pytest
from matplotlib.figure import Figure
from sqlalchemy import text

from copythat_ops import charts, monitor
from copythat_ops.engine import get_engine


@pytest.fixture(scope="module")
def engine(db_url):
    engine = get_engine(db_url)
    with engine.begin() as conn:
        for name, rows in [("small", 10), ("medium", 1000), ("large", 20000)]:
            conn.execute(text(f"CREATE TABLE {name} (id serial PRIMARY KEY, note text)"))
            conn.execute(text(f"INSERT INTO {name} (note) SELECT md5(i::text) FROM generate_series(1, {rows}) AS i"))
    return engine


def drawn(fig: Figure) -> Figure:
    """Render the figure to PNG headless; a chart that cannot draw fails here."""
    assert isinstance(fig, Figure)
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png")
    assert buffer.getvalue()[:8] == b"\x89PNG\r\n\x1a\n"
    return fig


def labels(ax) -> list[str]:
    return [tick.get_text() for tick in ax.get_yticklabels()]


def test_connections_by_state_and_application(engine):
    with engine.connect() as busy, engine.connect() as idle:
        busy.execute(text("SELECT 1"))
        idle.execute(text("SELECT 1"))
        frame = monitor.connections(engine=engine)
    by_state, by_app = drawn(charts.connections_chart(frame)).axes
    assert (by_state.get_title(), by_app.get_title()) == ("by state", "by application")
    assert "active" in labels(by_state) and len(by_state.patches) == frame["state"].nunique()
    widths = dict(zip(labels(by_app), [bar.get_width() for bar in by_app.patches], strict=True))
    assert widths["copythat-ops"] == frame.query("application_name == 'copythat-ops'")["connections"].sum()


def test_table_sizes_split_table_indexes_and_toast(engine):
    ax = drawn(charts.table_sizes_chart(monitor.table_sizes(engine=engine), top=2)).axes[0]
    assert labels(ax) == ["medium", "large"]  # the largest on top
    assert len(ax.patches) == 2 * 3 and [t.get_text() for t in ax.get_legend().get_texts()] == ["table", "indexes", "TOAST"]
    assert ax.xaxis.get_major_formatter()(2 * 1024**2, 0) == "2048 kB"


def test_cache_hit_marks_the_threshold_and_what_is_below_it(engine):
    ax = drawn(charts.cache_hit_chart(monitor.cache_hit_ratio(engine=engine))).axes[0]
    assert labels(ax) == ["indexes", "tables"]
    frame = pd.DataFrame({"kind": ["indexes", "tables"], "hits": [0, 975], "reads": [0, 25], "hit_percent": [None, 97.5]})
    ax = drawn(charts.cache_hit_chart(frame)).axes[0]
    assert [t.get_text() for t in ax.texts] == ["no reads yet", "97.50 %"]
    assert mcolors.to_hex(ax.patches[1].get_facecolor()) == charts.PALETTE["warn"].lower()
    assert ax.lines[0].get_xdata()[0] == 99


def test_long_running_queries_labelled_by_pid_and_query():
    empty = drawn(charts.long_running_chart(pd.DataFrame(columns=["pid", "query", "duration_seconds"]))).axes[0]
    assert [t.get_text() for t in empty.texts] == ["no long-running queries"]
    frame = pd.DataFrame({"pid": [41, 42], "query": ["SELECT pg_sleep(60)", "UPDATE jobs\n   SET status = 'failed'"], "duration_seconds": [75.0, 300.0]})
    ax = drawn(charts.long_running_chart(frame)).axes[0]
    assert labels(ax) == ["41: SELECT pg_sleep(60)", "42: UPDATE jobs SET status = 'failed'"]
    assert [bar.get_width() for bar in ax.patches] == [75.0, 300.0]
