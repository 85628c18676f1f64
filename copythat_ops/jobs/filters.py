"""The WHERE clause every job query shares, its time bounds, and the categories of status and extraction_type.

Times: job columns are `TIMESTAMP WITHOUT TIME ZONE` filled by the server's `now()`,
so a bound is compared on the server as its wall clock (`localtimestamp`).

Example:
    >>> where, params = job_filters(status="failed", since="24h")
    >>> print(where)
    WHERE j.status IN (:status_0)
          AND j.created_at >= (localtimestamp - make_interval(secs => :since))
    >>> params
    {'status_0': 'failed', 'since': 86400.0}
"""

from __future__ import annotations

import re
from datetime import datetime, timedelta

import pandas as pd

from ..errors import InputError
from ..models import EXTRACTION_TYPES, JOB_STATUSES
from ..validate import choices, duration, number

# Server-side wall-clock time of a job column, as a UTC instant.
AT_UTC = "{} AT TIME ZONE current_setting('TimeZone')"


def categorised(frame: pd.DataFrame) -> pd.DataFrame:
    """status and extraction_type as categories listing every known value (then any unknown one found)."""
    for column, known in (("status", JOB_STATUSES), ("extraction_type", EXTRACTION_TYPES)):
        if column in frame:
            values = frame[column].astype("category")
            extra = sorted(set(values.cat.categories) - set(known))
            frame[column] = values.cat.set_categories([*known, *extra])
    return frame


def time_bound(value: str | timedelta | datetime, name: str) -> tuple[str, dict]:
    """SQL for a point in time as the server's wall clock: a duration back from now, or a timestamp (naive = UTC)."""
    moment = timestamp_bound(value, name)
    if moment is not None:
        return f"({AT_UTC.format(f'CAST(:{name} AS timestamptz)')})", {name: moment.isoformat()}
    return f"(localtimestamp - make_interval(secs => :{name}))", {name: duration(value, name=name).total_seconds()}


def timestamp_bound(value: str | timedelta | datetime, name: str) -> pd.Timestamp | None:
    """A bound given as a timestamp (a datetime, or text starting YYYY-MM-DD; naive = UTC) as a UTC instant; None for a duration.

    Example:
        >>> timestamp_bound("2025-01-31 12:00", "since"), timestamp_bound("24h", "since")
        (Timestamp('2025-01-31 12:00:00+0000', tz='UTC'), None)
    """
    if not (isinstance(value, datetime | pd.Timestamp) or (isinstance(value, str) and re.match(r"^\s*\d{4}-\d{2}-\d{2}", value))):
        return None
    try:
        moment = pd.Timestamp(value)
    except ValueError:
        raise InputError(f"{name} {value!r} is not a time", fix="give a duration back from now ('24h') or a timestamp ('2025-01-31 12:00')", params=name) from None
    return moment.tz_localize("UTC") if moment.tzinfo is None else moment.tz_convert("UTC")


def checked_values(status=None, extraction_type=None, project_id=None) -> dict[str, list | None]:
    """The value filters, each checked, as the list of values per column (None where not filtered).

    Example:
        >>> checked_values(status="failed", project_id=2)
        {'status': ['failed'], 'extraction_type': None, 'project_id': [2]}
    """
    projects = None if project_id is None else [project_id] if isinstance(project_id, int) else list(project_id)
    return {
        "status": choices(status, JOB_STATUSES, name="status"),
        "extraction_type": choices(extraction_type, EXTRACTION_TYPES, name="extraction_type"),
        "project_id": None if projects is None else [int(number(v, name="project_id", minimum=1, integer=True)) for v in projects],
    }


def job_filters(
    status: str | list[str] | None = None,
    extraction_type: str | list[str] | None = None,
    project_id: int | list[int] | None = None,
    since: str | timedelta | datetime | None = None,
    until: str | timedelta | datetime | None = None,
) -> tuple[str, dict]:
    """A WHERE clause over `j` (extraction_jobs) with bound parameters, every value checked first."""
    clauses, params = [], {}
    for column, values in checked_values(status, extraction_type, project_id).items():
        if values is not None:
            names = [f"{column}_{i}" for i in range(len(values))]
            clauses.append(f"j.{column} IN ({', '.join(':' + n for n in names)})" if names else "FALSE")
            params.update(zip(names, values))
    for name, value, operator in (("since", since, ">="), ("until", until, "<")):
        if value is not None:
            bound, bound_params = time_bound(value, name)
            clauses.append(f"j.created_at {operator} {bound}")
            params.update(bound_params)
    return ("WHERE " + "\n          AND ".join(clauses)) if clauses else "", params
