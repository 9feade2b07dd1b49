"""The shared SQLAlchemy helpers on SQLite and PostgreSQL."""

from __future__ import annotations

import threading

import pytest
import sqlalchemy as sa

from caddis._serving import db


def test_sqlite_engine_settings(sqlite_url: str) -> None:
    engine = db.create_engine(sqlite_url)
    with engine.connect() as conn:
        assert conn.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
        assert conn.exec_driver_sql("PRAGMA foreign_keys").scalar() == 1
        assert conn.exec_driver_sql("PRAGMA busy_timeout").scalar() == 30000
    engine.dispose()


def test_session_scope_commits_and_rolls_back(db_url: str) -> None:
    engine = db.create_engine(db_url)
    with engine.begin() as conn:
        conn.exec_driver_sql("CREATE TABLE t (k INTEGER PRIMARY KEY, v INTEGER NOT NULL)")
    factory = db.make_session_factory(engine)
    with db.session_scope(factory) as s:
        s.execute(sa.text("INSERT INTO t VALUES (1, 0)"))
    with pytest.raises(RuntimeError), db.session_scope(factory) as s:
        s.execute(sa.text("INSERT INTO t VALUES (2, 0)"))
        raise RuntimeError
    with db.session_scope(factory, write=False) as s:
        assert s.execute(sa.text("SELECT count(*) FROM t")).scalar() == 1
    engine.dispose()


def test_concurrent_read_modify_write_is_serialized_with_retries(db_url: str) -> None:
    engine = db.create_engine(db_url)
    with engine.begin() as conn:
        conn.exec_driver_sql("CREATE TABLE t (k INTEGER PRIMARY KEY, v INTEGER NOT NULL)")
        conn.exec_driver_sql("INSERT INTO t VALUES (1, 0)")
    factory = db.make_session_factory(engine)

    def bump(session: sa.orm.Session) -> None:
        session.execute(sa.text("UPDATE t SET v = v + 1 WHERE k = 1"))

    threads = [
        threading.Thread(target=lambda: [db.run_in_transaction(factory, bump) for _ in range(10)])
        for _ in range(5)
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    with db.session_scope(factory, write=False) as s:
        assert s.execute(sa.text("SELECT v FROM t")).scalar() == 50
    engine.dispose()
