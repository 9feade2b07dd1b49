"""Engine, sessions, transactions and migrations of admin's database."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, create_engine, event, text
from sqlalchemy.orm import Session, sessionmaker

from caddis_admin.repository.store import Repos

_MIGRATIONS = Path(__file__).parent / "migrations"
_VERSION_TABLE = "caddis_admin_alembic_version"
# Any constant: serializes concurrent migrations of replicas starting together on PostgreSQL.
_MIGRATION_LOCK_KEY = 0x0CADD15AD


def _normalize_url(url: str) -> str:
    # Users write postgresql://; psycopg 3 is the driver we ship.
    if url.startswith("postgresql://") or url.startswith("postgres://"):
        return "postgresql+psycopg://" + url.split("://", 1)[1]
    return url


class Database:
    """admin's database: an engine, a session factory and the schema migrations.

    Every manager call runs in one transaction from :meth:`transaction`, which yields the
    repositories bound to it and commits when the block ends without an exception.

    Args:
        url: A SQLAlchemy URL (``sqlite:///path`` or ``postgresql://...``).
        pool_size: Connections kept open to PostgreSQL.
    """

    def __init__(self, url: str, *, pool_size: int = 10) -> None:
        self.url = _normalize_url(url)
        self.is_sqlite = self.url.startswith("sqlite")
        kwargs: dict[str, Any] = {}
        if self.is_sqlite:
            kwargs["connect_args"] = {"check_same_thread": False, "timeout": 30}
        else:
            kwargs["pool_size"] = pool_size
            kwargs["max_overflow"] = pool_size
            kwargs["pool_pre_ping"] = True
        self.engine: Engine = create_engine(self.url, **kwargs)
        if self.is_sqlite:
            _configure_sqlite(self.engine)
        self._sessions = sessionmaker(self.engine, expire_on_commit=False, autoflush=False)
        self._read_sessions = sessionmaker(
            self.engine.execution_options(caddis_readonly=True),
            expire_on_commit=False,
            autoflush=False,
        )
        self._migrated = threading.Event()

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
        self._migrated.set()

    @contextmanager
    def transaction(self, *, readonly: bool = False) -> Iterator[Repos]:
        """One transaction: yields the repositories, commits on success, rolls back on error.

        Args:
            readonly: The block only reads. On SQLite it then does not take the write lock.

        Yields:
            The repositories bound to this transaction's session.
        """
        factory = self._read_sessions if readonly else self._sessions
        session: Session = factory()
        try:
            with session.begin():
                yield Repos(session, is_sqlite=self.is_sqlite)
        finally:
            session.close()

    def dispose(self) -> None:
        """Close every pooled connection."""
        self.engine.dispose()


def _configure_sqlite(engine: Engine) -> None:
    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_conn: Any, _record: Any) -> None:
        # Let SQLAlchemy's "begin" event decide how transactions start (see below).
        dbapi_conn.isolation_level = None
        cursor = dbapi_conn.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.execute("PRAGMA busy_timeout=30000")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn: Any) -> None:
        # A deferred transaction that reads and then writes can fail with "database is
        # locked" when another writer got there first; taking the write lock up front makes
        # writers queue on busy_timeout instead. Read-only blocks keep WAL's free reads.
        if conn.get_execution_options().get("caddis_readonly"):
            conn.exec_driver_sql("BEGIN")
        else:
            conn.exec_driver_sql("BEGIN IMMEDIATE")
