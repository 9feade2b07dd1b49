"""Alembic environment for datacatalog: runs on the connection handed over by ``Database``."""

from __future__ import annotations

from alembic import context

from caddis_datacatalog.repository.models import Base

config = context.config
connection = config.attributes["connection"]
context.configure(
    connection=connection,
    target_metadata=Base.metadata,
    # Own version table, so that datacatalog can share a database with admin.
    version_table="caddis_datacatalog_alembic_version",
    render_as_batch=connection.dialect.name == "sqlite",
)
with context.begin_transaction():
    context.run_migrations()
