"""`copythat-ops tokens`: design tokens: export (DTCG), search, backfill from job results."""

from __future__ import annotations


def register(groups) -> None:
    """Add the `tokens` command group."""
    groups.add_parser("tokens", help="design tokens: export (DTCG), search, backfill from job results")
