"""`copythat-ops serve`: the application's HTTP face: /api/v1/db-test, /api/v1/health and Prometheus /metrics."""

from __future__ import annotations


def register(groups) -> None:
    """Add the `serve` command group."""
    groups.add_parser("serve", help="the application's HTTP face: /api/v1/db-test, /api/v1/health and Prometheus /metrics")
