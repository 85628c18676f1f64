"""`copythat-ops monitor` as cron or CI runs it: real processes against a real server, exit codes and formats."""

from __future__ import annotations

import io
import json

import pandas as pd
from sqlalchemy import text
from test_cli import run

from copythat_ops.engine import get_engine


def test_health_on_a_clean_database_exits_zero_with_every_check(db_url):
    result = run("--format", "json", "monitor", "health", url=db_url)
    assert result.returncode == 0, result.stderr
    report = pd.DataFrame(json.loads(result.stdout)).set_index("check")["status"]
    assert set(report.drop("slow_queries")) == {"OK"} and "sequences" in report.index
    assert report["slow_queries"] == "UNKNOWN"  # no pg_stat_statements in a fresh database: not checked is not OK
    assert "health: UNKNOWN; not checked: slow_queries" in result.stderr


def test_a_cold_cache_is_too_young_to_judge_not_a_warning(db_url):
    with get_engine(db_url).begin() as conn:
        conn.execute(text("CREATE TABLE cold AS SELECT g AS id, md5(g::text) AS body FROM generate_series(1, 20000) AS g"))
        conn.execute(text("SELECT count(*) FROM cold"))
        conn.execute(text("SELECT pg_stat_force_next_flush()"))  # the counts reach pg_statio now, not a second later
    # any miss under 100 % would warn; but the whole database fits in shared_buffers, so misses are first reads
    result = run("--format", "json", "monitor", "health", "--fail-on", "warn", "--threshold", "cache_hit_percent=100",
                 "--threshold", "cache_hit_min_blocks=0", url=db_url)  # fmt: skip
    cache = pd.DataFrame(json.loads(result.stdout)).set_index("check").loc["cache_hit"]
    assert cache["status"] == "OK" and "too young to judge" in cache["detail"] and "fits in shared_buffers" in cache["detail"], cache
    verdict = result.stderr.strip().splitlines()[-1]
    assert "too young to judge yet: cache_hit" in verdict and "WARN" not in verdict, verdict


def test_health_exits_3_on_crit_and_on_warn_when_asked(db_url):
    with get_engine(db_url).begin() as conn:
        conn.execute(text("CREATE TABLE counters (id serial PRIMARY KEY)"))
        conn.execute(text("SELECT setval('counters_id_seq', 2000000000)"))  # 93 % of INTEGER: WARN
    warn = run("--format", "json", "monitor", "health", "--fail-on", "warn", url=db_url)
    assert warn.returncode == 3 and "health: WARN (sequences)" in warn.stderr
    assert "counters_id_seq" in pd.DataFrame(json.loads(warn.stdout)).set_index("check").loc["sequences", "detail"]
    assert run("monitor", "health", url=db_url).returncode == 0
    crit = run("monitor", "health", "--threshold", "sequence_crit_percent=90", url=db_url)
    assert crit.returncode == 3 and "health: CRIT (sequences)" in crit.stderr


def test_views_print_as_csv(db_url):
    result = run("--format", "csv", "monitor", "sequences", url=db_url)
    assert result.returncode == 0, result.stderr
    assert pd.read_csv(io.StringIO(result.stdout))["sequence"].tolist() == ["counters_id_seq"]


def test_bad_input_gets_one_clear_line_and_exit_2(db_url):
    unknown = run("monitor", "health", "--threshold", "speed=3", url=db_url)
    assert unknown.returncode == 2 and "unknown threshold 'speed'" in unknown.stderr and "long_running_seconds" in unknown.stderr
    negative = run("monitor", "health", "--threshold", "long_running_seconds=-5", url=db_url)
    assert negative.returncode == 2 and "long_running_seconds -5 is out of range" in negative.stderr
    missing = run("monitor", "cancel", "99999999", "--apply", url=db_url)
    assert missing.returncode == 2 and missing.stderr.startswith("error: no session has pid 99999999")


def test_views_answer_during_an_exclusive_lock_and_name_its_holder(db_url):
    from test_monitor import connect

    with get_engine(db_url).begin() as conn:
        conn.execute(text("CREATE TABLE held (id serial PRIMARY KEY, a int)"))
        conn.execute(text("CREATE INDEX held_a ON held (a)"))
        conn.execute(text("CREATE INDEX held_a_again ON held (a)"))
    holder = connect(db_url, application_name="ct-cli-holder")
    try:
        with holder.cursor() as cur:
            cur.execute("BEGIN")
            cur.execute("LOCK TABLE held IN ACCESS EXCLUSIVE MODE")
        locks = run("--format", "json", "monitor", "activity", "locks", url=db_url)
        assert locks.returncode == 0, locks.stderr
        assert [row["pid"] for row in json.loads(locks.stdout)] == [holder.info.backend_pid]
        duplicate = run("--format", "json", "monitor", "indexes", "duplicate", url=db_url)
        assert duplicate.returncode == 0, duplicate.stderr
        (row,) = json.loads(duplicate.stdout)
        assert row["redundant_index"] == "held_a_again" and f"held locked by pid {holder.info.backend_pid}" in row["note"]
    finally:
        holder.close()


def test_the_history_tables_indexes_are_not_judged(db_url):
    with get_engine(db_url).begin() as conn:
        for schema in ("copythat_history", "public"):
            conn.execute(text(f"CREATE SCHEMA IF NOT EXISTS {schema}"))
            conn.execute(text(f"CREATE TABLE {schema}.kept AS SELECT g AS id, g % 10 AS bucket FROM generate_series(1, 100) AS g"))
            conn.execute(text(f"CREATE INDEX kept_bucket_idx ON {schema}.kept (bucket)"))
            for _ in range(150):  # old enough to judge: scanned, never through its index
                conn.execute(text(f"SELECT count(*) FROM {schema}.kept"))
        conn.execute(text("SELECT pg_stat_force_next_flush()"))
    result = run("--format", "json", "monitor", "health", url=db_url)
    unused = pd.DataFrame(json.loads(result.stdout)).set_index("check").loc["unused_indexes"]
    assert unused["status"] == "WARN" and unused["value"] == 1 and "kept_bucket_idx" in unused["detail"], unused
    from copythat_ops import monitor

    found = monitor.unused_indexes(engine=get_engine(db_url))
    assert set(found.loc[found["index"] == "kept_bucket_idx", "schema"]) == {"public", "copythat_history"}  # the view lists both
