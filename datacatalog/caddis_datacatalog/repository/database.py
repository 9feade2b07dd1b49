"""The datacatalog database: engine, migrations and transactions at the edge."""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import Session

from caddis._serving import db
from caddis._serving.config import DatabaseConfig
from caddis_datacatalog.repository.repo import CatalogRepository

_log = logging.getLogger(__name__)

T = TypeVar("T")

_READ_ATTEMPTS = 5

MIGRATIONS_DIR = Path(__file__).parent / "migrations"
"""Directory of the Alembic environment and revisions of the datacatalog schema."""


class Database:
    """Owns the engine and runs units of work on a :class:`CatalogRepository`.

    Args:
        config: Database settings, or just a SQLAlchemy URL.
    """

    def __init__(self, config: DatabaseConfig | str) -> None:
        self.config = DatabaseConfig(url=config) if isinstance(config, str) else config
        self.engine = db.create_engine(self.config)
        self._factory = db.make_session_factory(self.engine)

    @property
    def dialect(self) -> str:
        """``sqlite`` or ``postgresql``."""
        return str(self.engine.dialect.name)

    def migrate(self) -> None:
        """Upgrade the schema to the newest revision."""
        db.upgrade_to_head(self.engine, MIGRATIONS_DIR)

    def run(self, work: Callable[[CatalogRepository], T], *, write: bool = True) -> T:
        """Run ``work`` in one transaction, retried from scratch on conflicts.

        Serialization failures, deadlocks, a busy SQLite database and, for writes,
        unique-constraint races (a concurrent caller inserted the same key first; the retry
        sees its row) are retried. Callbacks registered with
        :meth:`CatalogRepository.after_commit` run after the successful commit.

        Args:
            work: The transaction body; must be safe to repeat.
            write: Whether the body writes (see :func:`caddis._serving.db.session_scope`).

        Returns:
            What ``work`` returned.
        """
        if not write:
            return self._read(work)
        hooks: list[Callable[[], None]] = []

        def body(session: Session) -> T:
            hooks.clear()
            return work(CatalogRepository(session, hooks))

        result = db.run_in_transaction(self._factory, body, write=write, retry_integrity=write)
        for hook in hooks:
            try:
                hook()
            except Exception:
                # The database change is committed; a failed side effect (a blob left
                # behind) must not turn the RPC into an error.
                _log.warning("after-commit action failed", exc_info=True)
        return result

    def _read(self, work: Callable[[CatalogRepository], T]) -> T:
        # Reads skip the Session's transaction bookkeeping (a third of a cache lookup's server
        # time): one connection, one deferred transaction, a session joined to it for the
        # ORM queries that need one.
        for attempt in range(1, _READ_ATTEMPTS + 1):
            try:
                with self.engine.connect() as conn, conn.begin():
                    session = Session(bind=conn, expire_on_commit=False)
                    try:
                        return work(CatalogRepository(session, [], connection=conn))
                    finally:
                        session.close()
            except DBAPIError as error:
                if attempt == _READ_ATTEMPTS or not db.is_retryable(error):
                    raise
        raise AssertionError("unreachable")

    def dispose(self) -> None:
        """Close all pooled connections."""
        self.engine.dispose()


__all__ = ["MIGRATIONS_DIR", "Database"]
