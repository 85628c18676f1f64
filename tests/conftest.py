"""A real PostgreSQL for every test: the embedded one, or $COPYTHAT_TEST_DATABASE_URL.

The session starts one server (or uses the given one), gives each test module
a fresh database, and points DATABASE_URL at a database of its own for the
notebooks that nbval runs.
"""

from __future__ import annotations

import os
import secrets
import shutil
import tempfile
import uuid
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.engine import URL
from sqlalchemy.pool import NullPool

from copythat_ops import embedded
from copythat_ops.config import ENV_FILE_VAR, REPLICA_URL_VAR, URL_VAR, normalize_url
from copythat_ops.engine import dispose_engines

TEST_URL_VAR = "COPYTHAT_TEST_DATABASE_URL"
PASSWORD_ROLE = "copythat_pw"


class Server:
    """The test server: its admin URL, a login that needs a password, and databases made on demand."""

    def __init__(self) -> None:
        self.data_dir: Path | None = None
        given = os.environ.get(TEST_URL_VAR)
        if given:
            self.admin = normalize_url(given)
        else:
            self.data_dir = Path(tempfile.mkdtemp(prefix="copythat-test-")) / "pgdata"
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
            conn.execute(text("SELECT pg_reload_conf()"))
        return self.admin.set(username=PASSWORD_ROLE, password=password)

    def create_database(self, label: str) -> URL:
        name = f"ct_{label}_{uuid.uuid4().hex[:8]}".lower()[:60]
        with self.engine.connect() as conn:
            conn.execute(text(f'CREATE DATABASE "{name}" TEMPLATE template0'))
        return self.admin.set(database=name)

    def drop_database(self, url: URL) -> None:
        dispose_engines()
        with self.engine.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{url.database}" WITH (FORCE)'))

    def close(self) -> None:
        self.engine.dispose()
        if self.data_dir is not None:
            embedded.stop(self.data_dir)
            shutil.rmtree(self.data_dir.parent, ignore_errors=True)


_server: Server | None = None
_notebook_db: URL | None = None


def pytest_sessionstart(session) -> None:
    """Start the server and give the notebooks (run in kernels that inherit this environment) a database."""
    global _server, _notebook_db
    for var in (URL_VAR, REPLICA_URL_VAR, ENV_FILE_VAR):
        os.environ.pop(var, None)
    _server = Server()
    _notebook_db = _server.create_database("notebooks")
    os.environ[URL_VAR] = _notebook_db.render_as_string(hide_password=False)


def pytest_sessionfinish(session, exitstatus) -> None:
    if _server is not None:
        if _notebook_db is not None:
            _server.drop_database(_notebook_db)
        _server.close()


@pytest.fixture(scope="session")
def server() -> Server:
    return _server


@pytest.fixture(scope="module")
def db_url(server: Server, request) -> URL:
    """A fresh, empty database for this test module."""
    url = server.create_database(request.module.__name__.rsplit(".", 1)[-1])
    yield url
    server.drop_database(url)
