"""Trust at the seams: a password given as `?password=`, a table someone else holds locked, a command killed
half-way, and a file that is not a whole backup. Against the real test server, with a second connection
holding the locks and `kill -9` of the real command."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

import psycopg2
import pytest
from sqlalchemy import text
from sqlalchemy.engine import URL

from copythat_ops import migrations
from copythat_ops.engine import dispose_engines, get_engine
from copythat_ops.errors import CopythatError, InputError
from copythat_ops.migrations import rehearsal
from copythat_ops.recovery import dumps
from copythat_ops.recovery.dumps import LeftoverWarning
from copythat_ops.recovery.pgtools import HOST, host_tag, mark
from copythat_ops.seed import seed_database

CLI = str(Path(sys.executable).parent / "copythat-ops")


def cli(*args: str, url, timeout: float = 120) -> subprocess.CompletedProcess:
    environment = {**os.environ, "DATABASE_URL": url.render_as_string(hide_password=False)}
    return subprocess.run([CLI, *args], env=environment, capture_output=True, text=True, timeout=timeout)


def libpq(url) -> str:
    return url.set(drivername="postgresql").render_as_string(hide_password=False)


def databases(server, like: str) -> list[str]:
    with server.engine.connect() as conn:
        return [r[0] for r in conn.execute(text("SELECT datname FROM pg_database WHERE datname LIKE :p ORDER BY 1"), {"p": like})]


def note_of(server, name: str) -> str | None:
    with server.engine.connect() as conn:
        return conn.scalar(text("SELECT shobj_description(oid, 'pg_database') FROM pg_database WHERE datname = :n"), {"n": name})


def dead_pid() -> int:
    """The pid of a process of this machine that has ended."""
    done = subprocess.Popen(["true"])
    done.wait()
    return done.pid


def error_lines(stderr: str) -> list[str]:
    return [line for line in stderr.splitlines() if line.startswith("error:")]


@pytest.fixture(scope="module")
def source(db_url):
    """A database at head, with jobs in it."""
    migrations.upgrade("head", url=db_url)
    seed_database(2000, 10, seed=5, engine=get_engine(db_url))
    dispose_engines()
    return db_url


@pytest.fixture
def holder(source):
    """A second session that takes ACCESS EXCLUSIVE on a table and keeps it until the test ends."""
    conn = psycopg2.connect(libpq(source), application_name="ct-lock-holder")
    conn.autocommit = False

    def lock(table: str) -> int:
        with conn.cursor() as cursor:
            cursor.execute(f"LOCK TABLE {table} IN ACCESS EXCLUSIVE MODE")
        return conn.get_backend_pid()

    yield lock
    conn.rollback()
    conn.close()


# 1. A password given as ?password= works for every command that runs pg_dump / pg_restore.


def test_a_query_password_reaches_backup_restore_and_upgrade_backup(server, tmp_path):
    login = server.password_url
    if not login.password:
        pytest.skip("the test server's login has no password")
    fresh = server.create_database("qpassword")
    restored = f"ct_qpw_restored_{uuid.uuid4().hex[:6]}"
    with server.engine.connect() as conn:
        conn.execute(text(f'ALTER DATABASE "{fresh.database}" OWNER TO "{login.username}"'))
        if login.username != server.admin.username:  # the suite's own login on a given server may already create databases
            conn.execute(text(f'ALTER ROLE "{login.username}" CREATEDB'))
    url = URL.create(login.drivername, login.username, None, login.host, login.port, fresh.database, {**login.query, "password": login.password})
    assert url.password is None and "password" in url.query
    try:
        upgraded = cli("migrate", "upgrade", "--backup", "--folder", str(tmp_path), "--yes", url=url)
        assert upgraded.returncode == 0, upgraded.stderr
        assert "backup: " in upgraded.stderr and migrations.current(url=fresh) == migrations.heads()[0]
        taken = cli("--format", "json", "db", "backup", "--folder", str(tmp_path), url=url)
        assert taken.returncode == 0, taken.stderr
        newest = dumps.backups(tmp_path)["path"].iloc[0]
        back = cli("db", "restore", newest, "--database", restored, "--yes", url=url)
        assert back.returncode == 0, back.stderr
        assert migrations.current(url=fresh.set(database=restored)) == migrations.heads()[0]
        for said in (upgraded, taken, back):
            assert login.password not in said.stdout + said.stderr
    finally:
        dispose_engines()
        with server.engine.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{restored}" WITH (FORCE)'))
            if login.username != server.admin.username:
                conn.execute(text(f'ALTER ROLE "{login.username}" NOCREATEDB'))
        server.drop_database(fresh)


# 2. Nothing waits forever on a lock, and the error names who holds it.


@pytest.mark.parametrize("table", ["extraction_jobs", "alembic_version"])
def test_backup_gives_up_on_a_locked_table_and_names_the_holder(source, holder, tmp_path, table):
    pid = holder(table)
    began = time.monotonic()
    with pytest.raises(CopythatError) as caught:
        dumps.backup(url=source, folder=tmp_path, lock_wait_timeout="1s")
    assert time.monotonic() - began < 10
    said = str(caught.value)
    assert f"gave up after 1 s waiting for a lock on" in said and table in said
    assert f"pid {pid} (" in said and "ct-lock-holder" in said and "LOCK TABLE" in said
    assert f"pg_terminate_backend({pid})" in said and said.count("Fix:") == 1
    assert list(tmp_path.iterdir()) == []  # no .partial, no .dump


def test_cli_backup_under_a_lock_gives_up_within_seconds(source, holder, tmp_path):
    pid = holder("extraction_jobs")
    began = time.monotonic()
    result = cli("db", "backup", "--folder", str(tmp_path), "--lock-wait-timeout", "2s", url=source, timeout=60)
    assert time.monotonic() - began < 30
    assert result.returncode == 1 and len(error_lines(result.stderr)) == 1, result.stderr
    assert f"pid {pid}" in result.stderr and f"copythat-ops monitor terminate {pid} --apply" in result.stderr
    assert result.stderr.count("Fix:") == 1 and list(tmp_path.glob("*.partial")) == []


# 3. Killed half-way: the child dies with the command; the next run finds what was left and says so.


def _children(pid: int) -> list[tuple[int, str, str]]:
    """(pid, name, state) of the processes whose parent is `pid`."""
    found = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            head, tail = stat.read_text().rsplit(")", 1)
        except OSError:
            continue
        fields = tail.split()
        if int(fields[1]) == pid:
            found.append((int(stat.parent.name), head.split("(", 1)[1], fields[0]))
    return found


def _running(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] not in ("Z", "X")
    except (OSError, IndexError):
        return False


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")
def test_kill_9_of_backup_takes_pg_dump_along_and_the_next_run_removes_the_partial(source, holder, tmp_path):
    holder("extraction_jobs")  # pg_dump waits here: a known point, half-way
    environment = {**os.environ, "DATABASE_URL": source.render_as_string(hide_password=False)}
    command = subprocess.Popen([CLI, "db", "backup", "--folder", str(tmp_path), "--lock-wait-timeout", "60s"], env=environment,
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    dump_pid = None
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and not (dump_pid and list(tmp_path.glob("*.partial"))):
        dump_pid = next((pid for pid, name, _ in _children(command.pid) if name == "pg_dump"), None)
        time.sleep(0.1)
    assert dump_pid and list(tmp_path.glob("*.partial")), "pg_dump did not start"
    os.kill(command.pid, signal.SIGKILL)
    command.wait()
    deadline = time.monotonic() + 5
    while _running(dump_pid) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not _running(dump_pid), "pg_dump outlived the command"
    [partial] = tmp_path.glob("*.partial")
    assert f".writer-{command.pid}@{HOST}.partial" in partial.name
    listed = cli("db", "backups", "--folder", str(tmp_path), url=source)
    assert listed.returncode == 0, listed.stderr
    assert f"warning: removed a partial backup left by an interrupted run (pid {command.pid}, gone): {partial}" in listed.stderr
    assert list(tmp_path.glob("*.partial")) == []


def test_partials_of_live_runs_and_other_hosts_are_left_alone(tmp_path):
    gone = tmp_path / f"db__base__20260101T000000Z.dump.writer-{dead_pid()}@{HOST}.partial"
    live = tmp_path / f"db__base__20260101T000001Z.dump.writer-{os.getpid()}@{HOST}.partial"
    elsewhere = tmp_path / "db__base__20260101T000002Z.dump.writer-4242@other-host.example.partial"
    legacy = tmp_path / "db__base__20260101T000003Z.dump.partial"
    for path in (gone, live, elsewhere, legacy):
        path.write_bytes(b"PGDMP" + b"\0" * 3 * 1024 * 1024)
    old = time.time() - 3600
    os.utime(legacy, (old, old))
    with pytest.warns(LeftoverWarning) as said:
        found = dumps.backups(tmp_path)
    assert found.empty
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted([live.name, elsewhere.name])
    messages = [str(w.message) for w in said]
    assert f"removed a partial backup left by an interrupted run (pid {gone.name.split('-')[-1].split('@')[0]}, gone): {gone} (3072 kB)" in messages
    assert f"removed a partial backup left by an interrupted run: {legacy} (3072 kB)" in messages
    assert any("written by pid 4242 on host other-host.example" in m and "delete the file" in m for m in messages)
    assert not any(live.name in m for m in messages)


def _leftover_clone(server, source, *, pid: int, host: str = HOST, note: str | None = "mark") -> str:
    name = f"{source.database[:20]}_rehearsal_{host_tag(host)}_{pid}_{uuid.uuid4().hex[:4]}"
    with server.engine.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}" TEMPLATE template0'))
        if note == "mark":
            note = mark("rehearsal", f"clone of {source.database}").replace(f"pid {os.getpid()} on host {HOST}", f"pid {pid} on host {host}")
        if note:
            conn.execute(text(f'COMMENT ON DATABASE "{name}" IS :note'), {"note": note})
    return name


def test_the_next_rehearsal_drops_a_clone_left_by_a_killed_run_and_ends_its_backend(source, server):
    pid = dead_pid()
    name = _leftover_clone(server, source, pid=pid)
    nameless = _leftover_clone(server, source, pid=dead_pid(), note=None)  # killed before it was noted
    backend = psycopg2.connect(libpq(source.set(database=name)))  # a backend still running on it
    backend.autocommit = True
    try:
        result = cli("migrate", "rehearse", url=source)
    finally:
        backend.close()
    assert result.returncode == 0, result.stderr
    assert f"warning: dropped the rehearsal clone {name} left by an interrupted run (pid {pid} on host {HOST}, gone); ended its 1 session(s) still running" in result.stderr
    assert f"warning: dropped the rehearsal clone {nameless} left by an interrupted run" in result.stderr
    assert databases(server, name) == [] and databases(server, nameless) == []
    assert "rehearsal passed" in result.stderr


def test_a_leftover_clone_this_role_may_not_drop_is_named_and_the_rehearsal_goes_on(source, server):
    with server.engine.connect() as conn:
        if not conn.scalar(text("SELECT rolsuper OR rolcreaterole FROM pg_roles WHERE rolname = current_user")):
            pytest.skip("this server's login may not create roles: no second role to hold a session it may not end")
        role, password = f"ct_weak_{uuid.uuid4().hex[:6]}", uuid.uuid4().hex
        conn.execute(text(f"CREATE ROLE {role} LOGIN CREATEDB PASSWORD :password"), {"password": password})
    name = _leftover_clone(server, source, pid=dead_pid())
    other = psycopg2.connect(libpq(source.set(database=name)))  # a session of the server's admin, which the weak role may not end
    weak = source.set(username=role, password=password)
    try:
        with pytest.warns(LeftoverWarning) as said:
            found = rehearsal.leftover_clones(rehearsal.admin_engine(weak))
        assert [(f["clone"], f["action"]) for f in found if f["clone"] == name] == [(name, "left: could not drop")]
        message = next(str(w.message) for w in said if name in str(w.message))
        assert "could not be dropped" in message and f'DROP DATABASE "{name}" WITH (FORCE)' in message
        assert databases(server, name) == [name]
    finally:
        other.close()
        dispose_engines()
        with server.engine.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
            conn.execute(text(f"DROP ROLE IF EXISTS {role}"))


def test_a_rehearsal_cleans_up_after_its_own_database_only(source, server):
    mine = _leftover_clone(server, source, pid=dead_pid())
    theirs = f"ct_elsewhere_rehearsal_{host_tag()}_{dead_pid()}_{uuid.uuid4().hex[:4]}"  # a dead run's clone of another database
    with server.engine.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{theirs}" TEMPLATE template0'))
    admin = rehearsal.admin_engine(source)
    try:
        with pytest.warns(LeftoverWarning):
            found = rehearsal.leftover_clones(admin, source.database)
        assert [f["clone"] for f in found] == [mine] and databases(server, mine) == []
        assert databases(server, theirs) == [theirs]
    finally:
        rehearsal.drop_clone(theirs, admin=admin)


def test_clones_of_live_runs_kept_clones_and_other_hosts_clones_are_not_dropped(source, server):
    live = _leftover_clone(server, source, pid=os.getpid())
    kept = _leftover_clone(server, source, pid=dead_pid(), note=f"{rehearsal.KEPT}: clone of {source.database}")
    foreign = _leftover_clone(server, source, pid=4242, host="other-host.example")
    admin = rehearsal.admin_engine(source)
    try:
        with pytest.warns(LeftoverWarning) as said:
            found = rehearsal.leftover_clones(admin)
        assert [(f["clone"], f["action"]) for f in found] == [(foreign, "left: another host")]
        assert f'drop it: DROP DATABASE "{foreign}" WITH (FORCE)' in str(said[0].message)
        assert "pid 4242 on host other-host.example" in str(said[0].message)
        assert databases(server, live) == [live] and databases(server, kept) == [kept]
    finally:
        for name in (live, kept, foreign):
            rehearsal.drop_clone(name, admin=admin)
        admin.dispose()


def test_a_kept_clone_is_noted_so_the_next_run_leaves_it(source, server):
    report = rehearsal.rehearse(url=source, keep=True)
    try:
        assert (note_of(server, report.attrs["clone"]) or "").startswith(rehearsal.KEPT)
    finally:
        dumps.drop_database(report.attrs["clone"], url=source)


# A restore recognises its own half-made database; anything else that exists is still refused.


@pytest.fixture(scope="module")
def dump(source, tmp_path_factory) -> Path:
    return dumps.backup(url=source, folder=tmp_path_factory.mktemp("dump"))["path"]


def test_rerunning_an_interrupted_restore_replaces_its_half_made_database(source, server, dump):
    name = f"ct_half_{uuid.uuid4().hex[:8]}"
    pid = dead_pid()
    with server.engine.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}" TEMPLATE template0'))
        note = f"copythat-ops restore in progress: pid {pid} on host {HOST} since 2026-01-01T00:00:00Z; from {dump.name}"
        conn.execute(text(f'COMMENT ON DATABASE "{name}" IS :note'), {"note": note})
    try:
        result = cli("db", "restore", str(dump), "--database", name, "--yes", url=source)
        assert result.returncode == 0, result.stderr
        assert f"warning: {name} was a half-made restore left by an interrupted run (pid {pid} on host {HOST}" in result.stderr
        assert "dropped it to restore again" in result.stderr
        assert migrations.current(url=source.set(database=name)) == migrations.heads()[0]
        assert note_of(server, name) is None  # done: no longer marked
    finally:
        dumps.drop_database(name, url=source)


def test_a_restore_still_running_and_a_database_of_someone_else_are_refused(source, server, dump):
    running, other = f"ct_running_{uuid.uuid4().hex[:8]}", f"ct_other_{uuid.uuid4().hex[:8]}"
    with server.engine.connect() as conn:
        for name in (running, other):
            conn.execute(text(f'CREATE DATABASE "{name}" TEMPLATE template0'))
        note = mark("restore", "from x.dump")  # this process, now
        conn.execute(text(f'COMMENT ON DATABASE "{running}" IS :note'), {"note": note})
        conn.execute(text(f"COMMENT ON DATABASE \"{other}\" IS 'the finance team''s copy'"))
    try:
        with pytest.raises(InputError, match=f"a restore into {running} is running now \\(pid {os.getpid()}"):
            dumps.restore(dump, database=running, url=source)
        result = cli("db", "restore", str(dump), "--database", other, "--yes", url=source)
        assert result.returncode == 2 and f"{other} already exists on the server" in result.stderr
        assert "give --database another name" in result.stderr and result.stderr.count("Fix:") == 1
        assert databases(server, running) == [running] and note_of(server, other) == "the finance team's copy"
    finally:
        for name in (running, other):
            dumps.drop_database(name, url=source)


# 4. A truncated or foreign file is named as such before any database is made.


@pytest.mark.parametrize("cut", ["truncated", "foreign"])
def test_a_file_that_is_not_a_whole_backup_is_refused_before_a_database_is_made(source, server, dump, tmp_path, cut):
    bad = tmp_path / f"{cut}.dump"
    data = dump.read_bytes()
    bad.write_bytes(data[: len(data) * 2 // 3] if cut == "truncated" else b"PGDMP" + os.urandom(4000))
    name = f"ct_never_{uuid.uuid4().hex[:8]}"
    with pytest.raises(InputError, match="is not a complete pg_dump custom-format backup .*no database was made"):
        dumps.restore(bad, database=name, url=source)
    result = cli("db", "restore", str(bad), "--database", name, "--yes", url=source)
    assert result.returncode == 2 and len(error_lines(result.stderr)) == 1, result.stderr
    assert "not a complete pg_dump custom-format backup" in result.stderr and "pg_restore" in result.stderr
    assert "name a complete .dump file listed by `copythat-ops db backups`" in result.stderr
    assert "backups()" not in result.stderr and result.stderr.count("Fix:") == 1
    assert databases(server, name) == []


def test_restore_messages_speak_cli_words(source, tmp_path):
    result = cli("db", "restore", str(tmp_path / "nothere.dump"), "--database", "ct_x", "--yes", url=source)
    assert result.returncode == 2
    assert "Fix: name a file listed by `copythat-ops db backups`" in result.stderr and "backups()" not in result.stderr


def test_the_dump_folder_of_a_killed_rehearsal_is_removed_by_the_next(tmp_path):
    gone = tmp_path / f"{rehearsal.DUMP_FOLDER}{dead_pid()}-abcd1234"
    live = tmp_path / f"{rehearsal.DUMP_FOLDER}{os.getpid()}-abcd1234"
    for folder in (gone, live):
        folder.mkdir()
        (folder / "labdb__base__20260101T000000Z.dump.writer-1@x.partial").write_bytes(b"\0" * 1024 * 1024)
    with pytest.warns(LeftoverWarning, match=f"removed the dump folder {gone} \\(1.0 MB\\) left by an interrupted rehearsal"):
        removed = rehearsal.leftover_dump_folders(str(tmp_path))
    assert [r["clone"] for r in removed] == [str(gone)] and not gone.exists() and live.exists()
