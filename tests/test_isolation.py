"""`make test` never touches the user's databases.

Here is a user's checkout as `make test` finds it: a `.env` naming their database (and as replica
and history database), DATABASE_URL in their shell, an embedded-server folder of their own. Both
phases of `make test` run in it, with the checkout's conftest.py and pytest settings: the test files
in worker processes, then the notebooks. A test and a notebook there do what the suite and notebooks
01 and 02 do (migrate; load demo data and requeue failed jobs with an audit row) and say where they
ran. The user's database must be as it was (its project row, its revision, no jobs, no audit rows),
and each phase must have run on a database of its own on the test server, dropped afterward.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import uuid
from pathlib import Path

import nbformat
import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.pool import NullPool

from copythat_ops import migrations

CHECKOUT = Path(__file__).resolve().parents[1]
# What pytest reads from the checkout: its settings and the session setup both phases load.
PYTEST_FILES = ["pyproject.toml", "conftest.py", "tests/conftest.py", "notebooks/conftest.py"]
# What this test session set for itself; the user's shell has none of it.
SESSION_VARS = ("DATABASE_URL", "DATABASE_REPLICA_URL", "COPYTHAT_ENV_FILE", "COPYTHAT_EMBEDDED_DIR", "COPYTHAT_BACKUP_DIR",
                "COPYTHAT_HISTORY_URL", "PYTEST_CURRENT_TEST", "PYTEST_ADDOPTS")  # fmt: skip

WHERE = """import json, os
import copythat_ops as ops
from copythat_ops import config, embedded


def where() -> dict:
    url = ops.database_url()
    replica = config.settings().replica_url
    return {
        "database": url.database,
        "host": url.host or url.query.get("host"),
        "port": url.port or url.query.get("port"),
        "replica": replica.database if replica else None,
        "env_file": str(config.env_file()),
        "embedded_dir": str(embedded.data_dir()),
    }


def report(phase: str, found: dict) -> None:
    with open(os.path.join(os.environ["ISOLATION_REPORT"], phase + ".json"), "w") as out:
        json.dump(found, out)
"""
TEST_FILE = WHERE + """

def test_where_the_suite_runs():
    found = where()
    ops.migrations.upgrade()
    report("tests", found)
"""
NOTEBOOK = [
    WHERE + "\nfound = where()",
    """ops.migrations.upgrade()
ops.seed_database(jobs=300, projects=5, seed=42, if_empty=True)
failed = ops.jobs_frame(status="failed")["id"].head(3).tolist()
found["requeued"] = len(ops.requeue_jobs(failed, apply=True).after)""",
    'report("notebooks", found)',
]


def user_checkout(folder: Path, users_url: str) -> Path:
    """A checkout with the project's pytest files, a probe test and notebook, and the user's `.env`."""
    for name in PYTEST_FILES:
        (folder / name).parent.mkdir(parents=True, exist_ok=True)
        if (CHECKOUT / name).exists():
            shutil.copy(CHECKOUT / name, folder / name)
    (folder / "tests" / "test_probe.py").write_text(TEST_FILE)
    notebook = nbformat.v4.new_notebook()
    notebook.cells = [nbformat.v4.new_code_cell(source) for source in NOTEBOOK]
    notebook.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3 (ipykernel)", "language": "python"}
    nbformat.write(notebook, folder / "notebooks" / "01_probe.ipynb")
    (folder / ".env").write_text(f"DATABASE_URL={users_url}\nDATABASE_REPLICA_URL={users_url}\nCOPYTHAT_HISTORY_URL={users_url}\n")
    return folder


def scalar(url, sql: str, **params):
    engine = create_engine(url, poolclass=NullPool)
    try:
        with engine.connect() as conn:
            return conn.execute(text(sql), params).scalar()
    finally:
        engine.dispose()


@pytest.fixture
def users_database(server):
    """The user's database: one revision below head (a `migrate downgrade -1`) and a project added by hand."""
    url = server.create_database("users")
    migrations.upgrade(url=url)
    migrations.downgrade("-1", url=url)
    marker = f"added by hand {uuid.uuid4().hex[:8]}"
    engine = create_engine(url, poolclass=NullPool)
    with engine.begin() as conn:
        conn.execute(text("INSERT INTO organizations (name, slug) VALUES ('Acme Studio', 'acme-studio')"))
        conn.execute(
            text("INSERT INTO projects (name, description, organization_id) SELECT :name, 'the user''s', id FROM organizations WHERE slug = 'acme-studio'"), {"name": marker}
        )
    engine.dispose()
    yield url, marker
    server.drop_database(url)


def test_make_test_runs_on_databases_of_its_own_never_the_users(server, users_database, tmp_path):
    users, marker = users_database
    revision = migrations.current(url=users)
    users_url = users.render_as_string(hide_password=False)
    checkout = user_checkout(tmp_path / "checkout", users_url)
    users_embedded = tmp_path / "users-embedded" / "pgdata"
    reports = tmp_path / "reports"
    reports.mkdir()
    env = {k: v for k, v in os.environ.items() if k not in SESSION_VARS and not k.startswith("PYTEST_XDIST")}
    env.update({
        "DATABASE_URL": users_url,  # the user's shell names their database too
        "COPYTHAT_EMBEDDED_DIR": str(users_embedded),
        "COPYTHAT_TEST_DATABASE_URL": server.admin.render_as_string(hide_password=False),  # the session's databases go on this server
        "ISOLATION_REPORT": str(reports),
    })  # fmt: skip

    runs = [  # the two phases of `make test`
        subprocess.run([sys.executable, "-m", "pytest", *args], cwd=checkout, env=env, capture_output=True, text=True, timeout=240)
        for args in (["-n", "1", "tests"], ["notebooks"])
    ]

    # The user's database is as it was.
    assert migrations.current(url=users) == revision
    assert scalar(users, "SELECT count(*) FROM projects WHERE name = :name", name=marker) == 1
    assert scalar(users, "SELECT count(*) FROM job_action_audit") == 0
    assert scalar(users, "SELECT count(*) FROM extraction_jobs") == 0
    assert not users_embedded.exists(), "the user's embedded-server folder was used"

    # Each phase ran, on a database of its own on the test server, dropped since.
    for run in runs:
        assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
    admin = server.admin
    for phase in ("tests", "notebooks"):
        found = json.loads((reports / f"{phase}.json").read_text())
        assert (found["host"], str(found["port"] or "")) == (admin.host or admin.query.get("host"), str(admin.port or admin.query.get("port") or "")), phase
        assert found["database"] != users.database, phase
        assert scalar(admin, "SELECT count(*) FROM pg_database WHERE datname = :name", name=found["database"]) == 0, f"{phase}: not dropped"
        assert found["replica"] is None, phase
        assert found["env_file"] != str(checkout / ".env"), phase
        assert Path(found["embedded_dir"]) not in (users_embedded, CHECKOUT / ".copythat" / "pgdata"), phase
        assert not Path(found["embedded_dir"]).exists(), f"{phase}: the session's embedded-server folder was left behind"
    assert json.loads((reports / "notebooks.json").read_text())["requeued"] > 0
