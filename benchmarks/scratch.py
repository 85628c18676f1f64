"""A scratch database for a benchmark: made on the embedded server (or the one --url names), dropped when it is done.

    scratch = Scratch(args.url)          # CREATE DATABASE copythat_bench_XXXXXXXX
    try:
        ... scratch.url ...
        url = scratch.copy()             # CREATE DATABASE ..._0 TEMPLATE the scratch database
        scratch.drop_copy(url)           # as soon as it is measured
    finally:
        scratch.drop()                   # the toolkit's engines disposed, then DROP DATABASE ... WITH (FORCE), copies too
"""

from __future__ import annotations

import uuid

from sqlalchemy import URL, create_engine, text
from sqlalchemy.pool import NullPool

from copythat_ops import embedded
from copythat_ops.config import normalize_url
from copythat_ops.engine import dispose_engines


class Scratch:
    """A database of its own on `server_url` (default: the embedded server), made at once."""

    def __init__(self, server_url: str | None = None, prefix: str = "copythat_bench") -> None:
        server = normalize_url(server_url) if server_url else embedded.start()
        self.admin = create_engine(server.set(database="postgres"), poolclass=NullPool, isolation_level="AUTOCOMMIT")
        self.name = f"{prefix}_{uuid.uuid4().hex[:8]}"
        self.copies: list[str] = []
        with self.admin.connect() as conn:
            conn.execute(text(f'CREATE DATABASE "{self.name}"'))
        self.url = server.set(database=self.name)

    def copy(self) -> URL:
        """A copy of the scratch database as it is now (CREATE DATABASE ... TEMPLATE), dropped with it."""
        dispose_engines()  # a template may have no sessions
        name = f"{self.name}_{len(self.copies)}"
        with self.admin.connect() as conn:
            conn.execute(text(f'CREATE DATABASE "{name}" TEMPLATE "{self.name}"'))
        self.copies.append(name)
        return self.url.set(database=name)

    def drop_copy(self, url: URL) -> None:
        """Drop a copy at once (its autovacuum must not slow what is measured next)."""
        dispose_engines()
        with self.admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{url.database}" WITH (FORCE)'))

    def drop(self) -> None:
        """Close the toolkit's engines and drop the database and its copies, sessions and all."""
        dispose_engines()
        with self.admin.connect() as conn:
            for name in [*self.copies, self.name]:
                conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        self.admin.dispose()
