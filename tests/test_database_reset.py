"""A pooled connection goes back to the pool with nothing left to undo, and a
request's session sends one ROLLBACK at its end, not two (the pool's own reset
on return is replaced: ``_track_transactions`` in app/extensions/database.py).

The counts are MariaDB's own, ``Com_rollback`` and ``Com_commit`` of the
connection's session; the pool holds one connection, so every step below uses
the same one."""

from __future__ import annotations

from typing import Any

import pytest
from conftest import MYSQL_URL, SettingsFactory
from sqlalchemy import Engine, select

from app import create_app
from app.core.application import APIFlask
from app.extensions.database import get_database
from app.models import Tag


def _one_connection_app(make_settings: SettingsFactory, url: str) -> APIFlask:
    return create_app(
        make_settings(database_url=url, database_pool_size=1, database_max_overflow=0)
    )


def _counters(engine: Engine) -> dict[str, int]:
    """This connection's COMMITs and ROLLBACKs so far. Reading them is a raw
    checkout, which its return rolls back: one ROLLBACK of its own."""
    raw = engine.raw_connection()
    try:
        cursor = raw.cursor()
        cursor.execute("SHOW SESSION STATUS WHERE Variable_name IN ('Com_commit', 'Com_rollback')")
        rows: list[tuple[str, str]] = list(cursor.fetchall())
        cursor.close()
    finally:
        raw.close()
    return {name.lower(): int(value) for name, value in rows}


def _sent(before: dict[str, int], after: dict[str, int]) -> dict[str, int]:
    """What was sent between two readings, minus the first reading's own ROLLBACK."""
    return {
        "com_commit": after["com_commit"] - before["com_commit"],
        "com_rollback": after["com_rollback"] - before["com_rollback"] - 1,
    }


#: The counts are MariaDB's session status: SQLite has no server to ask.
@pytest.mark.parametrize("db_engine", ["mysql"], indirect=True)
def test_a_read_request_sends_one_rollback(
    make_settings: SettingsFactory, db_engine: Engine
) -> None:
    app = _one_connection_app(make_settings, MYSQL_URL)
    engine = get_engine(app)
    before = _counters(engine)
    with app.test_request_context():
        get_database().session.scalars(select(Tag)).all()
    assert _sent(before, _counters(engine)) == {"com_commit": 0, "com_rollback": 1}


#: The counts are MariaDB's session status: SQLite has no server to ask.
@pytest.mark.parametrize("db_engine", ["mysql"], indirect=True)
def test_a_committed_write_sends_no_rollback_at_all(
    make_settings: SettingsFactory, db_engine: Engine
) -> None:
    app = _one_connection_app(make_settings, MYSQL_URL)
    engine = get_engine(app)
    before = _counters(engine)
    with app.test_request_context():
        session = get_database().session
        session.add(Tag(name="committed"))
        session.commit()
    assert _sent(before, _counters(engine)) == {"com_commit": 1, "com_rollback": 0}


def test_a_raw_connection_left_in_a_transaction_is_rolled_back_on_return(
    make_settings: SettingsFactory, db_engine: Engine
) -> None:
    url = db_engine.url.render_as_string(hide_password=False)
    engine = get_engine(_one_connection_app(make_settings, url))
    raw = engine.raw_connection()
    driver: Any = raw.dbapi_connection
    cursor = raw.cursor()
    cursor.execute("INSERT INTO tags (name) VALUES ('left open')")
    cursor.close()
    raw.close()  # back to the pool, the INSERT neither committed nor rolled back by us

    # The driver's connection itself, as the next checkout will get it: its own
    # uncommitted row would be visible to it, had nothing rolled it back.
    probe = driver.cursor()
    probe.execute("SELECT COUNT(*) FROM tags WHERE name = 'left open'")
    assert probe.fetchone()[0] == 0
    probe.close()


def test_a_session_that_fails_mid_transaction_leaves_nothing_behind(
    make_settings: SettingsFactory, db_engine: Engine
) -> None:
    url = db_engine.url.render_as_string(hide_password=False)
    app = _one_connection_app(make_settings, url)
    with app.test_request_context():
        session = get_database().session
        session.add(Tag(name="written, then the request failed"))
        session.flush()
        with pytest.raises(Exception, match="no_such_table"):
            session.connection().exec_driver_sql("SELECT * FROM no_such_table")
    with app.test_request_context():
        names = get_database().session.scalars(select(Tag.name)).all()
    assert "written, then the request failed" not in names


def get_engine(app: APIFlask) -> Engine:
    engine: Engine = app.extensions["database"].engine
    return engine
