"""Unit tests for copythat_ops.config: URL normalisation, masking, provider and settings.

Pure configuration: nothing here connects to a database.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy.engine import make_url

from copythat_ops.config import mask_text, mask_url, normalize_url, provider, settings
from copythat_ops.errors import ConfigError

SECRET = "Sup3rS3cret"
# Every password used below contains this, so no fragment of one may appear in a message.
SECRET_PART = "S3cret"
NEON_HOST = "ep-cool-123.us-east-2.aws.neon.tech"
APP_URL = f"postgresql+asyncpg://neondb_owner:{SECRET}@{NEON_HOST}/neondb?ssl=require"


def config_error(raw: str) -> ConfigError:
    """Return the ConfigError normalize_url raises for `raw`."""
    with pytest.raises(ConfigError) as info:
        normalize_url(raw)
    return info.value


def write_env(path: Path, **values: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(f"{key}={value}\n" for key, value in values.items()))
    return path


@pytest.fixture
def project(monkeypatch, tmp_path) -> Path:
    """An empty working directory with no database configuration in the environment."""
    for var in ("DATABASE_URL", "DATABASE_REPLICA_URL", "COPYTHAT_ENV_FILE"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.chdir(tmp_path)
    return tmp_path


# --- normalize_url: accepted input -------------------------------------------------


@pytest.mark.parametrize(
    "raw",
    [
        "postgresql://app:pw@db.example.com:5433/shop",
        "postgres://app:pw@db.example.com:5433/shop",
        "postgresql+psycopg2://app:pw@db.example.com:5433/shop",
        "postgresql+psycopg://app:pw@db.example.com:5433/shop",
        "postgresql+asyncpg://app:pw@db.example.com:5433/shop?ssl=require",
        make_url("postgres://app:pw@db.example.com:5433/shop"),
    ],
)
def test_postgres_urls_become_psycopg2(raw):
    url = normalize_url(raw)
    assert url.drivername == "postgresql+psycopg2"
    assert (url.username, url.password, url.host, url.port, url.database) == (
        "app",
        "pw",
        "db.example.com",
        5433,
        "shop",
    )


@pytest.mark.parametrize(
    "ssl, sslmode",
    [
        ("disable", "disable"),
        ("allow", "allow"),
        ("prefer", "prefer"),
        ("require", "require"),
        ("verify-ca", "verify-ca"),
        ("verify-full", "verify-full"),
        ("true", "require"),
        ("false", "disable"),
    ],
)
def test_asyncpg_ssl_becomes_sslmode(ssl, sslmode):
    url = normalize_url(f"postgresql+asyncpg://u:pw@h/db?ssl={ssl}")
    assert dict(url.query) == {"sslmode": sslmode}


@pytest.mark.parametrize(
    "query, expected",
    [
        ("sslmode=require&channel_binding=require", {"sslmode": "require", "channel_binding": "require"}),
        ("sslmode=require&options=endpoint%3Dep-xyz", {"sslmode": "require", "options": "endpoint=ep-xyz"}),
        ("ssl=require&options=endpoint%3Dep-xyz", {"sslmode": "require", "options": "endpoint=ep-xyz"}),
        ("ssl=require&sslmode=require", {"sslmode": "require"}),
        ("application_name=copythat&connect_timeout=10", {"application_name": "copythat", "connect_timeout": "10"}),
    ],
)
def test_libpq_parameters_kept(query, expected):
    assert dict(normalize_url(f"postgresql://u:pw@{NEON_HOST}/neondb?{query}").query) == expected


def test_percent_encoded_password_decoded_and_kept():
    url = normalize_url("postgresql://app:p%40ss@db.example.com:6543/shop")
    assert url.password == "p@ss"
    # The URL handed to the engine still carries the same password.
    assert make_url(url.render_as_string(hide_password=False)).password == "p@ss"


def test_unix_socket_host_kept():
    url = normalize_url("postgresql://app@/shop?host=/var/run/postgresql")
    assert url.host is None
    assert url.database == "shop"
    assert dict(url.query) == {"host": "/var/run/postgresql"}


@pytest.mark.parametrize(
    "option",
    [
        "prepared_statement_cache_size",
        "statement_cache_size",
        "command_timeout",
        "max_cached_statement_lifetime",
        "max_cacheable_statement_size",
    ],
)
def test_asyncpg_only_options_dropped(option):
    url = normalize_url(f"postgresql+asyncpg://u:pw@h/db?{option}=0&ssl=require")
    assert dict(url.query) == {"sslmode": "require"}


@pytest.mark.parametrize(
    "raw",
    [
        "  postgresql://u:pw@h/db \n",
        '"postgresql://u:pw@h/db"',
        "'postgresql://u:pw@h/db'",
        " 'postgresql://u:pw@h/db' ",
    ],
)
def test_whitespace_and_quotes_stripped(raw):
    assert normalize_url(raw).render_as_string(hide_password=False) == "postgresql+psycopg2://u:pw@h/db"


# --- normalize_url: rejected input ---------------------------------------------------


@pytest.mark.parametrize(
    "raw, problem, fix",
    [
        pytest.param(f"host=h user=u password={SECRET}", "is not a URL", "postgresql://USER:PASSWORD@HOST", id="conninfo"),
        pytest.param(f"postgresql:/u:{SECRET}@h/db", "is not a URL", "postgresql://USER:PASSWORD@HOST", id="one-slash"),
        pytest.param(f"postgresql//u:{SECRET}@h/db", "is not a URL", "postgresql://USER:PASSWORD@HOST", id="no-colon"),
        pytest.param(f"postgresql://u:{SECRET}@h:54x2/db", "port that is not a number", "HOST:5432", id="port"),
        pytest.param(f"mysql://u:{SECRET}@h/db", "not a PostgreSQL URL", "postgresql://", id="mysql"),
        pytest.param("sqlite:///x.db", "not a PostgreSQL URL", "postgresql://", id="sqlite"),
        pytest.param(f"postgresql+asyncpg://u:{SECRET}@h/db?ssl=maybe", "unknown ssl value 'maybe'", "verify-full", id="ssl"),
        pytest.param(
            f"postgresql+asyncpg://u:{SECRET}@h/db?ssl=require&sslmode=disable",
            "ssl=require and sslmode=disable",
            "keep one",
            id="ssl-vs-sslmode",
        ),
        pytest.param(f"postgresql://u:{SECRET}@h/db?foo=bar", "libpq does not know: 'foo'", "remove it", id="unknown-param"),
        pytest.param(f"postgresql://u:{SECRET}@h/db?sslmode=required", "unknown sslmode 'required'", "verify-full", id="sslmode"),
        pytest.param(
            f"postgresql://u:{SECRET}@h/db?sslmode=require&sslmode=disable",
            "'sslmode' more than once",
            "keep one 'sslmode='",
            id="repeated",
        ),
        pytest.param("postgresql://u:Sup3r@S3cret@h.example.com/db", "'@'", "%40", id="unencoded-at"),
        pytest.param("", "is empty", "unset it", id="empty"),
        pytest.param("  \n", "is empty", "unset it", id="blank"),
    ],
)
def test_bad_url_names_problem_and_fix_without_password(raw, problem, fix):
    error = config_error(raw)
    assert problem in error.problem
    assert fix in (error.fix or "")
    assert SECRET_PART not in str(error)


# --- masking -------------------------------------------------------------------------


@pytest.mark.parametrize("mask", [mask_text, mask_url])
@pytest.mark.parametrize(
    "text, expected",
    [
        (f"postgresql://u:{SECRET}@h/db", "postgresql://u:***@h/db"),
        (APP_URL, f"postgresql+asyncpg://neondb_owner:***@{NEON_HOST}/neondb?ssl=require"),
        ("postgresql://u:a:b/c@d@h:5432/db", "postgresql://u:***@h:5432/db"),
        (f"could not connect to postgres://u:{SECRET}@h/db: timeout", "could not connect to postgres://u:***@h/db: timeout"),
        (f"host=h user=u password={SECRET} dbname=d", "host=h user=u password=*** dbname=d"),
        ("host=h password='Sup3r S3cret' dbname=d", "host=h password=*** dbname=d"),
    ],
)
def test_mask_hides_password_in_text(mask, text, expected):
    assert mask(text) == expected


@pytest.mark.parametrize(
    "url, expected",
    [
        (normalize_url(APP_URL), f"postgresql+psycopg2://neondb_owner:***@{NEON_HOST}/neondb?sslmode=require"),
        (make_url("postgresql://u:a%3Ab%2Fc%40d@h/db"), "postgresql://u:***@h/db"),
    ],
)
def test_mask_url_hides_password_of_url_object(url, expected):
    assert mask_url(url) == expected


@pytest.mark.parametrize(
    "text",
    [
        "postgresql://u@h:5432/db",
        "postgresql://h:5432/db",
        "postgresql://u@/db?host=/var/run/postgresql",
        "postgresql://h:5432/db (ask admin@example.com)",
    ],
)
def test_mask_leaves_url_without_password_unchanged(text):
    assert mask_text(text) == text
    assert mask_url(text) == text


def test_mask_url_object_without_password_unchanged():
    assert mask_url(make_url("postgresql://u@h:5432/db")) == "postgresql://u@h:5432/db"


def test_settings_repr_hides_password(project, monkeypatch):
    monkeypatch.setenv("DATABASE_URL", APP_URL)
    shown = repr(settings())
    assert SECRET not in shown
    assert "neondb_owner:***@" in shown


# --- provider ----------------------------------------------------------------------


@pytest.mark.parametrize(
    "url, expected",
    [
        (f"postgresql://u:pw@{NEON_HOST}/neondb", "Neon"),
        (APP_URL.replace("ep-cool-123", "ep-cool-123-pooler"), "Neon"),
        ("postgresql://u@EP-X.US-EAST-2.AWS.NEON.TECH/db", "Neon"),
        (make_url(f"postgresql://u@{NEON_HOST}/db"), "Neon"),
        ("postgresql://u@localhost:5432/db", "PostgreSQL"),
        ("postgresql://u@db.example.com/db", "PostgreSQL"),
        ("postgresql://u@notneon.tech/db", "PostgreSQL"),
        ("postgresql://u@neon.tech.example.com/db", "PostgreSQL"),
        ("postgresql://u@/db?host=/var/run/postgresql", "PostgreSQL"),
    ],
)
def test_provider_from_host(url, expected):
    assert provider(url) == expected


def test_provider_embedded():
    assert provider(f"postgresql://u@{NEON_HOST}/db", embedded=True) == "embedded"


# --- settings ------------------------------------------------------------------------


def test_nothing_configured(project):
    s = settings()
    assert (s.url, s.replica_url, s.source) == (None, None, "not configured")


@pytest.mark.parametrize("cwd", [".", "app/sub"])
def test_dotenv_found_in_cwd_or_parent(project, monkeypatch, cwd):
    env = write_env(project / ".env", DATABASE_URL="postgresql://u:pw@from-file/db")
    (project / cwd).mkdir(parents=True, exist_ok=True)
    monkeypatch.chdir(project / cwd)
    s = settings()
    assert s.url.host == "from-file"
    assert Path(s.source).samefile(env)


def test_environment_wins_over_dotenv(project, monkeypatch):
    write_env(project / ".env", DATABASE_URL="postgresql://u:pw@from-file/db")
    monkeypatch.setenv("DATABASE_URL", "postgresql://u:pw@from-env/db")
    s = settings()
    assert s.url.host == "from-env"
    assert s.source == "environment"


@pytest.mark.parametrize("where", ["environment", ".env"])
def test_replica_url_read_and_normalised(project, monkeypatch, where):
    replica = "postgresql+asyncpg://u:pw@replica.example.com/db?ssl=require"
    if where == "environment":
        monkeypatch.setenv("DATABASE_REPLICA_URL", replica)
    else:
        write_env(project / ".env", DATABASE_REPLICA_URL=replica)
    url = settings().replica_url
    assert url.render_as_string(hide_password=False) == (
        "postgresql+psycopg2://u:pw@replica.example.com/db?sslmode=require"
    )


@pytest.mark.parametrize("how", ["argument", "COPYTHAT_ENV_FILE"])
def test_explicit_env_file_used(project, monkeypatch, how):
    write_env(project / ".env", DATABASE_URL="postgresql://u:pw@default-file/db")
    explicit = write_env(project / "conf" / "prod.env", DATABASE_URL="postgresql://u:pw@explicit-file/db")
    if how == "argument":
        s = settings(explicit)
    else:
        monkeypatch.setenv("COPYTHAT_ENV_FILE", str(explicit))
        s = settings()
    assert s.url.host == "explicit-file"
    assert s.source == str(explicit)


@pytest.mark.parametrize("how", ["argument", "COPYTHAT_ENV_FILE"])
def test_missing_explicit_env_file_is_an_error(project, monkeypatch, how):
    missing = project / "nowhere" / "prod.env"
    with pytest.raises(ConfigError) as info:
        if how == "argument":
            settings(missing)
        else:
            monkeypatch.setenv("COPYTHAT_ENV_FILE", str(missing))
            settings()
    assert str(missing) in info.value.problem
    assert "COPYTHAT_ENV_FILE" in info.value.fix


def test_asyncpg_url_in_dotenv_normalised(project):
    write_env(project / ".env", DATABASE_URL=APP_URL + "&prepared_statement_cache_size=0")
    assert settings().url.render_as_string(hide_password=False) == (
        f"postgresql+psycopg2://neondb_owner:{SECRET}@{NEON_HOST}/neondb?sslmode=require"
    )


def test_bad_url_in_dotenv_raises_without_password(project):
    write_env(project / ".env", DATABASE_URL=f"mysql://u:{SECRET}@h/db")
    with pytest.raises(ConfigError) as info:
        settings()
    assert "not a PostgreSQL URL" in str(info.value)
    assert SECRET not in str(info.value)
