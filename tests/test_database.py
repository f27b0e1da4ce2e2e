"""The database extension on SQLite and on the real MariaDB."""

from __future__ import annotations

import gc
import logging
import socket
import time
import weakref
from typing import Any

import pytest
from cache_support import TCPProxy
from conftest import MYSQL_URL, SettingsFactory
from pydantic import ValidationError
from sqlalchemy import make_url, text
from sqlalchemy.pool import QueuePool

from app import create_app
from app.extensions.database import Database, get_database


def test_ping_works_on_both_backends(make_settings: SettingsFactory, database_url: str) -> None:
    app = create_app(make_settings(database_url=database_url))
    with app.app_context():
        get_database().ping()


def test_one_session_per_app_context(make_settings: SettingsFactory, database_url: str) -> None:
    app = create_app(make_settings(database_url=database_url))
    database = app.extensions["database"]
    with app.app_context():
        first = database.session()
        assert database.session() is first
        assert first.execute(text("SELECT 1")).scalar_one() == 1
    with app.app_context():
        assert database.session() is not first


def test_mysql_connections_are_utf8mb4_strict_and_utc(make_settings: SettingsFactory) -> None:
    app = create_app(make_settings(database_url=MYSQL_URL))
    with app.app_context(), get_database().engine.connect() as connection:
        charset = connection.execute(text("SELECT @@character_set_connection")).scalar_one()
        sql_mode = connection.execute(text("SELECT @@SESSION.sql_mode")).scalar_one()
        time_zone = connection.execute(text("SELECT @@SESSION.time_zone")).scalar_one()
    assert charset == "utf8mb4"
    assert "STRICT_ALL_TABLES" in sql_mode
    assert "STRICT_TRANS_TABLES" in sql_mode
    assert time_zone == "+00:00"


def test_mysql_pool_sizes_come_from_settings(make_settings: SettingsFactory) -> None:
    app = create_app(
        make_settings(
            database_url=MYSQL_URL,
            database_pool_size=3,
            database_max_overflow=1,
            database_pool_recycle=600,
        )
    )
    engine = app.extensions["database"].engine
    assert isinstance(engine.pool, QueuePool)
    assert engine.pool.size() == 3
    assert engine.pool._max_overflow == 1
    assert engine.pool._recycle == 600
    assert engine.pool._pre_ping is True


def test_embedded_default_is_a_sqlite_file_in_the_instance_folder(
    make_settings: SettingsFactory,
) -> None:
    settings = make_settings()
    app = create_app(settings)
    with app.app_context():
        get_database().ping()
        mode = get_database().session().execute(text("PRAGMA journal_mode")).scalar_one()
        foreign_keys = get_database().session().execute(text("PRAGMA foreign_keys")).scalar_one()
    assert (settings.instance_path / "app.db").is_file()
    assert (mode, foreign_keys) == ("wal", 1)


def test_in_memory_sqlite_is_allowed(make_settings: SettingsFactory) -> None:
    app = create_app(make_settings(database_url="sqlite://"))
    with app.app_context():
        get_database().ping()


def test_database_echo_logs_each_statement_once_through_the_app_logging(
    make_settings: SettingsFactory, caplog: pytest.LogCaptureFixture
) -> None:
    app = create_app(make_settings(database_echo=True))
    with app.app_context():
        get_database().ping()
    statements = [
        r
        for r in caplog.records
        if r.name.startswith("sqlalchemy.engine") and "SELECT 1" in r.getMessage()
    ]
    assert len(statements) == 1
    assert logging.getLogger("sqlalchemy.engine").handlers == []
    create_app(make_settings(database_echo=False))
    assert logging.getLogger("sqlalchemy.engine").level == logging.WARNING


def test_an_app_that_is_gone_leaves_no_database_behind(make_settings: SettingsFactory) -> None:
    """The commit effects' listeners hold no reference to their Database, so a
    dropped app's engine and its pooled connections go with it (a suite that
    builds hundreds of apps would otherwise run MariaDB out of connections)."""
    databases: list[weakref.ref[Database]] = []
    for _ in range(3):
        app = create_app(make_settings(database_url=MYSQL_URL, meili_url="http://127.0.0.1:9"))
        database = app.extensions["database"]
        with app.app_context():
            database.ping()
        databases.append(weakref.ref(database))
        del app, database
    gc.collect()
    alive = [ref for ref in databases[:-1] if ref() is not None]
    assert alive == []


def test_a_database_that_stops_answering_is_a_503_within_the_read_timeout(
    make_settings: SettingsFactory, db_engine: Any
) -> None:
    """A black hole between the app and MariaDB (the connections stay open and
    nothing comes back) once held request threads for 46 s. With the read
    timeout, the request gives up and answers the envelope, and readiness still
    answers within its own bound."""
    if db_engine.dialect.name != "mysql":
        pytest.skip("read and write timeouts are PyMySQL's; SQLite is a local file")
    url = make_url(MYSQL_URL)
    proxy = TCPProxy(target_port=url.port or 3306)
    proxy.start()
    try:
        app = create_app(
            make_settings(
                database_url=url.set(host="127.0.0.1", port=proxy.port).render_as_string(
                    hide_password=False
                ),
                database_read_timeout=1.0,
                database_write_timeout=1.0,
            )
        )
        client = app.test_client()
        assert client.get("/api/v1/articles").status_code == 200
        proxy.freeze()
        # The page read before is cached: it is still served, without the database.
        assert client.get("/api/v1/articles").status_code == 200
        started = time.monotonic()
        response = client.get("/api/v1/articles?per_page=7")  # a page not read yet
        waited = time.monotonic() - started
        assert response.status_code == 503
        assert response.json is not None
        assert response.json["message"] == "The database is unavailable; retry shortly"
        # One read timeout for the pool's pre-ping, then the reconnect's
        # connect timeout (DATABASE_CONNECT_TIMEOUT, 1 s) at most.
        assert waited < 1.0 + 1.0 + 1.0
        started = time.monotonic()
        ready = client.get("/api/v1/health/ready")
        assert ready.status_code == 503
        assert time.monotonic() - started < 2.0
        assert ready.json is not None
        assert ready.json["checks"]["database"]["status"] == "down"
    finally:
        proxy.stop()


def test_an_address_that_never_answers_costs_the_connect_timeout(
    make_settings: SettingsFactory, db_engine: Any
) -> None:
    """A database that is gone (a stopped container, a dead address) costs a
    request DATABASE_CONNECT_TIMEOUT, not the driver's 10 s: the stack test's
    "503 within 2 s" with MySQL stopped rests on it. A listening socket whose
    accept queue is full drops every new SYN, as a dead address does."""
    if db_engine.dialect.name != "mysql":
        pytest.skip("the connect timeout is PyMySQL's; SQLite is a local file")
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen(0)
        port = server.getsockname()[1]
        queued = socket.create_connection(("127.0.0.1", port), timeout=1)  # fills the queue
        try:
            app = create_app(
                make_settings(
                    database_url=make_url(MYSQL_URL)
                    .set(host="127.0.0.1", port=port)
                    .render_as_string(hide_password=False),
                    database_connect_timeout=0.5,
                )
            )
            started = time.monotonic()
            response = app.test_client().get("/api/v1/articles")
            waited = time.monotonic() - started
        finally:
            queued.close()
    assert response.status_code == 503
    assert 0.5 <= waited < 1.5, waited


def test_read_and_write_timeouts_must_be_below_gunicorns(make_settings: SettingsFactory) -> None:
    with pytest.raises(
        ValidationError, match="DATABASE_READ_TIMEOUT must be below GUNICORN_TIMEOUT"
    ):
        make_settings(database_read_timeout=30, gunicorn_timeout=30)
    with pytest.raises(ValidationError, match="DATABASE_WRITE_TIMEOUT must be below"):
        make_settings(database_write_timeout=45)
