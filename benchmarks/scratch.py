"""A scratch database for a benchmark: made on the embedded server (or the one --url names), dropped when it is done.

    scratch = Scratch(args.url)          # CREATE DATABASE copythat_bench_XXXXXXXX
    try:
        ... scratch.url ...
    finally:
        scratch.drop()                   # the toolkit's engines disposed, then DROP DATABASE ... WITH (FORCE)
"""

from __future__ import annotations

import uuid

from sqlalchemy import create_engine, text
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
        with self.admin.connect() as conn:
            conn.execute(text(f'CREATE DATABASE "{self.name}"'))
        self.url = server.set(database=self.name)

    def drop(self) -> None:
        """Close the toolkit's engines and drop the database, sessions and all."""
        dispose_engines()
        with self.admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{self.name}" WITH (FORCE)'))
        self.admin.dispose()
