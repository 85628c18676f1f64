"""Prometheus metrics of a Copy That database, for `GET /metrics`.

Example:
    >>> body, content_type = exposition()
    >>> b"pg_up 1.0" in body
    True
"""

from __future__ import annotations

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Gauge, generate_latest


def exposition(target: str | None = None, *, targets_file=None) -> tuple[bytes, str]:
    """Return the exposition body of one scrape of `target` (None: the default database) and its content type.

    Example:
        >>> exposition()[1].startswith("text/plain")
        True
    """
    from ..engine import run_query

    registry = CollectorRegistry()
    up = Gauge("pg_up", "Whether the database answered (1) or not (0)", registry=registry)
    try:
        run_query("SELECT 1 AS one", name="metrics.up", timeout="1s", lock_timeout="500ms")
        up.set(1)
    except Exception:
        up.set(0)
    return generate_latest(registry), CONTENT_TYPE_LATEST
