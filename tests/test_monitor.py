"""Monitoring against a real server: each problem is staged for real in a fresh database and the check must find it.

Runs on the embedded PostgreSQL 18 (superuser) and on the PostgreSQL 15 leg
(a pg_monitor role without superuser, no pg_stat_statements).
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager

import psycopg2
import psycopg2.extras
import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.engine import URL
from sqlalchemy.pool import NullPool

from copythat_ops import monitor
from copythat_ops.engine import get_engine, run_query
from copythat_ops.errors import CopythatError, InputError

INT_MAX = 2_147_483_647


def connect(url: URL, *, application_name: str = "ct-staging", async_: bool = False):
    """A psycopg2 session of its own (autocommit), outside the toolkit's pools; it cannot hang a test for long."""
    args = {**url.translate_connect_args(username="user", database="dbname"), **url.query}
    limits = "-c statement_timeout=30s -c idle_in_transaction_session_timeout=30s"
    conn = psycopg2.connect(**args, application_name=application_name, options=limits, async_=async_)
    if async_:
        psycopg2.extras.wait_select(conn)
    else:
        conn.autocommit = True
    return conn


def execute(url: URL, *statements: str) -> None:
    """Run statements in autocommit, then flush the session's statistics so the stats views count them."""
    conn = connect(url)
    try:
        with conn.cursor() as cur:
            for statement in statements:
                cur.execute(statement)
            cur.execute("SELECT pg_stat_force_next_flush()")
    finally:
        conn.close()


@contextmanager
def background(url: URL, sql: str, *, application_name: str) -> Iterator:
    """Start `sql` in a session of its own without waiting; cancel and close that session on exit."""
    conn = connect(url, application_name=application_name, async_=True)
    cursor = conn.cursor()
    try:
        cursor.execute(sql)
        yield conn
    finally:
        if not conn.closed:
            conn.cancel()
            try:
                psycopg2.extras.wait_select(conn)
            except psycopg2.Error:
                pass
            conn.close()


def eventually(check, *, timeout: float = 15.0):
    """Return check()'s first non-empty result, polling until `timeout` seconds have passed."""
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value is not None and value is not False and not getattr(value, "empty", False):
            return value
        assert time.monotonic() < deadline, f"still nothing after {timeout} s"
        time.sleep(0.1)


def of(frame, pid: int):
    return frame[frame["pid"] == pid]


def check_row(report, name: str) -> dict:
    return report.set_index("check").loc[name].to_dict()


@pytest.fixture(scope="module")
def engine(db_url):
    return get_engine(db_url)


@pytest.fixture(scope="module")
def superuser(engine) -> bool:
    return bool(run_query("SELECT rolsuper FROM pg_roles WHERE rolname = current_user", engine=engine)["rolsuper"][0])


def test_a_clean_database_is_healthy(server):
    url = server.create_database("monitor_clean")
    try:
        report = monitor.health(engine=get_engine(url))
        assert report.columns.tolist() == ["check", "status", "value", "threshold", "detail", "action"]
        others = report[report["check"] != "slow_queries"]
        assert others[others["status"] != "OK"].empty, others[others["status"] != "OK"].to_dict("records")
        # a fresh database has no pg_stat_statements: that check could not run, which is not OK
        assert check_row(report, "slow_queries")["status"] == "UNKNOWN"
        assert monitor.verdict(report) == "UNKNOWN"
        assert {"connection_headroom", "blocked_queries", "sequences", "database_size", "wraparound", "slow_queries"} <= set(report["check"])
    finally:
        server.drop_database(url)


def test_connections_and_idle_in_transaction(db_url, engine):
    idle = connect(db_url, application_name="ct-idle")
    try:
        with idle.cursor() as cur:
            cur.execute("BEGIN")
            cur.execute("SELECT 1")
        pid = idle.info.backend_pid
        found = eventually(lambda: of(monitor.idle_in_transaction(engine=engine), pid))
        assert found["application_name"].tolist() == ["ct-idle"]
        assert of(monitor.idle_in_transaction("1 hour", engine=engine), pid).empty
        by_state = monitor.connections(engine=engine)
        assert by_state.query("application_name == 'ct-idle'")[["state", "connections"]].values.tolist() == [["idle in transaction", 1]]
        headroom = monitor.connection_headroom(engine=engine).iloc[0]
        assert 2 <= headroom["used_connections"] < headroom["max_connections"]
        assert check_row(monitor.health(idle_in_transaction=1, engine=engine), "idle_in_transaction")["status"] == "WARN"

        assert monitor.terminate_backend(pid, engine=engine)["action"].tolist() == ["would terminate"]
        assert not of(monitor.idle_in_transaction(engine=engine), pid).empty
        done = monitor.terminate_backend(pid, apply=True, engine=engine)
        assert done[["pid", "action", "done"]].values.tolist() == [[pid, "terminate", True]]
        eventually(lambda: of(monitor.idle_in_transaction(engine=engine), pid).empty)
    finally:
        idle.close()


def test_pool_status_counts_the_toolkit_connections(engine):
    with engine.connect():
        status = monitor.pool_status(engine).iloc[0]
    assert status["checked_out"] == 1 and status["capacity"] == 15


def test_blocked_query_names_both_sessions_and_lock_modes(db_url, engine):
    execute(db_url, "CREATE TABLE locked (id int)")
    holder = connect(db_url, application_name="ct-holder")
    try:
        with holder.cursor() as cur:
            cur.execute("BEGIN")
            cur.execute("LOCK TABLE locked IN ACCESS EXCLUSIVE MODE")
        with background(db_url, "SELECT count(*) FROM locked", application_name="ct-waiter") as waiter:
            blocked = eventually(lambda: monitor.blocked_queries(engine=engine))
            row = blocked.iloc[0]
            assert (row["blocked_pid"], row["blocking_pid"]) == (waiter.info.backend_pid, holder.info.backend_pid)
            assert (row["blocked_mode"], row["blocking_modes"], row["locked_object"]) == ("AccessShareLock", "AccessExclusiveLock", "locked")
            assert "SELECT count(*) FROM locked" in row["blocked_query"] and "LOCK TABLE locked" in row["blocking_query"]
            assert check_row(monitor.health(engine=engine), "blocked_queries")["status"] == "WARN"
            with holder.cursor() as cur:
                cur.execute("ROLLBACK")
            psycopg2.extras.wait_select(waiter)
        assert monitor.blocked_queries(engine=engine).empty
    finally:
        holder.close()


def test_long_running_query_is_found_then_cancelled(db_url, engine):
    with background(db_url, "SELECT pg_sleep(60)", application_name="ct-sleeper") as sleeper:
        pid = sleeper.info.backend_pid
        running = eventually(lambda: of(monitor.long_running_queries("0.3 s", engine=engine), pid))
        assert running["query"].iloc[0] == "SELECT pg_sleep(60)" and running["duration_seconds"].iloc[0] >= 0.3
        assert of(monitor.long_running_queries("1 hour", engine=engine), pid).empty
        assert check_row(monitor.health(long_running_seconds=0.3, engine=engine), "long_running_queries")["status"] == "WARN"

        assert monitor.cancel_query(pid, apply=True, engine=engine)["done"].tolist() == [True]
        with pytest.raises(psycopg2.errors.QueryCanceled):
            psycopg2.extras.wait_select(sleeper)


@pytest.mark.parametrize("pid", [-1, 0, 1.5, "12", True])
def test_a_pid_that_is_not_a_whole_number_is_refused(engine, pid):
    with pytest.raises(InputError, match="pid"):
        monitor.cancel_query(pid, engine=engine)


def test_signals_refuse_unknown_own_and_server_processes(engine):
    with pytest.raises(InputError, match="no session has pid 99999999"):
        monitor.terminate_backend(99_999_999, engine=engine)
    with monitor.snapshot(engine) as snap:
        own = int(run_query("SELECT pg_backend_pid() AS pid", conn=snap.conn)["pid"][0])
        with pytest.raises(InputError, match="own session"):
            monitor.cancel_query(own)
    checkpointer = run_query("SELECT pid FROM pg_stat_activity WHERE backend_type = 'checkpointer'", engine=engine)["pid"]
    if len(checkpointer):  # hidden from roles without pg_read_all_stats on some setups
        with pytest.raises(InputError, match="checkpointer, not a session"):
            monitor.terminate_backend(int(checkpointer[0]), engine=engine)


def test_unused_duplicate_and_invalid_indexes(db_url, engine):
    execute(
        db_url,
        "CREATE TABLE items (id serial PRIMARY KEY, a int, b int, c int)",
        "INSERT INTO items (a, b, c) SELECT i, i % 7, i % 10 FROM generate_series(1, 2000) AS i",
        "CREATE INDEX items_a ON items (a)",
        "CREATE INDEX items_a_b ON items (a, b)",
        "CREATE INDEX items_b_partial ON items (b) WHERE c = 1",
        "CREATE INDEX items_b ON items (b)",
        "CREATE UNIQUE INDEX items_id_again ON items (id)",
    )
    with pytest.raises(psycopg2.errors.UniqueViolation):
        execute(db_url, "CREATE UNIQUE INDEX CONCURRENTLY items_c_unique ON items (c)")

    invalid = monitor.invalid_indexes(engine=engine)
    assert invalid[["table", "index"]].values.tolist() == [["items", "items_c_unique"]]

    duplicate = monitor.duplicate_indexes(engine=engine)
    pairs = sorted(duplicate[["redundant_index", "covering_index"]].itertuples(index=False, name=None))
    assert pairs == [("items_a", "items_a_b"), ("items_id_again", "items_pkey")]  # the partial index differs by its predicate

    unused = monitor.unused_indexes(engine=engine)
    assert {"items_a", "items_a_b", "items_b", "items_b_partial"} <= set(unused["index"])
    assert not {"items_pkey", "items_id_again", "items_c_unique"} & set(unused["index"])  # unique or invalid

    execute(db_url, "SET enable_seqscan = off", *["SELECT * FROM items WHERE a = 5"] * 3)
    scans = monitor.unused_indexes(max_scans=1000, engine=engine).set_index("index")["index_scans"]
    assert scans[["items_a", "items_a_b"]].sum() >= 3
    assert set(monitor.unused_indexes(max_scans=0, engine=engine)["index"]) == set(scans[scans == 0].index)

    report = monitor.health(index_stats_min_scans=0, engine=engine)
    assert check_row(report, "invalid_indexes")["status"] == "WARN" and "items_c_unique" in check_row(report, "invalid_indexes")["detail"]
    assert check_row(report, "duplicate_indexes")["value"] == 2
    assert check_row(report, "unused_indexes")["status"] == "WARN"


def test_missing_index_on_a_big_table_scanned_sequentially(db_url, engine):
    execute(
        db_url,
        "CREATE TABLE scanned (id int, payload text)",
        "INSERT INTO scanned SELECT i, 'row ' || i FROM generate_series(1, 12000) AS i",
        *["SELECT count(*) FROM scanned WHERE id = 7"] * 3,
    )
    usage = monitor.index_usage(engine=engine).set_index("table")
    assert usage.loc["scanned", "seq_scan"] >= 3 and usage.loc["scanned", "live_rows"] == 12000
    assert "scanned" in set(monitor.missing_indexes(engine=engine)["table"])
    assert "scanned" not in set(monitor.missing_indexes(min_rows=20_000, engine=engine)["table"])
    assert check_row(monitor.health(index_stats_min_scans=0, engine=engine), "missing_indexes")["detail"] == "scanned"


def test_sequences_measure_against_the_column_type(db_url, engine):
    execute(
        db_url,
        "CREATE TABLE counters (id serial PRIMARY KEY)",
        "CREATE SEQUENCE wide_seq",  # bigint, feeding an integer column
        "CREATE TABLE narrow (id integer DEFAULT nextval('wide_seq'))",
        "CREATE TABLE ident (id bigint GENERATED ALWAYS AS IDENTITY)",
        "SELECT setval('counters_id_seq', 2000000000)",
        "SELECT setval('wide_seq', 2100000000)",
    )
    seqs = monitor.sequences(engine=engine).set_index("sequence")
    assert seqs.loc["counters_id_seq", ["table", "column", "column_type", "max_value"]].tolist() == ["counters", "id", "integer", INT_MAX]
    assert seqs.loc["counters_id_seq", "percent_used"] == pytest.approx(93.13, abs=0.01)
    assert seqs.loc["wide_seq", ["table", "max_value"]].tolist() == ["narrow", INT_MAX]
    assert seqs.loc["wide_seq", "percent_used"] == pytest.approx(97.79, abs=0.01)
    assert seqs.loc["ident_id_seq", ["table", "column", "column_type"]].tolist() == ["ident", "id", "bigint"]
    assert seqs.index[0] == "wide_seq"  # fullest first

    assert check_row(monitor.health(engine=engine), "sequences")["status"] == "WARN"
    execute(db_url, "SELECT setval('counters_id_seq', 2140000000)")
    report = monitor.health(engine=engine)
    assert check_row(report, "sequences")["status"] == "CRIT" and monitor.verdict(report) == "CRIT"
    assert "counters_id_seq" in check_row(report, "sequences")["detail"]


def test_dead_rows_then_vacuum(db_url, engine):
    execute(
        db_url,
        "CREATE TABLE churn (id int, note text) WITH (autovacuum_enabled = false)",
        "INSERT INTO churn SELECT i, 'x' FROM generate_series(1, 5000) AS i",
        "DELETE FROM churn WHERE id <= 3000",
    )
    stats = monitor.vacuum_stats(engine=engine).set_index("table")
    assert stats.loc["churn", ["live_rows", "dead_rows", "dead_percent"]].tolist() == [2000, 3000, 60.0]
    assert not stats.loc["churn", "autovacuum_enabled"]
    assert "churn" in check_row(monitor.health(engine=engine), "dead_rows")["detail"]

    execute(db_url, "VACUUM churn")
    after = monitor.vacuum_stats(engine=engine).set_index("table")
    assert after.loc["churn", "dead_rows"] == 0 and after.loc["churn", "vacuum_count"] == 1
    assert "churn" not in check_row(monitor.health(engine=engine), "dead_rows")["detail"]


def test_sizes_split_table_indexes_and_toast(db_url, engine):
    execute(
        db_url,
        "CREATE TABLE documents (id serial PRIMARY KEY, body text)",
        "INSERT INTO documents (body) SELECT string_agg(md5(i::text || j::text), '') FROM generate_series(1, 20) AS i, generate_series(1, 200) AS j GROUP BY i",
    )
    sizes = monitor.table_sizes(engine=engine).set_index("table")
    doc = sizes.loc["documents"]
    assert doc["toast_bytes"] > 0 and doc["index_bytes"] > 0
    assert doc["total_bytes"] == doc["table_bytes"] + doc["index_bytes"] + doc["toast_bytes"]
    assert (sizes["total_bytes"].diff().dropna() <= 0).all()  # largest first
    assert "documents_pkey" in set(monitor.index_sizes(engine=engine)["index"])
    db = monitor.database_size(engine=engine).iloc[0]
    assert db["database"] == db_url.database and db["size_bytes"] > doc["total_bytes"]


def test_maintenance_and_server_views_on_this_major(engine):
    major = int(monitor.server_info(engine=engine)["major"][0])
    assert 14 <= major <= 18
    ratio = monitor.cache_hit_ratio(engine=engine)
    assert ratio["kind"].tolist() == ["indexes", "tables"]
    assert ratio["hit_percent"].dropna().between(0, 100).all()
    wrap = monitor.wraparound_risk(engine=engine)
    assert (wrap["xids_left"] > 1_500_000_000).all() and "items" in set(wrap["table"])
    points = monitor.checkpoints(engine=engine)  # pg_stat_checkpointer on 17+, pg_stat_bgwriter before
    assert len(points) == 1 and points["timed"][0] >= 0 and points["requested"][0] >= 0
    assert monitor.vacuum_progress(engine=engine).columns.tolist()[:3] == ["pid", "table", "phase"]
    assert not bool(monitor.replica_lag(engine=engine)["in_recovery"][0])
    assert monitor.replication_slots(engine=engine).empty and monitor.replication(engine=engine).empty


def test_query_stats_explains_how_to_enable_it(engine):
    status = monitor.query_stats_status(engine=engine)
    if status["enabled"]:
        pytest.skip("pg_stat_statements is enabled in this database")
    assert "pg_stat_statements" in status["message"] and "CREATE EXTENSION pg_stat_statements" in status["fix"]
    with pytest.raises(CopythatError, match="CREATE EXTENSION pg_stat_statements"):
        monitor.query_stats(engine=engine)
    row = check_row(monitor.health(engine=engine), "slow_queries")
    assert row["status"] == "UNKNOWN" and row["detail"].startswith("not checked: pg_stat_statements")
    assert "CREATE EXTENSION pg_stat_statements" in row["action"]


def test_query_stats_when_the_extension_is_enabled(db_url, engine, superuser):
    preload = run_query("SELECT setting FROM pg_settings WHERE name = 'shared_preload_libraries'", engine=engine)["setting"]
    if not superuser or "pg_stat_statements" not in "".join(preload):
        pytest.skip("needs a server preloading pg_stat_statements and a role that may create it")
    assert "not installed in database" in monitor.query_stats_status(engine=engine)["message"]
    execute(db_url, "CREATE EXTENSION IF NOT EXISTS pg_stat_statements", *["SELECT count(*) FROM pg_class WHERE relname = 'ct-probe'"] * 5)
    assert monitor.query_stats_status(engine=engine)["enabled"]
    stats = monitor.query_stats(top=10_000, engine=engine)  # the server counted every statement run so far
    assert stats.columns.tolist()[:4] == ["query_id", "user_name", "calls", "total_ms"]
    probe = stats[stats["query"] == "SELECT count(*) FROM pg_class WHERE relname = $1"]
    assert probe["calls"].max() >= 5
    assert len(monitor.query_stats(top=1, sort="calls", engine=engine)) == 1
    assert not monitor.slow_queries(min_calls=5, min_mean_ms=0, engine=engine).empty
    assert check_row(monitor.health(slow_query_calls=5, slow_query_mean_ms=0, engine=engine), "slow_queries")["status"] == "WARN"


BAD_THRESHOLDS = [
    ({"long_running_seconds": -1}, "long_running_seconds -1 is out of range"),
    ({"total_connections": "many"}, "total_connections must be a whole number"),
    ({"total_connections": 1.5}, "total_connections must be a whole number"),
    ({"cache_hit_percent": 120}, "cache_hit_percent 120 is out of range"),
    ({"sequence_warn_percent": None}, "sequence_warn_percent must be a number"),
]


@pytest.mark.parametrize("thresholds,message", BAD_THRESHOLDS, ids=[next(iter(t)) + "=" + repr(v) for t, v in [(t, t[next(iter(t))]) for t, _ in BAD_THRESHOLDS]])
def test_bad_thresholds_are_refused_before_any_query(thresholds, message):
    with pytest.raises(InputError, match=message):
        monitor.health(**thresholds, engine=create_engine("postgresql+psycopg2://nobody@127.0.0.1:1/none", poolclass=NullPool))


def test_bad_arguments_name_the_value(engine):
    with pytest.raises(InputError, match="min_duration 'soon' is not a duration"):
        monitor.long_running_queries("soon", engine=engine)
    with pytest.raises(InputError, match="top 0 is out of range"):
        monitor.query_stats(top=0, engine=engine)
    with pytest.raises(InputError, match="unknown sort 'fastest'"):
        monitor.query_stats(sort="fastest", engine=engine)


def test_a_role_without_privileges_is_told_not_failed(server, db_url, engine, superuser):
    if not superuser:
        pytest.skip("creating a role needs a superuser")
    role = "ct_monitor_plain"
    with server.engine.connect() as conn:
        conn.execute(text(f"DROP ROLE IF EXISTS {role}"))
        conn.execute(text(f"CREATE ROLE {role} LOGIN"))
    plain = create_engine(db_url.set(username=role, password=None), poolclass=NullPool)
    holder = connect(db_url, application_name="ct-admin-holder")
    try:
        with holder.cursor() as cur:
            cur.execute("BEGIN")
            cur.execute("SELECT 1")
        visible = monitor.connections(engine=plain)
        assert "<insufficient privilege>" in set(visible["state"])
        with pytest.raises(CopythatError, match=f"may not cancel pid {holder.info.backend_pid}"):
            monitor.cancel_query(holder.info.backend_pid, apply=True, engine=plain)
        report = monitor.health(engine=plain)
        assert report["check"].tolist() == monitor.health(engine=engine)["check"].tolist()
        assert not report["detail"].str.startswith("could not run").any()
        assert "this role may not read" in check_row(report, "sequences")["detail"]
        assert not of(monitor.idle_in_transaction(engine=engine), holder.info.backend_pid).empty  # nothing was cancelled
    finally:
        holder.close()
        plain.dispose()
        with server.engine.connect() as conn:
            conn.execute(text(f"DROP ROLE IF EXISTS {role}"))


def test_cache_hit_is_judged_only_after_enough_reads(engine, db_url):
    execute(db_url, "CREATE TABLE IF NOT EXISTS cache_probe AS SELECT g AS id FROM generate_series(1, 1000) AS g", "SELECT count(*) FROM cache_probe")
    ratio = monitor.cache_hit_ratio(engine=engine)
    blocks = int((ratio["hits"] + ratio["reads"]).max())
    few = monitor.health(cache_hit_min_blocks=blocks + 1, cache_hit_percent=100, engine=engine).set_index("check").loc["cache_hit"]
    assert few["status"] == "OK" and few["detail"].startswith("fewer than")
    enough = monitor.health(cache_hit_min_blocks=0, engine=engine).set_index("check").loc["cache_hit"]
    assert enough["detail"].startswith("lowest:")
