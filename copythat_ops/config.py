"""Where the database is: DATABASE_URL from the environment, else from `.env`.

URLs are normalised to psycopg2 (the toolkit is synchronous), so the
application's own `postgresql+asyncpg://...?ssl=require` works unchanged.
Passwords never leave this module unmasked except through `URL` objects.

Example:
    >>> from copythat_ops.config import normalize_url, mask_url
    >>> url = normalize_url("postgresql+asyncpg://app:s3cret@ep-x.neon.tech/neondb?ssl=require")
    >>> mask_url(url)
    'postgresql+psycopg2://app:***@ep-x.neon.tech/neondb?sslmode=require'
"""

from __future__ import annotations

import ipaddress
import os
import re
from dataclasses import dataclass
from pathlib import Path

from dotenv import dotenv_values, find_dotenv
from psycopg2.extensions import parse_dsn
from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import ArgumentError

from .errors import ConfigError

URL_VAR = "DATABASE_URL"
REPLICA_URL_VAR = "DATABASE_REPLICA_URL"
ENV_FILE_VAR = "COPYTHAT_ENV_FILE"

POSTGRES_SCHEMES = {
    "postgres",
    "postgresql",
    "postgresql+psycopg2",
    "postgresql+psycopg",
    "postgresql+asyncpg",
}
# asyncpg's `ssl=` spelled as libpq's `sslmode=`.
SSL_TO_SSLMODE = {
    "disable": "disable",
    "allow": "allow",
    "prefer": "prefer",
    "require": "require",
    "verify-ca": "verify-ca",
    "verify-full": "verify-full",
    "true": "require",
    "false": "disable",
}
# Options of the application's async driver that libpq has no use for.
ASYNCPG_ONLY = {
    "prepared_statement_cache_size",
    "statement_cache_size",
    "command_timeout",
    "max_cached_statement_lifetime",
    "max_cacheable_statement_size",
}

_CREDENTIALS = re.compile(r"(?P<head>[A-Za-z][A-Za-z0-9+.\-]*://[^:/@\s]*):(?P<secret>\S*)@")
_KEYWORD_PASSWORD = re.compile(r"(?P<head>password\s*=\s*)('[^']*'|\S+)", re.IGNORECASE)


def mask_text(text: str) -> str:
    """Return `text` with every URL or conninfo password replaced by `***`.

    Example:
        >>> mask_text("could not use postgresql://u:pw@h/db")
        'could not use postgresql://u:***@h/db'
    """
    text = _CREDENTIALS.sub(lambda m: f"{m['head']}:***@", text)
    return _KEYWORD_PASSWORD.sub(lambda m: f"{m['head']}***", text)


def mask_url(url: URL | str) -> str:
    """Return the URL for display, password replaced by `***`.

    Example:
        >>> mask_url("postgresql://neondb_owner:pw@host/neondb")
        'postgresql://neondb_owner:***@host/neondb'
    """
    if isinstance(url, URL):
        return url.render_as_string(hide_password=True)
    return mask_text(url)


def normalize_url(raw: str | URL) -> URL:
    """Return a `postgresql+psycopg2` URL for any PostgreSQL URL the application uses.

    Accepts `postgres://`, `postgresql://`, `postgresql+psycopg2://`,
    `postgresql+psycopg://` and `postgresql+asyncpg://`; translates asyncpg's
    `ssl=` to libpq's `sslmode=`; keeps libpq options such as `sslmode`,
    `channel_binding` and `options`. Raises ConfigError naming what is wrong.

    Example:
        >>> normalize_url("postgres://u@localhost:5433/db").render_as_string()
        'postgresql+psycopg2://u@localhost:5433/db'
    """
    url = raw if isinstance(raw, URL) else _parse(raw)
    if url.drivername not in POSTGRES_SCHEMES:
        raise ConfigError(
            f"DATABASE_URL is not a PostgreSQL URL (got '{url.drivername}://...')",
            fix="use postgresql://USER:PASSWORD@HOST/DB or the application's postgresql+asyncpg:// URL",
        )
    if url.host and "@" in url.host:
        raise ConfigError(
            "DATABASE_URL has an unencoded '@' in its user name or password",
            fix="percent-encode '@' in the password as %40",
        )
    query = {k: v for k, v in url.query.items() if k not in ASYNCPG_ONLY}
    for key, value in query.items():
        if not isinstance(value, str):
            raise ConfigError(f"DATABASE_URL gives '{key}' more than once", fix=f"keep one '{key}=' parameter")
    if "ssl" in query:
        query = _ssl_to_sslmode(query)
    _check_libpq_options(query)
    return url.set(drivername="postgresql+psycopg2", query=query)


def _parse(raw: str) -> URL:
    text = str(raw).strip().strip("'\"")
    if not text:
        raise ConfigError("DATABASE_URL is empty", fix="set it in .env, or unset it to use the embedded database")
    try:
        return make_url(text)
    except ArgumentError:
        raise ConfigError(
            f"DATABASE_URL is not a URL (got '{text.split(':', 1)[0][:20]}:...')",
            fix="write it as postgresql://USER:PASSWORD@HOST[:PORT]/DATABASE",
        ) from None
    except ValueError:
        raise ConfigError(
            f"DATABASE_URL has a port that is not a number ('{mask_text(text)}')",
            fix="write the port as digits after the host, e.g. HOST:5432, or leave it out",
        ) from None


def _ssl_to_sslmode(query: dict[str, str]) -> dict[str, str]:
    value = query.pop("ssl")
    mode = SSL_TO_SSLMODE.get(value.lower())
    if mode is None:
        raise ConfigError(
            f"DATABASE_URL has an unknown ssl value '{value}'",
            fix=f"use one of: {', '.join(SSL_TO_SSLMODE)}",
        )
    if query.get("sslmode", mode) != mode:
        raise ConfigError(
            f"DATABASE_URL says ssl={value} and sslmode={query['sslmode']}",
            fix="keep one of them",
        )
    return {**query, "sslmode": mode}


def _check_libpq_options(query: dict[str, str]) -> None:
    for key, value in query.items():
        try:
            parse_dsn(f"{key}=''")
        except Exception:
            raise ConfigError(
                f"DATABASE_URL has a parameter libpq does not know: '{key}'",
                fix="remove it; libpq options are listed at https://www.postgresql.org/docs/current/libpq-connect.html",
            ) from None
        if key == "sslmode" and value not in set(SSL_TO_SSLMODE.values()):
            raise ConfigError(
                f"DATABASE_URL has an unknown sslmode '{value}'",
                fix="use one of: disable, allow, prefer, require, verify-ca, verify-full",
            )


def provider(url: URL | str, *, embedded: bool = False) -> str:
    """Return 'Neon', 'embedded' or 'PostgreSQL' for a URL.

    Example:
        >>> provider("postgresql://u@ep-cool-1.us-east-2.aws.neon.tech/neondb")
        'Neon'
    """
    if embedded:
        return "embedded"
    host = (normalize_url(url).host or "").lower()
    return "Neon" if host.endswith(".neon.tech") else "PostgreSQL"


def is_local(url: URL | str) -> bool:
    """Return True when `url` can only reach this machine: a Unix socket (the embedded server's too) or a loopback host.

    Every host the URL names counts (host, `host=` and `hostaddr=` parameters, else $PGHOST /
    $PGHOSTADDR as libpq would use); one remote name makes it remote. Data-changing commands ask
    for confirmation before they touch a database that is not local.

    Example:
        >>> is_local("postgresql://u@localhost/db"), is_local("postgresql://u@ep-x.neon.tech/neondb")
        (True, False)
    """
    url = normalize_url(url)
    named = [url.host or "", url.query.get("host", ""), url.query.get("hostaddr", "")]
    if not any(named):
        named = [os.environ.get("PGHOST", ""), os.environ.get("PGHOSTADDR", "")]
    hosts = [h.strip().strip("[]").lower() for value in named for h in value.split(",") if h.strip()]
    return all(h.startswith(("/", "@")) or h == "localhost" or _loopback(h) for h in hosts)


def _loopback(host: str) -> bool:
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def env_file(path: str | os.PathLike | None = None) -> Path | None:
    """Return the `.env` in use: `path`, else $COPYTHAT_ENV_FILE, else the nearest `.env` upwards.

    A file named explicitly must exist; the default one is optional.

    Example:
        >>> env_file() is None or env_file().name == ".env"
        True
    """
    named = path or os.environ.get(ENV_FILE_VAR)
    if named:
        named = Path(named).expanduser()
        if not named.is_file():
            raise ConfigError(
                f"env file '{named}' does not exist",
                fix="create it from .env.example, or point --env-file / COPYTHAT_ENV_FILE at an existing file",
            )
        return named
    found = find_dotenv(usecwd=True)
    return Path(found) if found else None


@dataclass(frozen=True)
class Settings:
    """The configured URLs (normalised) and where they came from."""

    url: URL | None
    replica_url: URL | None
    source: str

    def __repr__(self) -> str:
        shown = mask_url(self.url) if self.url else None
        return f"Settings(url={shown!r}, source={self.source!r})"


def settings(env_path: str | os.PathLike | None = None) -> Settings:
    """Return the configured database URLs: the environment wins over `.env`.

    `url` is None when nothing is configured (the embedded database is then used).

    Example:
        >>> settings().source in {"environment", "not configured"} or settings().source.endswith(".env")
        True
    """
    path = env_file(env_path)
    from_file = {k: v for k, v in dotenv_values(path).items() if v} if path else {}

    def pick(name: str) -> tuple[URL | None, str | None]:
        if os.environ.get(name):
            return normalize_url(os.environ[name]), "environment"
        if from_file.get(name):
            return normalize_url(from_file[name]), str(path)
        return None, None

    url, source = pick(URL_VAR)
    replica, _ = pick(REPLICA_URL_VAR)
    return Settings(url=url, replica_url=replica, source=source or "not configured")
