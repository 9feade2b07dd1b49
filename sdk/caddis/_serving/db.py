"""SQLAlchemy helpers shared by the services: engines, sessions, transactions, migrations.

- :func:`create_engine` makes an engine for ``sqlite:///...`` (WAL, busy timeout, foreign keys,
  explicit ``BEGIN``) or ``postgresql+psycopg://...`` (pool sized from config).
- :func:`session_scope` is the transaction at the edge: the rpc layer opens it, managers and
  repositories use the session (and may ``flush``) but never commit.
- :func:`run_in_transaction` retries a whole transaction on serialization failures, deadlocks,
  a busy SQLite database and (optionally) unique-constraint races.
- :func:`upgrade_to_head` runs a package's Alembic migrations programmatically at start.
"""

from __future__ import annotations

import logging
import random
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TypeVar

import sqlalchemy as sa
from sqlalchemy import event, exc
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session, sessionmaker

from caddis._serving.config import DatabaseConfig

_log = logging.getLogger(__name__)

T = TypeVar("T")

# Execution option read by the SQLite "begin" hook: which BEGIN to emit.
_SQLITE_BEGIN = "caddis_sqlite_begin"


def create_engine(config: DatabaseConfig | str) -> Engine:
    """Create an engine for SQLite or PostgreSQL with the settings the services rely on.

    SQLite gets WAL journaling (readers do not block the writer), a busy timeout, foreign keys
    and an explicit ``BEGIN`` that the driver would otherwise defer: write transactions start
    with ``BEGIN IMMEDIATE`` (see :func:`session_scope`) so that two writers queue on the lock
    instead of failing with "database is locked" when one upgrades a read lock.

    Args:
        config: A :class:`DatabaseConfig` or just its URL.

    Returns:
        The engine.
    """
    if isinstance(config, str):
        config = DatabaseConfig(url=config)
    url = sa.make_url(config.url)
    if url.get_backend_name() == "sqlite":
        return _sqlite_engine(config)
    if url.get_backend_name() == "postgresql" and url.drivername == "postgresql":
        # Plain postgresql:// would pick psycopg2, which we do not install.
        url = url.set(drivername="postgresql+psycopg")
    return sa.create_engine(
        url,
        pool_size=config.pool_size,
        max_overflow=config.max_overflow,
        # No pre-ping: it costs a round trip per transaction. A connection found dead is
        # invalidated and the transaction retried instead (see is_retryable).
        pool_recycle=1800,
        echo=config.echo,
    )


def _sqlite_engine(config: DatabaseConfig) -> Engine:
    url = sa.make_url(config.url)
    memory = url.database in (None, "", ":memory:")
    kwargs: dict[str, Any] = {"echo": config.echo}
    if memory:
        # One shared connection, or every session would see its own empty database.
        kwargs["poolclass"] = sa.pool.StaticPool
        kwargs["connect_args"] = {"check_same_thread": False}
    else:
        kwargs["pool_size"] = config.pool_size
        kwargs["max_overflow"] = config.max_overflow
        kwargs["connect_args"] = {"check_same_thread": False}
    engine = sa.create_engine(url, **kwargs)
    busy_ms = int(config.sqlite_busy_timeout_ms)

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, connection_record: Any) -> None:
        # Take transaction control away from the driver; the "begin" hook emits BEGIN.
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        try:
            if not memory:
                cursor.execute("PRAGMA journal_mode=WAL")
                cursor.execute("PRAGMA synchronous=NORMAL")
            cursor.execute(f"PRAGMA busy_timeout={busy_ms}")
            cursor.execute("PRAGMA foreign_keys=ON")
        finally:
            cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn: sa.Connection) -> None:
        mode = conn.get_execution_options().get(_SQLITE_BEGIN, "DEFERRED")
        conn.exec_driver_sql(f"BEGIN {mode}")

    return engine


def make_session_factory(engine: Engine) -> sessionmaker[Session]:
    """A session factory whose objects stay readable after commit (``expire_on_commit=False``).

    Args:
        engine: The engine sessions connect through.

    Returns:
        The factory.
    """
    return sessionmaker(bind=engine, expire_on_commit=False, autoflush=True)


@contextmanager
def session_scope(factory: sessionmaker[Session], *, write: bool = True) -> Iterator[Session]:
    """One transaction: commit when the block succeeds, roll back when it raises.

    Args:
        factory: From :func:`make_session_factory`.
        write: Whether the block writes. On SQLite a writing block starts with
            ``BEGIN IMMEDIATE`` (takes the write lock up front, so concurrent writers queue
            instead of deadlocking); a read-only block starts a deferred transaction.

    Yields:
        The session, inside an open transaction.
    """
    session = factory()
    try:
        with session.begin():
            if session.get_bind().dialect.name == "sqlite":
                # Starts the transaction now, with the BEGIN the hook picks from this option.
                session.connection(
                    execution_options={_SQLITE_BEGIN: "IMMEDIATE" if write else "DEFERRED"}
                )
            yield session
    finally:
        session.close()


def is_retryable(error: BaseException, *, integrity: bool = False) -> bool:
    """Whether repeating the whole transaction may succeed.

    Args:
        error: What the transaction raised.
        integrity: Also count unique-constraint violations (a concurrent insert of the same
            key won; a fresh transaction will see it).

    Returns:
        True for serialization failures, deadlocks, a dropped connection, a locked SQLite
        database and, when asked, integrity errors.
    """
    if integrity and isinstance(error, exc.IntegrityError):
        return True
    if not isinstance(error, exc.DBAPIError):
        return False
    if error.connection_invalidated:
        return True
    orig = getattr(error, "orig", None)
    sqlstate = getattr(orig, "sqlstate", None) or getattr(orig, "pgcode", None)
    if sqlstate in {"40001", "40P01"}:  # serialization_failure, deadlock_detected
        return True
    text = str(orig or error).lower()
    return "database is locked" in text or "database table is locked" in text


def run_in_transaction(
    factory: sessionmaker[Session],
    work: Callable[[Session], T],
    *,
    write: bool = True,
    attempts: int = 8,
    retry_integrity: bool = False,
) -> T:
    """Run ``work`` in a transaction, repeating it from scratch on retryable conflicts.

    ``work`` must be safe to repeat (it sees a fresh session each time).

    Args:
        factory: From :func:`make_session_factory`.
        work: The transaction body.
        write: See :func:`session_scope`.
        attempts: Tries before the last error propagates.
        retry_integrity: Also retry on unique-constraint violations.

    Returns:
        What ``work`` returned.
    """
    for attempt in range(1, attempts + 1):
        try:
            with session_scope(factory, write=write) as session:
                return work(session)
        except exc.DBAPIError as error:
            if attempt == attempts or not is_retryable(error, integrity=retry_integrity):
                raise
            _log.debug("retrying transaction after %s (attempt %d)", type(error).__name__, attempt)
            # Jittered backoff so that racing callers do not collide again in lockstep.
            time.sleep(random.uniform(0, 0.002 * 2**attempt))
    raise AssertionError("unreachable")


def upgrade_to_head(engine: Engine, migrations_dir: str | Path) -> None:
    """Upgrade the database to the newest Alembic revision found in ``migrations_dir``.

    No ``alembic.ini`` is needed: the script location is the package's migrations directory
    and the connection is handed to ``env.py`` through ``config.attributes["connection"]``.

    Args:
        engine: The database to migrate.
        migrations_dir: Directory holding ``env.py`` and ``versions/``.
    """
    from alembic import command
    from alembic.config import Config

    cfg = Config()
    cfg.set_main_option("script_location", str(migrations_dir))
    with engine.begin() as connection:
        cfg.attributes["connection"] = connection
        command.upgrade(cfg, "head")


__all__ = [
    "create_engine",
    "is_retryable",
    "make_session_factory",
    "run_in_transaction",
    "session_scope",
    "upgrade_to_head",
]
