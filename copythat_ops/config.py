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

import difflib
import io
import ipaddress
import logging
import os
import re
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import unquote_plus

from dotenv import dotenv_values, find_dotenv
from dotenv.parser import parse_stream
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
# URL query parameters: ?password=, &sslpassword=, and options=... that carry a password.
_QUERY_PASSWORD = re.compile(r"(?P<head>[?&](?:ssl)?password=)[^&#\s]*", re.IGNORECASE)
_QUERY_OPTIONS = re.compile(r"(?P<head>[?&]options=)(?P<value>[^&#\s]*)", re.IGNORECASE)
# conninfo keywords (password=..., sslpassword=...), also inside options ("-c password=...").
_KEYWORD_PASSWORD = re.compile(r"(?<![\w?&])(?P<head>(?:ssl)?password\s*(?:=|%3D)\s*)('[^']*'|\S+)", re.IGNORECASE)
_SECRET_PARAMS = {"password", "sslpassword"}


def mask_text(text: str) -> str:
    """Return `text` with every URL or conninfo password replaced by `***`.

    Covers the user-info password, the `password` and `sslpassword` query parameters,
    an `options` parameter that mentions a password, and conninfo `password=` keywords.

    Example:
        >>> mask_text("could not use postgresql://u:pw@h/db")
        'could not use postgresql://u:***@h/db'
        >>> mask_text("postgresql://u@h/db?password=pw&sslmode=require")
        'postgresql://u@h/db?password=***&sslmode=require'
    """
    text = _CREDENTIALS.sub(lambda m: f"{m['head']}:***@", text)
    text = _QUERY_PASSWORD.sub(lambda m: f"{m['head']}***", text)
    text = _QUERY_OPTIONS.sub(lambda m: f"{m['head']}***" if _mentions_password(m["value"]) else m[0], text)
    return _KEYWORD_PASSWORD.sub(lambda m: f"{m['head']}***", text)


def _mentions_password(value: str) -> bool:
    return "password" in unquote_plus(value).lower()


def mask_url(url: URL | str) -> str:
    """Return the URL for display, every password in it replaced by `***`: the one way URLs are shown.

    Example:
        >>> mask_url("postgresql://neondb_owner:pw@host/neondb")
        'postgresql://neondb_owner:***@host/neondb'
        >>> mask_url(make_url("postgresql://u@host/db?password=pw"))
        'postgresql://u@host/db?password=***'
    """
    if isinstance(url, URL):
        return mask_text(url.render_as_string(hide_password=True))
    return mask_text(url)


def libpq_url(url: URL | str, *, show_password: bool = False) -> str:
    """Return `url` in the form psql and other libpq tools accept: `postgresql://`, libpq options only.

    The password (user-info, `password=` / `sslpassword=` parameters, an `options` that carries
    one) is left out unless `show_password`: psql then reads it from $PGPASSWORD or ~/.pgpass.

    Example:
        >>> libpq_url("postgresql+asyncpg://app:s3cret@ep-x.neon.tech/neondb?ssl=require")
        'postgresql://app@ep-x.neon.tech/neondb?sslmode=require'
    """
    url = normalize_url(url)
    if not show_password:
        query = {k: v for k, v in url.query.items() if k not in _SECRET_PARAMS and not (k == "options" and _mentions_password(v))}
        url = URL.create(url.drivername, url.username, None, url.host, url.port, url.database, query)
    return url.set(drivername="postgresql").render_as_string(hide_password=False)


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


NOTHING_CONFIGURED = "embedded (nothing configured: no DATABASE_URL, no .env)"


def settings(env_path: str | os.PathLike | None = None) -> Settings:
    """Return the configured database URLs: the environment wins over `.env`.

    `url` is None only when nothing is configured: no DATABASE_URL in the environment and no
    env file (the embedded database is then used). An env file that exists but gives no usable
    DATABASE_URL (key misspelt, a line that cannot be read, an empty value), or DATABASE_URL
    set empty in the environment, raises ConfigError naming the file and what is missing.

    Example:
        >>> settings().source in {"environment", "not configured"} or settings().source.endswith(".env")
        True
    """
    path = env_file(env_path)
    entries = _read_env_file(path, named=bool(env_path or os.environ.get(ENV_FILE_VAR))) if path else None
    from_file = {k: v for k, v in entries.values.items() if v and v.strip()} if entries else {}

    def pick(name: str) -> tuple[URL | None, str | None]:
        if name in os.environ:
            if not os.environ[name].strip():
                raise ConfigError(
                    f"{name} is set but empty in the environment",
                    fix=f"set it to postgresql://USER:PASSWORD@HOST/DB, or unset it (unset {name}) to use the .env file or the embedded database",
                )
            return normalize_url(os.environ[name]), "environment"
        if from_file.get(name):
            try:
                return normalize_url(from_file[name]), str(path)
            except ConfigError as exc:
                raise ConfigError(f"{exc.problem} (in {path})", fix=exc.fix) from None
        return None, None

    url, source = pick(URL_VAR)
    replica, _ = pick(REPLICA_URL_VAR)
    if url is None and entries is not None:
        raise entries.missing(URL_VAR)
    return Settings(url=url, replica_url=replica, source=source or "not configured")


def source_text(configured: Settings) -> str:
    """Return where the database in use comes from, for people: the env file, the environment, or the embedded fallback.

    Example:
        >>> source_text(Settings(url=None, replica_url=None, source="not configured"))
        'embedded (nothing configured: no DATABASE_URL, no .env)'
    """
    if configured.url is None:
        return NOTHING_CONFIGURED
    return "DATABASE_URL in the environment" if configured.source == "environment" else f"DATABASE_URL in {configured.source}"


@dataclass(frozen=True)
class _EnvFile:
    """What an env file holds: its values, the line of each key, and the lines that could not be read."""

    path: Path
    values: dict[str, str | None]
    lines: dict[str, int]
    unreadable: list[tuple[int, str]]
    named: bool

    def missing(self, key: str) -> ConfigError:
        """The error for an env file that gives no usable `key`: what is there instead, and the fix."""
        fix = f"add {key}=postgresql://USER:PASSWORD@HOST/DB to {self.path}"
        if not self.named:
            fix += " (or remove it, or run from a folder without a .env, to use the embedded database)"
        if key in self.values:
            return ConfigError(f"{self.path} sets {key} to an empty value (line {self.lines[key]})", fix=fix.replace("add ", "write ", 1).replace(" to ", " in ", 1))
        if self.unreadable:
            shown = ", ".join(f"line {n}" + (f" ('{start} ...')" if start else "") for n, start in self.unreadable[:5])
            return ConfigError(
                f"{self.path} has no usable {key}: {shown} could not be read",
                fix=f"write each setting as NAME=VALUE on one line (quote values with spaces); {fix}",
            )
        keys = list(self.values)
        close = difflib.get_close_matches(key, keys, n=3, cutoff=0.6)
        found = close or keys[:8]
        return ConfigError(f"{self.path} has no {key} (found: {', '.join(found) if found else 'no settings'})", fix=fix)


def _read_env_file(path: Path, *, named: bool) -> _EnvFile:
    """Read `path` as python-dotenv does (variables expanded), noting the lines it cannot parse instead of logging them."""
    try:
        text = path.read_text(encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"cannot read env file {path} ({exc.strerror or 'not UTF-8 text'})", fix="check its permissions and that it is UTF-8 text") from None
    lines: dict[str, int] = {}
    unreadable: list[tuple[int, str]] = []
    for binding in parse_stream(io.StringIO(text)):
        if binding.error:
            name = re.match(r"\s*(?:export\s+)?([A-Za-z_][A-Za-z0-9_.]*)", binding.original.string)  # the key only, never a value
            unreadable.append((binding.original.line, name[1] if name else ""))
        elif binding.key is not None:
            lines[binding.key] = binding.original.line
    quiet = logging.getLogger("dotenv.main")
    was_disabled, quiet.disabled = quiet.disabled, True  # the unreadable lines are reported above, in our words
    try:
        values = dotenv_values(stream=io.StringIO(text))
    finally:
        quiet.disabled = was_disabled
    return _EnvFile(path=path, values=dict(values), lines=lines, unreadable=unreadable, named=named)
