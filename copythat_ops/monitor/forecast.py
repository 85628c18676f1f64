"""Forecasts: when each sequence reaches its column type's maximum, and when the database reaches a size limit.

Each is a straight line fitted (least squares, `regr_slope` in SQL) through the
captured snapshots of the last `days`; it says how many days of history it
rests on and refuses to guess from less than `min_days` (default 1) or from
a single snapshot.

Example:
    >>> from copythat_ops import monitor
    >>> monitor.parse_size("10 GB")
    10737418240
"""

from __future__ import annotations

import re
from numbers import Real

import pandas as pd
from sqlalchemy.engine import Engine

from ..display import whole_numbers
from ..errors import InputError
from .history import RECENT_SNAPSHOTS, SCHEMA, read_history
from .snapshot import snapshot
from .trends import not_enough_history, positive_days, resolve_source

HORIZON_DAYS = 365_000  # a date further than this (a thousand years) is left empty: "not in any foreseeable future"
_UNITS = {"": 1, "b": 1, "kb": 1024, "mb": 1024**2, "gb": 1024**3, "tb": 1024**4}
_SIZE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([kmgt]?i?b?)\s*$", re.IGNORECASE)


def parse_size(value: int | str, *, name: str = "size_limit") -> int:
    """Return a size in bytes from a whole number of bytes or text such as "512 MB", "10GB", "3 GiB" (units of 1024).

    Example:
        >>> parse_size(1024), parse_size("1.5 kB")
        (1024, 1536)
    """
    if isinstance(value, Real) and not isinstance(value, bool) and value > 0 and float(value).is_integer():
        return int(value)
    match = _SIZE.match(value) if isinstance(value, str) else None
    unit = match.group(2).lower().replace("i", "") if match else ""
    if not match or unit not in _UNITS or float(match.group(1)) <= 0:
        raise InputError(f"{name} {value!r} is not a size", fix=f"give bytes or a size with a unit, e.g. {name}='10 GB'", params=name)
    return int(float(match.group(1)) * _UNITS[unit])


def sequence_forecast(*, days: float = 30, min_days: float = 1, source: str | None = None, engine: Engine | None = None) -> pd.DataFrame:
    """Return for each sequence the ids used per day over the last `days` of history and the date its column type's maximum is reached; soonest first.

    `history_days` and `snapshots` say what the forecast rests on. A sequence
    that did not grow (0.0 ids per day, as rounded) has no `days_left` and no
    date; one that would take over a thousand years has no date. Whole
    numbers are exact (nullable Int64; `values_left` past bigint's range as
    Python ints). Refuses with a single snapshot or under `min_days` of history.

    Example:
        >>> sequence_forecast()
        Traceback (most recent call last):
        ...
        copythat_ops.errors.CopythatError: sequence_forecast() needs 1 day of history for '...'; there are 0 snapshots. Fix: ...
    """
    positive_days(days)
    positive_days(min_days, name="min_days")
    with snapshot(engine):
        name = resolve_source(source)
        found = read_history(
            f"""
            WITH {RECENT_SNAPSHOTS},
            span AS (
                SELECT count(*) AS snapshots,
                       extract(epoch FROM max(bucket) - min(bucket)) / 86400 AS history_days,
                       max(bucket) AS latest
                FROM s
            ),
            points AS (
                SELECT q."schema",
                       q."sequence",
                       q."table",
                       q."column",
                       q.last_value,
                       min(q.last_value) OVER (PARTITION BY q."schema", q."sequence", q."table", q."column") AS base,
                       extract(epoch FROM s.bucket) / 86400 AS day
                FROM s
                JOIN {SCHEMA}.sequences AS q ON q.snapshot_id = s.id
            ),
            fit AS (
                -- fitted on the ids used since the window's lowest value: near bigint's maximum a float8 has steps of 2048
                SELECT "schema",
                       "sequence",
                       "table",
                       "column",
                       regr_slope((last_value::numeric - base)::float8, day) AS ids_per_day,
                       count(last_value) AS points
                FROM points
                GROUP BY "schema", "sequence", "table", "column"
            ),
            now AS (
                SELECT q.*
                FROM {SCHEMA}.sequences AS q
                WHERE q.snapshot_id = (SELECT id FROM s ORDER BY bucket DESC LIMIT 1)
            )
            SELECT n."schema" AS schema,
                   n."sequence",
                   n."table",
                   n."column",
                   n.column_type,
                   n.last_value::text AS last_value,
                   n.max_value::text AS max_value,
                   (n.max_value::numeric - n.last_value)::text AS values_left,
                   round(f.ids_per_day::numeric, 1)::float8 AS ids_per_day,
                   CASE WHEN round(f.ids_per_day::numeric, 1) > 0
                        THEN round(((n.max_value::numeric - coalesce(n.last_value, 0)) / f.ids_per_day)::numeric, 1)::float8
                   END AS days_left,
                   CASE WHEN round(f.ids_per_day::numeric, 1) > 0 AND (n.max_value::numeric - coalesce(n.last_value, 0)) / f.ids_per_day < :horizon
                        THEN (span.latest + make_interval(secs => (n.max_value::numeric - coalesce(n.last_value, 0)) / f.ids_per_day * 86400))::date
                   END AS runs_out_on,
                   round(span.history_days::numeric, 2)::float8 AS history_days,
                   span.snapshots
            FROM span
            LEFT JOIN now AS n ON true
            LEFT JOIN fit AS f ON f."schema" = n."schema" AND f."sequence" = n."sequence"
                              AND f."table" IS NOT DISTINCT FROM n."table" AND f."column" IS NOT DISTINCT FROM n."column"
            ORDER BY days_left NULLS LAST, schema, n."sequence", n."table", n."column"
            """,
            {"source": name, "seconds": float(days) * 86400, "horizon": HORIZON_DAYS},
            name="sequence_forecast",
        )
    _enough(found, name, "sequence_forecast", min_days)
    found = found.dropna(subset=["sequence"]).reset_index(drop=True)
    for column in ("last_value", "max_value", "values_left"):  # as text from SQL: bigint maxima and gaps do not survive float64
        found[column] = whole_numbers(found[column])
    return found.astype({"snapshots": "int64"})


def size_forecast(size_limit: int | str, *, days: float = 30, min_days: float = 1, source: str | None = None, engine: Engine | None = None) -> pd.DataFrame:
    """Return the database's size now, its growth per day over the last `days` of history, and the date it reaches `size_limit` (e.g. "10 GB", a Neon plan's limit).

    Refuses with a single snapshot or under `min_days` of history.

    Example:
        >>> size_forecast("0 GB")
        Traceback (most recent call last):
        ...
        copythat_ops.errors.InputError: size_limit '0 GB' is not a size. Fix: give bytes or a size with a unit, e.g. size_limit='10 GB'
    """
    limit = parse_size(size_limit)
    positive_days(days)
    positive_days(min_days, name="min_days")
    with snapshot(engine):
        name = resolve_source(source)
        found = read_history(
            f"""
            WITH {RECENT_SNAPSHOTS},
            fit AS (
                SELECT regr_slope(database_bytes, extract(epoch FROM bucket) / 86400) AS bytes_per_day,
                       count(*) AS snapshots,
                       extract(epoch FROM max(bucket) - min(bucket)) / 86400 AS history_days,
                       max(bucket) AS latest
                FROM s
            )
            SELECT (SELECT database_bytes FROM s ORDER BY bucket DESC LIMIT 1) AS size_bytes,
                   :limit AS size_limit_bytes,
                   round(bytes_per_day::numeric)::float8 AS bytes_per_day,
                   CASE WHEN round(bytes_per_day::numeric) > 0 THEN round(((:limit - (SELECT database_bytes FROM s ORDER BY bucket DESC LIMIT 1)) / bytes_per_day)::numeric, 1)::float8 END AS days_left,
                   CASE WHEN round(bytes_per_day::numeric) > 0 AND (:limit - (SELECT database_bytes FROM s ORDER BY bucket DESC LIMIT 1)) / bytes_per_day < :horizon
                        THEN (latest + make_interval(secs => greatest(:limit - (SELECT database_bytes FROM s ORDER BY bucket DESC LIMIT 1), 0) / bytes_per_day * 86400))::date
                   END AS reaches_limit_on,
                   round(history_days::numeric, 2)::float8 AS history_days,
                   snapshots
            FROM fit
            """,
            {"source": name, "seconds": float(days) * 86400, "limit": limit, "horizon": HORIZON_DAYS},
            name="size_forecast",
        )
    _enough(found, name, "size_forecast", min_days)
    found["days_left"] = found["days_left"].clip(lower=0)
    return found.astype({"size_bytes": "Int64", "size_limit_bytes": "int64", "snapshots": "int64"})


def _enough(found: pd.DataFrame, source: str, what: str, min_days: float) -> None:
    snapshots = int(found["snapshots"].iloc[0]) if len(found) else 0
    span = float(found["history_days"].iloc[0]) if len(found) and pd.notna(found["history_days"].iloc[0]) else 0.0
    if snapshots < 2 or span < min_days:
        need = f"{min_days:g} day{'s' if min_days != 1 else ''}"
        raise not_enough_history(source, what, snapshots, span, need)
