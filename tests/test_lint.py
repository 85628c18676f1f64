"""Migration lint (squawk) and new revisions: every shipped revision passes, a hazardous one is caught."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.pool import NullPool

from copythat_ops import migrations
from copythat_ops.migrations import revisions, squawk as lint
from copythat_ops.engine import dispose_engines
from copythat_ops.errors import InputError, MigrationError

ROOT = Path(__file__).resolve().parents[1]
CLI = str(Path(sys.executable).parent / "copythat-ops")
HEAD = migrations.heads()[0]

HAZARDOUS = '''"""Hazardous: a blocking index and a NOT NULL column without a default."""
from alembic import op
import sqlalchemy as sa

revision = "badbadbad001"
down_revision = "{head}"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index("ix_extraction_jobs_source_url", "extraction_jobs", ["source_url"])
    op.add_column("extraction_jobs", sa.Column("priority", sa.Integer(), nullable=False))


def downgrade() -> None:
    op.drop_column("extraction_jobs", "priority")
    op.drop_index("ix_extraction_jobs_source_url", table_name="extraction_jobs")
'''


def scripts_copy(folder: Path) -> Path:
    """A copy of the project's alembic.ini, scripts and squawk settings, to add revisions to."""
    shutil.copy(ROOT / "alembic.ini", folder / "alembic.ini")
    shutil.copy(ROOT / ".squawk.toml", folder / ".squawk.toml")
    shutil.copytree(ROOT / "alembic", folder / "alembic", ignore=shutil.ignore_patterns("__pycache__"))
    return folder / "alembic" / "versions"


@pytest.fixture
def scripts(tmp_path, monkeypatch) -> Path:
    versions = scripts_copy(tmp_path)
    monkeypatch.setenv(migrations.INI_VAR, str(tmp_path / "alembic.ini"))
    return versions


def cli(*args: str, env: dict | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([CLI, *args], env={**os.environ, **(env or {})}, capture_output=True, text=True, timeout=300)


def test_every_shipped_revision_passes_squawk():
    found = lint.lint()
    assert found.empty, found[["revision", "direction", "rule", "line", "statement"]].to_string()


def test_lint_reads_each_revision_in_both_directions_with_its_context():
    up = lint.revision_sql("3ca76145171f")
    assert up.startswith("SET lock_timeout = '5s';")  # env.py's setting, which squawk's require-lock-timeout sees
    assert "COMMIT;" in up.split("CREATE INDEX CONCURRENTLY")[0]  # the autocommit block runs outside the transaction
    assert "DROP INDEX CONCURRENTLY" in lint.revision_sql("3ca76145171f", "downgrade")


def test_a_hazardous_revision_is_caught(scripts):
    (scripts / "badbadbad001_hazardous.py").write_text(HAZARDOUS.format(head=HEAD))
    found = lint.lint(["badbadbad001"])
    upgrade = set(found.loc[found["direction"] == "upgrade", "rule"])
    assert {"require-concurrent-index-creation", "adding-required-field"} <= upgrade
    row = found[found["rule"] == "require-concurrent-index-creation"].iloc[0]
    assert "CREATE INDEX ix_extraction_jobs_source_url" in row["statement"] and row["line"] > 1
    assert lint.revision_sql("badbadbad001").splitlines()[row["line"] - 1].strip() == row["statement"]


def test_cli_lint_exits_1_on_a_finding_and_0_when_clean(scripts):
    env = {migrations.INI_VAR: os.environ[migrations.INI_VAR]}
    clean = cli("migrate", "lint", "c1a36d61036a", env=env)
    assert clean.returncode == 0 and "no findings" in clean.stderr
    (scripts / "badbadbad001_hazardous.py").write_text(HAZARDOUS.format(head=HEAD))
    caught = cli("--format", "csv", "migrate", "lint", "badbadbad001", env=env)
    assert caught.returncode == 1 and "require-concurrent-index-creation" in caught.stdout


def test_an_ignore_without_a_reason_is_refused(scripts):
    text_ = HAZARDOUS.format(head=HEAD) + '\nSQUAWK_IGNORE = {"require-concurrent-index-creation": ""}\n'
    (scripts / "badbadbad001_hazardous.py").write_text(text_)
    with pytest.raises(MigrationError, match="SQUAWK_IGNORE must map each squawk rule to the reason"):
        lint.lint(["badbadbad001"])


def test_an_ignore_with_a_reason_turns_the_rule_off_for_that_revision_only(scripts):
    text_ = HAZARDOUS.format(head=HEAD) + '\nSQUAWK_IGNORE = {"require-concurrent-index-creation": "an empty table in this test"}\n'
    (scripts / "badbadbad001_hazardous.py").write_text(text_)
    rules = set(lint.lint(["badbadbad001"])["rule"])
    assert "require-concurrent-index-creation" not in rules and "adding-required-field" in rules


def test_a_revision_file_with_a_syntax_error_is_named(scripts):
    (scripts / "badbadbad002_broken.py").write_text(f'revision = "badbadbad002"\ndown_revision = "{HEAD}"\ndef upgrade(:\n    pass\n')
    with pytest.raises(MigrationError, match=r"badbadbad002_broken\.py has a syntax error at line 3"):
        lint.lint()
    result = cli("migrate", "lint", env={migrations.INI_VAR: os.environ[migrations.INI_VAR]})
    assert result.returncode == 2 and "badbadbad002_broken.py has a syntax error" in result.stderr and "Traceback" not in result.stderr


def test_an_unknown_revision_is_refused():
    with pytest.raises(InputError, match="no migration revision 'nope'"):
        lint.lint(["nope"])


def test_new_revision_is_written_and_linted_at_once(scripts):
    new = revisions.revision("add nothing yet")
    assert new.path.parent == scripts and new.path.is_file() and new.ok
    assert migrations.heads() == [new.revision]
    assert "SQUAWK_IGNORE" in new.path.read_text()


def test_new_revision_refuses_two_heads(scripts):
    (scripts / "badbadbad003_side.py").write_text(
        f'revision = "badbadbad003"\ndown_revision = "{migrations.history()["revision"].iloc[-2]}"\n'
        "branch_labels = None\ndepends_on = None\ndef upgrade():\n    pass\ndef downgrade():\n    pass\n"
    )
    before = sorted(p.name for p in scripts.iterdir())
    with pytest.raises(MigrationError, match="2 heads"):
        revisions.revision("one more")
    assert sorted(p.name for p in scripts.iterdir()) == before


def test_new_revision_needs_a_message(scripts):
    with pytest.raises(InputError, match="needs a message"):
        revisions.revision("  ")


def test_autogenerated_index_is_concurrent_in_an_autocommit_block_and_passes(scripts, db_url):
    migrations.upgrade(url=db_url)
    engine = create_engine(db_url, poolclass=NullPool)
    with engine.begin() as conn:
        conn.execute(text("DROP INDEX ix_extraction_jobs_project_id"))
    engine.dispose()
    new = revisions.revision("restore the project index", autogenerate=True, url=db_url)
    source = new.path.read_text()
    assert "autocommit_block()" in source and "postgresql_concurrently=True" in source and "if_not_exists=True" in source
    assert new.ok, new.findings.to_string()
    assert migrations.upgrade(url=db_url) == new.revision and migrations.check(url=db_url) == []
    dispose_engines()


def test_cli_new_prints_the_file_and_exits_0(scripts):
    result = cli("migrate", "new", "cli revision", env={migrations.INI_VAR: os.environ[migrations.INI_VAR]})
    assert result.returncode == 0, result.stderr
    assert "lint: nothing to change" in result.stderr and Path(result.stdout.strip()).is_file()


def fresh_at_head(server, statement: str):
    url = server.create_database("lint_new")
    migrations.upgrade(url=url)
    engine = create_engine(url, poolclass=NullPool)
    with engine.begin() as conn:
        conn.execute(text(statement))
    engine.dispose()
    dispose_engines()
    return url


def test_autogenerated_foreign_key_is_added_not_valid_then_validated(scripts, server):
    url = fresh_at_head(server, "ALTER TABLE extraction_jobs DROP CONSTRAINT extraction_jobs_project_id_fkey")
    try:
        new = revisions.revision("restore the foreign key", autogenerate=True, url=url)
        source = new.path.read_text()
        assert "postgresql_not_valid=True" in source and 'VALIDATE CONSTRAINT "extraction_jobs_project_id_fkey"' in source
        assert new.ok, new.findings.to_string()
        assert migrations.upgrade(url=url) == new.revision and migrations.check(url=url) == []
        engine = create_engine(url, poolclass=NullPool)
        with engine.connect() as conn:
            assert conn.scalar(text("SELECT convalidated FROM pg_constraint WHERE conname = 'extraction_jobs_project_id_fkey'")) is True
        engine.dispose()
    finally:
        server.drop_database(url)


def test_cli_new_says_what_to_change_when_lint_finds_something(scripts, server):
    url = fresh_at_head(server, "ALTER TABLE extraction_jobs DROP COLUMN source_url")
    try:
        env = {migrations.INI_VAR: os.environ[migrations.INI_VAR], "DATABASE_URL": url.render_as_string(hide_password=False)}
        result = cli("--format", "csv", "migrate", "new", "add source_url back", "--autogenerate", env=env)
        assert result.returncode == 1, result.stderr
        assert "thing(s) to change before it runs on a live database" in result.stderr
        assert "adding-required-field" in result.stdout  # NOT NULL without a default: squawk says how to add it
        assert len(list(scripts.glob("*_add_source_url_back.py"))) == 1  # written all the same, for its author to change
    finally:
        server.drop_database(url)


def test_autogenerate_refuses_a_database_behind_head_and_writes_nothing(scripts, server):
    url = server.create_database("lint_behind")
    try:
        migrations.upgrade(migrations.history(url=url)["revision"].iloc[-2], url=url)
        before = sorted(p.name for p in scripts.iterdir())
        env = {migrations.INI_VAR: os.environ[migrations.INI_VAR], "DATABASE_URL": url.render_as_string(hide_password=False)}
        result = cli("migrate", "new", "catch up", "--autogenerate", env=env)
        assert result.returncode == 2 and "behind head" in result.stderr and "`copythat-ops migrate upgrade`" in result.stderr, result.stderr
        assert result.stderr.count("Fix:") == 1 and sorted(p.name for p in scripts.iterdir()) == before
    finally:
        dispose_engines()
        server.drop_database(url)


def test_autogenerate_with_no_model_changes_says_so_and_writes_nothing_unless_allowed(scripts, server):
    url = server.create_database("lint_same")
    try:
        migrations.upgrade(url=url)
        before = sorted(p.name for p in scripts.iterdir())
        env = {migrations.INI_VAR: os.environ[migrations.INI_VAR], "DATABASE_URL": url.render_as_string(hide_password=False)}
        result = cli("migrate", "new", "nothing changed", "--autogenerate", env=env)
        assert result.returncode == 2 and "the models and the database agree" in result.stderr, result.stderr
        assert "write it anyway with --empty" in result.stderr and sorted(p.name for p in scripts.iterdir()) == before
        allowed = cli("migrate", "new", "nothing changed", "--autogenerate", "--empty", env=env)
        assert allowed.returncode == 0, allowed.stderr
        assert len(list(scripts.iterdir())) == len(before) + 1
    finally:
        dispose_engines()
        server.drop_database(url)
