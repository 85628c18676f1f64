"""The tenant schema's first revisions on a live database: projects.organization_id is added while a writer keeps
inserting and updating projects, never blocked for more than a moment; a migration cancelled half-way through its
backfill is finished by running it again; the revisions round-trip; the constraints refuse what cannot be right,
each by its name.

The writer and the figures here are a correctness bound on 200,000 projects, not a speed benchmark:
benchmarks/tenancy.py measures the same at 1,000,000.
"""

from __future__ import annotations

import random
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.exc import DBAPIError, IntegrityError
from sqlalchemy.pool import NullPool

from copythat_ops import migrations

BEFORE = "a41f008744a3"  # the last revision without tenants
ORGANIZATIONS = "b7bee60badb4"
REVISION = "ef6a8e0d2805"  # projects.organization_id
TOKENS = "4c8c7e4bda45"
PROJECTS = 200_000
WORST_STALL_SECONDS = 1.0  # a writer blocked longer than this was locked out, not slowed down
LEGACY = "before-organizations"
BATCH = 10_000  # the revision's backfill batch


class Writer(threading.Thread):
    """An application: every ~10 ms it inserts a project (with an organization once the column exists) and updates another.

    `stalls` holds each round's seconds; `errors` what the database refused.
    """

    def __init__(self, url) -> None:
        super().__init__(daemon=True)
        self.engine = create_engine(url, poolclass=NullPool, isolation_level="AUTOCOMMIT")
        self.stop = threading.Event()
        self.stalls: list[float] = []
        self.errors: list[str] = []
        self.inserted: list[tuple[int, bool]] = []  # (id, given an organization)

    def run(self) -> None:
        rng = random.Random(7)
        with self.engine.connect() as conn:
            conn.execute(text("SET statement_timeout = '60s'"))
            while not self.stop.is_set():
                started = time.perf_counter()
                try:
                    has_column = conn.scalar(
                        text("SELECT EXISTS (SELECT FROM pg_attribute WHERE attrelid = 'projects'::regclass AND attname = 'organization_id' AND NOT attisdropped)")
                    )
                    if has_column:
                        new = conn.scalar(text("INSERT INTO projects (name, organization_id) SELECT 'Written live', id FROM organizations WHERE slug = 'acme-studio' RETURNING id"))
                    else:
                        new = conn.scalar(text("INSERT INTO projects (name) VALUES ('Written live') RETURNING id"))
                    self.inserted.append((new, has_column))
                    conn.execute(text("UPDATE projects SET description = 'edited live', updated_at = now() WHERE id = :id"), {"id": rng.randint(1, PROJECTS)})
                except DBAPIError as exc:
                    self.errors.append(str(exc.orig).splitlines()[0])
                self.stalls.append(time.perf_counter() - started)
                time.sleep(0.01)
        self.engine.dispose()

    def __enter__(self) -> Writer:
        self.start()
        time.sleep(0.3)
        return self

    def __exit__(self, *exc) -> None:
        time.sleep(0.3)
        self.stop.set()
        self.join(timeout=120)


@pytest.fixture(scope="module")
def engine(db_url):
    """The module's database at the revision before organizations, holding PROJECTS projects with jobs."""
    migrations.upgrade(BEFORE, url=db_url)
    engine = create_engine(db_url, poolclass=NullPool, isolation_level="AUTOCOMMIT")
    with engine.connect() as conn:
        conn.execute(text(f"INSERT INTO projects (name, description) SELECT 'Project ' || i, 'from before' FROM generate_series(1, {PROJECTS}) AS i"))
        conn.execute(
            text(
                "INSERT INTO extraction_jobs (project_id, source_url, extraction_type, status) "
                f"SELECT 1 + i % {PROJECTS}, 'https://cdn.example.com/' || i || '.png', 'color', 'pending' FROM generate_series(1, 1000) AS i"
            )
        )
        conn.execute(text("VACUUM ANALYZE projects"))
    migrations.upgrade(ORGANIZATIONS, url=db_url)
    with engine.connect() as conn:
        conn.execute(text("INSERT INTO organizations (name, slug) VALUES ('Acme Studio', 'acme-studio')"))
    yield engine
    engine.dispose()


def scalar(engine, sql: str, **params):
    with engine.connect() as conn:
        return conn.scalar(text(sql), params)


def column_state(engine) -> dict:
    """What the catalog says of projects.organization_id: NOT NULL, its foreign key (valid?), leftover checks, its index (valid?)."""
    with engine.connect() as conn:
        return dict(
            conn.execute(
                text(
                    """
                    SELECT (SELECT attnotnull FROM pg_attribute WHERE attrelid = 'projects'::regclass AND attname = 'organization_id') AS not_null,
                           (SELECT convalidated FROM pg_constraint WHERE conname = 'projects_organization_id_fkey') AS foreign_key_valid,
                           (SELECT count(*) FROM pg_constraint WHERE conrelid = 'projects'::regclass AND contype = 'c') AS checks,
                           (SELECT indisvalid FROM pg_index WHERE indexrelid = to_regclass('ix_projects_organization_id')) AS index_valid
                    """
                )
            )
            .one()
            ._mapping
        )


DONE = {"not_null": True, "foreign_key_valid": True, "checks": 0, "index_valid": True}


def test_the_column_is_added_while_a_writer_inserts_and_updates_never_blocked_for_long(engine, db_url):
    with Writer(db_url) as writer:
        started = time.perf_counter()
        assert migrations.upgrade(REVISION, url=db_url) == REVISION
        seconds = time.perf_counter() - started
    worst = max(writer.stalls)
    print(f"\n{PROJECTS:,} projects: revision {REVISION} took {seconds:.2f} s; the writer did {len(writer.stalls)} rounds, worst {worst * 1000:.0f} ms, median {sorted(writer.stalls)[len(writer.stalls) // 2] * 1000:.1f} ms")
    assert writer.errors == []
    assert len(writer.stalls) > 20 and any(given for _, given in writer.inserted) and any(not given for _, given in writer.inserted)  # wrote before, during and after
    assert worst < WORST_STALL_SECONDS, f"the writer waited {worst:.2f} s"
    assert column_state(engine) == DONE
    by_organization = dict(
        tuple(row)
        for row in engine.connect().execute(text("SELECT o.slug, count(*) FROM projects p JOIN organizations o ON o.id = p.organization_id GROUP BY 1 ORDER BY 1"))
    )
    old_and_early = PROJECTS + sum(not given for _, given in writer.inserted)
    assert by_organization == {LEGACY: old_and_early, "acme-studio": sum(given for _, given in writer.inserted)}
    assert scalar(engine, "SELECT name FROM organizations WHERE slug = :slug", slug=LEGACY) == "Projects from before organizations"
    with pytest.raises(IntegrityError, match='null value in column "organization_id"'):
        scalar(engine, "INSERT INTO projects (name) VALUES ('no organization')")
    with pytest.raises(IntegrityError, match="projects_organization_id_fkey"):
        scalar(engine, "INSERT INTO projects (name, organization_id) VALUES ('unknown organization', 999999)")


def test_a_migration_cancelled_half_way_through_the_backfill_is_finished_by_running_it_again(engine, db_url):
    migrations.downgrade(ORGANIZATIONS, url=db_url)
    assert scalar(engine, "SELECT count(*) FROM organizations WHERE slug = :slug", slug=LEGACY) == 0
    held = PROJECTS - BATCH // 2  # in the last batch
    holder = engine.connect()  # an application transaction that holds one project: the backfill waits for it
    try:
        with ThreadPoolExecutor(1) as pool:
            running = pool.submit(migrations.upgrade, REVISION, url=db_url)
            # Not before the index is built: CREATE INDEX CONCURRENTLY waits for every older transaction (up to lock_timeout).
            while not running.done() and not holder.exec_driver_sql("SELECT coalesce((SELECT indisvalid FROM pg_index WHERE indexrelid = to_regclass('ix_projects_organization_id')), false)").scalar():
                time.sleep(0.002)
            holder.exec_driver_sql("BEGIN")
            holder.exec_driver_sql(f"SELECT id FROM projects WHERE id = {held} FOR UPDATE")
            backend = None
            deadline = time.monotonic() + 60
            while backend is None and time.monotonic() < deadline and not running.done():
                backend = scalar(
                    engine,
                    "SELECT pid FROM pg_stat_activity WHERE datname = current_database() AND query LIKE '%SET organization_id = legacy%' "
                    "AND wait_event_type = 'Lock' AND pid <> pg_backend_pid() ORDER BY pid LIMIT 1",
                )
                time.sleep(0.01)
            assert backend is not None, f"the backfill never waited on the held project: {running.exception() if running.done() else 'still running'}"
            assert scalar(engine, "SELECT pg_cancel_backend(:pid)", pid=backend)
            with pytest.raises(Exception, match="cancel") as failed:
                running.result(timeout=60)
    finally:
        holder.exec_driver_sql("ROLLBACK")
        holder.close()
    print(f"\ncancelled: {str(failed.value).splitlines()[0][:200]}")
    assert migrations.current(url=db_url) == ORGANIZATIONS
    done, left = (scalar(engine, f"SELECT count(*) FROM projects WHERE organization_id IS {test} NULL") for test in ("NOT", ""))
    assert PROJECTS - BATCH <= done < PROJECTS and left >= BATCH // 2  # the batches before the held project were committed, its batch not
    assert column_state(engine)["not_null"] is False
    assert migrations.upgrade(REVISION, url=db_url) == REVISION
    assert column_state(engine) == DONE
    assert scalar(engine, "SELECT count(*) FROM projects WHERE organization_id IS NULL") == 0
    assert scalar(engine, "SELECT count(*) FROM organizations WHERE slug = :slug", slug=LEGACY) == 1


def test_the_revisions_round_trip(engine, db_url):
    assert migrations.upgrade(TOKENS, url=db_url) == TOKENS
    tables = "SELECT count(*) FROM pg_class WHERE relname IN ('organizations', 'users', 'memberships', 'color_tokens', 'spacing_tokens', 'typography_tokens') AND relkind = 'r'"
    assert scalar(engine, tables) == 6
    migrations.downgrade(BEFORE, url=db_url)
    assert scalar(engine, tables) == 0 and scalar(engine, "SELECT count(*) FROM projects") >= PROJECTS
    assert scalar(engine, "SELECT count(*) FROM pg_attribute WHERE attrelid = 'projects'::regclass AND attname = 'organization_id' AND NOT attisdropped") == 0
    assert migrations.upgrade(TOKENS, url=db_url) == TOKENS
    assert scalar(engine, tables) == 6 and column_state(engine) == DONE
    assert scalar(engine, "SELECT count(*) FROM projects WHERE organization_id IS NULL") == 0
    assert migrations.check(url=db_url) == [] or migrations.current(url=db_url) != migrations.heads()[0]


REFUSED = [
    ("INSERT INTO organizations (name, slug) VALUES ('Shouting', 'Acme-Studio')", "organizations_slug_check"),
    ("INSERT INTO organizations (name, slug) VALUES ('Double', 'acme--studio')", "organizations_slug_check"),
    ("INSERT INTO organizations (name, slug) VALUES ('Again', 'acme-studio')", "organizations_slug_key"),
    ("INSERT INTO organizations (name, slug) VALUES ('  ', 'blank')", "organizations_name_check"),
    ("INSERT INTO users (email) VALUES ('MARIA.GARCIA@ACME.COM')", "ix_users_email_lower"),
    ("INSERT INTO users (email) VALUES ('not an email')", "users_email_check"),
    ("INSERT INTO memberships (organization_id, user_id, role) SELECT o.id, u.id, 'superuser' FROM organizations o, users u ORDER BY 1, 2 LIMIT 1", "memberships_role_check"),
    ("INSERT INTO color_tokens (project_id, name, hex) VALUES (1, 'primary', '#12345')", "color_tokens_hex_check"),
    ("INSERT INTO color_tokens (project_id, name, hex) VALUES (1, 'primary', '#ABCDEF')", "color_tokens_hex_check"),
    ("INSERT INTO color_tokens (project_id, name, hex, opacity) VALUES (1, 'primary', '#abcdef', 1.5)", "color_tokens_opacity_check"),
    ("INSERT INTO spacing_tokens (project_id, name, value, unit) VALUES (1, 'space-1', 4, 'em')", "spacing_tokens_unit_check"),
    ("INSERT INTO spacing_tokens (project_id, name, value) VALUES (1, 'space-1', -4)", "spacing_tokens_value_check"),
    ("INSERT INTO typography_tokens (project_id, name, font_family, font_size) VALUES (1, 'body', 'Inter', -16)", "typography_tokens_font_size_check"),
    ("INSERT INTO typography_tokens (project_id, name, font_family, font_size) VALUES (1, 'body', 'Inter', 0)", "typography_tokens_font_size_check"),
    ("INSERT INTO typography_tokens (project_id, name, font_family, font_size, font_size_unit) VALUES (1, 'body', 'Inter', 16, 'pt')", "typography_tokens_font_size_unit_check"),
    ("INSERT INTO typography_tokens (project_id, name, font_family, font_size, font_weight) VALUES (1, 'body', 'Inter', 16, 1001)", "typography_tokens_font_weight_check"),
    ("INSERT INTO typography_tokens (project_id, name, font_family, font_size) VALUES (1, 'body', '', 16)", "typography_tokens_font_family_check"),
    ("INSERT INTO color_tokens (project_id, name, hex) VALUES (999999, 'primary', '#abcdef')", "color_tokens_project_id_fkey"),
    ("INSERT INTO spacing_tokens (project_id, extraction_job_id, name, value) VALUES (1, 1, 'space-1', 4), (1, 1, 'space-1', 8)", "spacing_tokens_extraction_job_id_key"),
]


@pytest.mark.parametrize(("sql", "constraint"), REFUSED, ids=[constraint + f"-{i}" for i, (_, constraint) in enumerate(REFUSED)])
def test_constraints_refuse_what_cannot_be_right_by_name(engine, db_url, sql, constraint):
    assert migrations.upgrade(TOKENS, url=db_url) == TOKENS
    with engine.connect() as conn:
        conn.execute(text("INSERT INTO organizations (name, slug) VALUES ('Acme Studio', 'acme-studio') ON CONFLICT DO NOTHING"))
        conn.execute(text("INSERT INTO users (email, name) VALUES ('Maria.Garcia@acme.com', 'Maria Garcia') ON CONFLICT DO NOTHING"))
        with pytest.raises(IntegrityError) as refused:
            conn.execute(text(sql))
    assert refused.value.orig.diag.constraint_name == constraint


def test_what_fits_is_accepted_and_an_email_matches_whatever_its_case(engine, db_url):
    assert migrations.upgrade(TOKENS, url=db_url) == TOKENS
    with engine.connect() as conn:
        conn.execute(text("INSERT INTO users (email, name) VALUES ('Maria.Garcia@acme.com', 'Maria Garcia') ON CONFLICT DO NOTHING"))
        assert conn.scalar(text("SELECT name FROM users WHERE lower(email) = lower('MARIA.garcia@ACME.com')")) == "Maria Garcia"
        conn.execute(text("INSERT INTO color_tokens (project_id, name, hex, opacity) VALUES (1, 'overlay', '#0a0b0c', 0.5)"))
        conn.execute(text("INSERT INTO spacing_tokens (project_id, name, value, unit) VALUES (1, 'gutter', 1.5, 'rem')"))
        conn.execute(text("INSERT INTO typography_tokens (project_id, name, font_family, font_size, letter_spacing) VALUES (1, 'caption', 'Inter', 12, -0.2)"))
        row = conn.execute(text("SELECT font_size_unit, font_weight, line_height::float8, letter_spacing_unit FROM typography_tokens WHERE name = 'caption'")).one()
        assert tuple(row) == ("px", 400, 1.5, "px")
        plan = "\n".join(r[0] for r in conn.execute(text("EXPLAIN SELECT * FROM users WHERE lower(email) = lower('X@Y.COM')")))
        assert "ix_users_email_lower" in plan
