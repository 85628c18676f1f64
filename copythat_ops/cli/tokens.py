"""`copythat-ops tokens export | search | backfill`: design tokens as a DTCG document, found by name, made from job results.

Example:
    $ copythat-ops tokens export --project 1 --output tokens.json
    $ copythat-ops tokens search brnad --kind color
    $ copythat-ops tokens backfill --dry-run
"""

from __future__ import annotations

import sys

from .args import whole
from .confirm import add_yes, confirm_change
from .lazy import library

# The library's defaults and names, written here so that building the parser imports no library (tests/test_startup.py compares them).
backfill = library("tokens.backfill", BATCH_SIZE=10_000)
export = library("tokens.export")
search = library("tokens.search", KINDS=("project", "color", "spacing", "typography"), LIMIT=20, THRESHOLD=0.3)


def register(groups) -> None:
    """Add the `tokens` command group."""
    group = groups.add_parser("tokens", help="design tokens: export (DTCG), search, backfill from job results")
    actions = group.add_subparsers(dest="action", required=True, metavar="ACTION")

    command = actions.add_parser("export", help="a project's tokens as one Design Tokens (DTCG 2025.10) JSON document")
    command.add_argument("--project", dest="project_id", type=whole(1), required=True, metavar="N", help="the project's id")
    command.add_argument("--output", metavar="FILE", help="write the document to FILE (default: print it)")
    command.add_argument("--force", action="store_true", help="replace FILE when it exists")
    command.set_defaults(run=run_export)

    command = actions.add_parser("search", help="projects and tokens whose name (or font family) is like TEXT, typos tolerated, best first")
    command.add_argument("text", metavar="TEXT", help="what to look for, e.g. brand")
    command.add_argument("--kind", choices=(*search.KINDS, "all"), default="all", help="what to look in (default all)")
    command.add_argument("--limit", type=whole(1), default=search.LIMIT, metavar="N", help=f"at most N rows (default {search.LIMIT})")
    command.add_argument("--project", dest="project_id", type=whole(1), metavar="N", help="only this project's")
    command.add_argument("--threshold", type=float, default=search.THRESHOLD, help=f"least word similarity, more than 0 and at most 1 (default {search.THRESHOLD})")
    command.set_defaults(run=run_search)

    command = actions.add_parser("backfill", help="token rows from completed jobs' result_data (what revision 458d9b0f4a48 did), listing the jobs rejected")
    command.add_argument("--batch-size", type=whole(1), default=backfill.BATCH_SIZE, metavar="N", help=f"jobs per committed batch (default {backfill.BATCH_SIZE})")
    command.add_argument("--dry-run", action="store_true", help="write nothing: count what would be written and list the rejected jobs")
    add_yes(command)
    command.set_defaults(run=run_backfill)


def run_export(args) -> object:
    from pathlib import Path

    from ..errors import InputError

    target = Path(args.output) if args.output else None
    if target is not None and target.exists() and not args.force:
        raise InputError(f"{target} exists", fix="choose another --output, or add --force to replace it")
    text = export.export_json(args.project_id)
    if target is None:
        import json

        document = json.loads(text)
        return document if args.format == "json" else json.dumps(document, indent=2, ensure_ascii=False)
    partial = target.with_name(target.name + ".partial")  # a crash leaves a .partial, never half a document under the name
    partial.write_text(text + "\n", encoding="utf-8")
    partial.replace(target)
    print(f"wrote {target} ({len(text.encode()) + 1} bytes)", file=sys.stderr)
    return {"project_id": args.project_id, "file": str(target), "bytes": len(text.encode()) + 1}


def run_search(args) -> object:
    return search.search(args.text, kind=args.kind, limit=args.limit, project_id=args.project_id, threshold=args.threshold)


def run_backfill(args) -> object:
    if not args.dry_run:
        confirm_change("tokens backfill", yes=args.yes)
    done = backfill.backfill_tokens(batch_size=args.batch_size, dry_run=args.dry_run)
    verb = "would write" if args.dry_run else "wrote"
    print(
        f"{done['jobs']} completed jobs read in {done['batches']} batches; {verb} {done['tokens']} tokens "
        f"({done['colors']} colors, {done['spacing']} spacing, {done['typography']} typography); "
        f"{len(done['rejected'])} jobs rejected (listed below, their tokens not written)",
        file=sys.stderr,
    )
    return done["rejected"]
