"""A real read replica: a throwaway PostgreSQL 15 primary and its streaming standby (pg_basebackup -R).

Runs where Debian's PostgreSQL 15 server binaries are installed, on the embedded leg only (skipped when
COPYTHAT_TEST_DATABASE_URL names the server): the two servers live in a temporary folder and are stopped
and removed afterwards. The owner role may create databases and roles and bypasses row-level security, as
Neon's owner role does, but is no superuser and has no pg_monitor.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import tempfile
import time
import warnings
from pathlib import Path

import pandas as pd
import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.engine import URL
from sqlalchemy.exc import DBAPIError
from sqlalchemy.pool import NullPool

from copythat_ops import engine as engines
from copythat_ops import migrations, monitor
from copythat_ops.config import REPLICA_URL_VAR, URL_VAR
from copythat_ops.engine import ReplicaFallback, dispose_engines, get_engine
from copythat_ops.jobs import job_summary
from copythat_ops.seed import seed_database

BIN = Path("/usr/lib/postgresql/15/bin")
OWNER = "app_owner"

pytestmark = [
    pytest.mark.skipif(not (BIN / "initdb").exists(), reason="PostgreSQL 15 server binaries are not installed (/usr/lib/postgresql/15/bin)"),
    pytest.mark.skipif(bool(os.environ.get("COPYTHAT_TEST_DATABASE_URL")), reason="runs on the embedded leg only: it starts servers of its own"),
]


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


class Pair:
    """A primary and its streaming standby in `folder`, run as the postgres user when the tests run as root."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.primary_port, self.standby_port = free_port(), free_port()

    def run(self, *command: str) -> subprocess.CompletedProcess:
        if os.geteuid() == 0:
            command = ("runuser", "-u", "postgres", "--", *command)
        done = subprocess.run(command, capture_output=True, text=True, timeout=120)
        assert done.returncode == 0, f"{' '.join(command)}: {done.stderr}"
        return done

    def start(self) -> None:
        primary, standby = self.folder / "primary", self.folder / "standby"
        self.run(str(BIN / "initdb"), "-D", str(primary), "-A", "trust", "-U", "postgres")
        with open(primary / "postgresql.conf", "a") as conf:
            conf.write(
                f"port = {self.primary_port}\nlisten_addresses = '127.0.0.1'\nunix_socket_directories = '{self.folder}'\n"
                "wal_level = replica\nmax_wal_senders = 5\nhot_standby = on\nwal_receiver_status_interval = 1s\n"
            )
        self.run(str(BIN / "pg_ctl"), "-D", str(primary), "-l", str(self.folder / "primary.log"), "-w", "start")
        with self.admin(self.primary_port).connect() as conn:
            conn.execute(text(f'CREATE ROLE "{OWNER}" LOGIN CREATEDB CREATEROLE BYPASSRLS'))
            conn.execute(text(f'CREATE DATABASE app OWNER "{OWNER}"'))
        self.run(str(BIN / "pg_basebackup"), "-h", "127.0.0.1", "-p", str(self.primary_port), "-U", "postgres", "-D", str(standby), "-R", "-X", "stream", "-c", "fast")
        with open(standby / "postgresql.conf", "a") as conf:
            conf.write(f"port = {self.standby_port}\n")
        self.run(str(BIN / "pg_ctl"), "-D", str(standby), "-l", str(self.folder / "standby.log"), "-w", "start")

    def stop(self) -> None:
        for name in ("standby", "primary"):
            if (self.folder / name / "postmaster.pid").exists():
                subprocess.run(
                    (("runuser", "-u", "postgres", "--") if os.geteuid() == 0 else ()) + (str(BIN / "pg_ctl"), "-D", str(self.folder / name), "-m", "immediate", "-w", "stop"),
                    capture_output=True,
                    timeout=60,
                )

    def url(self, port: int, user: str = OWNER, database: str = "app") -> URL:
        return URL.create("postgresql+psycopg2", username=user, host="127.0.0.1", port=port, database=database)

    def admin(self, port: int, database: str = "postgres"):
        return create_engine(self.url(port, "postgres", database), poolclass=NullPool, isolation_level="AUTOCOMMIT")

    def streaming(self) -> pd.DataFrame:
        deadline = time.monotonic() + 30
        while True:
            found = monitor.replication(engine=self.admin(self.primary_port))
            if len(found) and (found["state"] == "streaming").all() or time.monotonic() > deadline:
                return found
            time.sleep(0.2)

    def caught_up(self) -> None:
        """Wait until the standby has replayed everything the primary wrote."""
        with self.admin(self.primary_port).connect() as conn:
            target = conn.scalar(text("SELECT pg_current_wal_lsn()::text"))
        deadline = time.monotonic() + 30
        with self.admin(self.standby_port).connect() as conn:
            while not conn.scalar(text("SELECT pg_last_wal_replay_lsn() >= CAST(:lsn AS pg_lsn)"), {"lsn": target}):
                assert time.monotonic() < deadline, "the standby did not catch up in 30 s"
                time.sleep(0.1)


@pytest.fixture(scope="module")
def pair():
    folder = Path(tempfile.mkdtemp(prefix="copythat-replica-"))
    if os.geteuid() == 0:
        shutil.chown(folder, "postgres")
    servers = Pair(folder)
    try:
        servers.start()
        primary = servers.url(servers.primary_port)
        migrations.upgrade(url=primary)
        seed_database(200, 5, seed=5, engine=get_engine(primary))
        dispose_engines()
        assert len(servers.streaming()) == 1
        servers.caught_up()
        yield servers
    finally:
        dispose_engines()
        servers.stop()
        shutil.rmtree(folder, ignore_errors=True)


@pytest.fixture
def configured(pair, monkeypatch):
    """DATABASE_URL is the primary, DATABASE_REPLICA_URL the standby, both as the owner role."""
    monkeypatch.setenv(URL_VAR, pair.url(pair.primary_port).render_as_string(hide_password=False))
    monkeypatch.setenv(REPLICA_URL_VAR, pair.url(pair.standby_port).render_as_string(hide_password=False))
    monkeypatch.delenv(engines.REPLICA_MAX_LAG_VAR, raising=False)
    engines._replica_state.update(checked=0.0, use=None, said=None)
    dispose_engines()
    yield pair
    with pair.admin(pair.standby_port).connect() as conn:
        conn.execute(text("SELECT pg_wal_replay_resume()"))
    dispose_engines()


def jobs_on_the_primary(pair, n: int) -> None:
    seed_database(n, 1, seed=n, engine=create_engine(pair.url(pair.primary_port), poolclass=NullPool))


def test_the_primary_lists_its_standby_and_neither_lags(pair):
    standbys = pair.streaming()
    assert standbys["state"].tolist() == ["streaming"] and standbys["client_addr"].tolist() == ["127.0.0.1"]
    assert standbys["sync_state"].tolist() == ["async"]
    on_standby = monitor.replica_lag(engine=pair.admin(pair.standby_port, "app")).iloc[0]
    assert bool(on_standby["in_recovery"]) and on_standby["lag_seconds"] == 0
    report = monitor.health(engine=pair.admin(pair.primary_port, "app")).set_index("check").loc["replication_lag"]
    assert report["status"] == "OK" and "of 1 standby(s)" in report["detail"], report.to_dict()


def test_analytics_reads_go_to_the_replica_and_nothing_writes_there(configured):
    with warnings.catch_warnings():
        warnings.simplefilter("error", ReplicaFallback)
        reader = get_engine(replica=True)
        assert reader.url.port == configured.standby_port and get_engine().url.port == configured.primary_port
        with reader.connect() as conn:
            assert conn.scalar(text("SELECT pg_is_in_recovery()")) is True
            assert conn.scalar(text("SHOW default_transaction_read_only")) == "on"
        summary = job_summary()
    assert int(summary["jobs"].sum()) == 200
    # the analytics session was the standby's: it shows there, not on the primary
    with pytest.raises(DBAPIError, match="read-only transaction"):
        with reader.begin() as conn:
            conn.execute(text("CREATE TABLE nowhere (id int)"))


def test_a_paused_replica_reports_its_lag_by_the_thresholds_and_reads_fall_back_once(configured):
    pair = configured
    with pair.admin(pair.standby_port).connect() as conn:
        conn.execute(text("SELECT pg_wal_replay_pause()"))
    jobs_on_the_primary(pair, 30)
    time.sleep(2.5)
    jobs_on_the_primary(pair, 10)  # WAL the paused standby receives and does not replay
    standby = pair.admin(pair.standby_port, "app")
    lag = monitor.replica_lag(engine=standby).iloc[0]["lag_seconds"]
    assert lag >= 2, lag
    statuses = {
        limits: monitor.health(engine=standby, replication_lag_seconds=limits[0], replication_lag_crit_seconds=limits[1]).set_index("check").loc["replication_lag", "status"]
        for limits in ((1, 600), (0.5, 1), (600, 1200))
    }
    assert statuses == {(1, 600): "WARN", (0.5, 1): "CRIT", (600, 1200): "OK"}
    # analytics reads: the replica is behind the limit set, so the primary answers, said once
    os.environ[engines.REPLICA_MAX_LAG_VAR] = "1s"
    try:
        with warnings.catch_warnings(record=True) as said:
            warnings.simplefilter("always")
            first, second = job_summary(), job_summary()
            engines._replica_state["checked"] = 0.0  # look again: still behind, still not said twice
            third = job_summary()
    finally:
        del os.environ[engines.REPLICA_MAX_LAG_VAR]
    fallbacks = [str(w.message) for w in said if issubclass(w.category, ReplicaFallback)]
    assert len(fallbacks) == 1 and fallbacks[0].startswith(f"analytics reads go to the primary: the replica at 127.0.0.1:{pair.standby_port} is ")
    assert "behind its primary (more than 1 s, $COPYTHAT_REPLICA_MAX_LAG)" in fallbacks[0]
    assert int(first["jobs"].sum()) == int(second["jobs"].sum()) == int(third["jobs"].sum()) == 240, "the primary's rows, not the paused replica's"
    # within the default limit (30 s) the replica answers, with what it has replayed
    engines._replica_state.update(checked=0.0, use=None, said=None)
    assert int(job_summary()["jobs"].sum()) == 200


def test_an_unreachable_replica_sends_reads_to_the_primary_once(configured, monkeypatch):
    pair = configured
    monkeypatch.setenv(REPLICA_URL_VAR, pair.url(free_port()).render_as_string(hide_password=False))
    dispose_engines()
    with warnings.catch_warnings(record=True) as said:
        warnings.simplefilter("always")
        summaries = [job_summary() for _ in range(3)]
    fallbacks = [str(w.message) for w in said if issubclass(w.category, ReplicaFallback)]
    assert len(fallbacks) == 1 and "cannot be reached" in fallbacks[0]
    assert all(int(s["jobs"].sum()) >= 200 for s in summaries)


def test_a_role_without_pg_monitor_is_told_the_grant_not_no_replication(pair):
    owner = create_engine(pair.url(pair.primary_port), poolclass=NullPool)
    standbys = monitor.replication(engine=owner)
    assert len(standbys) == 1 and standbys["state"].isna().all(), "the owner sees the walsender's pid only"
    row = monitor.health(engine=owner).set_index("check").loc["replication_lag"]
    assert row["status"] == "UNKNOWN", row.to_dict()
    assert "1 standby(s) attached, but their state and lag are hidden from role app_owner" in row["detail"]
    assert "GRANT pg_monitor TO app_owner" in row["action"] and "pg_read_all_stats" in row["action"]
    assert "no replication" not in row["detail"]
    with pair.admin(pair.primary_port).connect() as conn:
        conn.execute(text(f'GRANT pg_monitor TO "{OWNER}"'))
    try:
        row = monitor.health(engine=owner).set_index("check").loc["replication_lag"]
        assert row["status"] == "OK" and "of 1 standby(s)" in row["detail"]
    finally:
        with pair.admin(pair.primary_port).connect() as conn:
            conn.execute(text(f'REVOKE pg_monitor FROM "{OWNER}"'))


def test_jobs_frame_reads_a_standby_in_parallel_streams_of_one_snapshot(pair):
    """A hot standby exports a snapshot too (PostgreSQL 10 on): jobs_frame's streams read it there as one frame."""
    from copythat_ops.jobs import frames, jobs_frame

    standby = create_engine(pair.url(pair.standby_port), poolclass=NullPool)
    sql, _ = frames._jobs_query()
    with frames._reader(standby, "1min", "3s", "test", sql, snapshot=True) as (cursor, _, restart):
        cursor.execute("SELECT pg_is_in_recovery()")
        assert cursor.fetchone()[0] is True
        assert frames._export_snapshot(cursor, restart) is not None
    pair.caught_up()
    with create_engine(pair.url(pair.primary_port), poolclass=NullPool).connect() as conn:
        on_primary = conn.scalar(text("SELECT count(*) FROM extraction_jobs"))
    one = jobs_frame(streams=1, engine=standby)
    assert len(one) == on_primary > 0
    pd.testing.assert_frame_equal(jobs_frame(streams=3, engine=standby), one)
