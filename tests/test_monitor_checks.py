"""check_postgres's checks against a real server: bloat, prepared and open transactions, disabled triggers, commit ratio, schema drift.

Each problem is staged for real in a fresh database and the check (and its health() row) must find it.
"""

from __future__ import annotations

import re
import time

import psycopg2
import pytest
from sqlalchemy import text
from test_monitor import connect, execute

from copythat_ops import monitor
from copythat_ops.engine import get_engine, run_query
from copythat_ops.errors import ConnectError, CopythatError, InputError


@pytest.fixture(scope="module")
def engine(db_url):
    return get_engine(db_url)


def row(report, check: str):
    return report.set_index("check").loc[check]


def test_a_disabled_trigger_is_named_and_warned_about(db_url, engine):
    execute(
        db_url,
        "CREATE TABLE audited (id int)",
        "CREATE FUNCTION audited_noop() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN RETURN NEW; END $$",
        "CREATE TRIGGER audited_touch BEFORE INSERT ON audited FOR EACH ROW EXECUTE FUNCTION audited_noop()",
    )
    assert monitor.disabled_triggers(engine=engine).empty
    execute(db_url, "ALTER TABLE audited DISABLE TRIGGER audited_touch")
    found = monitor.disabled_triggers(engine=engine)
    assert found[["table", "trigger", "enabled"]].values.tolist() == [["audited", "audited_touch", "disabled"]]
    health = row(monitor.health(engine=engine), "disabled_triggers")
    assert health["status"] == "WARN" and "audited.audited_touch (disabled)" in health["detail"]
    execute(db_url, "ALTER TABLE audited ENABLE TRIGGER audited_touch")
    assert row(monitor.health(engine=engine), "disabled_triggers")["status"] == "OK"


def test_the_longest_open_transaction_is_found_whatever_its_state(db_url, engine):
    holder = connect(db_url, application_name="ct-long-xact")
    try:
        with holder.cursor() as cur:
            cur.execute("BEGIN")
            cur.execute("SELECT 1")
        time.sleep(0.5)
        found = monitor.open_transactions(engine=engine)
        mine = found[found["pid"] == holder.info.backend_pid]
        assert mine["state"].tolist() == ["idle in transaction"] and mine["transaction_seconds"].iloc[0] > 0
        health = row(monitor.health(transaction_warn_seconds=0.2, engine=engine), "longest_transaction")
        assert health["status"] == "WARN"
        named = int(re.search(r"pid (\d+)", health["detail"]).group(1))
        if named != holder.info.backend_pid:  # the check is server-wide: a session of another test may have been open longer
            other = found[found["pid"] == named]
            assert len(other) and other["transaction_seconds"].iloc[0] >= mine["transaction_seconds"].iloc[0], (health["detail"], found)
        else:
            assert "ct-long-xact" in health["detail"]
    finally:
        holder.close()


def test_commit_ratio_falls_with_rollbacks_and_is_judged_only_after_enough_transactions(db_url, engine):
    conn = connect(db_url, application_name="ct-rollbacks")
    try:
        with conn.cursor() as cur:
            for _ in range(300):
                cur.execute("BEGIN")
                cur.execute("SELECT 1")
                cur.execute("ROLLBACK")
            cur.execute("SELECT pg_stat_force_next_flush()")
    finally:
        conn.close()
    for _ in range(50):  # the closed session's statistics reach the shared counters as it exits
        ratio = monitor.commit_ratio(engine=engine).iloc[0]
        if ratio["rollbacks"] >= 300:
            break
        time.sleep(0.1)
    assert ratio["rollbacks"] >= 300 and ratio["commit_percent"] < 100
    assert row(monitor.health(engine=engine), "commit_ratio")["detail"].endswith("too few to judge")
    judged = row(monitor.health(commit_ratio_min_transactions=1, commit_ratio_warn_percent=100, commit_ratio_crit_percent=0, engine=engine), "commit_ratio")
    rollbacks = re.search(r"([\d,]+) rollbacks of [\d,]+ transactions", judged["detail"])
    assert judged["status"] == "WARN" and rollbacks and int(rollbacks[1].replace(",", "")) >= 300, judged["detail"]


def test_bloat_is_estimated_from_statistics_after_mass_deletes(db_url, engine):
    execute(
        db_url,
        "CREATE TABLE churn (id int PRIMARY KEY, payload text)",
        "INSERT INTO churn SELECT g, repeat('x', 100) FROM generate_series(1, 50000) AS g",
        "ANALYZE churn",
    )
    before = monitor.bloat(engine=engine).set_index(["kind", "table"]).loc[("table", "churn")]
    execute(db_url, "DELETE FROM churn WHERE id % 10 <> 0", "VACUUM ANALYZE churn")
    after = monitor.bloat(engine=engine).set_index(["kind", "table"]).loc[("table", "churn")]
    assert after["size_bytes"] == before["size_bytes"]  # a plain VACUUM keeps the pages
    assert after["bloat_percent"] > 50 > before["bloat_percent"]
    indexes = monitor.bloat(engine=engine).query("kind == 'index' and index == 'churn_pkey'")
    assert indexes["bloat_percent"].iloc[0] > 50
    health = row(monitor.health(bloat_warn_bytes=1_000_000, engine=engine), "bloat")
    assert health["status"] == "WARN" and "churn" in health["detail"]


def test_exact_bloat_needs_pgstattuple_and_says_so(db_url, engine):
    installed = bool(run_query("SELECT count(*) AS n FROM pg_extension WHERE extname = 'pgstattuple'", engine=engine)["n"][0])
    if not installed:
        with pytest.raises(CopythatError, match="needs the pgstattuple extension.*CREATE EXTENSION pgstattuple"):
            monitor.bloat(exact=True, engine=engine)
    try:
        execute(db_url, "CREATE EXTENSION IF NOT EXISTS pgstattuple")
    except psycopg2.Error:
        pytest.skip("this role may not create pgstattuple")
    exact = monitor.bloat(exact=True, engine=engine)
    assert set(exact["method"]) <= {"pgstattuple_approx", "pgstatindex"} and (exact["bloat_bytes"] >= 0).all()


def test_prepared_transactions_are_listed_with_their_age(db_url, engine):
    allowed = int(run_query("SELECT current_setting('max_prepared_transactions')::int AS n", engine=engine)["n"][0])
    assert row(monitor.health(engine=engine), "prepared_transactions")["detail"] == "none"
    if not allowed:
        assert monitor.prepared_transactions(engine=engine).empty
        pytest.skip("max_prepared_transactions is 0 on this server: none can be staged")
    conn = connect(db_url, application_name="ct-2pc")
    try:
        with conn.cursor() as cur:
            cur.execute("BEGIN")
            cur.execute("SELECT 1")
            cur.execute("PREPARE TRANSACTION 'ct-forgotten'")
        time.sleep(0.2)
        found = monitor.prepared_transactions(engine=engine)
        assert "ct-forgotten" in found["gid"].tolist()
        health = row(monitor.health(prepared_warn_seconds=0.1, engine=engine), "prepared_transactions")
        assert health["status"] == "WARN" and "'ct-forgotten'" in health["detail"]
    finally:
        with conn.cursor() as cur:
            cur.execute("ROLLBACK PREPARED 'ct-forgotten'")
        conn.close()


def test_schema_diff_names_tables_columns_types_defaults_indexes_and_constraints(server):
    a, b = server.create_database("diff_a"), server.create_database("diff_b")
    try:
        common = ["CREATE TABLE jobs (id int PRIMARY KEY, status text DEFAULT 'pending', note text)", "CREATE TABLE same (id int)"]
        execute(a, *common, "ALTER TABLE jobs ALTER COLUMN id TYPE bigint", "CREATE INDEX jobs_status ON jobs (status)", "CREATE TABLE branch_only (id int)")
        execute(b, *common, "ALTER TABLE jobs ALTER COLUMN status SET DEFAULT 'queued'", "ALTER TABLE jobs ADD CONSTRAINT jobs_note CHECK (note <> '')")
        diff = monitor.schema_diff(a, b)
        got = {(r.kind, r.table, r.name, r.difference) for r in diff.itertuples()}
        assert got == {
            ("table", "branch_only", "branch_only", "only in a"),
            ("column", "branch_only", "id", "only in a"),
            ("column", "jobs", "id", "differs"),
            ("column", "jobs", "status", "differs"),
            ("index", "jobs", "jobs_status", "only in a"),
            ("constraint", "jobs", "jobs_note", "only in b"),
        }
        status = diff.set_index("name").loc["status"]
        assert "'pending'" in status["in_a"] and "'queued'" in status["in_b"]
    finally:
        server.drop_database(a)
        server.drop_database(b)


def test_schema_diff_compares_triggers_functions_policies_extensions_and_grants(server):
    a, b = server.create_database("diff_c"), server.create_database("diff_d")
    try:
        common = [
            "CREATE TABLE jobs (id int PRIMARY KEY, owner text, updated_at timestamptz)",
            "CREATE FUNCTION touch() RETURNS trigger LANGUAGE plpgsql AS $$BEGIN NEW.updated_at := now(); RETURN NEW; END$$",
            "CREATE FUNCTION score(x int) RETURNS int LANGUAGE sql AS 'SELECT x + 1'",
            "ALTER TABLE jobs ENABLE ROW LEVEL SECURITY",
            "CREATE POLICY own ON jobs USING (owner = current_user)",
        ]
        execute(
            a, *common,
            "CREATE TRIGGER jobs_updated_at BEFORE UPDATE ON jobs FOR EACH ROW EXECUTE FUNCTION touch()",
            "GRANT SELECT ON jobs TO pg_monitor",  # a role every server has: a login that may not create roles can still grant
            "CREATE EXTENSION IF NOT EXISTS pg_trgm",
        )  # fmt: skip
        execute(
            b, *common[:2], "CREATE FUNCTION score(x int) RETURNS int LANGUAGE sql AS 'SELECT x + 2'",
            "CREATE POLICY own ON jobs USING (true)",
        )  # fmt: skip
        diff = monitor.schema_diff(a, b)
        got = {(r.kind, r.table, r.name, r.difference) for r in diff.itertuples()}
        assert got == {
            ("extension", "", "pg_trgm", "only in a"),
            ("trigger", "jobs", "jobs_updated_at", "only in a"),
            ("function", "", "score(x integer)", "differs"),
            ("row level security", "jobs", "jobs", "only in a"),
            ("policy", "jobs", "own", "differs"),
            ("grant", "jobs", "pg_monitor", "only in a"),
        }, diff[["kind", "table", "name", "difference"]].to_string()
        assert diff["kind"].tolist()[0] == "extension" and "EXECUTE FUNCTION touch()" in diff.set_index("kind").loc["trigger", "in_a"]
        assert "SELECT" in diff.set_index("kind").loc["grant", "in_a"]
    finally:
        server.drop_database(a)
        server.drop_database(b)


def test_schema_diff_refuses_a_database_with_itself_and_names_the_one_it_cannot_reach(db_url):
    with pytest.raises(InputError, match="url_a and url_b are the same database"):
        monitor.schema_diff(db_url, db_url)
    with pytest.raises(ConnectError) as caught:
        monitor.schema_diff(db_url, "postgresql://ops:s3cretpw@127.0.0.1:1/main")
    assert str(caught.value).startswith("url_b: cannot reach 127.0.0.1:1") and "s3cretpw" not in str(caught.value)
