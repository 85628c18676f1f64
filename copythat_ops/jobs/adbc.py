"""ADBC connections: Arrow in and out of PostgreSQL over binary COPY, for the bulk reads and writes of jobs.

Example:
    >>> with adbc_connection() as conn, conn.cursor() as cursor:
    ...     _ = cursor.execute("SELECT count(*) AS jobs FROM extraction_jobs")
    ...     cursor.fetch_arrow_table().to_pylist()
    [{'jobs': 500}]
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from sqlalchemy.engine import Engine

from ..engine import APP_NAME, CONNECT_TIMEOUT, connect_error, get_engine
from ..errors import schema_required


@contextmanager
def adbc_connection(engine: Engine | None = None) -> Iterator:
    """Yield an ADBC PostgreSQL connection (Arrow in and out, binary COPY) to `engine`'s database, in a transaction.

    Rolled back and closed after, unless committed; connect failures become a ConnectError, password masked.

    Example:
        >>> with adbc_connection() as conn, conn.cursor() as cursor:
        ...     _ = cursor.execute("SELECT 1 AS one")
        ...     cursor.fetch_arrow_table().to_pylist()
        [{'one': 1}]
    """
    import adbc_driver_postgresql.dbapi as adbc
    from adbc_driver_manager import Error as AdbcError

    url = (engine or get_engine(replica=True)).url
    query = {"application_name": APP_NAME, "connect_timeout": str(CONNECT_TIMEOUT)} | dict(url.query)
    try:
        conn = adbc.connect(url.set(drivername="postgresql", query=query).render_as_string(hide_password=False))
    except AdbcError as exc:
        raise connect_error(exc, url) from None
    try:
        with schema_required("the job analyses"):
            yield conn
    finally:
        conn.rollback()
        conn.close()
