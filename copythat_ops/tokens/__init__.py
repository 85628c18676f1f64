"""Design tokens: rows from job results (`backfill`), one DTCG document per project (`export`), trigram search (`search`).

Example:
    >>> from copythat_ops import tokens
    >>> sorted(tokens.__all__)
    ['backfill_tokens', 'export_tokens', 'search']
"""

from .backfill import backfill_tokens
from .export import export_tokens
from .search import search

__all__ = ["backfill_tokens", "export_tokens", "search"]
