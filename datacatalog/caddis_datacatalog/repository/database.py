"""The datacatalog database: engine, migrations and transactions at the edge."""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, TypeVar

import sqlalchemy as sa
from sqlalchemy.engine import Engine
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import Session
from sqlalchemy.pool import PoolProxiedConnection

from caddis._serving import db
from caddis._serving.config import DatabaseConfig
from caddis_datacatalog.repository.lookup import LookupStatement
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
        self._lookup = LookupStatement(self.engine.dialect)
        # Single-statement reads (the cache lookup) take driver connections from a pool of
        # their own, opened in autocommit once: no BEGIN/COMMIT round trips, and no switching
        # a shared connection's mode at every checkout and back at every return. SQLite
        # connections already run a lone SELECT outside a transaction.
        self.read_engine: Engine = (
            sa.create_engine(
                self.engine.url,
                isolation_level="AUTOCOMMIT",
                # No transaction is ever open on these, so there is nothing to roll back on
                # return to the pool.
                pool_reset_on_return=None,
                pool_size=self.config.pool_size,
                max_overflow=self.config.max_overflow,
                pool_recycle=1800,
                echo=self.config.echo,
            )
            if self.engine.dialect.name == "postgresql"
            else self.engine
        )
        """The engine of single-statement reads (``engine`` itself on SQLite)."""

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
            return work(CatalogRepository(session, hooks, lookup=self._lookup))

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
        # Reads open nothing up front. The cache lookup is one statement on a pooled driver
        # connection in autocommit (one round trip, no BEGIN/COMMIT); other reads get a session
        # in one deferred transaction on first use, so that multi-statement reads see one
        # snapshot.
        for attempt in range(1, _READ_ATTEMPTS + 1):
            scope = _ReadScope(self.engine, self.read_engine)
            try:
                return work(CatalogRepository(scope.session, [], lookup=self._lookup, raw=scope))
            except DBAPIError as error:
                if attempt == _READ_ATTEMPTS or not db.is_retryable(error):
                    raise
            finally:
                scope.close()
        raise AssertionError("unreachable")

    def dispose(self) -> None:
        """Close all pooled connections."""
        if self.read_engine is not self.engine:
            self.read_engine.dispose()
        self.engine.dispose()


class _ReadScope:
    """The connections of one read, checked out on first use and returned by :meth:`close`."""

    __slots__ = ("_conn", "_engine", "_raw", "_raw_engine", "_session")

    def __init__(self, engine: Engine, raw_engine: Engine) -> None:
        self._engine = engine
        self._raw_engine = raw_engine
        self._raw: PoolProxiedConnection | None = None
        self._conn: sa.Connection | None = None
        self._session: Session | None = None

    def __call__(self, sql: str, params: Any) -> Sequence[Sequence[Any]]:
        """Run one statement on the driver connection, outside a transaction.

        Driver errors come out as SQLAlchemy's ``DBAPIError`` (with the connection invalidated
        when it is gone), so the caller's retry policy treats them like any other.
        """
        raw = self._raw
        if raw is None:
            # In autocommit (see Database): a transaction around one SELECT would cost two
            # round trips more, and a single statement is a consistent snapshot on its own.
            raw = self._raw = self._raw_engine.raw_connection()
        dialect = self._raw_engine.dialect
        cursor = raw.cursor()
        try:
            cursor.execute(sql, params)
            return cursor.fetchall()  # type: ignore[no-any-return]
        except dialect.loaded_dbapi.Error as error:
            gone = dialect.is_disconnect(error, raw.dbapi_connection, cursor)
            if gone:
                raw.invalidate(error)
                self._raw = None
            raise DBAPIError.instance(
                sql,
                params,
                error,
                dialect.loaded_dbapi.Error,
                connection_invalidated=gone,
                dialect=dialect,
            ) from error
        finally:
            if self._raw is not None:
                cursor.close()

    def session(self) -> Session:
        """A session in a deferred read transaction of its own connection."""
        conn = self._conn = self._engine.connect()
        conn.begin()
        session = self._session = Session(bind=conn, expire_on_commit=False)
        return session

    def close(self) -> None:
        """Give every connection back to the pool."""
        if self._session is not None:
            self._session.close()
        if self._conn is not None:
            self._conn.close()
        raw = self._raw
        if raw is not None:
            self._raw = None
            raw.close()


__all__ = ["MIGRATIONS_DIR", "Database"]
