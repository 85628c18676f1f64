"""Every docstring example of the package, run against a test database so none goes stale.

Each docstring runs in a database of its own, copied from one migrated to head
and seeded (as of a fixed time, so the examples show the same jobs every run), with DATABASE_URL pointing at it: an example that changes data (a
downgrade, an applied action) cannot touch another example's database, nor any
real one. The embedded server's examples get a server of their own in a
temporary folder, so `embedded.stop()` stops that one, not the test server.
The Neon client's examples talk to tests/neon_fake.py, whose branches are
databases on the test server, and the migration examples use a copy of
alembic.ini, .squawk.toml and alembic/, so a new revision is written into the copy.
"""

from __future__ import annotations

import doctest
from datetime import UTC, datetime
import importlib
import pkgutil
import shutil
import tempfile
from pathlib import Path

import pytest
from neon_fake import FakeNeon
from sqlalchemy import URL, text

import copythat_ops
from copythat_ops import embedded, migrations
from copythat_ops.recovery import neon
from copythat_ops.config import URL_VAR
from copythat_ops.engine import dispose_engines, get_engine
from copythat_ops.seed import seed_database

CHECKOUT = Path(__file__).resolve().parent.parent
FLAGS = doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE
SEEDED_AT = datetime(2026, 11, 2, 14, 0, tzinfo=UTC)  # the same data every run: the seed follows the time of day


def docstrings() -> list[doctest.DocTest]:
    """Every docstring with an example, in every module of the package."""
    finder = doctest.DocTestFinder(exclude_empty=True)
    modules = [copythat_ops] + [
        importlib.import_module(info.name)
        for info in pkgutil.walk_packages(copythat_ops.__path__, prefix="copythat_ops.")
    ]
    found = {t.name: t for module in modules for t in finder.find(module) if t.examples}
    return [found[name] for name in sorted(found)]


DOCSTRINGS = docstrings()


@pytest.fixture(scope="module")
def template(server, db_url) -> URL:
    """The database every example starts from: migrated to head, 500 seeded jobs in 10 projects."""
    migrations.upgrade(url=db_url)
    seed_database(500, 10, seed=1, now=SEEDED_AT, engine=get_engine(db_url))
    dispose_engines()
    return db_url


@pytest.fixture(scope="module")
def embedded_dir():
    """A folder for the embedded server the `embedded` examples start and stop."""
    folder = Path(tempfile.mkdtemp(prefix="copythat-doc-")) / "pgdata"
    yield folder
    embedded.stop(folder)
    shutil.rmtree(folder.parent, ignore_errors=True)


@pytest.mark.parametrize("test", DOCSTRINGS, ids=[t.name.removeprefix("copythat_ops.") for t in DOCSTRINGS])
def test_docstring_example_holds(test: doctest.DocTest, server, template, embedded_dir, monkeypatch, tmp_path):
    url = server.create_database("doc")
    with server.engine.connect() as conn:
        conn.execute(text(f'DROP DATABASE "{url.database}"'))
        conn.execute(text(f'CREATE DATABASE "{url.database}" TEMPLATE "{template.database}"'))
    monkeypatch.setenv(URL_VAR, url.render_as_string(hide_password=False))
    monkeypatch.setenv(embedded.DIR_VAR, str(embedded_dir))
    monkeypatch.chdir(tmp_path)
    shutil.copytree(CHECKOUT / "alembic", tmp_path / "alembic", ignore=shutil.ignore_patterns("__pycache__"))
    for name in ("alembic.ini", ".squawk.toml"):
        shutil.copy(CHECKOUT / name, tmp_path / name)
    monkeypatch.setenv(migrations.INI_VAR, str(tmp_path / "alembic.ini"))
    dispose_engines()
    runner = doctest.DocTestRunner(optionflags=FLAGS)
    report: list[str] = []
    with FakeNeon(server, url, project_id="icy-lake-85661769") as api:
        monkeypatch.setenv(neon.API_KEY_VAR, api.api_key)
        monkeypatch.setenv(neon.PROJECT_VAR, api.project_id)
        monkeypatch.setenv(neon.API_URL_VAR, api.url)
        try:
            runner.run(test, out=report.append)
        finally:
            for database in [*api.branch_databases(), url.database]:
                server.drop_database(url.set(database=database))
    assert runner.failures == 0, "".join(report)
