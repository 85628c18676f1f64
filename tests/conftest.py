"""A real PostgreSQL for every test: a fresh database per test module.

The server, and the isolation from the user's databases, come from the checkout's conftest.py
(loaded for the notebooks too): the `server` fixture is its embedded server or the one
$COPYTHAT_TEST_DATABASE_URL names, and DATABASE_URL points at the session's own database.
"""

from __future__ import annotations

import pytest
from sqlalchemy.engine import URL


@pytest.fixture(scope="module")
def db_url(server, request) -> URL:
    """A fresh, empty database for this test module."""
    url = server.create_database(request.module.__name__.rsplit(".", 1)[-1])
    yield url
    server.drop_database(url)
