"""Monitoring history against a real server: capture, retention, trends and forecasts from snapshots written for real."""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta

import pandas as pd
import pytest
from sqlalchemy import text

from copythat_ops import migrations, monitor
from copythat_ops.engine import connection, dispose_engines, get_engine, run_query
from copythat_ops.errors import ConnectError, CopythatError, InputError, MigrationError
from copythat_ops.monitor import history
from copythat_ops.seed import seed_database, seed_history

INT_MAX = 2_147_483_647


@pytest.fixture(scope="module")
def engine(db_url):
    migrations.upgrade(url=db_url)
    seed_database(300, 5, seed=3, engine=get_engine(db_url))
    return get_engine(db_url)


@pytest.fixture(autouse=True)
def no_history_url(monkeypatch, tmp_path):
    monkeypatch.delenv(history.HISTORY_URL_VAR, raising=False)
    monkeypatch.delenv("COPYTHAT_ENV_FILE", raising=False)
    monkeypatch.chdir(tmp_path)  # no .env of the checkout


def count(engine, table: str = "snapshots", where: str = "true", params: dict | None = None) -> int:
    return int(run_query(f"SELECT count(*) AS n FROM copythat_history.{table} WHERE {where}", params, engine=engine)["n"][0])


def clear(engine) -> None:
    with connection(engine) as conn, conn.begin():
        conn.execute(text("DELETE FROM copythat_history.snapshots"))


def stage(engine, ages_days: list[float], *, sequence=lambda age: None, size=lambda age: None, jobs=lambda age: None, statements=lambda age: None) -> None:
    """Write snapshots of the database (its default source) `ages_days` before now, each kind of row made by its function of the age."""
    now = datetime.now(UTC).replace(microsecond=0)
    with connection(engine) as conn:
        for age in ages_days:
            frames = {
                "sequences": sequence(age),
                "tables": size(age),
                "jobs": jobs(age),
                "statements": statements(age),
            }
            frames = {k: v for k, v in frames.items() if v is not None}
            db_bytes = int(size(age)["total_bytes"].sum()) if size(age) is not None else 10_000_000
            snap = {"source": engine.url.database, "bucket": now - timedelta(days=age), "every": 300, "bytes": db_bytes, "version": 180000}
            assert history.insert_snapshot(conn, snap, frames) is not None


def ids(per_day: float, now_value: int):
    return lambda age: pd.DataFrame(
        {"schema": ["public"], "sequence": ["orders_id_seq"], "table": ["orders"], "column": ["id"], "column_type": ["integer"],
         "last_value": [int(now_value - per_day * age)], "max_value": [INT_MAX]}
    )  # fmt: skip


def test_capture_records_sizes_sequences_connections_and_jobs_once_per_interval(engine):
    clear(engine)
    first = monitor.capture(interval="1h", engine=engine)
    assert first["status"] == "captured" and first["snapshot_id"] is not None
    assert first["tables"] >= 3 and first["sequences"] >= 2 and first["jobs"] >= 1 and first["connections"] >= 1
    again = monitor.capture(interval="1h", engine=engine)
    assert again["status"] == "skipped" and again["bucket"] == first["bucket"]
    assert count(engine) == 1
    sid = first["snapshot_id"]
    assert count(engine, "table_sizes", "snapshot_id = :s AND \"table\" = 'extraction_jobs'", {"s": sid}) == 1
    jobs = run_query("SELECT sum(jobs) AS n FROM copythat_history.jobs WHERE snapshot_id = :s", {"s": sid}, engine=engine)["n"][0]
    assert int(jobs) == 300
    seq = run_query("SELECT last_value FROM copythat_history.sequences WHERE snapshot_id = :s AND \"table\" = 'extraction_jobs'", {"s": sid}, engine=engine)
    assert int(seq["last_value"][0]) >= 300


def test_captures_from_several_hosts_at_once_keep_one_snapshot(engine, db_url):
    clear(engine)
    results, errors = [], []

    def run():
        try:
            results.append(monitor.capture(interval="1h", engine=get_engine(db_url))["status"])
        except Exception as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=run) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    assert sorted(results).count("captured") == 1 and count(engine) == 1


def test_retention_deletes_old_snapshots_in_batches_with_their_rows(engine):
    clear(engine)
    stage(engine, [100, 99, 98, 97, 96, 1, 0.5], sequence=ids(1000, 500_000))
    assert count(engine, "sequences") == 7
    assert monitor.prune_history("90d", batch=2, engine=engine) == 5
    assert count(engine) == 2 and count(engine, "sequences") == 2
    assert monitor.prune_history("90d", engine=engine) == 0


def test_capture_with_keep_prunes_after_capturing(engine):
    clear(engine)
    stage(engine, [40], sequence=ids(1000, 500_000))
    result = monitor.capture(interval="1h", keep="30d", engine=engine)
    assert result["status"] == "captured" and result["pruned"] == 1 and count(engine) == 1


def test_a_keep_shorter_than_the_interval_is_refused_before_anything_is_written(engine, db_url):
    from test_cli import run

    clear(engine)
    with pytest.raises(InputError, match="shorter than interval"):
        monitor.capture(interval="5min", keep="1s", engine=engine)
    with pytest.raises(InputError, match="shorter than every"):
        monitor.capture_loop("1h", keep="10min", times=1, engine=engine)
    assert count(engine) == 0
    refused = run("monitor", "capture", "--keep", "1s", url=db_url)
    assert refused.returncode == 2 and count(engine) == 0, refused.stderr
    assert refused.stderr.startswith("error: --keep 1s is shorter than --interval 5min") and refused.stderr.count("Fix:") == 1, refused.stderr
    looped = run("monitor", "capture", "--every", "1h", "--keep", "30min", url=db_url)
    assert looped.returncode == 2 and "--keep 30min is shorter than --every 1h" in looped.stderr and count(engine) == 0, looped.stderr
    kept = run("monitor", "capture", "--interval", "1h", "--keep", "1h", url=db_url)
    assert kept.returncode == 0 and count(engine) == 1, kept.stderr


def test_retention_and_capture_give_up_on_a_locked_history_naming_the_holder(engine, db_url):
    import time

    import psycopg2

    from copythat_ops.engine import LockWaitError

    stage(engine, [100], sequence=ids(1000, 500_000))
    holder = psycopg2.connect(db_url.render_as_string(hide_password=False).replace("+psycopg2", ""))
    try:
        with holder.cursor() as cur:
            cur.execute("BEGIN")
            cur.execute("LOCK TABLE copythat_history.snapshots IN EXCLUSIVE MODE")  # reads go on; deletes and inserts wait
        started = time.monotonic()
        with pytest.raises(LockWaitError, match=f"pid {holder.info.backend_pid} holds ExclusiveLock on copythat_history.snapshots"):
            monitor.prune_history("90d", engine=engine)
        with pytest.raises(LockWaitError, match=f"pid {holder.info.backend_pid}"):
            monitor.capture(interval="1s", engine=engine)  # a bucket no earlier capture has taken
        assert time.monotonic() - started < 10
    finally:
        holder.close()
    assert monitor.prune_history("90d", engine=engine) >= 1


def test_capture_without_the_history_revision_says_how_to_apply_it_and_writes_nothing(server):
    url = server.create_database("history_norev")
    try:
        migrations.upgrade("c0db8df4a585", url=url)
        with pytest.raises(MigrationError, match=r"no history tables .*nothing was written.*copythat-ops migrate upgrade.*COPYTHAT_HISTORY_URL"):
            monitor.capture(engine=get_engine(url))
        assert run_query("SELECT to_regnamespace('copythat_history') IS NULL AS absent", engine=get_engine(url))["absent"][0]
    finally:
        server.drop_database(url)


def test_an_unreachable_history_url_is_one_line_naming_it_without_the_password(engine, monkeypatch):
    clear(engine)
    monkeypatch.setenv(history.HISTORY_URL_VAR, "postgresql://ops:hunter2secret@127.0.0.1:1/history")
    with pytest.raises(ConnectError) as caught:
        monitor.capture(engine=engine)
    message = str(caught.value)
    assert "COPYTHAT_HISTORY_URL" in message and "nothing was written" in message and "hunter2secret" not in message
    assert "\n" not in message
    monkeypatch.delenv(history.HISTORY_URL_VAR)
    assert count(engine) == 0


def test_history_can_live_in_another_database(engine, server, monkeypatch):
    clear(engine)
    other = server.create_database("history_elsewhere")
    try:
        migrations.upgrade(url=other)
        monkeypatch.setenv(history.HISTORY_URL_VAR, other.render_as_string(hide_password=False))
        result = monitor.capture(interval="1h", engine=engine)
        assert result["status"] == "captured" and result["source"] == engine.url.database
        assert count(get_engine(other)) == 1 and count(engine) == 0
        assert monitor.history_summary(engine=engine)["snapshots"].tolist() == [1]
    finally:
        monkeypatch.delenv(history.HISTORY_URL_VAR)
        server.drop_database(other)


@pytest.mark.parametrize("days", [0, -3])
def test_trends_refuse_days_that_are_not_positive(engine, days):
    for call in (lambda: monitor.growth(days=days, engine=engine), lambda: monitor.job_trends(days=days, engine=engine),
                 lambda: monitor.sequence_forecast(days=days, engine=engine)):  # fmt: skip
        with pytest.raises(InputError, match=f"days must be above 0, not {days}"):
            call()


def test_growth_compares_each_table_with_days_ago(engine):
    clear(engine)
    size = lambda age: pd.DataFrame(
        {"schema": ["public", "public"], "table": ["orders", "quiet"], "table_bytes": [int(1e9 - 1e7 * age), 8192],
         "index_bytes": [0, 0], "toast_bytes": [0, 0], "total_bytes": [int(1e9 - 1e7 * age), 8192],
         "live_rows": [int(1e6 - 1e4 * age), 1], "dead_rows": [0, 0]}
    )  # fmt: skip
    stage(engine, [14, 7, 3, 0], size=size)
    grown = monitor.growth(days=7, engine=engine).set_index("table")
    assert grown.loc["orders", "bytes_per_day"] == 1e7 and grown.loc["orders", "rows_per_day"] == 1e4
    assert grown.loc["orders", "days_apart"] == 7 and grown.loc["quiet", "bytes_per_day"] == 0
    assert grown.index[0] == "orders"


def test_growth_and_forecasts_refuse_a_single_snapshot(engine):
    clear(engine)
    stage(engine, [0], sequence=ids(1000, 500_000))
    with pytest.raises(CopythatError, match=rf"growth\(\) needs two snapshots of history for '{engine.url.database}'; there is 1 snapshot"):
        monitor.growth(engine=engine)
    with pytest.raises(CopythatError, match=rf"sequence_forecast\(\) needs 1 day of history for '{engine.url.database}'; there is 1 snapshot"):
        monitor.sequence_forecast(engine=engine)
    stage(engine, [0.1], sequence=ids(1000, 500_000))
    with pytest.raises(CopythatError, match=r"there are 2 snapshots over 0.10 days"):
        monitor.sequence_forecast(engine=engine)


def test_sequence_forecast_gives_ids_per_day_and_the_date_the_integer_maximum_is_reached(engine):
    clear(engine)
    stage(engine, [10, 7, 5, 2, 0], sequence=ids(10_000_000, 2_000_000_000))
    found = monitor.sequence_forecast(engine=engine).iloc[0]
    assert found["ids_per_day"] == pytest.approx(1e7, rel=1e-3)
    assert found["days_left"] == pytest.approx((INT_MAX - 2e9) / 1e7, abs=0.05)
    assert found["history_days"] == 10 and found["snapshots"] == 5
    assert found["runs_out_on"] == (datetime.now(UTC) + timedelta(days=float(found["days_left"]))).date()


@pytest.mark.parametrize(("per_day", "status"), [(1_000, "OK"), (2_000_000, "WARN"), (20_000_000, "CRIT")])
def test_health_warns_under_90_days_and_is_critical_under_14(engine, per_day, status, monkeypatch):
    clear(engine)
    stage(engine, [3, 2, 1, 0], sequence=ids(per_day, 2_000_000_000))
    row = monitor.health(engine=engine).set_index("check").loc["sequence_forecast"]
    assert row["status"] == status
    assert "orders_id_seq" in row["detail"] and "3 days of history" in row["detail"]


def test_health_forecast_with_too_little_history_is_not_a_guess(engine):
    clear(engine)
    row = monitor.health(engine=engine).set_index("check").loc["sequence_forecast"]
    assert row["status"] == "OK" and row["detail"].startswith("not forecast: sequence_forecast() needs 1 day of history")


def test_size_forecast_against_a_limit(engine):
    clear(engine)
    size = lambda age: pd.DataFrame({"schema": ["public"], "table": ["t"], "table_bytes": [0], "index_bytes": [0], "toast_bytes": [0],
                                     "total_bytes": [int(9e9 - 1e8 * age)], "live_rows": [0], "dead_rows": [0]})  # fmt: skip
    stage(engine, [4, 2, 0], size=size)
    found = monitor.size_forecast("10 GB", engine=engine).iloc[0]
    assert found["bytes_per_day"] == 1e8
    assert found["days_left"] == pytest.approx((10 * 1024**3 - 9e9) / 1e8, abs=0.05)
    with pytest.raises(InputError, match="size_limit 'ten' is not a size"):
        monitor.size_forecast("ten", engine=engine)


def test_job_trends_count_finished_jobs_per_interval_and_flag_an_unusual_failure_rate(engine):
    clear(engine)
    hours = [h / 24 for h in range(48, -1, -1)]

    def jobs(age):
        done = int((2 - age) * 24 * 100)  # 100 completed an hour
        failed = int((2 - age) * 24 * 5) + (200 if age <= 1 else 0)  # 5 failed an hour, 200 more one day ago
        return pd.DataFrame({"status": ["completed", "failed", "pending"], "extraction_type": ["color"] * 3, "jobs": [done, failed, 7]})

    stage(engine, hours, jobs=jobs)
    trend = monitor.job_trends("1h", days=2, engine=engine)
    assert trend["completed"].median() == 100 and trend["failed"].median() == 5
    spike = trend[trend["failed"] > 100]
    assert len(spike) == 1 and bool(spike["unusual"].iloc[0]) and spike["failure_rate"].iloc[0] > trend["usual_high"].iloc[0]
    assert int(trend["pending"].iloc[-1]) == 7


def test_query_trends_and_changes_around_a_deploy(engine):
    clear(engine)
    deploy = datetime.now(UTC) - timedelta(days=1)

    def statements(age):
        hours = (3 - age) * 24
        slow = min(hours, 48) * 100 * 2.0 + max(hours - 48, 0) * 100 * 8.0  # 2 ms, then 8 ms after the deploy
        return pd.DataFrame({"query_id": [11, 22], "user_name": ["app", "app"], "calls": [int(hours * 100), int(hours * 10)],
                             "total_ms": [slow, hours * 10 * 1.0], "rows": [0, 0], "query": ["SELECT slow", "SELECT steady"]})  # fmt: skip

    stage(engine, [h / 24 for h in range(72, -1, -6)], statements=statements)
    trend = monitor.query_trends(since=deploy, interval="6h", days=3, engine=engine)
    slow = trend[trend["query_id"] == 11]
    assert set(slow.loc[slow["period"] == "before", "mean_ms"].round(2)) == {2.0}
    assert set(slow.loc[slow["period"] == "after", "mean_ms"].round(2)) == {8.0}
    changes = monitor.query_changes(deploy, days=3, engine=engine).set_index("query_id")
    assert changes.loc[11, "change_percent"] == 300 and changes.loc[22, "change_percent"] == 0
    assert changes.index[0] == 11 and changes.loc[11, "query"] == "SELECT slow"
    with pytest.raises(InputError, match="since 'after lunch' is not a time"):
        monitor.query_trends(since="after lunch", engine=engine)


def test_demo_history_is_synthetic_and_feeds_every_trend(engine):
    clear(engine)
    written = seed_history(days=10, every="6h", seed=1, engine=engine)
    assert written["snapshots"] == 41 and written["synthetic"] is True
    summary = monitor.history_summary(engine=engine)
    assert summary["synthetic"].tolist() == [True] and summary["days"].tolist() == [10]
    assert seed_history(days=10, engine=engine)["snapshots"] == 0  # it already has history
    assert not monitor.growth(days=7, engine=engine).empty
    assert not monitor.sequence_forecast(engine=engine).empty
    assert monitor.job_trends("1d", engine=engine)["completed"].sum() > 0
    assert len(monitor.query_trends(interval="1d", engine=engine)) > 0


def test_the_history_revision_adds_only_new_tables_and_reverts_cleanly(server):
    url = server.create_database("history_rev")
    try:
        migrations.upgrade("c0db8df4a585", url=url)
        before = run_query("SELECT relname, relfilenode FROM pg_class WHERE relname IN ('extraction_jobs', 'projects') ORDER BY relname", engine=get_engine(url))
        migrations.upgrade(url=url)
        after = run_query("SELECT relname, relfilenode FROM pg_class WHERE relname IN ('extraction_jobs', 'projects') ORDER BY relname", engine=get_engine(url))
        assert before.equals(after)  # no table of the application was rewritten
        assert migrations.check(url=url) == []  # the history schema stays out of the models' comparison
        migrations.downgrade("c0db8df4a585", url=url)
        assert run_query("SELECT to_regnamespace('copythat_history') IS NULL AS gone", engine=get_engine(url))["gone"][0]
        migrations.upgrade(url=url)
        assert monitor.capture(engine=get_engine(url))["status"] == "captured"
    finally:
        server.drop_database(url)


def test_a_capture_loop_stops_cleanly_on_ctrl_c(engine):
    clear(engine)
    seen = []

    def interrupt(result):
        seen.append(result["status"])
        raise KeyboardInterrupt

    results = monitor.capture_loop("1h", report=interrupt, engine=engine)
    assert [r["status"] for r in results] == seen == ["captured"] and count(engine) == 1


def test_monitor_capture_from_the_command_line(engine, db_url):
    from test_cli import run

    clear(engine)
    first = run("--format", "json", "monitor", "capture", "--keep", "90d", url=db_url)
    assert first.returncode == 0, first.stderr
    assert '"status":"captured"' in first.stdout.replace(" ", "")
    again = run("--format", "json", "monitor", "capture", url=db_url)
    assert '"status":"skipped"' in again.stdout.replace(" ", "") and count(engine) == 1
    looped = run("--format", "csv", "monitor", "capture", "--every", "1s", "--times", "2", url=db_url)
    assert looped.returncode == 0, looped.stderr
    assert "Ctrl-C stops" in looped.stderr and "stopped after 2 captures" in looped.stderr and count(engine) == 3
    bad = run("monitor", "capture", "--keep", "-5d", url=db_url)
    assert bad.returncode == 2 and bad.stderr.startswith("error: --keep") and count(engine) == 3
    days = run("monitor", "growth", "--days", "0", url=db_url)
    assert days.returncode == 2 and "--days must be above 0" in days.stderr
    unreachable = run("monitor", "capture", url=db_url, env={"COPYTHAT_HISTORY_URL": "postgresql://ops:pw4history@127.0.0.1:1/h"})
    assert unreachable.returncode != 0 and unreachable.stderr.count("\n") == 1 and "COPYTHAT_HISTORY_URL" in unreachable.stderr
    assert "pw4history" not in unreachable.stderr and count(engine) == 3


def test_charts_over_time_draw_the_demo_history(engine):
    from copythat_ops import charts

    clear(engine)
    seed_history(days=6, every="3h", seed=2, engine=engine)
    assert charts.connections_over_time_chart(monitor.connection_history(engine=engine)).axes[0].collections  # stacked areas
    sizes = monitor.size_history(top=2, engine=engine)
    assert sizes["table"].nunique() == 2 and len(charts.table_growth_chart(sizes).axes[0].lines) == 2
    forecast = monitor.sequence_forecast(engine=engine)
    seq = charts.sequence_forecast_chart(monitor.sequence_history(engine=engine), forecast, top=1)
    assert [line.get_linestyle() for line in seq.axes[0].lines[:2]] == ["-", "--"]  # history, then the forecast line
    trend = monitor.job_trends("12h", engine=engine)
    band = charts.job_band_chart(trend)
    assert [ax.get_title() for ax in band.axes] == ["finished per interval", "failure rate"] and band.axes[1].collections
    since = datetime.now(UTC) - timedelta(days=2)
    queries = charts.query_trend_chart(monitor.query_trends(since, interval="12h", engine=engine), since=since)
    assert queries.axes[0].lines[-1].get_label() == "deploy"
    assert charts.job_band_chart(trend.iloc[0:0]).axes[0].texts  # nothing to draw: says so


def test_a_history_database_without_the_revision_is_refused_before_anything_is_read(engine, server, monkeypatch):
    clear(engine)
    bare = server.create_database("history_bare")
    try:
        monkeypatch.setenv(history.HISTORY_URL_VAR, bare.render_as_string(hide_password=False))
        with pytest.raises(MigrationError, match=r"the history database .* \(COPYTHAT_HISTORY_URL\) has no history tables .*nothing was written"):
            monitor.capture(engine=engine)
        assert count(engine) == 0
    finally:
        monkeypatch.delenv(history.HISTORY_URL_VAR)
        server.drop_database(bare)


def test_health_forecasts_the_size_against_a_limit_given_on_the_command_line(engine, db_url):
    from test_cli import run

    clear(engine)
    size = lambda age: pd.DataFrame({"schema": ["public"], "table": ["t"], "table_bytes": [0], "index_bytes": [0], "toast_bytes": [0],
                                     "total_bytes": [int(9e9 - 1e8 * age)], "live_rows": [0], "dead_rows": [0]})  # fmt: skip
    stage(engine, [4, 2, 0], size=size)
    result = run("--format", "json", "monitor", "health", "--threshold", "size_limit=10GB", "--fail-on", "warn", url=db_url)
    report = pd.DataFrame(__import__("json").loads(result.stdout)).set_index("check")
    assert report.loc["size_forecast", "status"] == "WARN" and "reaches the limit in 17.4 days" in report.loc["size_forecast", "detail"]
    assert result.returncode == 3 and "size_forecast" in result.stderr
    bad = run("monitor", "health", "--threshold", "size_limit=lots", url=db_url)
    assert bad.returncode == 2 and "size_limit 'lots' is not a size" in bad.stderr


def test_capture_records_statement_totals_when_pg_stat_statements_is_enabled(engine, db_url):
    from test_monitor import execute

    try:
        execute(db_url, "CREATE EXTENSION IF NOT EXISTS pg_stat_statements", "SELECT count(*) FROM extraction_jobs WHERE status = 'failed'")
    except Exception:
        pytest.skip("pg_stat_statements cannot be created here")
    if not monitor.query_stats_status(engine=engine)["enabled"]:
        pytest.skip("the server does not preload pg_stat_statements")
    clear(engine)
    result = monitor.capture(engine=engine)
    assert result["statements"] > 0
    texts = run_query("SELECT query FROM copythat_history.statement_texts WHERE query LIKE '%extraction_jobs WHERE status%'", engine=engine)
    assert not texts.empty


def test_history_and_forecast_from_the_command_line(engine, db_url):
    from test_cli import run

    clear(engine)
    monitor.capture(engine=engine)
    summary = run("--format", "json", "monitor", "history", url=db_url)
    assert summary.returncode == 0 and '"snapshots":1' in summary.stdout.replace(" ", "")
    single = run("monitor", "forecast", "sequences", url=db_url)
    assert single.returncode == 2 and single.stderr.startswith("error: `copythat-ops monitor forecast sequences` needs 1 day of history") and "there is 1 snapshot" in single.stderr
    assert len(single.stderr.strip().splitlines()) == 1
    itself = run("monitor", "schema-diff", db_url.render_as_string(hide_password=False), db_url.render_as_string(hide_password=False), url=db_url)
    assert itself.returncode == 2 and itself.stderr.startswith("error: URL_A and URL_B are the same database (")
