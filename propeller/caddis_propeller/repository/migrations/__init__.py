"""Alembic environment and revisions of the propeller schema."""
