"""Alembic environment for propeller: runs on the connection handed over by ``Database``."""

from __future__ import annotations

from alembic import context

from caddis_propeller.repository.models import Base

config = context.config
connection = config.attributes["connection"]
context.configure(
    connection=connection,
    target_metadata=Base.metadata,
    # Own version table, so that propeller can share a database with admin and datacatalog.
    version_table="caddis_propeller_alembic_version",
    render_as_batch=connection.dialect.name == "sqlite",
)
with context.begin_transaction():
    context.run_migrations()
