"""Projects and tokens whose names are like a text, typos tolerated (pg_trgm), best first.

"brnad" finds "brand-primary", "inetr" finds the typography set in "Inter": a row matches when
the text is like some part of its name (pg_trgm's word similarity, `text <% name`) at least
`threshold` (0-1, default 0.3; 1 is an exact word). Typography matches on its name or its
font family. The matching runs on the GIN trigram indexes of revision 2a6198f96b79, so it
stays fast on millions of tokens; the threshold is set for the query's transaction only
(pg_trgm.word_similarity_threshold), never for the session.

Example:
    >>> from copythat_ops.tokens import backfill_tokens, search
    >>> _ = backfill_tokens()
    >>> found = search("primry", kind="color", limit=3)
    >>> found.columns.tolist()
    ['kind', 'id', 'name', 'value', 'project_id', 'project_name', 'similarity']
    >>> found["name"].tolist()
    ['primary', 'primary', 'primary']
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from ..engine import run_query
from ..errors import InputError, MigrationError, schema_required

if TYPE_CHECKING:
    import pandas as pd
    from sqlalchemy.engine import Engine

KINDS = ("project", "color", "spacing", "typography")
THRESHOLD = 0.3
LIMIT = 20
COLUMNS = ["kind", "id", "name", "value", "project_id", "project_name", "similarity"]

# One SELECT per kind: `:text <% column` is what the trigram index serves; the similarity ranks.
QUERIES = {
    "project": """
        SELECT 'project' AS kind, p.id, p.name, NULL AS value, p.id AS project_id, p.name AS project_name,
               word_similarity(:text, p.name) AS similarity
        FROM projects AS p
        WHERE :text <% p.name{project}""",
    "color": """
        SELECT 'color' AS kind, t.id, t.name, t.hex AS value, t.project_id, p.name AS project_name,
               word_similarity(:text, t.name) AS similarity
        FROM color_tokens AS t
        JOIN projects AS p ON p.id = t.project_id
        WHERE :text <% t.name{token}""",
    "spacing": """
        SELECT 'spacing' AS kind, t.id, t.name, trim_scale(t.value) || t.unit AS value, t.project_id, p.name AS project_name,
               word_similarity(:text, t.name) AS similarity
        FROM spacing_tokens AS t
        JOIN projects AS p ON p.id = t.project_id
        WHERE :text <% t.name{token}""",
    "typography": """
        SELECT 'typography' AS kind, t.id, t.name,
               t.font_family || ' ' || trim_scale(t.font_size) || t.font_size_unit || ' ' || t.font_weight AS value,
               t.project_id, p.name AS project_name,
               greatest(word_similarity(:text, t.name), word_similarity(:text, t.font_family)) AS similarity
        FROM typography_tokens AS t
        JOIN projects AS p ON p.id = t.project_id
        WHERE (:text <% t.name OR :text <% t.font_family){token}""",
}


def search_sql(kind: str = "all", *, project: bool = False) -> str:
    """Return the SQL `search` runs for `kind` (bind parameters :text, :limit and, with `project`, :project_id).

    Example:
        >>> "<% t.font_family" in search_sql("typography")
        True
    """
    kinds = _kinds(kind)
    parts = [
        QUERIES[name].format(project="\n          AND p.id = :project_id" if project else "", token="\n          AND t.project_id = :project_id" if project else "")
        for name in kinds
    ]
    return "\n        UNION ALL".join(parts) + "\n        ORDER BY similarity DESC, kind, id\n        LIMIT :limit"


def _kinds(kind: str) -> tuple[str, ...]:
    if kind == "all":
        return KINDS
    if kind not in KINDS:
        raise InputError(f"kind must be one of {', '.join(KINDS)} or all (got {kind!r})", fix="pass kind='color', for example", params="kind")
    return (kind,)


def search(
    text: str,
    kind: str = "all",
    limit: int = LIMIT,
    project_id: int | None = None,
    *,
    threshold: float = THRESHOLD,
    engine: Engine | None = None,
) -> pd.DataFrame:
    """Return the projects and tokens whose name (or font family) is like `text`, best first: kind, id, name, value, project_id, project_name, similarity.

    `kind` is project, color, spacing, typography or all (default); at most `limit` rows (default 20);
    `project_id` keeps one project's; `threshold` (default 0.3) is the least word similarity kept.
    Ties are ordered by kind and id.

    Example:
        >>> from copythat_ops.tokens import backfill_tokens, search
        >>> _ = backfill_tokens()
        >>> search("spaec-1", kind="spacing", limit=1)[["kind", "name"]].values.tolist()
        [['spacing', 'space-1']]
    """
    words = text.strip() if isinstance(text, str) else ""
    if not words:
        raise InputError(f"text must be some characters to look for (got {text!r})", fix="pass a name or part of one, e.g. 'brand'", params="text")
    if isinstance(limit, bool) or not isinstance(limit, int) or limit < 1:
        raise InputError(f"limit must be a whole number 1 or more (got {limit!r})", fix="pass e.g. limit=20", params="limit")
    if isinstance(threshold, bool) or not isinstance(threshold, int | float) or not 0 < threshold <= 1:
        raise InputError(f"threshold must be a number more than 0 and at most 1 (got {threshold!r})", fix="pass e.g. threshold=0.3", params="threshold")
    sql = search_sql(kind, project=project_id is not None)
    params = {"text": words, "limit": limit, **({"project_id": project_id} if project_id is not None else {})}
    try:
        with schema_required("token search"):
            found = run_query(
                sql,
                params,
                name="search_tokens",
                engine=engine,
                settings={"pg_trgm.word_similarity_threshold": str(threshold)},
            )
    except Exception as exc:
        if getattr(getattr(exc, "orig", None), "pgcode", None) != "42883":  # undefined_function: word_similarity, <%
            raise
        raise MigrationError(
            "the database has no pg_trgm, which token search needs (word_similarity and <% do not exist)",
            fix="migrate it to head: copythat-ops migrate upgrade (revision 2a6198f96b79 creates the extension and its indexes)",
        ) from None
    found = found.reindex(columns=COLUMNS)
    found["similarity"] = found["similarity"].astype(float).round(3)
    return found
