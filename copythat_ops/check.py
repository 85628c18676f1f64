"""Is the database reachable, and what is it? The setup guide's db-test, and more.

Example:
    >>> from copythat_ops import check_connection
    >>> check_connection()["database"]
    'connected'
"""

from __future__ import annotations

import time

from sqlalchemy import text
from sqlalchemy.engine import URL

from . import embedded
from .config import mask_url, provider
from .engine import connection, get_engine
from .migrations import current

_FACTS = text(
    """
    /* copythat-ops:check_connection */
    SELECT current_database() AS database_name,
           current_user AS user_name,
           current_setting('server_version') AS server_version,
           coalesce((SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()), false) AS tls,
           to_regclass('public.projects') IS NOT NULL AS has_projects
    """
)


def check_connection(url: URL | str | None = None) -> dict:
    """Return what the application's /api/v1/db-test returns, plus server facts.

    Keys: database, provider, projects_count, message, database_name, user,
    server_version, tls, revision, url (masked), connect_ms, latency_ms
    (one `SELECT 1` round trip on an open connection).

    Example:
        >>> facts = check_connection()
        >>> facts["provider"] in {"Neon", "embedded", "PostgreSQL"}
        True
    """
    engine = get_engine(url)
    started = time.perf_counter()
    with connection(engine) as conn:
        connect_ms = (time.perf_counter() - started) * 1000
        started = time.perf_counter()
        conn.execute(text("SELECT 1"))
        latency_ms = (time.perf_counter() - started) * 1000
        facts = conn.execute(_FACTS).mappings().one()
        projects = conn.scalar(text("SELECT count(*) FROM projects")) if facts["has_projects"] else None
    revision = current(url=engine.url)
    return {
        "database": "connected",
        "provider": provider(engine.url, embedded=embedded.owns(engine.url)),
        "projects_count": projects,
        "message": "Database connection successful! 🎉"
        if projects is not None
        else "Connected, but the schema is not migrated: run `copythat-ops migrate upgrade`",
        "database_name": facts["database_name"],
        "user": facts["user_name"],
        "server_version": facts["server_version"],
        "tls": bool(facts["tls"]),
        "revision": revision,
        "url": mask_url(engine.url),
        "connect_ms": round(connect_ms, 1),
        "latency_ms": round(latency_ms, 2),
    }
