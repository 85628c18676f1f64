"""Where every documented example runs (the docstrings' and the docs pages'): a copy of one migrated, seeded database.

The copy is the example's own, with DATABASE_URL pointing at it, the working folder a temporary one
holding a copy of alembic.ini, .squawk.toml and alembic/ (a new revision is written there), backups
in that folder, and the Neon client talking to tests/neon_fake.py, whose branches are databases on
the test server. Everything it made is dropped afterwards.
"""

from __future__ import annotations

import doctest
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path

from neon_fake import FakeNeon
from sqlalchemy import URL, text

from copythat_ops import embedded, migrations
from copythat_ops.config import URL_VAR
from copythat_ops.engine import dispose_engines, get_engine
from copythat_ops.recovery import neon
from copythat_ops.recovery.dumps import BACKUP_DIR_VAR
from copythat_ops.seed import seed_database

CHECKOUT = Path(__file__).resolve().parent.parent
FLAGS = doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE
SEEDED_AT = datetime(2026, 11, 2, 14, 0, tzinfo=UTC)  # the same data every run: the seed follows the time of day


def seeded_template(url: URL) -> URL:
    """Make `url` the database every example starts from: migrated to head, 500 seeded jobs in 10 projects."""
    migrations.upgrade(url=url)
    seed_database(500, 10, seed=1, now=SEEDED_AT, engine=get_engine(url))
    dispose_engines()
    return url


@contextmanager
def example_database(server, template: URL, embedded_dir: Path, monkeypatch, folder: Path) -> Iterator[URL]:
    """A copy of `template` for one example (or one page of them), with the environment described above."""
    url = server.create_database("doc")
    with server.engine.connect() as conn:
        conn.execute(text(f'DROP DATABASE "{url.database}"'))
        conn.execute(text(f'CREATE DATABASE "{url.database}" TEMPLATE "{template.database}"'))
    monkeypatch.setenv(URL_VAR, url.render_as_string(hide_password=False))
    monkeypatch.setenv(embedded.DIR_VAR, str(embedded_dir))
    monkeypatch.setenv(BACKUP_DIR_VAR, str(folder / "backups"))
    monkeypatch.delenv("COPYTHAT_HISTORY_URL", raising=False)
    monkeypatch.chdir(folder)
    shutil.copytree(CHECKOUT / "alembic", folder / "alembic", ignore=shutil.ignore_patterns("__pycache__"))
    for name in ("alembic.ini", ".squawk.toml"):
        shutil.copy(CHECKOUT / name, folder / name)
    monkeypatch.setenv(migrations.INI_VAR, str(folder / "alembic.ini"))
    dispose_engines()
    with FakeNeon(server, url, project_id="icy-lake-85661769") as api:
        monkeypatch.setenv(neon.API_KEY_VAR, api.api_key)
        monkeypatch.setenv(neon.PROJECT_VAR, api.project_id)
        monkeypatch.setenv(neon.API_URL_VAR, api.url)
        try:
            yield url
        finally:
            for database in [*api.branch_databases(), url.database]:
                server.drop_database(url.set(database=database))
