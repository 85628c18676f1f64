"""Realistic, reproducible development data: organizations, users, projects, extraction jobs and their tokens, bulk-loaded with COPY.

The same `seed` gives the same rows. Organizations (a few per ten projects,
about the square root of the number of projects) have realistic names and
slugs, an owner, maybe an admin and members (users with realistic names,
emails unique whatever their case, a few of them in two organizations); each
project belongs to one, a few organizations holding most projects. Jobs have the four types; each waits
in a queue, then runs for a long-tailed (lognormal) time, so the statuses
follow from when a job was created: mostly completed, about 8.5 % failed,
the newest pending or processing, plus a few stuck in processing for hours
and a few left pending. Failures carry realistic error messages with ids,
numbers and URLs; results are JSON shaped like the color / spacing /
typography token lists the application stores, and every completed job's
result that parses becomes color / spacing / typography token rows (the
truncated ones a crashed worker left yield none, as the backfill does).
Creation times follow a working-day rhythm over `window`. A database at an
older revision is seeded with what it has (no organizations before
b7bee60badb4, no tokens before 4c8c7e4bda45).

Rows are generated with numpy into Arrow blocks and streamed to the server
with binary COPY (the ADBC driver's bulk ingest) while the next block is
generated, in one transaction: a million jobs take seconds. Seeding refuses a database that is not on this machine unless
`allow_remote=True`.

Example:
    >>> from copythat_ops.seed import seed_database
    >>> loaded = seed_database(jobs=1000, projects=10, seed=7)
    >>> loaded["jobs"], loaded["projects"], loaded["organizations"]
    (1000, 10, 4)
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
from sqlalchemy.engine import Engine
from tqdm.auto import tqdm

from .config import is_local, mask_url
from .engine import LOCK_TIMEOUT, explain_lock_waits, get_engine
from .jobs import adbc_connection
from .errors import InputError, MigrationError
from .models import EXTRACTION_TYPES
from .validate import duration, number

FAILURE_SHARE = 0.085  # of finished jobs
QUEUE_WAIT_SECONDS = 20.0  # mean wait before a worker picks a job up (exponential)
TYPE_SHARES = {"color": 0.35, "typography": 0.25, "spacing": 0.2, "all": 0.2}
# Median seconds a job of each type takes; durations are lognormal around it.
MEDIAN_SECONDS = {"color": 12.0, "spacing": 18.0, "typography": 30.0, "all": 60.0}
DURATION_SIGMA = 0.9
STUCK_SHARE = 0.02  # of jobs created 35 min to 12 h ago: their worker died, they stay processing
LONG_PENDING_SHARE = 0.001  # of jobs: created 1-6 hours ago and still waiting
MALFORMED_SHARE = 0.0005  # of results: truncated JSON, as a crashed worker leaves it
RESULT_POOL = 512  # distinct results per type, drawn with replacement
BLOCK_ROWS = 100_000  # jobs generated at a time; part of what `seed` reproduces
JOB_SCHEMA = pa.schema(
    [
        ("project_id", pa.int32()),
        ("source_url", pa.string()),
        ("extraction_type", pa.string()),
        ("status", pa.string()),
        ("result_data", pa.string()),
        ("error_message", pa.string()),
        ("created_at", pa.timestamp("us")),
        ("completed_at", pa.timestamp("us")),
        ("updated_at", pa.timestamp("us", tz="UTC")),  # when the job last changed state (timestamptz)
    ]
)

# Where sources are uploaded: folder, extension, share of jobs.
SOURCES = [("images", "png", 0.4), ("images", "jpg", 0.3), ("images", "webp", 0.1), ("videos", "mp4", 0.15), ("audio", "mp3", 0.05)]
ERRORS = [
    (0.22, "Timeout after {secs}s while downloading {url}"),
    (0.16, "HTTP 404 Not Found fetching source {url}"),
    (0.08, "HTTP 403 Forbidden fetching source {url} (signed URL expired)"),
    (0.12, "Vision API error 429: rate limit exceeded (request id req_{hex})"),
    (0.09, "Worker worker-{n} lost connection to redis://10.0.{n}.{n}:6379/0"),
    (0.08, "Image too large: {big} bytes exceeds the limit of 20971520 bytes"),
    (0.07, "Unsupported media type 'image/heic' for job {job}"),
    (0.06, "Could not decode frame {n} of video {uuid}: invalid NAL unit size"),
    (0.05, "No text found in source {job} for typography extraction"),
    (0.04, "Task {uuid} exceeded its memory limit of 2048 MB"),
    (0.03, "JSONDecodeError: Expecting ',' delimiter: line 1 column {n} (char {n})"),
]
FONTS = ["Inter", "Roboto", "Helvetica Neue", "Playfair Display", "Source Sans 3", "Lato", "Montserrat", "IBM Plex Sans"]
# Organizations: a company and what it calls itself; users: first and last names.
COMPANIES = [
    "Acme", "Northwind", "Globex", "Initech", "Umbrella", "Stark", "Wayne", "Hooli", "Pied Piper", "Vandelay", "Bluebird", "Cobalt",
    "Lumen", "Harbor", "Juniper", "Fjord", "Maple & Oak", "Kestrel", "Brightline", "Tandem", "Oxbow", "Sable", "Meridian", "Paper Crane",
]
KINDS = ["Studio", "Labs", "Design Co.", "Digital", "Collective", "Agency", "Health", "Bank", "Outdoor", "Press", "Foods", "Software"]
FIRST_NAMES = [
    "Maria", "James", "Aisha", "Wei", "Sofia", "Lucas", "Priya", "Mateo", "Hannah", "Kenji", "Olivia", "Noah", "Fatima", "Liam",
    "Chloe", "Diego", "Emma", "Yusuf", "Ingrid", "Tomás", "Zoe", "Arjun", "Nadia", "Elias", "Mei", "Samuel", "Leila", "Oskar",
]
LAST_NAMES = [
    "Garcia", "Smith", "Khan", "Zhang", "Rossi", "Martin", "Patel", "Lopez", "Müller", "Tanaka", "Johnson", "Brown", "Haddad",
    "O'Brien", "Dubois", "Silva", "Novak", "Yilmaz", "Larsen", "Kowalski", "Nguyen", "Cohen", "Andersson", "Okafor", "Kim",
]
TOKEN_TABLES = ("color_tokens", "spacing_tokens", "typography_tokens")
WORDS = (
    ["Acme", "Northwind", "Globex", "Initech", "Umbrella", "Stark", "Wayne", "Hooli", "Pied Piper", "Vandelay"],
    ["brand refresh", "design system", "marketing site", "mobile app", "onboarding flow", "style guide", "pitch deck", "campaign"],
)


def seed_database(
    jobs: int = 10_000,
    projects: int = 50,
    *,
    seed: int = 0,
    window: str | timedelta = "30 days",
    now: datetime | None = None,
    engine: Engine | None = None,
    if_empty: bool = False,
    allow_remote: bool = False,
    lock_timeout: str = LOCK_TIMEOUT,
    organizations: int | None = None,
    tokens: bool = True,
) -> dict:
    """Add `organizations` organizations with their users, `projects` projects, `jobs` extraction jobs created over the last `window` and their tokens; return what was loaded.

    `seed` makes the data reproducible (with the same `now`, default the current
    time). `organizations` defaults to about the square root of `projects`
    (8 for 50); an organization or user already in the database (same slug,
    same email whatever its case) is reused, not duplicated. `tokens=False`
    loads no token rows. `if_empty=True` loads nothing when extraction_jobs
    already has rows (demo data on first use). A database that is not on this
    machine is refused unless `allow_remote=True`. Returns projects, jobs,
    organizations, users, memberships and tokens added, seconds,
    jobs_per_second (or skipped, when nothing was loaded). A lock another
    session holds on the tables is waited on for `lock_timeout` (default 3s),
    then a LockWaitError names it.

    Example:
        >>> seed_database(jobs=100_000, projects=200, seed=42, if_empty=True)   # this database has jobs already
        {'projects': 0, 'jobs': 0, 'organizations': 0, 'users': 0, 'memberships': 0, 'tokens': 0, 'skipped': 'extraction_jobs already has rows'}
    """
    number(jobs, name="jobs", integer=True)
    number(projects, name="projects", minimum=1, integer=True)
    if organizations is None:
        organizations = default_organizations(projects)
    number(organizations, name="organizations", minimum=1, integer=True)
    if organizations > projects:
        raise InputError(f"organizations {organizations} is more than projects {projects}", fix="give at most one organization per project", params=("organizations", "projects"))
    span = duration(window, name="window")
    if span <= timedelta(0):
        raise InputError(f"window {window!r} is empty", fix="give a positive duration such as '30 days'", params="window")
    now = pd.Timestamp(now or datetime.now(UTC))
    now = now.tz_localize("UTC") if now.tzinfo is None else now.tz_convert("UTC")
    engine = engine or get_engine()
    if not allow_remote and not is_local(engine.url):
        raise InputError(
            f"refusing to seed {mask_url(engine.url)}: it is not a database on this machine",
            fix="seed a local or scratch database, or pass allow_remote=True (CLI: --yes) if you really mean it",
        )
    started = time.perf_counter()
    waits = explain_lock_waits("seed", "projects extraction_jobs", engine=engine, lock_timeout=lock_timeout, read_only=False)
    with waits, adbc_connection(engine) as conn, conn.cursor() as cur:
        cur.execute(f"SET LOCAL lock_timeout = {duration(lock_timeout, name='lock_timeout') // timedelta(milliseconds=1)}")
        cur.execute("SELECT to_regclass('public.extraction_jobs') IS NOT NULL AND to_regclass('public.projects') IS NOT NULL")
        if not cur.fetchone()[0]:
            raise MigrationError("the database has no projects / extraction_jobs tables", fix="migrate it first: copythat-ops migrate upgrade")
        if if_empty:
            cur.execute("SELECT EXISTS (SELECT 1 FROM extraction_jobs)")
            if cur.fetchone()[0]:
                return dict.fromkeys(COUNTS, 0) | {"skipped": "extraction_jobs already has rows"}
        cur.execute("SELECT EXISTS (SELECT FROM pg_attribute WHERE attrelid = 'public.extraction_jobs'::regclass AND attname = 'updated_at' AND NOT attisdropped)")
        schema = JOB_SCHEMA if cur.fetchone()[0] else JOB_SCHEMA.remove(JOB_SCHEMA.get_field_index("updated_at"))  # before that revision
        cur.execute("SET LOCAL synchronous_commit = off")
        cur.execute("SELECT current_setting('TimeZone')")
        tz = cur.fetchone()[0]
        schema_has = _schema_has(cur)
        rng = np.random.default_rng(seed)
        ids = _reserve_ids(cur, projects)
        project_rows = _projects(rng, ids, now, span, tz)
        added = dict.fromkeys(COUNTS, 0) | {"projects": projects, "jobs": jobs}
        if schema_has["organizations"]:  # its own random stream: the projects and jobs of a seed are the same at every revision
            tenants = _tenants(np.random.default_rng([seed, 1]), organizations, projects, now - span - timedelta(days=90))
            org_ids, counts = _load_tenants(cur, tenants)
            added |= counts
            if schema_has["organization_id"]:
                project_rows = project_rows.append_column("organization_id", pa.array(org_ids[tenants["project_owner"]], pa.int64()))
        _ingest(cur, "projects", project_rows)
        cur.execute("SELECT coalesce(max(id), 0) FROM extraction_jobs")
        jobs_before = cur.fetchone()[0]
        busy = 1 / rng.permutation(np.arange(1, projects + 1)) ** 0.8  # a few busy projects, a long tail of quiet ones
        pool = _result_pool(rng)
        blocks = (
            _jobs(np.random.default_rng([seed, block]), min(BLOCK_ROWS, jobs - start), ids, busy / busy.sum(), pool, now, span, tz).select(schema.names)
            for block, start in enumerate(range(0, jobs, BLOCK_ROWS))
        )
        with _without_secondary_indexes(cur, "extraction_jobs"), tqdm(total=jobs, unit="jobs", desc="extraction_jobs", disable=jobs <= 2 * BLOCK_ROWS) as bar:
            _ingest(cur, "extraction_jobs", pa.RecordBatchReader.from_batches(schema, _counted(blocks, bar)))
        if tokens and schema_has["tokens"]:
            added["tokens"] = _load_tokens(cur, pool, jobs_before)
        conn.commit()
    seconds = time.perf_counter() - started
    return added | {"seconds": round(seconds, 3), "jobs_per_second": round(jobs / seconds)}


COUNTS = ("projects", "jobs", "organizations", "users", "memberships", "tokens")


def default_organizations(projects: int) -> int:
    """Return how many organizations `seed_database` makes for `projects` projects: about the square root, at least one.

    Example:
        >>> [default_organizations(n) for n in (1, 10, 50, 1000)]
        [1, 4, 8, 32]
    """
    return max(1, min(projects, int(np.ceil(np.sqrt(projects)))))


def _schema_has(cur) -> dict:
    """What the database's revision has of the tenant schema: organizations (and users, memberships), projects.organization_id, token tables."""
    cur.execute(
        """
        SELECT to_regclass('public.organizations') IS NOT NULL AND to_regclass('public.users') IS NOT NULL AND to_regclass('public.memberships') IS NOT NULL,
               EXISTS (SELECT FROM pg_attribute WHERE attrelid = 'public.projects'::regclass AND attname = 'organization_id' AND NOT attisdropped),
               to_regclass('public.color_tokens') IS NOT NULL AND to_regclass('public.spacing_tokens') IS NOT NULL AND to_regclass('public.typography_tokens') IS NOT NULL
        """
    )
    organizations, organization_id, tokens = cur.fetchone()
    return {"organizations": organizations, "organization_id": organization_id, "tokens": tokens}


def _slug(name: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", name.lower().replace("&", "and")).strip("-")[:63].rstrip("-")


def _ascii(name: str) -> str:
    return name.translate(str.maketrans({"á": "a", "é": "e", "í": "i", "ó": "o", "ú": "u", "ü": "u", "ö": "o", "'": ""}))


def _tenants(rng: np.random.Generator, count: int, projects: int, since: pd.Timestamp) -> dict:
    """Organizations (name, slug), their users (name, email) and memberships (role), and which organization owns each project."""
    names, slugs = [], []
    for i in range(count):
        name = f"{rng.choice(COMPANIES)} {rng.choice(KINDS)}"
        base = _slug(name)
        slug, n = base, 1
        while slug in slugs:
            n += 1
            slug = f"{base}-{n}"
        names.append(name if n == 1 else f"{name} {n}")
        slugs.append(slug)
    day = _micros(timedelta(days=1))
    org_created = _micros(since) + np.sort(rng.integers(0, 60 * day, count))
    people, emails, user_created, members, taken = [], [], [], [], set()
    for org in range(count):
        size = int(rng.integers(2, 9))
        domain = slugs[org].replace("-", "") + rng.choice([".com", ".io", ".co", ".org"])
        for k in range(size):
            first, last = str(rng.choice(FIRST_NAMES)), str(rng.choice(LAST_NAMES))
            local = _ascii(f"{first}.{last}").lower()
            email, n = f"{local}@{domain}", 1
            while email in taken:
                n += 1
                email = f"{local}{n}@{domain}"
            taken.add(email)
            if rng.random() < 0.15:  # people type their address as they like; it is unique whatever the case
                email = email[0].upper() + email[1:]
            members.append((org, len(people), "owner" if k == 0 else "admin" if k == 1 and size > 4 else "member"))
            people.append(f"{first} {last}")
            emails.append(email)
            user_created.append(int(org_created[org]) + int(rng.integers(0, 30 * day)))
    for org in range(1, count):  # a consultant or an agency's designer works for a second organization
        if rng.random() < 0.3:
            user = int(rng.integers(0, len(people)))
            if not any(o == org and u == user for o, u, _ in members):
                members.append((org, user, "member"))
    shares = 1 / np.arange(1, count + 1) ** 1.1  # a few organizations hold most projects
    owner = np.concatenate([rng.permutation(count)[: min(count, projects)], rng.choice(count, size=max(0, projects - count), p=shares / shares.sum())])
    return {
        "organizations": pa.table({"position": np.arange(count), "name": names, "slug": slugs, "created_at": pa.array(org_created, pa.int64()).cast(pa.timestamp("us", tz="UTC"))}),
        "users": pa.table({"position": np.arange(len(people)), "name": people, "email": emails, "created_at": pa.array(np.array(user_created, dtype=np.int64), pa.int64()).cast(pa.timestamp("us", tz="UTC"))}),
        "memberships": members,
        "project_owner": rng.permutation(owner),
    }


def _load_tenants(cur, tenants: dict) -> tuple[np.ndarray, dict]:
    """Insert the organizations, users and memberships (reusing those already there); return the organizations' ids in order and what was added."""
    cur.adbc_ingest("seed_organizations", tenants["organizations"], mode="replace", temporary=True)
    cur.adbc_ingest("seed_users", tenants["users"], mode="replace", temporary=True)
    cur.execute(
        """
        WITH added AS (
            INSERT INTO organizations (name, slug, created_at)
            SELECT name, slug, created_at FROM seed_organizations ORDER BY position
            ON CONFLICT (slug) DO NOTHING
            RETURNING 1
        )
        SELECT count(*) FROM added
        """
    )
    organizations = cur.fetchone()[0]
    cur.execute("SELECT o.id FROM seed_organizations s JOIN organizations o ON o.slug = s.slug ORDER BY s.position")
    org_ids = np.array([row[0] for row in cur.fetchall()], dtype=np.int64)
    cur.execute(
        """
        WITH added AS (
            INSERT INTO users (email, name, created_at)
            SELECT email, name, created_at FROM seed_users ORDER BY position
            ON CONFLICT ((lower(email))) DO NOTHING
            RETURNING 1
        )
        SELECT count(*) FROM added
        """
    )
    users = cur.fetchone()[0]
    cur.execute("SELECT u.id FROM seed_users s JOIN users u ON lower(u.email) = lower(s.email) ORDER BY s.position")
    user_ids = np.array([row[0] for row in cur.fetchall()], dtype=np.int64)
    org, user, role = zip(*tenants["memberships"])
    rows = pa.table({"position": np.arange(len(org)), "organization_id": org_ids[list(org)], "user_id": user_ids[list(user)], "role": list(role)})
    cur.adbc_ingest("seed_memberships", rows, mode="replace", temporary=True)
    cur.execute(
        """
        WITH added AS (
            INSERT INTO memberships (organization_id, user_id, role, created_at)
            SELECT m.organization_id, m.user_id, m.role, greatest(o.created_at, u.created_at)
            FROM seed_memberships m
            JOIN organizations o ON o.id = m.organization_id
            JOIN users u ON u.id = m.user_id
            ORDER BY m.position
            ON CONFLICT (organization_id, user_id) DO NOTHING
            RETURNING 1
        )
        SELECT count(*) FROM added
        """
    )
    memberships = cur.fetchone()[0]
    for table in ("seed_organizations", "seed_users", "seed_memberships"):
        cur.execute(f"DROP TABLE {table}")
    return org_ids, {"organizations": organizations, "users": users, "memberships": memberships}


TOKEN_COLUMNS = {
    "color_tokens": "hex",
    "spacing_tokens": "value, unit",
    "typography_tokens": "font_family, font_size, font_size_unit, font_weight",
}


def _pool_tokens(pool: pa.Array) -> dict[str, pa.Table]:
    """The token rows of every result in the pool that parses, per token table, keyed by the result's text."""
    rows: dict[str, list[dict]] = {table: [] for table in TOKEN_TABLES}
    for text in dict.fromkeys(pool.to_pylist()):  # each text once: many jobs share a result, the join must not multiply them
        try:
            result = json.loads(text)
        except json.JSONDecodeError:  # truncated: a crashed worker's result yields no tokens
            continue
        for color in result.get("colors", []):
            rows["color_tokens"].append({"result_data": text, "name": color["name"], "hex": color["value"].lower()})
        for space in result.get("spacing", []):
            rows["spacing_tokens"].append({"result_data": text, "name": space["name"], "value": float(space["value"]), "unit": "px"})
        for style in result.get("typography", []):
            rows["typography_tokens"].append(
                {"result_data": text, "name": style["name"], "font_family": style["font"], "font_size": float(style["size"]), "font_size_unit": "px", "font_weight": int(style["weight"])}
            )
    return {table: pa.Table.from_pylist([{"position": i} | row for i, row in enumerate(found)]) for table, found in rows.items()}


def _load_tokens(cur, pool: pa.Array, jobs_before: int) -> int:
    """Turn the results of the completed jobs just loaded into token rows, joined in the server on the pool's parsed results; return how many."""
    total = 0
    for table, rows in _pool_tokens(pool).items():
        cur.adbc_ingest(f"seed_{table}", rows, mode="replace", temporary=True)
        cur.execute(f"ANALYZE seed_{table}")  # a temporary table has no statistics: without them the join is planned blind (10x slower)
        columns = TOKEN_COLUMNS[table]
        values = ", ".join(f"p.{column.strip()}" for column in columns.split(","))
        with _without_secondary_indexes(cur, table):
            cur.execute(
                f"""
                WITH added AS (
                    INSERT INTO {table} (project_id, extraction_job_id, name, {columns}, created_at)
                    SELECT j.project_id, j.id, p.name, {values}, j.completed_at::timestamptz
                    FROM extraction_jobs j
                    JOIN seed_{table} p ON p.result_data = j.result_data
                    WHERE j.id > $1
                      AND j.status = 'completed'
                    ORDER BY j.id, p.position
                    ON CONFLICT (extraction_job_id, name) DO NOTHING
                    RETURNING 1
                )
                SELECT count(*) FROM added
                """,
                (jobs_before,),
            )
            total += cur.fetchone()[0]
        cur.execute(f"DROP TABLE seed_{table}")
    return total


def _ingest(cur, table: str, data: pa.Table | pa.RecordBatchReader) -> None:
    """COPY `data` into `table`; where row-level security applies to this role (FORCE, no BYPASSRLS), which COPY FROM refuses,
    COPY into a temporary table and INSERT from it, through the table's policies."""
    cur.execute("SELECT row_security_active($1::regclass)", (f'"{table}"',))
    if not cur.fetchone()[0]:
        cur.adbc_ingest(table, data, mode="append")
        return
    staging = f"seed_{table}_rows"
    cur.adbc_ingest(staging, data, mode="replace", temporary=True)
    columns = ", ".join(f'"{name}"' for name in data.schema.names)
    cur.execute(f'INSERT INTO "{table}" ({columns}) SELECT {columns} FROM {staging}')
    cur.execute(f"DROP TABLE {staging}")


def _reserve_ids(cur, count: int) -> np.ndarray:
    """Take `count` ids from the projects sequence, so jobs can reference them before COPY."""
    cur.execute(
        """
        SELECT nextval(pg_get_serial_sequence('projects', 'id'))
        FROM generate_series(1, $1)
        ORDER BY 1
        """,
        (count,),
    )
    return np.array([row[0] for row in cur.fetchall()], dtype=np.int32)


def _counted(blocks: Iterator[pa.Table], bar: tqdm) -> Iterator[pa.RecordBatch]:
    """The blocks' record batches, the next block generated in a thread while the server loads this one."""
    with ThreadPoolExecutor(max_workers=1) as generator:
        ahead = generator.submit(next, blocks, None)
        while (table := ahead.result()) is not None:
            ahead = generator.submit(next, blocks, None)
            for batch in table.to_batches():
                yield batch
                bar.update(batch.num_rows)


@contextmanager
def _without_secondary_indexes(cur, table: str) -> Iterator[None]:
    """Into an empty table, load without its foreign keys and plain indexes, then rebuild them (PostgreSQL's advice for bulk loads).

    Everything happens in the caller's transaction: a failure restores them as they were.
    """
    cur.execute(f'SELECT EXISTS (SELECT 1 FROM "{table}")')
    if cur.fetchone()[0]:
        yield
        return
    cur.execute(
        """
        SELECT format('ALTER TABLE %s DROP CONSTRAINT %I', conrelid::regclass, conname),
               format('ALTER TABLE %s ADD CONSTRAINT %I %s', conrelid::regclass, conname, pg_get_constraintdef(oid))
        FROM pg_constraint
        WHERE conrelid = $1::regclass
          AND contype = 'f'
        UNION ALL
        SELECT format('DROP INDEX %s', indexrelid::regclass),
               pg_get_indexdef(indexrelid)
        FROM pg_index
        WHERE indrelid = $1::regclass
          AND NOT EXISTS (SELECT 1 FROM pg_constraint WHERE conindid = indexrelid)
        ORDER BY 1
        """,
        (f'"{table}"',),
    )
    statements = cur.fetchall()
    for drop, _ in statements:
        cur.execute(drop)
    yield
    cur.execute("SET LOCAL maintenance_work_mem = '256MB'")
    for _, create in sorted(statements, key=lambda pair: pair[1].startswith("ALTER")):  # indexes first, then foreign keys
        cur.execute(create)


def _local(micros: np.ndarray, tz: str) -> np.ndarray:
    """UTC instants (microseconds since the epoch) as the naive wall-clock times the server's now() writes in its TimeZone."""
    index = pd.DatetimeIndex(micros.astype("datetime64[us]")).tz_localize("UTC").tz_convert(tz).tz_localize(None)
    return index.to_numpy().astype("datetime64[us]")


def _micros(value: pd.Timestamp | timedelta) -> int:
    return (value - pd.Timestamp(0, tz="UTC") if isinstance(value, pd.Timestamp) else value) // timedelta(microseconds=1)


def _projects(rng: np.random.Generator, ids: np.ndarray, now: pd.Timestamp, span: timedelta, tz: str) -> pa.Table:
    n = len(ids)
    names = [f"{rng.choice(WORDS[0])} {rng.choice(WORDS[1])} {i}" for i in ids]
    described = rng.random(n) < 0.7
    descriptions = [f"Design tokens for the {name.rsplit(' ', 1)[0]}" if d else None for name, d in zip(names, described)]
    before = _micros(timedelta(days=60))
    created = _micros(now) - _micros(span) - rng.integers(0, before, n)
    updated = created + rng.integers(0, _micros(span), n)
    return pa.table({"id": ids, "name": names, "description": descriptions, "created_at": _local(created, tz), "updated_at": _local(updated, tz)})


def _jobs(
    rng: np.random.Generator,
    n: int,
    project_ids: np.ndarray,
    project_shares: np.ndarray,
    pool: pa.Array,
    now: pd.Timestamp,
    span: timedelta,
    tz: str,
) -> pa.Table:
    """A block of jobs: each waits in the queue, then runs; what it is now follows from when it was created."""
    minute = _micros(timedelta(minutes=1))
    project = project_ids[rng.choice(len(project_ids), size=n, p=project_shares)]
    kind_index = rng.choice(len(EXTRACTION_TYPES), size=n, p=[TYPE_SHARES[k] for k in EXTRACTION_TYPES])
    age = _ages(rng, n, now, span)
    waiting = rng.random(n) < LONG_PENDING_SHARE
    age[waiting] = rng.integers(60 * minute, 360 * minute, waiting.sum())
    failed = rng.random(n) < FAILURE_SHARE
    wait = rng.exponential(QUEUE_WAIT_SECONDS * 1e6, n).astype(np.int64)
    run = rng.lognormal(np.log(np.array([MEDIAN_SECONDS[k] for k in EXTRACTION_TYPES])[kind_index]), DURATION_SIGMA)
    run[failed] = rng.lognormal(np.log(8.0), 1.3, failed.sum())
    taken = wait + (run * 1e6).astype(np.int64)
    stuck = (rng.random(n) < STUCK_SHARE) & (age > 35 * minute) & (age < 12 * 60 * minute)
    status = np.where(failed, "failed", "completed").astype(object)
    status[(age < taken) | stuck] = "processing"
    status[(age < wait) | waiting] = "pending"
    finished = (status == "completed") | (status == "failed")
    source = _sources(rng, project)
    created = _micros(now) - age
    changed = np.where(finished, created + taken, np.where(status == "processing", created + np.minimum(wait, age), created))
    return pa.table(
        {
            "project_id": project,
            "source_url": source,
            "extraction_type": np.array(EXTRACTION_TYPES)[kind_index],
            "status": status.astype(str),
            "result_data": _results(rng, pool, kind_index, status == "completed"),
            "error_message": _errors(rng, status == "failed", source),
            "created_at": _local(created, tz),
            "completed_at": pa.array(_local(created + taken, tz), mask=~finished),
            "updated_at": pa.array(changed, pa.timestamp("us", tz="UTC")),
        },
        schema=JOB_SCHEMA,
    )


def _ages(rng: np.random.Generator, n: int, now: pd.Timestamp, span: timedelta) -> np.ndarray:
    """Microseconds since each job was created, over the window, busiest in the (UTC) working day."""
    window = _micros(span)
    offsets = rng.integers(0, window, 3 * n)
    clock = (now.hour + now.minute / 60 - offsets / 3.6e9) % 24
    keep = rng.random(3 * n) < 0.3 + 0.7 * np.exp(-((clock - 14) ** 2) / 18)  # busiest around 14:00
    return np.resize(offsets[keep], n)


def _sources(rng: np.random.Generator, project: np.ndarray) -> pa.Array:
    kind = rng.choice(len(SOURCES), size=len(project), p=[share for *_, share in SOURCES])
    folder = pa.array([folder for folder, *_ in SOURCES]).take(kind)
    name = pc.binary_join_element_wise(pc.cast(pa.array(rng.integers(10**9, 10**10, len(project))), pa.string()), pa.array([ext for _, ext, _ in SOURCES]).take(kind), ".")
    return pc.binary_join_element_wise("https://uploads.copythat.app/projects", pc.cast(pa.array(project), pa.string()), folder, name, "/")


def _result_pool(rng: np.random.Generator) -> pa.Array:
    """JSON token lists, RESULT_POOL per type in EXTRACTION_TYPES order, then the same again truncated."""
    pool = [json.dumps(_result(rng, name), separators=(",", ":")) for name in EXTRACTION_TYPES for _ in range(RESULT_POOL)]
    return pa.array(pool + [text[: len(text) // 2] for text in pool])


def _results(rng: np.random.Generator, pool: pa.Array, kind_index: np.ndarray, completed: np.ndarray) -> pa.Array:
    """Completed jobs' results drawn from the pool for their type; a few are truncated, as a crashed worker leaves them."""
    index = kind_index * RESULT_POOL + rng.integers(0, RESULT_POOL, len(kind_index))
    index += (rng.random(len(kind_index)) < MALFORMED_SHARE) * (len(pool) // 2)
    return pool.take(pa.array(index, mask=~completed))


def _result(rng: np.random.Generator, kind: str) -> dict:
    if kind == "all":
        return _result(rng, "color") | _result(rng, "spacing") | _result(rng, "typography")
    count = int(rng.integers(3, 7))
    if kind == "color":
        roles = ["primary", "secondary", "accent", "background", "text", "border"]
        return {"colors": [{"name": roles[i], "value": f"#{int(rng.integers(0, 2**24)):06x}"} for i in range(count)]}
    if kind == "spacing":
        base = int(rng.choice([4, 8]))
        return {"spacing": [{"name": f"space-{i + 1}", "value": base * (i + 1)} for i in range(count)]}
    font = str(rng.choice(FONTS))
    sizes = [("sm", 14, 400), ("base", 16, 400), ("lg", 18, 500), ("xl", 24, 600), ("2xl", 30, 700), ("3xl", 36, 700)]
    return {"typography": [{"name": name, "font": font, "size": size, "weight": weight} for name, size, weight in sizes[:count]]}


def _errors(rng: np.random.Generator, failed: np.ndarray, source: pa.Array) -> pa.Array:
    """Failed jobs' error messages: a handful of causes, each with its own ids, numbers and URLs."""
    values = np.full(len(failed), None, dtype=object)
    rows = np.flatnonzero(failed)
    shares = np.array([share for share, _ in ERRORS])
    templates = rng.choice(len(ERRORS), size=len(rows), p=shares / shares.sum())
    urls = source.take(pa.array(rows)).to_pylist()
    numbers = rng.integers(1, 10_000, (len(rows), 4))
    for i, (template, url, nums) in enumerate(zip(templates, urls, numbers)):
        values[rows[i]] = ERRORS[template][1].format(
            url=url,
            secs=(30, 60, 120, 300)[nums[0] % 4],
            hex=f"{int(nums[1]) * 7919:08x}{0xA000 + int(nums[2]):04x}",
            n=nums[2] % 64,
            big=20971520 + int(nums[3]) * 4093,
            job=int(nums[3]) * 131,
            uuid=f"{int(nums[0]):08x}-{int(nums[1]):04x}-4{int(nums[2]) % 4096:03x}-a{int(nums[3]) % 4096:03x}-{int(nums[0]) * int(nums[1]):012x}",
        )
    return pa.array(values, type=pa.string())


def seed_history(
    days: float = 30,
    every: str | timedelta = "1h",
    *,
    seed: int = 0,
    now: datetime | None = None,
    source: str | None = None,
    if_empty: bool = True,
    engine: Engine | None = None,
    allow_remote: bool = False,
) -> dict:
    """Write a synthetic monitoring history of `days` (one snapshot per `every`) ending now, marked `synthetic` (demo data); return what was written.

    It is made from the database as it is now, walked back in time: tables and
    indexes shrink towards 60 % of today's size with a weekly rhythm, sequences
    fall back by their ids per day, jobs finish through working days at about
    FAILURE_SHARE failed (with one bad afternoon three days ago), connections
    follow the working day, and five statements run with one slowed by a
    deploy two days ago. `if_empty=True` (default) writes nothing when the
    source already has history. Like `seed_database`, it refuses a database
    that is not on this machine unless `allow_remote=True`.

    Example:
        >>> seed_history(days=2, every="6h")["snapshots"]
        9
    """
    from .monitor import history  # the monitoring package reads; this module writes demo data

    span = timedelta(days=number(days, name="days", minimum=0.01))
    step = history.days_duration(every, name="every")
    engine = engine or get_engine()
    if not allow_remote and not is_local(engine.url) and history.history_engine() is None:
        raise InputError(
            f"refusing to write demo history into {mask_url(engine.url)}: it is not a database on this machine",
            fix="write it into a local database, or pass allow_remote=True if you really mean it",
        )
    end = pd.Timestamp(now or datetime.now(UTC))
    end = end.tz_localize("UTC") if end.tzinfo is None else end.tz_convert("UTC")
    from .monitor.snapshot import query, snapshot

    with snapshot(engine) as snap:
        facts = query(
            f"SELECT current_database() AS database, pg_database_size(current_database()) AS bytes, current_setting('server_version_num')::int AS version, "
            f"to_regclass('public.extraction_jobs') IS NOT NULL AS has_jobs, to_regclass('{history.SCHEMA}.snapshots') IS NOT NULL AS has_history ORDER BY database",
            name="history.seed_facts",
        ).iloc[0]
        separate = history.history_engine()
        if separate is None and not facts["has_history"]:
            raise history._missing(None)
        name = history.validate_source(source or str(facts["database"]))
        if if_empty and history.history_summary(source=name).shape[0]:
            return {"snapshots": 0, "source": name, "skipped": "the source already has history"}
        today = history._read_everything(bool(facts["has_jobs"]))
        rng = np.random.default_rng(seed)
        buckets = [history._bucket((end - k * pd.Timedelta(step)).to_pydatetime(), step) for k in range(int(span / step), -1, -1)]
        written = 0
        with (history._HistoryConnection(separate) if separate is not None else _same(snap.conn)) as conn:
            for bucket in buckets:
                frames = _history_frames(rng, today, (end.to_pydatetime() - bucket) / timedelta(days=1), bucket, days)
                snap_row = {"source": name, "bucket": bucket, "every": int(step.total_seconds()), "version": int(facts["version"]), "synthetic": True,
                            "bytes": int(facts["bytes"] * _shrink((end.to_pydatetime() - bucket) / timedelta(days=1), days))}  # fmt: skip
                written += history.insert_snapshot(conn, snap_row, frames) is not None
    return {"snapshots": written, "source": name, "first": buckets[0], "last": buckets[-1], "synthetic": True}


@contextmanager
def _same(conn):
    yield conn


def _shrink(age_days: float, days: float) -> float:
    """The share of today's size a table had `age_days` ago: 60 % at the start of the window, with a weekly rhythm."""
    return 1 - 0.4 * (age_days / max(days, 1e-9)) + 0.01 * np.sin(2 * np.pi * age_days / 7)


def _history_frames(rng: np.random.Generator, today: dict, age: float, bucket: datetime, days: float) -> dict:
    """One synthetic snapshot's rows, `age` days before the present ones in `today`."""
    share = _shrink(age, days)
    tables = today["tables"].copy()
    for column in ("table_bytes", "index_bytes", "toast_bytes", "live_rows"):
        tables[column] = (tables[column].fillna(0) * share).round().astype("int64")
    tables["total_bytes"] = tables["table_bytes"] + tables["index_bytes"] + tables["toast_bytes"]
    tables["dead_rows"] = (tables["live_rows"] * rng.uniform(0.0, 0.08, len(tables))).round().astype("int64")
    indexes = today["indexes"].copy()
    indexes["size_bytes"] = (indexes["size_bytes"].fillna(0) * share).round().astype("int64")
    sequences = today["sequences"].copy()
    sequences["last_value"] = [None if pd.isna(v) else max(1, int(v * share)) for v in sequences["last_value"]]
    hour = bucket.hour + bucket.minute / 60
    busy = 0.3 + 0.7 * np.exp(-((hour - 14) ** 2) / 18)
    connections = pd.DataFrame(
        {
            "state": ["active", "idle", "idle in transaction", "idle"],
            "application_name": ["copythat-api", "copythat-api", "copythat-worker", "copythat-ops"],
            "connections": [int(rng.poisson(2 + 8 * busy)), int(rng.poisson(5 + 10 * busy)), int(rng.poisson(0.5 * busy)), 1],
        }
    )
    jobs = today["jobs"].copy()
    if not jobs.empty:
        finished = jobs["status"].isin(["completed", "failed"])
        failed = jobs["status"] == "failed"
        bad_afternoon = 0.5 * jobs.loc[failed, "jobs"] / max(days, 1e-9) * np.clip((3.0 - age) / 0.25, 0, 1)  # half a day's failures in 6 hours, 3 days ago
        jobs.loc[finished, "jobs"] = (jobs.loc[finished, "jobs"] * (1 - age / max(days, 1e-9))).round()
        jobs.loc[failed, "jobs"] += bad_afternoon.round()
        jobs.loc[~finished, "jobs"] = rng.poisson(3 + 20 * busy, (~finished).sum())
        jobs["jobs"] = jobs["jobs"].astype("int64")
    elapsed = (days - age) * 24  # hours since the window began
    statements = pd.DataFrame(
        {
            "query_id": [1001, 1002, 1003, 1004, 1005],
            "user_name": ["copythat"] * 5,
            "calls": [int(rate * elapsed) for rate in (3600, 900, 400, 120, 30)],
            "rows": [int(rate * elapsed) for rate in (3600, 9000, 400, 120, 30)],
            "query": [
                "SELECT * FROM extraction_jobs WHERE id = $1",
                "SELECT id, status FROM extraction_jobs WHERE project_id = $1 ORDER BY created_at DESC LIMIT $2",
                "UPDATE extraction_jobs SET status = $1, completed_at = now() WHERE id = $2",
                "INSERT INTO extraction_jobs (project_id, source_url, extraction_type) VALUES ($1, $2, $3)",
                "SELECT count(*) FROM extraction_jobs WHERE status = $1",
            ],
        }
    )
    means = np.array([0.4, 3.0, 1.2, 0.9, 40.0])
    before = np.minimum(elapsed, (days - 2) * 24)  # a deploy two days ago slowed one statement
    after = np.maximum(elapsed - (days - 2) * 24, 0)
    slowed = means.copy()
    slowed[1] *= 4  # the deploy's missing index
    rates = np.array([3600, 900, 400, 120, 30])
    statements["total_ms"] = rates * (before * means + after * slowed)
    return {"tables": tables, "indexes": indexes, "sequences": sequences, "connections": connections, "statements": statements, "jobs": jobs}
