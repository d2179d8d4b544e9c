"""Alembic environment: migrations run as the owner role and grant to the app role."""

import logging
from logging.config import fileConfig

import sqlalchemy as sa
from alembic import context
from flask import current_app

config = context.config
if config.config_file_name and not logging.getLogger().handlers:
    fileConfig(config.config_file_name)

owner_url = (
    current_app.config.get("DATABASE_OWNER_URL") or current_app.config["SQLALCHEMY_DATABASE_URI"]
)
config.attributes["app_role"] = current_app.config["APP_DB_ROLE"]
target_metadata = current_app.extensions["migrate"].db.metadata


def run_migrations_online():
    """Run every pending revision in one transaction as the owning role."""
    engine = sa.create_engine(owner_url, poolclass=sa.pool.NullPool)
    with engine.connect() as connection:
        context.configure(
            connection=connection,
            target_metadata=target_metadata,
            transaction_per_migration=False,
        )
        with context.begin_transaction():
            context.run_migrations()
    engine.dispose()


if context.is_offline_mode():
    raise SystemExit("Offline migrations are not supported; run `flask db upgrade`.")
run_migrations_online()
