"""`copythat-ops tenants`: organizations: usage per tenant, row-level security isolation proof."""

from __future__ import annotations


def register(groups) -> None:
    """Add the `tenants` command group."""
    groups.add_parser("tenants", help="organizations: usage per tenant, row-level security isolation proof")
