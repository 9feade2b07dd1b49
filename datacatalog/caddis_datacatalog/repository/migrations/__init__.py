"""Alembic migrations of the datacatalog schema (run by ``Database.migrate``)."""
