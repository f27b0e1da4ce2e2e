"""The relational database: one SQLAlchemy engine and a session per app context.

SQLite (a file under the instance folder) is the embedded default; MySQL/MariaDB
is reached through PyMySQL with ``utf8mb4``, strict SQL mode and UTC. The pool
pre-pings and recycles connections, and its sizes come from the settings.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

from flask import current_app
from flask import globals as flask_globals
from sqlalchemy import Engine, create_engine, event, make_url, text
from sqlalchemy.orm import Session, scoped_session, sessionmaker

if TYPE_CHECKING:
    from sqlite3 import Connection as SQLiteConnection

    from sqlalchemy.pool import ConnectionPoolEntry

    from app.core.application import APIFlask
    from app.core.settings import Settings

#: Strict mode: MySQL rejects bad values instead of truncating them with a warning.
MYSQL_SQL_MODE = "TRADITIONAL,NO_ENGINE_SUBSTITUTION"


class Database:
    """The engine and the app-context-scoped session of one app."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self.session: scoped_session[Session] = scoped_session(
            sessionmaker(bind=engine, expire_on_commit=False),
            scopefunc=_app_context_id,
        )

    def ping(self) -> None:
        """Run ``SELECT 1``; raises if the database cannot be reached."""
        with self.engine.connect() as connection:
            connection.execute(text("SELECT 1"))

    def remove_session(self, _exc: BaseException | None = None) -> None:
        self.session.remove()


def _app_context_id() -> int:
    # One session per app context: per request, per CLI command, per Celery task.
    app_ctx = cast("Any", flask_globals.app_ctx)  # a LocalProxy at run time
    return id(app_ctx._get_current_object())


def create_database_engine(settings: Settings) -> Engine:
    url = make_url(settings.resolved_database_url)
    options: dict[str, Any] = {
        "pool_pre_ping": True,
        "pool_recycle": settings.database_pool_recycle,
    }
    # Not create_engine(echo=True): that adds SQLAlchemy's own handler, and every
    # statement would be printed twice, once outside the app's log format.
    logging.getLogger("sqlalchemy.engine").setLevel(
        logging.INFO if settings.database_echo else logging.WARNING
    )
    if url.get_backend_name() == "sqlite":
        return _sqlite_engine(url.database, options)
    connect_args: dict[str, Any] = {}
    if url.get_backend_name() == "mysql":
        connect_args = {
            "charset": "utf8mb4",
            "connect_timeout": 5,
            "init_command": f"SET SESSION sql_mode='{MYSQL_SQL_MODE}', time_zone='+00:00'",
        }
    return create_engine(
        url,
        pool_size=settings.database_pool_size,
        max_overflow=settings.database_max_overflow,
        pool_timeout=settings.database_pool_timeout,
        connect_args=connect_args,
        **options,
    )


def _sqlite_engine(database: str | None, options: dict[str, Any]) -> Engine:
    if database and database != ":memory:":
        Path(database).parent.mkdir(parents=True, exist_ok=True)
    engine = create_engine(
        f"sqlite:///{database or ':memory:'}",
        connect_args={"timeout": 15},
        **options,
    )
    event.listen(engine, "connect", _sqlite_pragmas)
    return engine


def _sqlite_pragmas(dbapi_connection: SQLiteConnection, _record: ConnectionPoolEntry) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.close()


def init_app(app: APIFlask) -> None:
    database = Database(create_database_engine(app.settings))
    app.extensions["database"] = database
    app.teardown_appcontext(database.remove_session)


def get_database() -> Database:
    """The current app's :class:`Database`."""
    database: Database = current_app.extensions["database"]
    return database
