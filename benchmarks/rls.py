"""Benchmark the tenant row-level security of revision b11509538edf (not a test): what the policies cost a query, and tenant_isolation()'s time.

In a scratch database it creates and drops, migrated to head: --organizations
organizations (default 100), --projects projects (2,000) spread over them and
--jobs extraction jobs (1,000,000) spread over the projects, loaded in SQL.
Then, each the median of --repeat runs, for one organization of average size:

1. the owner (no policy applies to it in effect) counting that organization's
   jobs with the filter written out: a join to projects on organization_id (baseline);
2. copythat_app with app.organization_id set, `SELECT count(*) FROM extraction_jobs`:
   the policies do the filtering (jobs through the projects it sees);
3. the same with the projects policy rewritten to call current_setting() per
   row (what the rls_per_row_setting lint warns about), then put back;
4. copythat_app fetching one project by id, and the organization's projects (index on organization_id).

Printed: each time, and the ratios 2/1 (what the policies cost against the
filter written by hand) and 3/2 (per row against once per query). Last,
tenant_isolation()'s wall time on this database (it touches only the rows it
makes: it must not grow with the tables).

Usage:
    .venv/bin/python benchmarks/rls.py                     # the embedded PostgreSQL
    .venv/bin/python benchmarks/rls.py --url URL --jobs 200000   # a server where the role may CREATE DATABASE (and SET ROLE copythat_app)
"""

from __future__ import annotations

import argparse
import statistics
import time
import uuid

from sqlalchemy import create_engine, text
from sqlalchemy.pool import NullPool

from copythat_ops import embedded, migrations, tenants
from copythat_ops.config import mask_url, normalize_url
from copythat_ops.engine import dispose_engines, get_engine

CURRENT = "(SELECT nullif(current_setting('app.organization_id', true), '')::bigint)"
PER_ROW = "nullif(current_setting('app.organization_id', true), '')::bigint"


def load(engine, organizations: int, projects: int, jobs: int) -> None:
    with engine.begin() as conn:
        conn.execute(text("INSERT INTO organizations (name, slug) SELECT 'Org ' || g, 'org-' || g FROM generate_series(1, :n) AS g"), {"n": organizations})
        conn.execute(
            text(
                "INSERT INTO projects (name, organization_id)"
                " SELECT 'project ' || g, (SELECT min(id) FROM organizations) + g % :o FROM generate_series(1, :n) AS g"
            ),
            {"o": organizations, "n": projects},
        )
        conn.execute(
            text(
                "INSERT INTO extraction_jobs (project_id, source_url, extraction_type, status, created_at, completed_at)"
                " SELECT (SELECT min(id) FROM projects) + g % :p, 'https://uploads.copythat.app/' || g || '.png', 'color',"
                " CASE WHEN g % 20 = 0 THEN 'failed' ELSE 'completed' END, localtimestamp, localtimestamp"
                " FROM generate_series(1, :n) AS g"
            ),
            {"p": projects, "n": jobs},
        )
        conn.execute(text("ANALYZE"))


def median_seconds(conn, sql: str, params: dict, repeat: int) -> tuple[float, object]:
    times, result = [], None
    for _ in range(repeat):
        start = time.perf_counter()
        result = conn.execute(text(sql), params).scalar()
        times.append(time.perf_counter() - start)
    return statistics.median(times), result


def as_app(conn, organization: int) -> None:
    conn.execute(text("SET ROLE copythat_app"))
    conn.execute(text("SELECT set_config('app.organization_id', :o, false)"), {"o": str(organization)})


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--url", help="a server where the role may CREATE DATABASE (default: the embedded PostgreSQL)")
    parser.add_argument("--organizations", type=int, default=100)
    parser.add_argument("--projects", type=int, default=2_000)
    parser.add_argument("--jobs", type=int, default=1_000_000)
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    admin = normalize_url(args.url) if args.url else embedded.start()
    name = f"bench_rls_{uuid.uuid4().hex[:8]}"
    server = create_engine(admin, poolclass=NullPool, isolation_level="AUTOCOMMIT")
    with server.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    url = admin.set(database=name)
    print(f"scratch database {name} on {mask_url(admin)}")
    try:
        migrations.upgrade(url=url)
        engine = get_engine(url)
        start = time.perf_counter()
        load(engine, args.organizations, args.projects, args.jobs)
        print(f"loaded {args.organizations:,} organizations, {args.projects:,} projects, {args.jobs:,} jobs in {time.perf_counter() - start:.1f} s")
        with engine.connect() as conn:
            org = conn.execute(text("SELECT min(id) + :half FROM organizations"), {"half": args.organizations // 2}).scalar()
            project = conn.execute(text("SELECT min(id) FROM projects WHERE organization_id = :o"), {"o": org}).scalar()
            owner, expected = median_seconds(
                conn,
                "SELECT count(*) FROM extraction_jobs AS j JOIN projects AS p ON p.id = j.project_id WHERE p.organization_id = :o",
                {"o": org},
                args.repeat,
            )
            conn.rollback()
            as_app(conn, org)
            policy, seen = median_seconds(conn, "SELECT count(*) FROM extraction_jobs", {}, args.repeat)
            point, _ = median_seconds(conn, "SELECT count(*) FROM projects WHERE id = :p", {"p": project}, args.repeat)
            listing, listed = median_seconds(conn, "SELECT count(*) FROM projects", {}, args.repeat)
            conn.execute(text("RESET ROLE"))
            conn.commit()
        assert seen == expected, f"the policies let copythat_app see {seen} jobs, the owner counts {expected}"
        with engine.begin() as conn:
            conn.execute(text(f"ALTER POLICY tenant ON projects USING (organization_id = {PER_ROW}) WITH CHECK (organization_id = {PER_ROW})"))
        with engine.connect() as conn:
            as_app(conn, org)
            per_row, seen_per_row = median_seconds(conn, "SELECT count(*) FROM extraction_jobs", {}, args.repeat)
            conn.execute(text("RESET ROLE"))
            conn.commit()
        with engine.begin() as conn:
            conn.execute(text(f"ALTER POLICY tenant ON projects USING (organization_id = {CURRENT}) WITH CHECK (organization_id = {CURRENT})"))
        assert seen_per_row == expected
        start = time.perf_counter()
        proof = tenants.tenant_isolation(engine=engine)
        isolation = time.perf_counter() - start
        print(f"organization {org}: {expected:,} jobs of {args.jobs:,}, {listed} projects (median of {args.repeat})")
        print(f"  1 owner, filter written out          {owner * 1000:9.1f} ms")
        print(f"  2 copythat_app, policies filter      {policy * 1000:9.1f} ms   ratio 2/1 {policy / owner:.2f}")
        print(f"  3 copythat_app, per-row setting      {per_row * 1000:9.1f} ms   ratio 3/2 {per_row / policy:.2f}")
        print(f"  4 copythat_app, one project by id    {point * 1000:9.1f} ms; the organization's projects {listing * 1000:.1f} ms")
        print(f"tenant_isolation(): {isolation:.2f} s, {'all ok' if proof['ok'].all() else 'FAILED'} ({len(proof)} tables)")
    finally:
        dispose_engines()
        with server.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


if __name__ == "__main__":
    main()
