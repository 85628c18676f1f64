"""A project's tokens as one Design Tokens (DTCG 2025.10) document, built in the server.

The document has a group per kind, each token named as it is stored:

    {"color":      {"primary": {"$type": "color",
                                "$value": {"colorSpace": "srgb", "components": [0.1, 0.2, 0.3], "alpha": 1, "hex": "#1a334d"}}},
     "spacing":    {"space-1": {"$type": "dimension", "$value": {"value": 4, "unit": "px"}}},
     "typography": {"base":    {"$type": "typography",
                                "$value": {"fontFamily": "Inter", "fontSize": {"value": 16, "unit": "px"}, "fontWeight": 400,
                                           "lineHeight": 1.5, "letterSpacing": {"value": 0, "unit": "px"}}}},
     "$description": "...", "$extensions": {"app.copythat": {"projectId": 1, "projectName": "..."}}}

A group is left out when the project has no token of its kind. Each token's `$extensions`
carry where it came from: `{"app.copythat": {"tokenId": 12, "extractionJobId": 345}}`
(no `extractionJobId` for a token made by hand).

When several tokens of one kind share a name (several jobs extracted "primary"), the newest
wins: the latest `created_at`, then the highest id; a token made by hand counts like any other.
A name is written as DTCG allows one: '.' becomes '-', '{' and '}' become '(' and ')', and a
leading '$' becomes '_'.

Numbers are the stored numerics without trailing zeros (16, not 16.000), so the JSON holds
exactly what the database does; color components are the hex's channels over 255, rounded to
4 decimals. The whole document is made by one query (jsonb_build_object, json_object_agg),
not row by row in Python.

Example:
    >>> from copythat_ops.tokens import backfill_tokens, export_tokens
    >>> _ = backfill_tokens()
    >>> document = export_tokens(1)
    >>> sorted(document)
    ['$description', '$extensions', 'color', 'spacing', 'typography']
    >>> next(iter(document["spacing"].values()))["$type"]
    'dimension'
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING

from ..engine import run_query
from ..errors import InputError, schema_required

if TYPE_CHECKING:
    from sqlalchemy.engine import Engine

EXTENSION = "app.copythat"  # the reverse-domain key of the toolkit's $extensions


def _name(column: str) -> str:
    """SQL: a stored name as a valid DTCG token name."""
    return f"regexp_replace(translate({column}, '.{{}}', '-()'), '^[$]', '_')"


def _dimension(value: str, unit: str) -> str:
    return f"jsonb_build_object('value', trim_scale({value}), 'unit', {unit})"


def _channel(hex_column: str, start: int) -> str:
    return f"trim_scale(round(('x' || substr({hex_column}, {start}, 2))::bit(8)::integer / 255.0, 4))"


def _provenance() -> str:
    return f"jsonb_build_object('{EXTENSION}', jsonb_build_object('tokenId', t.id, 'extractionJobId', t.extraction_job_id))"


def _group(table: str, value: str, kind: str) -> str:
    """SQL: the group of `table`'s newest token per name, as one json object (names in order), or NULL when there is none."""
    return f"""
        (SELECT json_object_agg(named.name, named.token ORDER BY named.name)
         FROM (SELECT DISTINCT ON ({_name('t.name')})
                      {_name('t.name')} AS name,
                      jsonb_build_object('$type', '{kind}', '$value', {value}, '$extensions', {_provenance()}) AS token
               FROM {table} AS t
               WHERE t.project_id = :project_id
               ORDER BY {_name('t.name')}, t.created_at DESC, t.id DESC) AS named)"""


COLOR = (
    "jsonb_build_object('colorSpace', 'srgb', "
    f"'components', jsonb_build_array({_channel('t.hex', 2)}, {_channel('t.hex', 4)}, {_channel('t.hex', 6)}), "
    "'alpha', trim_scale(t.opacity), 'hex', t.hex)"
)
SPACING = _dimension("t.value", "t.unit")
TYPOGRAPHY = (
    "jsonb_build_object('fontFamily', t.font_family, "
    f"'fontSize', {_dimension('t.font_size', 't.font_size_unit')}, "
    "'fontWeight', t.font_weight, "
    "'lineHeight', trim_scale(t.line_height), "
    f"'letterSpacing', {_dimension('t.letter_spacing', 't.letter_spacing_unit')})"
)

EXPORT = f"""
    SELECT p.id,
           json_strip_nulls(json_build_object(
               'color', {_group('color_tokens', COLOR, 'color')},
               'spacing', {_group('spacing_tokens', SPACING, 'dimension')},
               'typography', {_group('typography_tokens', TYPOGRAPHY, 'typography')},
               '$description', 'Design tokens of the project ' || quote_literal(p.name) || ' (id ' || p.id || '), exported by copythat-ops',
               '$extensions', jsonb_build_object('{EXTENSION}', jsonb_build_object('projectId', p.id, 'projectName', p.name))
           ))::text AS document
    FROM projects AS p
    WHERE p.id = :project_id
    ORDER BY p.id
"""


def export_json(project_id: int, *, engine: Engine | None = None, timeout: str = "5min") -> str:
    """Return the project's tokens as the text of one DTCG 2025.10 JSON document, as the server wrote it (compact).

    Raises InputError when there is no project `project_id`.

    Example:
        >>> from copythat_ops.tokens.export import export_json
        >>> export_json(1).startswith('{"color"')
        True
    """
    if isinstance(project_id, bool) or not isinstance(project_id, int) or project_id < 1:
        raise InputError(f"project_id must be a project's id, a whole number 1 or more (got {project_id!r})", fix="pass the id of a project", params="project_id")
    with schema_required("the token export"):
        rows = run_query(EXPORT, {"project_id": project_id}, name="export_tokens", engine=engine, timeout=timeout)
    if rows.empty:
        raise InputError(f"there is no project with id {project_id}", fix="pass the id of an existing project (SELECT id, name FROM projects)", params="project_id")
    return str(rows["document"].iloc[0])


def export_tokens(project_id: int, *, engine: Engine | None = None, timeout: str = "5min") -> dict:
    """Return the project's tokens as one Design Tokens (DTCG 2025.10) document: groups color, spacing, typography.

    A name made by several jobs: the newest token wins. Raises InputError when there is no project `project_id`.
    The document is built by one query under `timeout` (default 5min); `export_json` gives its text.

    Example:
        >>> from copythat_ops.tokens import backfill_tokens, export_tokens
        >>> _ = backfill_tokens()
        >>> token = next(iter(export_tokens(1)["color"].values()))
        >>> token["$type"], sorted(token["$value"])
        ('color', ['alpha', 'colorSpace', 'components', 'hex'])
        >>> export_tokens(999)
        Traceback (most recent call last):
        ...
        copythat_ops.errors.InputError: there is no project with id 999. Fix: pass the id of an existing project (SELECT id, name FROM projects)
    """
    return json.loads(export_json(project_id, engine=engine, timeout=timeout))
