"""Alembic environment for admin: runs on the connection handed over by ``Database.migrate``."""

from __future__ import annotations

from alembic import context

from caddis_admin.repository.models import Base

config = context.config
connection = config.attributes["connection"]
context.configure(
    connection=connection,
    target_metadata=Base.metadata,
    version_table=config.attributes.get("version_table", "caddis_admin_alembic_version"),
    render_as_batch=connection.dialect.name == "sqlite",
)
with context.begin_transaction():
    context.run_migrations()
