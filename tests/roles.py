"""A login of the application's kind for a test: a fresh LOGIN role in copythat_app, with a password, dropped after.

The test's own login is never made a member: on PostgreSQL 15 (no INHERIT FALSE
grants) it would inherit copythat_app, and every other test on the server logged
in as it would then see one organization's rows, or none.
"""

from __future__ import annotations

import secrets
import uuid
from collections.abc import Iterator
from contextlib import contextmanager

import psycopg2
import pytest
from sqlalchemy.engine import URL


def libpq(url: URL) -> str:
    """`url` as psycopg2.connect takes it."""
    return url.render_as_string(hide_password=False).replace("+psycopg2", "").replace("+asyncpg", "")


@contextmanager
def application_login(url: URL) -> Iterator[URL]:
    """Yield `url` logged in as a new role in copythat_app; skip the test when this login may not make one."""
    name, password = f"ct_app_{uuid.uuid4().hex[:8]}", secrets.token_hex(12)
    admin = psycopg2.connect(libpq(url))
    admin.autocommit = True
    try:
        with admin.cursor() as cur:
            try:
                cur.execute(f"CREATE ROLE {name} LOGIN PASSWORD %s IN ROLE copythat_app", (password,))
            except psycopg2.errors.InsufficientPrivilege:
                pytest.skip("the test server's login may not create a login in copythat_app")
        try:
            yield url.set(username=name, password=password)
        finally:
            with admin.cursor() as cur:
                cur.execute(f"DROP ROLE {name}")  # its sessions, if any are left, end with the test's engines
    finally:
        admin.close()
