"""Benchmark of token search and export: trigram index against a sequential scan, and a 50,000-token project's export.

Builds a scratch database migrated to head with N tokens (default 1,000,000: half
colors, 30 % spacing, 20 % typography) over 200 projects, named as extractions name
them ('brand-primary-12', 'space-4', 'heading-xl-7'), plus one project of 50,000
tokens. Then, in the same run:

- search("brnad") (a typo; every kind) as `tokens.search` runs it, on the GIN trigram
  indexes, against the same query with index and bitmap scans disabled (a sequential
  scan of every table): best of --repeat, and the ratio;
- the same for a rarer word ("paletet" for "palette-...");
- export_tokens() of the 50,000-token project: seconds, bytes of JSON, seconds to
  parse it in Python;
- backfill_tokens() over --jobs seeded jobs (default 200,000) whose tokens were not
  loaded: jobs and tokens per second, in committed batches of 10,000 jobs.

The scratch database is dropped at the end.

    python benchmarks/tokens.py                       # embedded server, 1,000,000 tokens
    python benchmarks/tokens.py --tokens 200000 --url "$DATABASE_URL"
"""

from __future__ import annotations

import argparse
import time

from sqlalchemy import text

from scratch import Scratch

from copythat_ops import migrations
from copythat_ops.config import mask_url
from copythat_ops.engine import get_engine, run_query
from copythat_ops.seed import seed_database
from copythat_ops.tokens.backfill import backfill_tokens
from copythat_ops.tokens.export import export_json
from copythat_ops.tokens.search import THRESHOLD, search, search_sql

WORDS = "brand primary secondary accent surface background text border muted success warning danger info overlay shadow highlight palette neutral ink paper"
SIZES = "xs sm base md lg xl 2xl 3xl display heading body caption label"
FONTS = ["Inter", "Roboto", "Helvetica Neue", "Playfair Display", "Source Sans 3", "Lato", "Montserrat", "IBM Plex Sans"]
EXPORT_TOKENS = 50_000
SEQUENTIAL = {"enable_indexscan": "off", "enable_bitmapscan": "off", "enable_indexonlyscan": "off"}


def fill(engine, tokens: int) -> int:
    """N tokens over 200 projects, and a project of EXPORT_TOKENS; returns that project's id."""
    words = WORDS.split()
    sizes = SIZES.split()
    colors, spacing = tokens // 2, tokens * 3 // 10
    typography = tokens - colors - spacing
    with engine.begin() as conn:
        org = conn.execute(text("INSERT INTO organizations (name, slug) VALUES ('Bench', 'bench') RETURNING id")).scalar_one()
        conn.execute(text("INSERT INTO projects (name, organization_id) SELECT 'Project ' || i, :org FROM generate_series(1, 201) AS i"), {"org": org})
        big = conn.execute(text("SELECT max(id) FROM projects")).scalar_one()
        params = {"words": words, "sizes": sizes, "fonts": FONTS}
        for count, project in ((colors, "1 + i % 200"), (EXPORT_TOKENS // 2, str(big))):
            conn.execute(
                text(
                    "INSERT INTO color_tokens (project_id, name, hex, opacity) "
                    f"SELECT {project}, (:words)[1 + i % 20] || '-' || (:words)[1 + (i / 20) % 20] || '-' || i, "
                    "'#' || substr(md5(i::text), 1, 6), 1 FROM generate_series(1, :n) AS i"
                ),
                {**params, "n": count},
            )
        for count, project in ((spacing, "1 + i % 200"), (EXPORT_TOKENS * 3 // 10, str(big))):
            conn.execute(
                text(f"INSERT INTO spacing_tokens (project_id, name, value, unit) SELECT {project}, 'space-' || i, (i % 64) * 4, 'px' FROM generate_series(1, :n) AS i"),
                {"n": count},
            )
        for count, project in ((typography, "1 + i % 200"), (EXPORT_TOKENS - EXPORT_TOKENS // 2 - EXPORT_TOKENS * 3 // 10, str(big))):
            conn.execute(
                text(
                    "INSERT INTO typography_tokens (project_id, name, font_family, font_size, font_weight) "
                    f"SELECT {project}, (:sizes)[1 + i % 13] || '-' || i, (:fonts)[1 + i % 8], 12 + i % 40, 100 * (1 + i % 9) FROM generate_series(1, :n) AS i"
                ),
                {**params, "n": count},
            )
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        conn.execute(text("VACUUM ANALYZE projects, color_tokens, spacing_tokens, typography_tokens"))
    return big


def best(repeat: int, call) -> tuple[float, object]:
    times, result = [], None
    for _ in range(repeat):
        start = time.perf_counter()
        result = call()
        times.append(time.perf_counter() - start)
    return min(times), result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tokens", type=int, default=1_000_000)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--jobs", type=int, default=200_000, help="jobs seeded (without tokens) for the backfill")
    parser.add_argument("--url", help="a server to create the scratch database on (default: the embedded one)")
    args = parser.parse_args()

    scratch = Scratch(args.url)
    url = scratch.url
    print(f"scratch database {mask_url(url)}")
    try:
        migrations.upgrade(url=url)
        engine = get_engine(url)
        start = time.perf_counter()
        big = fill(engine, args.tokens)
        total = int(run_query("SELECT (SELECT count(*) FROM color_tokens) + (SELECT count(*) FROM spacing_tokens) + (SELECT count(*) FROM typography_tokens) AS n", engine=engine)["n"][0])
        print(f"{total:,} tokens in {time.perf_counter() - start:.1f} s (loaded and analyzed)")

        for word in ("brnad", "paletet"):
            indexed, found = best(args.repeat, lambda: search(word, kind="all", engine=engine))
            sql = search_sql("all")
            params = {"text": word, "limit": 20}
            settings = {"pg_trgm.word_similarity_threshold": str(THRESHOLD)}
            plan = "\n".join(run_query(f"EXPLAIN {sql}", params, engine=engine, settings=settings, name="bench")["QUERY PLAN"])
            scanned, same = best(args.repeat, lambda: run_query(sql, params, engine=engine, settings={**settings, **SEQUENTIAL}, name="bench", timeout="10min"))
            seq_plan = "\n".join(run_query(f"EXPLAIN {sql}", params, engine=engine, settings={**settings, **SEQUENTIAL}, name="bench")["QUERY PLAN"])
            matches = int(run_query(f"SELECT count(*) AS n FROM ({sql.rsplit('ORDER BY', 1)[0]}) AS m", {"text": word}, engine=engine, settings=settings, name="bench", timeout="10min")["n"][0])
            assert found["name"].tolist() == same["name"].tolist(), "the index and the scan must find the same rows"
            print(
                f"search({word!r}): {matches:,} matches; trigram indexes {indexed * 1000:.1f} ms "
                f"(plan uses them: {'_trgm' in plan}), sequential scan {scanned * 1000:.1f} ms (seq scan: {'Seq Scan' in seq_plan}); "
                f"ratio {scanned / indexed:.1f}x; first: {found['name'].iloc[0] if len(found) else '-'}"
            )

        seconds, document = best(args.repeat, lambda: export_json(big, engine=engine))
        import json

        parse, parsed = best(args.repeat, lambda: json.loads(document))
        counted = sum(len(parsed.get(group, {})) for group in ("color", "spacing", "typography"))
        print(f"export of a {counted:,}-token project: {seconds * 1000:.0f} ms in the server, {len(document.encode()):,} bytes of JSON, {parse * 1000:.0f} ms to parse in Python")

        seed_database(args.jobs, 200, seed=1, engine=engine, tokens=False, allow_remote=True)
        start = time.perf_counter()
        done = backfill_tokens(engine=engine)
        seconds = time.perf_counter() - start
        print(
            f"backfill of {done['jobs']:,} completed jobs: {seconds:.1f} s in {done['batches']} committed batches, "
            f"{done['jobs'] / seconds:,.0f} jobs/s, {done['tokens'] / seconds:,.0f} tokens/s ({done['tokens']:,} tokens, {len(done['rejected'])} jobs rejected)"
        )
    finally:
        scratch.drop()


if __name__ == "__main__":
    main()
