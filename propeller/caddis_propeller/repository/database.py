"""The propeller database: engine, migrations and transactions at the edge."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

from sqlalchemy.orm import Session

from caddis._serving import db
from caddis._serving.config import DatabaseConfig
from caddis_propeller.repository.repo import Repository

T = TypeVar("T")

MIGRATIONS_DIR = Path(__file__).parent / "migrations"
"""Directory of the Alembic environment and revisions of the propeller schema."""


class Database:
    """Owns the engine and runs units of work on a :class:`Repository`.

    Args:
        config: Database settings, or just a SQLAlchemy URL.
    """

    def __init__(self, config: DatabaseConfig | str) -> None:
        self.config = DatabaseConfig(url=config) if isinstance(config, str) else config
        if self.config.url.startswith("sqlite:///"):
            path = self.config.url[len("sqlite:///") :]
            if path and path != ":memory:":
                Path(path).expanduser().parent.mkdir(parents=True, exist_ok=True)
        self.engine = db.create_engine(self.config)
        self._factory = db.make_session_factory(self.engine)

    def migrate(self) -> None:
        """Upgrade the schema to the newest revision."""
        db.upgrade_to_head(self.engine, MIGRATIONS_DIR)

    def run(self, work: Callable[[Repository], T], *, write: bool = True) -> T:
        """Run ``work`` in one transaction, retried from scratch on conflicts.

        Args:
            work: The transaction body; must be safe to repeat.
            write: Whether the body writes.

        Returns:
            What ``work`` returned.
        """

        def body(session: Session) -> T:
            return work(Repository(session))

        return db.run_in_transaction(self._factory, body, write=write, retry_integrity=False)

    def dispose(self) -> None:
        """Close all pooled connections."""
        self.engine.dispose()


__all__ = ["MIGRATIONS_DIR", "Database"]
