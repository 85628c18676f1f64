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
from .config import NOTHING_CONFIGURED, mask_text, mask_url, normalize_url, provider, settings, source_text
from .engine import connection, get_engine
from .errors import CopythatError

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
    server_version, tls, revision, url (masked), source (where the URL comes from:
    the environment, an env file, or the embedded fallback when nothing is configured),
    connect_ms, latency_ms (one `SELECT 1` round trip on an open connection).

    Example:
        >>> facts = check_connection()
        >>> facts["provider"] in {"Neon", "embedded", "PostgreSQL"}
        True
    """
    source = source_text(settings()) if url is None else "given"
    engine = get_engine(url)
    started = time.perf_counter()
    with connection(engine) as conn:
        connect_ms = (time.perf_counter() - started) * 1000
        started = time.perf_counter()
        conn.execute(text("SELECT 1"))
        latency_ms = (time.perf_counter() - started) * 1000
        facts = conn.execute(_FACTS).mappings().one()
        projects = conn.scalar(text("SELECT count(*) FROM projects")) if facts["has_projects"] else None
    from .migrations import current  # Alembic loads when a database is there to read

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
        "source": source,
        "connect_ms": round(connect_ms, 1),
        "latency_ms": round(latency_ms, 2),
    }


def database_status(url: URL | str | None = None) -> dict:
    """Return which database is in use and its state, without starting anything.

    The configured one (DATABASE_URL, or `url`): source, url (masked), provider, reachable,
    server_version, revision, error. Nothing configured: the embedded server's state
    (`embedded.status()`) with source "embedded (nothing configured: ...)".

    Example:
        >>> database_status()["source"] != ""
        True
    """
    configured = settings() if url is None else None
    if configured is not None and configured.url is None:
        state = embedded.status()
        return {"source": NOTHING_CONFIGURED, **state, "url": mask_url(state["url"]) if state["url"] else None}
    target = normalize_url(url) if url is not None else configured.url
    facts = {
        "source": source_text(configured) if configured is not None else "given",
        "url": mask_url(target),
        "provider": provider(target, embedded=embedded.owns(target)),
        "reachable": False,
        "server_version": None,
        "revision": None,
        "error": None,
    }
    try:
        with connection(get_engine(target)) as conn:
            facts["server_version"] = conn.scalar(text("SHOW server_version"))
        facts["reachable"] = True
        from .migrations import current  # Alembic loads when a database is there to read

        facts["revision"] = current(url=target)
    except CopythatError as exc:
        facts["error"] = str(exc)
    except Exception as exc:  # e.g. the role may not read alembic_version: still a status
        facts["error"] = mask_text((str(exc).strip().splitlines() or [type(exc).__name__])[0])
    return facts
