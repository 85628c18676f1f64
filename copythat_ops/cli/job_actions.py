"""`copythat-ops jobs requeue | fail-stuck | cancel`: dry runs unless given --apply."""

from __future__ import annotations


def register(actions) -> None:
    """Add the job actions to the `jobs` sub-commands."""
