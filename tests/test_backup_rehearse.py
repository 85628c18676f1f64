"""Backups (pg_dump -Fc) and rehearsals on a clone, against the real test server."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import uuid
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.engine import URL
from sqlalchemy.pool import NullPool

from copythat_ops import migrations
from copythat_ops.migrations import rehearsal as rehearse
from copythat_ops.recovery import dumps as backup
from copythat_ops.engine import dispose_engines, get_engine
from copythat_ops.errors import ConfigError, InputError, MigrationError
from copythat_ops.seed import seed_database
from copythat_ops.config import normalize_url

ROOT = Path(__file__).resolve().parents[1]
CLI = str(Path(sys.executable).parent / "copythat-ops")
BEFORE_HEAD = "2e88296926d0"


def databases(server, prefix: str) -> list[str]:
    with server.engine.connect() as conn:
        return [r[0] for r in conn.execute(text("SELECT datname FROM pg_database WHERE datname LIKE :p ORDER BY 1"), {"p": prefix + "%"})]


def cli(*args: str, url, env: dict | None = None) -> subprocess.CompletedProcess:
    environment = {**os.environ, "DATABASE_URL": url.render_as_string(hide_password=False), **(env or {})}
    return subprocess.run([CLI, *args], env=environment, capture_output=True, text=True, timeout=300)


@pytest.fixture(scope="module")
def source(db_url):
    """A database two revisions behind head, with jobs in it."""
    migrations.upgrade(BEFORE_HEAD, url=db_url)
    seed_database(2000, 10, seed=3, engine=get_engine(db_url))
    dispose_engines()
    return db_url


def test_backup_is_listed_and_restores_into_a_new_database(source, server, tmp_path):
    taken = backup.backup(url=source, folder=tmp_path)
    assert taken["path"].parent == tmp_path and taken["path"].name.startswith(f"{source.database}__{BEFORE_HEAD}__")
    assert backup.is_dump(taken["path"]) and "pg_dump" in taken["tool"]
    listed = backup.backups(tmp_path)
    assert listed["file"].tolist() == [taken["path"].name] and listed["revision"].tolist() == [BEFORE_HEAD]
    name = f"ct_restored_{uuid.uuid4().hex[:8]}"
    try:
        restored = backup.restore(taken["path"], database=name, url=source)
        assert "pg_restore" in restored["tool"]
        copy = source.set(database=name)
        assert migrations.current(url=copy) == BEFORE_HEAD
        with create_engine(copy, poolclass=NullPool).connect() as conn:
            assert conn.scalar(text("SELECT count(*) FROM extraction_jobs")) == 2000
    finally:
        backup.drop_database(name, url=source)
    assert databases(server, name) == []


def test_restore_never_overwrites_an_existing_database(source, tmp_path):
    taken = backup.backup(url=source, folder=tmp_path)
    with pytest.raises(InputError, match=f"{source.database} already exists on the server, and restore only makes new databases"):
        backup.restore(taken["path"], database=source.database, url=source)
    assert migrations.current(url=source) == BEFORE_HEAD


def test_restore_refuses_a_file_that_is_not_a_dump(source, server, tmp_path):
    fake = tmp_path / "notes.dump"
    fake.write_text("SELECT 1;\n")
    name = f"ct_never_{uuid.uuid4().hex[:8]}"
    with pytest.raises(InputError, match="is not a pg_dump custom-format backup"):
        backup.restore(fake, database=name, url=source)
    assert databases(server, name) == []
    result = cli("db", "restore", str(fake), "--database", name, "--yes", url=source)
    assert result.returncode == 2 and result.stderr.count("\n") == 1 and "not a pg_dump custom-format backup" in result.stderr


def test_a_backup_folder_that_cannot_be_written_is_named(source, tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("")
    with pytest.raises(ConfigError, match="the backup folder .*file/backups cannot be written"):
        backup.backup(url=source, folder=blocker / "backups")
    result = cli("db", "backup", "--folder", str(blocker / "backups"), url=source)
    assert result.returncode == 2 and "cannot be written" in result.stderr and "Traceback" not in result.stderr


@pytest.mark.parametrize("form", ["user-info", "query"])
def test_the_password_reaches_pg_dump_in_the_environment_not_argv(server, tmp_path, monkeypatch, form):
    fresh = server.create_database("password")
    url = server.password_url.set(database=fresh.database)
    if not url.password:
        pytest.skip("the test server's login has no password")
    password = url.password
    if form == "query":  # ?password= instead of user:password@
        url = URL.create(url.drivername, url.username, None, url.host, url.port, url.database, {**url.query, "password": password})
        assert url.password is None
    with server.engine.connect() as conn:
        conn.execute(text(f'ALTER DATABASE "{fresh.database}" OWNER TO "{url.username}"'))
    calls = []
    real = subprocess.run

    def recording(command, *args, **kwargs):
        calls.append((command, kwargs.get("env") or {}))
        return real(command, *args, **kwargs)

    monkeypatch.setattr(subprocess, "run", recording)
    try:
        backup.backup(url=url, folder=tmp_path)
    finally:
        monkeypatch.undo()
        server.drop_database(fresh)
    dump = [(c, e) for c, e in calls if "pg_dump" in Path(c[0]).name and "--version" not in c]
    assert dump and all(password not in " ".join(c) for c, _ in dump)
    assert all(e.get("PGPASSWORD") == password for _, e in dump)


def test_cli_backup_then_backups(source, tmp_path):
    taken = cli("--format", "json", "db", "backup", "--folder", str(tmp_path), url=source)
    assert taken.returncode == 0, taken.stderr
    listed = cli("--format", "csv", "db", "backups", "--folder", str(tmp_path), url=source)
    assert listed.returncode == 0 and BEFORE_HEAD in listed.stdout and ".dump" in listed.stdout


def test_rehearse_migrates_a_clone_checks_it_and_drops_it(source, server):
    report = rehearse.rehearse(url=source)
    assert report.attrs["ok"] and report.attrs["method"] == "template"
    assert report["revision"].tolist() == migrations.pending(url=source)["revision"].tolist()
    assert report["seconds"].ge(0).all() and report["statements"].gt(0).all()
    assert report["downgrade_ok"].iloc[-1] and report["checks_ok"].iloc[-1]
    assert "extraction_jobs: AccessExclusiveLock" in report.set_index("revision").loc["c0db8df4a585", "locks_taken"]
    assert migrations.current(url=source) == BEFORE_HEAD  # the source is never migrated
    assert databases(server, report.attrs["clone"]) == []


def test_rehearse_clones_by_dump_when_others_are_connected(source, server):
    other = create_engine(source, poolclass=NullPool).connect()
    try:
        report = rehearse.rehearse(url=source)
    finally:
        other.close()
    assert report.attrs["ok"] and report.attrs["method"] == "dump"
    assert databases(server, report.attrs["clone"]) == []


BROKEN_DOWNGRADE = '''"""A revision whose downgrade fails."""
from alembic import op

revision = "badbadbad010"
down_revision = "{head}"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute("CREATE TABLE IF NOT EXISTS rehearsal_probe (id bigint)")


def downgrade() -> None:
    op.execute("DROP TABLE rehearsal_missing")
'''

INTERRUPTED = '''"""A revision interrupted as by Ctrl-C."""
revision = "badbadbad011"
down_revision = "{head}"
branch_labels = None
depends_on = None


def upgrade() -> None:
    raise KeyboardInterrupt


def downgrade() -> None:
    pass
'''


@pytest.fixture
def scripts(tmp_path, monkeypatch) -> Path:
    shutil.copy(ROOT / "alembic.ini", tmp_path / "alembic.ini")
    shutil.copytree(ROOT / "alembic", tmp_path / "alembic", ignore=shutil.ignore_patterns("__pycache__"))
    monkeypatch.setenv(migrations.INI_VAR, str(tmp_path / "alembic.ini"))
    return tmp_path / "alembic" / "versions"


def test_a_downgrade_that_does_not_work_fails_the_rehearsal(source, server, scripts):
    (scripts / "badbadbad010_broken_downgrade.py").write_text(BROKEN_DOWNGRADE.format(head=migrations.heads()[0]))
    report = rehearse.rehearse(url=source, clone_name=f"ct_rehearsal_{uuid.uuid4().hex[:8]}")
    last = report.iloc[-1]
    assert not report.attrs["ok"] and last["revision"] == "badbadbad010" and last["downgrade_ok"] is False
    assert "rehearsal_missing" in last["error"]
    assert databases(server, report.attrs["clone"]) == []
    assert migrations.current(url=source) == BEFORE_HEAD


def test_an_interrupted_rehearsal_drops_its_clone(source, server, scripts):
    (scripts / "badbadbad011_interrupted.py").write_text(INTERRUPTED.format(head=migrations.heads()[0]))
    name = f"ct_rehearsal_{uuid.uuid4().hex[:8]}"
    with pytest.raises(KeyboardInterrupt):
        rehearse.rehearse(url=source, clone_name=name)
    assert databases(server, name) == []
    assert migrations.current(url=source) == BEFORE_HEAD


def test_a_role_that_may_not_create_databases_gets_one_line_and_no_clone(source, server):
    with server.engine.connect() as conn:
        may_create_roles = conn.scalar(text("SELECT rolsuper OR rolcreaterole FROM pg_roles WHERE rolname = current_user"))
    if not may_create_roles:
        pytest.skip("the test login cannot make a role without CREATEDB")
    role, password = f"ct_nocreate_{uuid.uuid4().hex[:6]}", uuid.uuid4().hex
    with server.engine.connect() as conn:
        conn.execute(text(f"CREATE ROLE {role} LOGIN NOCREATEDB PASSWORD '{password}'"))
        conn.execute(text(f'GRANT CONNECT ON DATABASE "{source.database}" TO {role}'))
        conn.execute(text(f"GRANT pg_read_all_data TO {role}"))
    weak = source.set(username=role, password=password)
    if server.data_dir is not None:  # the embedded server trusts socket logins
        weak = weak.set(password=None)
    name = f"ct_rehearsal_{uuid.uuid4().hex[:8]}"
    try:
        with pytest.raises(MigrationError, match=f"role {role} may not create databases"):
            rehearse.rehearse(url=weak, clone_name=name)
        assert databases(server, name) == []
    finally:
        dispose_engines()
        with server.engine.connect() as conn:
            conn.execute(text(f'REVOKE CONNECT ON DATABASE "{source.database}" FROM {role}'))
            conn.execute(text(f"DROP ROLE {role}"))


def test_cli_rehearse_exits_0_and_prints_the_report(source):
    result = cli("--format", "csv", "migrate", "rehearse", url=source)
    assert result.returncode == 0, result.stderr
    assert "rehearsal passed" in result.stderr and "c0db8df4a585" in result.stdout


def test_upgrade_with_backup_takes_one_first(db_url, tmp_path):
    at = migrations.current(url=db_url)
    if at is None:
        migrations.upgrade(BEFORE_HEAD, url=db_url)
    elif at != BEFORE_HEAD:
        migrations.downgrade(BEFORE_HEAD, url=db_url)
    dispose_engines()
    result = cli("migrate", "upgrade", "c0db8df4a585", "--backup", "--folder", str(tmp_path), url=db_url)
    assert result.returncode == 0, result.stderr
    assert "backup: " in result.stderr and backup.backups(tmp_path)["revision"].tolist() == [BEFORE_HEAD]
    assert migrations.current(url=db_url) == "c0db8df4a585"


def test_an_existing_database_is_never_taken_as_the_clone(source, server):
    before = migrations.current(url=source)
    with pytest.raises(InputError, match=f"database {source.database} already exists"):
        rehearse.rehearse(url=source, clone_name=source.database)
    assert databases(server, source.database) == [source.database]
    assert migrations.current(url=source) == before


def test_upgrade_on_a_database_that_is_not_local_offers_a_backup(monkeypatch, capsys):
    from argparse import Namespace

    from copythat_ops.cli import safety

    monkeypatch.setenv("DATABASE_URL", "postgresql://app:pw@db.example.com/neondb?sslmode=require")
    safety.offer_backup(Namespace(backup=False))
    assert "add --backup to pg_dump the database first" in capsys.readouterr().err
    safety.offer_backup(Namespace(backup=True))
    assert capsys.readouterr().err == ""


def test_a_tls_connection_gets_a_client_that_speaks_tls():
    from copythat_ops.recovery.pgtools import _tools, pg_tool, speaks_tls, wants_tls

    assert [t for t in _tools("pg_dump") if not speaks_tls(t.path)], "the embedded wheel's pg_dump has no TLS"
    assert wants_tls(normalize_url("postgresql+asyncpg://u:pw@ep-x.neon.tech/neondb?ssl=require"))
    assert not wants_tls(normalize_url("postgresql://u@localhost/db"))
    try:
        tool = pg_tool("pg_dump", 18, tls=True)
    except ConfigError as exc:  # no PostgreSQL 18 client with TLS on this machine: named, with the package to install
        assert "that speaks TLS" in str(exc) and "postgresql-client-18" in str(exc)
    else:
        assert speaks_tls(tool.path)
