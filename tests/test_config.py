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
        write_env(project / ".env", DATABASE_URL="postgresql://u:pw@primary.example.com/db", DATABASE_REPLICA_URL=replica)
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


# --- an env file that gives no usable DATABASE_URL, an empty DATABASE_URL ------------


@pytest.mark.parametrize(
    "content, problem",
    [
        pytest.param(f"DATABSE_URL=postgresql://u:{SECRET}@h/db\n", "has no DATABASE_URL (found: DATABSE_URL)", id="misspelt"),
        pytest.param(f"DATABASE_URL postgresql://u:{SECRET}@h/db\n", "line 1 ('DATABASE_URL ...') could not be read", id="no-equals"),
        pytest.param(f"APP=1\nDATABASE_URL='postgresql://u:{SECRET}@h/db\n", "line 2 ('DATABASE_URL ...') could not be read", id="open-quote"),
        pytest.param("DATABASE_URL=\n", "sets DATABASE_URL to an empty value (line 1)", id="empty"),
        pytest.param("DATABASE_URL\n", "sets DATABASE_URL to an empty value (line 1)", id="no-value"),
        pytest.param("SECRET_KEY=x\n", "has no DATABASE_URL (found: SECRET_KEY)", id="other-keys"),
    ],
)
@pytest.mark.parametrize("how", ["argument", "COPYTHAT_ENV_FILE", ".env"])
def test_env_file_without_a_usable_url_is_an_error_naming_the_file(project, monkeypatch, content, problem, how):
    path = project / (".env" if how == ".env" else "branch.env")
    path.write_text(content)
    with pytest.raises(ConfigError) as info:
        if how == "argument":
            settings(path)
        else:
            if how == "COPYTHAT_ENV_FILE":
                monkeypatch.setenv("COPYTHAT_ENV_FILE", str(path))
            settings()
    error = info.value
    assert str(path.name) in error.problem and problem in error.problem, error.problem
    assert f"DATABASE_URL=postgresql://USER:PASSWORD@HOST/DB" in error.fix and str(path.name) in error.fix
    assert SECRET_PART not in str(error)


def test_unreadable_line_is_named_without_logging(project, caplog):
    (project / "branch.env").write_text(f"DATABASE_URL postgresql://u:{SECRET}@h/db\n")
    with pytest.raises(ConfigError, match=r"branch.env has no usable DATABASE_URL: line 1"):
        settings(project / "branch.env")
    assert not [r for r in caplog.records if r.name.startswith("dotenv")]


def test_environment_wins_over_an_env_file_without_the_url(project, monkeypatch):
    write_env(project / ".env", OTHER="1")
    monkeypatch.setenv("DATABASE_URL", "postgresql://u:pw@from-env/db")
    assert settings().url.host == "from-env"


@pytest.mark.parametrize("value", ["", "  "])
def test_empty_database_url_in_the_environment_is_an_error(project, monkeypatch, value):
    write_env(project / ".env", DATABASE_URL="postgresql://u:pw@from-file/db")
    monkeypatch.setenv("DATABASE_URL", value)
    with pytest.raises(ConfigError, match="DATABASE_URL is set but empty in the environment.*unset DATABASE_URL"):
        settings()


def test_bad_url_in_an_env_file_names_the_file(project):
    write_env(project / "branch.env", DATABASE_URL=f"mysql://u:{SECRET}@h/db")
    with pytest.raises(ConfigError, match=r"not a PostgreSQL URL .*\(in .*branch.env\)"):
        settings(project / "branch.env")


def test_nothing_configured_says_so(project):
    from copythat_ops.config import source_text

    assert source_text(settings()) == "embedded (nothing configured: no DATABASE_URL, no .env)"


# --- every rendering of a URL is masked ---------------------------------------------


@pytest.mark.parametrize(
    "raw, shown",
    [
        (f"postgresql://u@h/db?password={SECRET}", "postgresql+psycopg2://u@h/db?password=***"),
        (f"postgresql://u@h/db?password={SECRET}&sslmode=require", "postgresql+psycopg2://u@h/db?password=***&sslmode=require"),
        (f"postgresql://u:{SECRET}@h/db?sslpassword={SECRET}", "postgresql+psycopg2://u:***@h/db?sslpassword=***"),
        (f"postgresql://u@h/db?options=-c%20password%3D{SECRET}", "postgresql+psycopg2://u@h/db?options=***"),
        ("postgresql://u@h/db?options=-c%20statement_timeout%3D5s", "postgresql+psycopg2://u@h/db?options=-c+statement_timeout%3D5s"),
    ],
)
def test_mask_url_hides_passwords_in_query_parameters(raw, shown):
    assert mask_url(normalize_url(raw)) == shown
    assert SECRET_PART not in mask_text(raw)


@pytest.mark.parametrize(
    "text",
    [
        f"host=h user=u sslpassword={SECRET} dbname=d",
        f"could not use postgresql://u@h/db?password={SECRET}: timeout",
        f"options='-c password={SECRET}'",
    ],
)
def test_mask_text_hides_every_password_spelling(text):
    assert SECRET_PART not in mask_text(text)


@pytest.mark.parametrize(
    "raw, libpq",
    [
        (APP_URL, f"postgresql://neondb_owner@{NEON_HOST}/neondb?sslmode=require"),
        (f"postgresql://u@h:5433/db?password={SECRET}&sslmode=require", "postgresql://u@h:5433/db?sslmode=require"),
        ("postgresql://postgres@/copythat?host=/tmp/pg", "postgresql://postgres@/copythat?host=%2Ftmp%2Fpg"),
    ],
)
def test_libpq_url_has_no_driver_no_asyncpg_options_no_password(raw, libpq):
    from copythat_ops.config import libpq_url

    assert libpq_url(raw) == libpq
    assert (SECRET in libpq_url(raw, show_password=True)) is (SECRET in raw)
