"""Monitoring during an incident: another session holds (or queues for) an ACCESS EXCLUSIVE lock, staged for real.

Every check must still answer, for every other relation in full and for the
locked one from the catalog, naming the lock; `health()` must flag the waiting
queries and the holder and still report the index, sequence and size checks.
Also: UNKNOWN for checks that could not run, readable report values, one piece
of advice for a table that is both "missing an index" and "has unused indexes",
and index use not judged on statistics too young. Runs on both servers.
"""

from __future__ import annotations

import re

import time
from collections.abc import Iterator
from contextlib import contextmanager

import pandas as pd
import psycopg2
import psycopg2.extras
import pytest
from test_monitor import background, check_row, connect, eventually, execute

from copythat_ops import embedded, monitor
from copythat_ops.engine import get_engine
from copythat_ops.errors import CopythatError
from copythat_ops.monitor.snapshot import query

TABLE_SETUP = [
    "CREATE TABLE {t} (id serial PRIMARY KEY, ident bigint GENERATED ALWAYS AS IDENTITY, a int, b int, body text)",
    "INSERT INTO {t} (a, b, body) SELECT g, g % 7, repeat(md5(g::text), 100) FROM generate_series(1, 500) AS g",
    "CREATE INDEX {t}_a ON {t} (a)",
    "CREATE INDEX {t}_a_b ON {t} (a, b)",
    "CREATE INDEX {t}_expr ON {t} ((a + 1)) WHERE b > 0",
    "CREATE INDEX {t}_expr_again ON {t} ((  a + 1 )) WHERE b>0",  # the same expression and predicate, written differently
    "CREATE INDEX {t}_expr_other ON {t} ((a + 2)) WHERE b > 0",
    "ANALYZE {t}",
]


@pytest.fixture(scope="module")
def engine(db_url):
    execute(db_url, *[sql.format(t=t) for t in ("extraction_jobs", "projects_free") for sql in TABLE_SETUP])
    return get_engine(db_url)


def holder_session(url):
    return connect(url, application_name="ct-lock-holder")


@contextmanager
def lock_table(url) -> Iterator[tuple[int, str]]:
    """LOCK TABLE in an open transaction: yields the holder's pid and how the checks should name the lock."""
    holder = holder_session(url)
    try:
        with holder.cursor() as cur:
            cur.execute("BEGIN")
            cur.execute("LOCK TABLE extraction_jobs IN ACCESS EXCLUSIVE MODE")
        yield holder.info.backend_pid, "extraction_jobs locked by pid {pid} (AccessExclusiveLock): LOCK TABLE extraction_jobs"
    finally:
        holder.close()


@contextmanager
def alter_table(url) -> Iterator[tuple[int, str]]:
    """A migration-style ALTER COLUMN TYPE in an open transaction: it locks the table, its indexes and its TOAST table."""
    holder = holder_session(url)
    try:
        with holder.cursor() as cur:
            cur.execute("BEGIN")
            cur.execute("ALTER TABLE extraction_jobs ALTER COLUMN b TYPE bigint")
        yield holder.info.backend_pid, "extraction_jobs locked by pid {pid} (AccessExclusiveLock): ALTER TABLE extraction_jobs"
    finally:
        holder.close()


@contextmanager
def vacuum_full_queued(url) -> Iterator[tuple[int, str]]:
    """VACUUM FULL queued behind a reader's open transaction: its awaited lock already makes every new reader wait."""
    reader = connect(url, application_name="ct-reader")
    try:
        with reader.cursor() as cur:
            cur.execute("BEGIN")
            cur.execute("SELECT count(*) FROM extraction_jobs")
        with background(url, "VACUUM FULL extraction_jobs", application_name="ct-vacuum-full") as vacuum:
            eventually(lambda: not monitor.relation_locks(engine=get_engine(url)).query(f"pid == {vacuum.info.backend_pid}").empty)
            yield vacuum.info.backend_pid, "extraction_jobs awaited by pid {pid} (AccessExclusiveLock): VACUUM FULL extraction_jobs"
    finally:
        reader.close()


@pytest.mark.parametrize("stage", [lock_table, alter_table, vacuum_full_queued], ids=["lock-table", "alter-table", "vacuum-full-queued"])
def test_checks_read_around_an_exclusive_lock(db_url, engine, stage):
    with stage(db_url) as (pid, named):
        reason = named.format(pid=pid)
        locks = monitor.relation_locks(engine=engine)
        assert pid in set(locks["pid"]) and locks["reason"].str.contains(f"by pid {pid}").any()

        duplicate = monitor.duplicate_indexes(engine=engine).set_index("redundant_index")
        assert {"extraction_jobs_a", "extraction_jobs_expr_again", "projects_free_a", "projects_free_expr_again"} == set(duplicate.index)
        locked, free = duplicate.loc["extraction_jobs_expr_again"], duplicate.loc["projects_free_expr_again"]
        assert locked["covering_index"] == "extraction_jobs_expr" and reason in locked["note"]
        assert pd.isna(locked["redundant_definition"]) and locked["size_bytes"] > 0  # the catalog's estimate
        assert free["redundant_definition"].startswith("CREATE INDEX projects_free_expr_again") and pd.isna(free["note"])

        sizes = monitor.table_sizes(engine=engine).set_index("table")
        assert reason in sizes.loc["extraction_jobs", "note"] and sizes.loc["extraction_jobs", "total_bytes"] > 0
        assert pd.isna(sizes.loc["projects_free", "note"]) and sizes.loc["projects_free", "toast_bytes"] > 0  # exact: TOAST counted
        index_sizes = monitor.index_sizes(engine=engine).set_index("index")
        assert reason in index_sizes.loc["extraction_jobs_a", "note"] and pd.isna(index_sizes.loc["projects_free_a", "note"])
        unused = monitor.unused_indexes(engine=engine).set_index("index")
        assert reason in unused.loc["extraction_jobs_a", "note"] and pd.isna(unused.loc["extraction_jobs_a", "definition"])
        assert unused.loc["projects_free_a", "definition"].startswith("CREATE INDEX")
        assert monitor.invalid_indexes(engine=engine).empty
        assert {"extraction_jobs_id_seq", "projects_free_id_seq"} <= set(monitor.sequences(engine=engine)["sequence"])

        with background(db_url, "SELECT count(*) FROM extraction_jobs", application_name="ct-app-reader") as waiter:
            waiting = waiter.info.backend_pid
            eventually(lambda: monitor.blocked_queries(engine=engine).query(f"blocked_pid == {waiting}"))
            report = monitor.health(engine=engine)
        assert not report["detail"].str.contains("could not run").any(), report.to_dict("records")
        assert (report["status"] != "UNKNOWN").sum() == len(report) - 1  # only slow_queries, when pg_stat_statements is missing
        blocked = check_row(report, "blocked_queries")
        assert blocked["status"] == "WARN" and str(waiting) in blocked["detail"]
        assert f"wait for pid {pid}" in blocked["detail"] or "VACUUM FULL" in blocked["detail"]  # the holder, or the queue it heads
        assert check_row(report, "duplicate_indexes")["value"] == 4 and reason in check_row(report, "duplicate_indexes")["detail"]
        assert check_row(report, "database_size")["status"] == "OK" and "largest table: " in check_row(report, "database_size")["detail"]
        assert check_row(report, "sequences")["status"] == "OK" and check_row(report, "wraparound")["status"] == "OK"


def test_a_sequence_locked_by_an_identity_change_is_named_not_waited_for(db_url, engine):
    holder = holder_session(db_url)
    try:
        with holder.cursor() as cur:
            cur.execute("BEGIN")
            cur.execute("ALTER TABLE extraction_jobs ALTER COLUMN ident RESTART WITH 10")
        found = monitor.sequences(engine=engine).set_index("sequence")
        ident = found.loc["extraction_jobs_ident_seq"]
        assert pd.isna(ident["last_value"]) and f"locked by pid {holder.info.backend_pid} (ShareRowExclusiveLock)" in ident["note"]
        assert found.loc["extraction_jobs_id_seq", "last_value"] == 500 and pd.isna(found.loc["extraction_jobs_id_seq", "note"])
        row = check_row(monitor.health(engine=engine), "sequences")
        assert row["status"] == "OK" and "extraction_jobs_ident_seq locked by pid" in row["detail"]
    finally:
        holder.close()


def test_a_lock_the_checks_cannot_avoid_is_named_not_raised_raw(db_url, engine):
    with lock_table(db_url) as (pid, _):
        with pytest.raises(CopythatError, match=rf"monitor.probe waited more than \S+ for a lock held by pid {pid} \(AccessExclusiveLock on extraction_jobs\)"):
            query("SELECT pg_relation_size('extraction_jobs') AS size", name="probe", engine=engine)
    with monitor.snapshot(engine, timeout="50ms"):
        with pytest.raises(CopythatError, match="monitor.sleeper did not finish within its 50ms statement timeout"):
            query("SELECT pg_sleep(1)", name="sleeper")


def test_checks_that_could_not_run_are_unknown_never_ok(engine):
    try:
        with monitor.snapshot(engine, timeout="1ms"):
            report = monitor.health()
    finally:
        engine.dispose()  # a 1 ms timeout can cancel even the ROLLBACK: later tests get fresh connections
    failed = report[report["detail"].str.startswith("could not run")]
    assert len(failed) and set(failed["status"]) == {"UNKNOWN"}
    assert monitor.verdict(report) in ("UNKNOWN", "WARN", "CRIT")
    assert monitor.verdict(pd.DataFrame({"status": ["OK", "UNKNOWN"]})) == "UNKNOWN"
    assert monitor.verdict(pd.DataFrame({"status": ["UNKNOWN", "WARN"]})) == "WARN"


def test_report_values_are_plain_numbers(engine):
    report = monitor.health(engine=engine)
    assert {type(v) for v in report["value"]} <= {int, float, type(None)}
    wraparound = check_row(report, "wraparound")["value"]
    assert isinstance(wraparound, int) and wraparound > 2_000_000_000
    text = report.to_string()
    assert "e+0" not in text and not re.search(r"\bnan\b", text.lower())  # a word: 'tenant' holds the letters


def test_a_table_read_without_its_indexes_gets_one_advice(db_url, engine):
    execute(
        db_url,
        "CREATE TABLE scanned_often (id int, kind int, note text)",
        "INSERT INTO scanned_often SELECT g, g % 5, 'row' FROM generate_series(1, 12000) AS g",
        "CREATE INDEX scanned_often_kind ON scanned_often (kind)",
        "ANALYZE scanned_often",
        *["SELECT count(*) FROM scanned_often WHERE id = 7"] * 120,
    )
    assert "scanned_often" in set(monitor.missing_indexes(engine=engine)["table"])
    assert "scanned_often_kind" in set(monitor.unused_indexes(engine=engine)["index"])  # both lists hold it
    report = monitor.health(engine=engine)
    missing, unused = check_row(report, "missing_indexes"), check_row(report, "unused_indexes")
    assert missing["status"] == "WARN" and "scanned_often (its indexes scanned_often_kind go unused too)" in missing["detail"]
    assert "scanned_often_kind" not in unused["detail"].split(";")[0] and "scanned_often: see missing_indexes" in unused["detail"]


def test_index_use_is_not_judged_on_statistics_too_young(db_url, engine):
    execute(
        db_url,
        "CREATE TABLE fresh (id int, kind int)",
        "INSERT INTO fresh SELECT g, g % 5 FROM generate_series(1, 12000) AS g",
        "CREATE INDEX fresh_kind ON fresh (kind)",
        *["SELECT count(*) FROM fresh WHERE id = 7"] * 3,
    )
    report = monitor.health(engine=engine)
    for name in ("missing_indexes", "unused_indexes"):
        row = check_row(report, name)
        assert "too young to judge (under 100 scans, statistics never reset): " in row["detail"] and "fresh" in row["detail"].split("too young")[1]
        assert "fresh" not in row["detail"].split(";")[0]
    judged = monitor.health(index_stats_min_scans=3, engine=engine)
    assert "fresh" in check_row(judged, "missing_indexes")["detail"].split(";")[0]


def test_the_embedded_database_has_query_statistics_out_of_the_box(server):
    if server.data_dir is None:
        pytest.skip("runs on the embedded server")
    status = monitor.query_stats_status(engine=get_engine(embedded.start(server.data_dir)))
    assert status["enabled"], status


def test_the_health_table_in_a_notebook_keeps_every_word_and_reads_as_numbers(engine):
    import html

    from copythat_ops.display import table

    report = monitor.health(engine=engine)
    page = html.unescape(table(report).to_html())
    for text in [*report["detail"], *report["action"]]:
        assert text in page  # nothing cut or elided
    wraparound = check_row(report, "wraparound")["value"]
    assert f">{wraparound:,}<" in page.replace(" </td>", "</td>").replace(" >", ">")
    assert not re.search(r"\bnan\b", page.lower()) and "e+0" not in page
