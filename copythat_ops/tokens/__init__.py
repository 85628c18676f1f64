"""Design tokens: rows from job results (`backfill`), one DTCG document per project (`export`), trigram search (`search`).

Example:
    >>> from copythat_ops import tokens
    >>> sorted(tokens.__all__)
    ['backfill_tokens']
"""

from .backfill import backfill_tokens

__all__ = ["backfill_tokens"]
