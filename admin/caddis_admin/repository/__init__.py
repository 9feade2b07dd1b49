"""admin's persistence: SQLAlchemy models, Alembic migrations, repositories."""
