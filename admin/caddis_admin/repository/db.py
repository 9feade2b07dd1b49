"""Engine, sessions, transactions and migrations of admin's database."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TypeVar

from sqlalchemy import Engine, make_url, text
from sqlalchemy import create_engine as sa_create_engine
from sqlalchemy.exc import IntegrityError

from caddis._serving.config import DatabaseConfig
from caddis._serving.db import (
    create_engine,
    make_session_factory,
    run_in_transaction,
    session_scope,
)
from caddis_admin.repository.store import (
    GET_EXECUTION,
    CompiledRead,
    DuplicateKeyError,
    Reads,
    Repos,
)

_MIGRATIONS = Path(__file__).parent / "migrations"
_VERSION_TABLE = "caddis_admin_alembic_version"
# Any constant: serializes concurrent migrations of replicas starting together on PostgreSQL.
_MIGRATION_LOCK_KEY = 0x0CADD15AD

T = TypeVar("T")


class Database:
    """admin's database: an engine, a session factory and the schema migrations.

    Every manager call runs in one transaction from :meth:`transaction`, which yields the
    repositories bound to it and commits when the block ends without an exception.

    Args:
        config: The database settings, or just a SQLAlchemy URL.
    """

    def __init__(self, config: DatabaseConfig | str) -> None:
        cfg = DatabaseConfig(url=config) if isinstance(config, str) else config
        url = make_url(cfg.url)
        if url.get_backend_name() == "postgresql":
            # Like caddis._serving.db.create_engine but without pool_pre_ping: a ping on
            # every checkout is one more round trip per RPC (a quarter of a GetExecution).
            # Connections are recycled instead, and a dropped one fails a single attempt.
            self.engine: Engine = sa_create_engine(
                url.set(drivername="postgresql+psycopg"),
                pool_size=cfg.pool_size,
                max_overflow=cfg.max_overflow,
                pool_recycle=300,
                echo=cfg.echo,
            )
        else:
            self.engine = create_engine(cfg)
        self.is_sqlite = self.engine.dialect.name == "sqlite"

        self._sessions = make_session_factory(self.engine)
        # PostgreSQL reads skip BEGIN/COMMIT round trips: each read block issues one or two
        # SELECTs whose consistency does not depend on a snapshot shared between them.
        self._read_sessions = (
            self._sessions
            if self.is_sqlite
            else make_session_factory(self.engine.execution_options(isolation_level="AUTOCOMMIT"))
        )
        # Single-statement reads (read()) take driver connections from a pool of their own
        # whose connections are opened in autocommit once, instead of switching a shared
        # connection's mode at every checkout and back at every return. Its connections are
        # opened lazily, so it only grows as far as concurrent reads go. SQLite connections
        # already run statements outside transactions (the driver's autocommit mode).
        self._read_engine: Engine = (
            self.engine
            if self.is_sqlite
            else sa_create_engine(
                url.set(drivername="postgresql+psycopg"),
                isolation_level="AUTOCOMMIT",
                pool_size=cfg.pool_size,
                max_overflow=cfg.max_overflow,
                pool_recycle=300,
                echo=cfg.echo,
            )
        )
        self._get_execution = CompiledRead(GET_EXECUTION, self._read_engine.dialect)

    def migrate(self) -> None:
        """Bring the schema to the newest revision (Alembic ``upgrade head``).

        Replicas starting together on PostgreSQL take an advisory lock so that only one
        of them runs each migration.
        """
        from alembic import command
        from alembic.config import Config

        cfg = Config()
        cfg.set_main_option("script_location", str(_MIGRATIONS))
        with self.engine.connect() as conn:
            if not self.is_sqlite:
                conn.execute(text("SELECT pg_advisory_lock(:k)"), {"k": _MIGRATION_LOCK_KEY})
            try:
                cfg.attributes["connection"] = conn
                cfg.attributes["version_table"] = _VERSION_TABLE
                command.upgrade(cfg, "head")
                conn.commit()
            finally:
                if not self.is_sqlite:
                    conn.execute(text("SELECT pg_advisory_unlock(:k)"), {"k": _MIGRATION_LOCK_KEY})
                    conn.commit()

    @contextmanager
    def transaction(self, *, readonly: bool = False) -> Iterator[Repos]:
        """One transaction: yields the repositories, commits on success, rolls back on error.

        Args:
            readonly: The block only reads. On SQLite it then does not take the write lock.

        Yields:
            The repositories bound to this transaction's session.
        """
        factory = self._read_sessions if readonly else self._sessions
        with session_scope(factory, write=not readonly) as session:
            yield Repos(session, is_sqlite=self.is_sqlite)

    def read(self, work: Callable[[Reads], T]) -> T:
        """Run single-statement reads on a pooled driver connection (no ORM session).

        Statements run in autocommit: one round trip each, no BEGIN/COMMIT. A connection
        the server dropped (restart, idle timeout; there is no pre-ping) is discarded and
        ``work`` repeated once on a fresh one.

        Args:
            work: The reads; safe to repeat.

        Returns:
            What ``work`` returned.
        """
        dialect = self._read_engine.dialect
        for attempt in (1, 2):
            conn = self._read_engine.raw_connection()
            try:
                cursor = conn.cursor()
                try:
                    return work(Reads(cursor, self._get_execution))
                finally:
                    cursor.close()
            except dialect.loaded_dbapi.Error as exc:
                if attempt == 2 or not dialect.is_disconnect(exc, conn.dbapi_connection, None):
                    raise
                conn.invalidate(exc)
                # A server restart drops every pooled connection, not just this one: start
                # the retry (and later reads) from a fresh pool.
                self._read_engine.dispose()
            finally:
                conn.close()
        raise AssertionError("unreachable")

    def run(self, work: Callable[[Repos], T], *, readonly: bool = False, attempts: int = 8) -> T:
        """Run ``work`` in a transaction, repeating it on deadlocks and lock timeouts.

        Args:
            work: The transaction body; safe to repeat (it gets fresh repositories).
            readonly: See :meth:`transaction`.
            attempts: Tries before the last error propagates.

        Returns:
            What ``work`` returned.
        """
        try:
            return run_in_transaction(
                self._read_sessions if readonly else self._sessions,
                lambda session: work(Repos(session, is_sqlite=self.is_sqlite)),
                write=not readonly,
                attempts=attempts,
            )
        except IntegrityError as exc:
            raise DuplicateKeyError(str(exc.orig)) from exc

    def dispose(self) -> None:
        """Close every pooled connection."""
        self.engine.dispose()
        if self._read_engine is not self.engine:
            self._read_engine.dispose()
