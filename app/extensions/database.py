"""The relational database: one SQLAlchemy engine and a session per app context.

SQLite (a file under the instance folder) is the embedded default; MySQL/MariaDB
is reached through PyMySQL with ``utf8mb4``, strict SQL mode and UTC. The pool
pre-pings and recycles connections, and its sizes come from the settings.

**Commit effects.** Work that must follow a commit (evicting cached values,
sending an indexing task) registers here, on the app's own session factory,
through :meth:`Database.on_commit`; ``create_app`` shows every registration:

```python
database.on_commit("cache", collect=nodes_changed_by, act=manager.remove_many)
```

``collect(session)`` runs after each flush, inside the transaction, and returns
what the flush changed that matters to the effect (it may also write to the
transaction: the search outbox does). Once the transaction commits, ``act``
gets everything its ``collect`` returned, once. A rolled-back transaction runs
no ``act`` and forgets what was collected, so a failed write triggers nothing.
An ``act`` that raises is logged, never raised: the commit has happened.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Generic, TypeVar, cast

from flask import current_app
from flask import globals as flask_globals
from sqlalchemy import Engine, create_engine, event, make_url, text
from sqlalchemy.orm import Session, UOWTransaction, scoped_session, sessionmaker

if TYPE_CHECKING:
    from sqlite3 import Connection as SQLiteConnection

    from sqlalchemy import Connection
    from sqlalchemy.engine import ExceptionContext
    from sqlalchemy.engine.interfaces import DBAPIConnection
    from sqlalchemy.pool import ConnectionPoolEntry, PoolResetState

    from app.core.application import APIFlask
    from app.core.settings import Settings

log = logging.getLogger("app.database")

#: Strict mode: MySQL rejects bad values instead of truncating them with a warning.
MYSQL_SQL_MODE = "TRADITIONAL,NO_ENGINE_SUBSTITUTION"

ItemT = TypeVar("ItemT")

#: Where a session finds its database's effects, and keeps what each one
#: collected until the commit or the rollback.
_EFFECTS = "commit_effects"
_COLLECTED = "commit_effects_collected"


@dataclass(frozen=True, slots=True)
class CommitEffect(Generic[ItemT]):
    """One registered "after this commit, do X": see the module's docstring."""

    name: str
    collect: Callable[[Session], Iterable[ItemT]]
    act: Callable[[list[ItemT]], None]
    #: Runs before each flush, for what the flush will make unreadable (the
    #: articles a cascade deletes with their author); its items join ``collect``'s.
    collect_before_flush: Callable[[Session], Iterable[ItemT]] | None = None


class Database:
    """The engine, the app-context-scoped session and the commit effects of one app."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self._effects: list[CommitEffect[Any]] = []
        # Each session finds the effects through its info, so the module-level
        # listeners hold no reference to this object (bound methods would keep
        # every Database, and its pool of connections, alive for good).
        self.session_factory = sessionmaker(
            bind=engine, expire_on_commit=False, info={_EFFECTS: self._effects}
        )
        self.session: scoped_session[Session] = scoped_session(
            self.session_factory, scopefunc=_app_context_id
        )
        event.listen(self.session_factory, "before_flush", _before_flush)
        event.listen(self.session_factory, "after_flush", _after_flush)
        event.listen(self.session_factory, "after_commit", _after_commit)
        event.listen(self.session_factory, "after_rollback", _after_rollback)

    def on_commit(
        self,
        name: str,
        *,
        collect: Callable[[Session], Iterable[ItemT]],
        act: Callable[[list[ItemT]], None],
        collect_before_flush: Callable[[Session], Iterable[ItemT]] | None = None,
    ) -> None:
        """After each commit of this app's sessions, ``act`` on what ``collect``
        found in its flushes. Effects run in the order they were registered."""
        if any(effect.name == name for effect in self._effects):
            raise ValueError(f"a commit effect named {name!r} is registered already")
        self._effects.append(CommitEffect(name, collect, act, collect_before_flush))

    @property
    def commit_effects(self) -> tuple[CommitEffect[Any], ...]:
        """The registered effects, in the order they run."""
        return tuple(self._effects)

    def ping(self) -> None:
        """Run ``SELECT 1``; raises if the database cannot be reached."""
        with self.engine.connect() as connection:
            connection.execute(text("SELECT 1"))

    def remove_session(self, _exc: BaseException | None = None) -> None:
        self.session.remove()


def stage_for_commit(session: Session, name: str, items: Iterable[Any]) -> None:
    """Hand ``items`` to effect ``name``'s ``act`` once this session's
    transaction commits, as if its ``collect`` had returned them: for work done
    outside a flush (the search delivery's notifications). Raises if no effect
    of that name is registered, so nothing is dropped without a word."""
    if not any(effect.name == name for effect in _effects_of(session)):
        raise LookupError(f"no commit effect named {name!r} is registered")
    batch = list(items)
    if batch:
        _collected(session).setdefault(name, []).extend(batch)


def _effects_of(session: Session) -> list[CommitEffect[Any]]:
    effects: list[CommitEffect[Any]] = session.info.get(_EFFECTS, [])
    return effects


def _collected(session: Session) -> dict[str, list[Any]]:
    collected: dict[str, list[Any]] = session.info.setdefault(_COLLECTED, {})
    return collected


def _before_flush(session: Session, _flush: UOWTransaction, _instances: Any) -> None:
    for effect in _effects_of(session):
        if effect.collect_before_flush is not None:
            items = list(effect.collect_before_flush(session))
            if items:
                _collected(session).setdefault(effect.name, []).extend(items)


def _after_flush(session: Session, _flush: UOWTransaction) -> None:
    for effect in _effects_of(session):
        items = list(effect.collect(session))
        if items:
            _collected(session).setdefault(effect.name, []).extend(items)


def _after_commit(session: Session) -> None:
    collected: dict[str, list[Any]] = session.info.pop(_COLLECTED, {})
    if not collected:
        return
    for effect in _effects_of(session):
        items = collected.get(effect.name)
        if not items:
            continue
        try:
            effect.act(items)
        except Exception:  # the commit happened; an effect's fault must not undo the request
            log.exception("commit effect %s failed after commit", effect.name)


def _after_rollback(session: Session) -> None:
    session.info.pop(_COLLECTED, None)


def _app_context_id() -> int:
    # One session per app context: per request, per CLI command, per Celery task.
    app_ctx = cast("Any", flask_globals.app_ctx)  # a LocalProxy at run time
    return id(app_ctx._get_current_object())


def create_database_engine(settings: Settings) -> Engine:
    url = make_url(settings.resolved_database_url)
    options: dict[str, Any] = {
        "pool_pre_ping": True,
        "pool_recycle": settings.database_pool_recycle,
        # _rollback_unless_ended resets a returned connection instead.
        "pool_reset_on_return": None,
    }
    # Not create_engine(echo=True): that adds SQLAlchemy's own handler, and every
    # statement would be printed twice, once outside the app's log format.
    logging.getLogger("sqlalchemy.engine").setLevel(
        logging.INFO if settings.database_echo else logging.WARNING
    )
    if url.get_backend_name() == "sqlite":
        return _track_transactions(_sqlite_engine(url.database, options))
    connect_args: dict[str, Any] = {}
    if url.get_backend_name() == "mysql":
        connect_args = {
            "charset": "utf8mb4",
            "connect_timeout": settings.database_connect_timeout,
            # Without these, a database that stops answering holds the thread for good.
            "read_timeout": settings.database_read_timeout,
            "write_timeout": settings.database_write_timeout,
            "init_command": f"SET SESSION sql_mode='{MYSQL_SQL_MODE}', time_zone='+00:00'",
        }
    return _track_transactions(
        create_engine(
            url,
            pool_size=settings.database_pool_size,
            max_overflow=settings.database_max_overflow,
            pool_timeout=settings.database_pool_timeout,
            connect_args=connect_args,
            **options,
        )
    )


#: In a pooled connection's ``info``: its last transaction was committed or
#: rolled back through SQLAlchemy, and no statement has begun another since.
_ENDED = "transaction_ended"


def _track_transactions(engine: Engine) -> Engine:
    """One ROLLBACK per session, not two.

    A session's ``close()`` rolls its transaction back, then hands the
    connection back to the pool, whose reset-on-return would send a second
    ROLLBACK on a connection that has nothing to undo: a round trip on every
    request. The pool's reset is off (``pool_reset_on_return=None``) and
    :func:`_rollback_unless_ended` does it instead, skipping only a connection
    whose transaction these events saw end. A checkout, a BEGIN or any
    database error marks the connection as not ended, so a raw DBAPI use or a
    failed ROLLBACK still gets its ROLLBACK on return.
    """
    event.listen(engine, "checkout", _not_ended)
    event.listen(engine, "begin", _began)
    event.listen(engine, "commit", _ended)
    event.listen(engine, "rollback", _ended)
    event.listen(engine, "handle_error", _failed)
    event.listen(engine, "reset", _rollback_unless_ended)
    return engine


def _not_ended(_dbapi: DBAPIConnection, record: ConnectionPoolEntry, _proxy: object) -> None:
    record.info[_ENDED] = False


def _began(connection: Connection) -> None:
    connection.info[_ENDED] = False


def _ended(connection: Connection) -> None:
    connection.info[_ENDED] = True


def _failed(context: ExceptionContext) -> None:
    if context.connection is not None and not context.connection.closed:
        context.connection.info[_ENDED] = False


def _rollback_unless_ended(
    dbapi: DBAPIConnection, record: ConnectionPoolEntry, state: PoolResetState
) -> None:
    if state.terminate_only or state.transaction_was_reset or record.info.pop(_ENDED, False):
        return  # about to be closed, or nothing to undo
    dbapi.rollback()


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
