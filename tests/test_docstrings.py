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
import importlib
import pkgutil
import shutil
import tempfile
from pathlib import Path

import pytest
from examples import FLAGS, example_database, seeded_template
from sqlalchemy import URL

import copythat_ops
from copythat_ops import embedded


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
    """The database every example starts from (tests/examples.py)."""
    return seeded_template(db_url)


@pytest.fixture(scope="module")
def embedded_dir():
    """A folder for the embedded server the `embedded` examples start and stop."""
    folder = Path(tempfile.mkdtemp(prefix="copythat-doc-")) / "pgdata"
    yield folder
    embedded.stop(folder)
    shutil.rmtree(folder.parent, ignore_errors=True)


@pytest.mark.parametrize("test", DOCSTRINGS, ids=[t.name.removeprefix("copythat_ops.") for t in DOCSTRINGS])
def test_docstring_example_holds(test: doctest.DocTest, server, template, embedded_dir, monkeypatch, tmp_path):
    runner = doctest.DocTestRunner(optionflags=FLAGS)
    report: list[str] = []
    with example_database(server, template, embedded_dir, monkeypatch, tmp_path):
        runner.run(test, out=report.append)
    assert runner.failures == 0, "".join(report)
