"""Every pytest run in the checkout works on a PostgreSQL of its own, never on the user's databases.

pytest loads this file whatever it runs (`pytest tests`, `pytest notebooks`, one file, no
arguments), so both phases of `make test` get the same setup. Each pytest process:

- forgets the user's settings (DATABASE_URL, DATABASE_REPLICA_URL, COPYTHAT_ENV_FILE, the
  embedded-server, backup and history locations, the Neon project) and points the embedded-server
  and backup folders into a temporary folder of the session, never the checkout's `.copythat/`;
- starts a throwaway embedded server (or uses the server $COPYTHAT_TEST_DATABASE_URL names, where it
  only creates and drops databases of its own) and points DATABASE_URL at a fresh database;
- runs every test with the session's folder as working directory, so no `.env` of the checkout
  is found, and starts every notebook kernel (nbval) with COPYTHAT_ENV_FILE naming the session's env
  file, as a kernel works in notebooks/, under the checkout's `.env`.

At the end the databases are dropped, the server is stopped and the folder removed. Under
pytest-xdist the controller only isolates the environment (its workers inherit it); each worker
has a server of its own.
"""

from __future__ import annotations

import os
import secrets
import shutil
import tempfile
import time
import uuid
from contextlib import contextmanager
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.engine import URL
from sqlalchemy.exc import ProgrammingError
from sqlalchemy.pool import NullPool

from copythat_ops import embedded
from copythat_ops.config import ENV_FILE_VAR, REPLICA_URL_VAR, URL_VAR, normalize_url
from copythat_ops.engine import dispose_engines

TEST_URL_VAR = "COPYTHAT_TEST_DATABASE_URL"
PASSWORD_ROLE = "copythat_pw"
BACKUP_DIR_VAR = "COPYTHAT_BACKUP_DIR"
# What a user's environment may hold that would lead the session to their databases or files.
USER_SETTINGS = (
    URL_VAR,
    REPLICA_URL_VAR,
    ENV_FILE_VAR,
    embedded.DIR_VAR,
    BACKUP_DIR_VAR,
    "COPYTHAT_HISTORY_URL",
    "COPYTHAT_ALEMBIC_INI",
    "NEON_API_KEY",
    "NEON_PROJECT_ID",
    "NEON_API_URL",
    "COPYTHAT_SERVE_TOKEN",
    "COPYTHAT_REPLICA_MAX_LAG",
    "COPYTHAT_TARGETS_FILE",
)


class Server:
    """The test server: its admin URL, a login that needs a password, and databases made on demand."""

    def __init__(self, folder: Path) -> None:
        self.data_dir: Path | None = None
        given = os.environ.get(TEST_URL_VAR)
        if given:
            self.admin = normalize_url(given)
        else:
            self.data_dir = folder / "server" / "pgdata"
            self.admin = embedded.start(self.data_dir).set(database="postgres")
        self.engine = create_engine(self.admin, poolclass=NullPool, isolation_level="AUTOCOMMIT")
        self.password_url = self.admin if given else self._password_role()

    def _password_role(self) -> URL:
        """Make the embedded server ask this role for a password, as a hosted server would."""
        password = secrets.token_hex(12)
        hba = self.data_dir / "pg_hba.conf"
        hba.write_text(f"local all {PASSWORD_ROLE} scram-sha-256\n" + hba.read_text())
        with self.engine.connect() as conn:
            conn.execute(text(f"CREATE ROLE {PASSWORD_ROLE} LOGIN PASSWORD '{password}'"))
            # The application's role, made by an operator before a login that may not create roles migrates (revision b11509538edf).
            conn.execute(text("CREATE ROLE copythat_app NOLOGIN NOBYPASSRLS"))
            conn.execute(text("SELECT pg_reload_conf()"))
        return self.admin.set(username=PASSWORD_ROLE, password=password)

    def create_database(self, label: str) -> URL:
        name = f"ct_{label}_{uuid.uuid4().hex[:8]}".lower()[:60]
        with self.engine.connect() as conn:
            conn.execute(text(f'CREATE DATABASE "{name}" TEMPLATE template0'))
        return self.admin.set(database=name)

    def drop_database(self, url: URL) -> None:
        dispose_engines()
        for attempt in range(20):
            try:
                with self.engine.connect() as conn:
                    conn.execute(text(f'DROP DATABASE IF EXISTS "{url.database}" WITH (FORCE)'))
                return
            except ProgrammingError as exc:
                # a login without pg_signal_backend may not end a server process (an autovacuum worker) passing through: it ends soon
                if getattr(exc.orig, "pgcode", None) != "42501" or attempt == 19:
                    raise
                time.sleep(0.5)

    def close(self) -> None:
        self.engine.dispose()
        if self.data_dir is not None:
            embedded.stop(self.data_dir)


class Session:
    """One pytest process's isolation: its folder, environment, server and the notebooks' database."""

    def __init__(self, *, with_server: bool) -> None:
        self.folder = Path(tempfile.mkdtemp(prefix="copythat-test-"))
        self.workdir = self.folder / "work"  # no .env here nor above: the working directory of every test
        self.workdir.mkdir()
        self.env_file = self.folder / "notebooks.env"  # what the notebook kernels read instead of the checkout's .env
        self.embedded_dir = self.folder / "embedded" / "pgdata"  # where a kernel or command would start the embedded server
        self.saved = {name: os.environ.pop(name) for name in USER_SETTINGS if name in os.environ}
        os.environ[embedded.DIR_VAR] = str(self.embedded_dir)
        os.environ[BACKUP_DIR_VAR] = str(self.folder / "backups")
        self.server: Server | None = None
        self.notebook_db: URL | None = None
        if with_server:
            try:
                self.server = Server(self.folder)
                self.notebook_db = self.server.create_database("notebooks")
            except BaseException:
                self.close()
                raise
            os.environ[URL_VAR] = self.notebook_db.render_as_string(hide_password=False)
            self.env_file.touch(mode=0o600)
            self.env_file.write_text(f"{URL_VAR}={os.environ[URL_VAR]}\n")

    @contextmanager
    def running(self, item: pytest.Item):
        """Run `item` in the session's folder; a notebook's kernel reads the session's env file."""
        before = os.getcwd()
        notebook = item.path.suffix == ".ipynb" and self.notebook_db is not None
        os.chdir(self.workdir)
        if notebook:
            os.environ[ENV_FILE_VAR] = str(self.env_file)
        try:
            yield
        finally:
            if notebook:
                os.environ.pop(ENV_FILE_VAR, None)
            os.chdir(before)

    def close(self) -> None:
        try:
            if self.server is not None:
                try:
                    if self.notebook_db is not None:
                        self.server.drop_database(self.notebook_db)
                finally:
                    self.server.close()
            for data_dir in (self.folder / "server" / "pgdata", self.embedded_dir):  # a server left running (a failed start, a kernel's)
                if (data_dir / "postmaster.pid").exists():
                    embedded.stop(data_dir)
        finally:
            shutil.rmtree(self.folder, ignore_errors=True)
            for name in (URL_VAR, ENV_FILE_VAR, embedded.DIR_VAR, BACKUP_DIR_VAR):
                os.environ.pop(name, None)
            os.environ.update(self.saved)


_session: Session | None = None


def pytest_sessionstart(session: pytest.Session) -> None:
    global _session
    xdist_controller = session.config.pluginmanager.has_plugin("dsession")  # its workers run the tests
    _session = Session(with_server=not xdist_controller)


def pytest_sessionfinish(session: pytest.Session, exitstatus) -> None:
    global _session
    if _session is not None:
        _session.close()
        _session = None


@pytest.hookimpl(wrapper=True)
def pytest_runtest_protocol(item: pytest.Item, nextitem):
    if _session is None:
        return (yield)
    with _session.running(item):
        return (yield)


@pytest.fixture(scope="session")
def server() -> Server:
    """The session's PostgreSQL server (see the module's docstring)."""
    return _session.server
