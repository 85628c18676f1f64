"""Alembic environment: the URL comes from copythat_ops, never from alembic.ini.

DATABASE_URL (environment, then .env, asyncpg URLs included) or the embedded
PostgreSQL. Online runs hold a session advisory lock so two deployers cannot
migrate at once, and set lock_timeout so DDL never queues behind a long
transaction. Offline (--sql) runs need no database.
"""

from logging.config import fileConfig

from alembic import context

from copythat_ops.migrations import lock_timeout, locked_for_migration
from copythat_ops.models import Base
from copythat_ops.migrations.revisions import safe_directives

config = context.config
if config.config_file_name is not None and config.attributes.get("configure_logger", True):
    fileConfig(config.config_file_name, disable_existing_loggers=False)

target_metadata = Base.metadata
timeout = lock_timeout(config)


def run_migrations_offline() -> None:
    context.configure(
        dialect_name="postgresql",
        target_metadata=target_metadata,
        literal_binds=True,
        compare_server_default=True,
        transaction_per_migration=True,
    )
    with context.begin_transaction():
        context.execute(f"SET lock_timeout = '{timeout}'")
        context.run_migrations()


def run_migrations_online() -> None:
    with locked_for_migration(config, lock_timeout=timeout) as connection:
        context.configure(
            connection=connection,
            target_metadata=target_metadata,
            compare_server_default=True,
            transaction_per_migration=True,
            process_revision_directives=safe_directives,
            on_version_apply=config.attributes.get("on_version_apply"),  # copythat_ops.migrations counts the revisions done
        )
        with context.begin_transaction():
            context.run_migrations()


if context.is_offline_mode():
    run_migrations_offline()
else:
    run_migrations_online()
