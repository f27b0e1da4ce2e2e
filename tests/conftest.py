"""Shared fixtures. The suite runs against real MariaDB/MySQL and Redis servers.

Where they are: ``TEST_MYSQL_URL`` (default ``mysql+pymysql://root@127.0.0.1:3306/test``)
and ``TEST_REDIS_URL`` (default ``redis://127.0.0.1:6379/15``). If either is
unreachable the run stops at once with one line saying how to start it.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pymysql
import pytest
import redis
from flask.testing import FlaskClient
from sqlalchemy import Engine, make_url
from sqlalchemy.orm import Session

from app import create_app, migrations
from app.cache import close_all
from app.core.application import APIFlask
from app.core.settings import Settings
from app.extensions.database import create_database_engine
from app.models import Base

MYSQL_URL = os.environ.get("TEST_MYSQL_URL", "mysql+pymysql://root@127.0.0.1:3306/test")
REDIS_URL = os.environ.get("TEST_REDIS_URL", "redis://127.0.0.1:6379/15")
START_HINT = "start it with `docker compose -f compose.test.yaml up -d --wait`"

SettingsFactory = Callable[..., Settings]


def _check_mysql() -> str | None:
    url = make_url(MYSQL_URL)
    try:
        pymysql.connect(
            host=url.host or "127.0.0.1",
            port=url.port or 3306,
            user=url.username or "root",
            password=url.password or "",
            database=url.database,
            connect_timeout=3,
        ).close()
    except pymysql.MySQLError as exc:
        return f"MariaDB/MySQL at {url.host}:{url.port or 3306} is unreachable ({exc.args[-1]}); {START_HINT}"
    return None


def _check_redis() -> str | None:
    try:
        redis.Redis.from_url(REDIS_URL, socket_connect_timeout=3, socket_timeout=3).ping()
    except redis.RedisError as exc:
        return f"Redis at {REDIS_URL} is unreachable ({exc}); {START_HINT}"
    return None


STACK_TESTS = Path(__file__).parent / "stack"


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--stack",
        action="store_true",
        help="run tests/stack, the compose stack end to end in Docker (make stack-test), "
        "instead of the suite",
    )


def pytest_ignore_collect(collection_path: Path, config: pytest.Config) -> bool | None:
    """tests/stack runs only with --stack, and then alone."""
    in_stack = collection_path == STACK_TESTS or STACK_TESTS in collection_path.parents
    if config.getoption("--stack"):
        return None if in_stack or collection_path in STACK_TESTS.parents else True
    return True if in_stack else None


def pytest_sessionstart(session: pytest.Session) -> None:
    if session.config.getoption("--stack"):
        return  # the stack brings its own MySQL and Redis
    for problem in (_check_mysql(), _check_redis()):
        if problem:
            pytest.exit(problem, returncode=3)


@pytest.fixture(autouse=True)
def _isolated_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """A developer's exported APP_ENV, or their .env file, must not leak into a test:
    each test runs in an empty folder with none of the settings' variables set."""
    for name in Settings.model_fields:
        monkeypatch.delenv(name.upper(), raising=False)
    monkeypatch.chdir(tmp_path)


@pytest.fixture(autouse=True)
def _close_cache_managers() -> Iterator[None]:
    """Stop every cache listener a test started, so none outlives its test."""
    yield
    close_all()


@pytest.fixture
def make_settings(tmp_path: Path) -> SettingsFactory:
    """Settings for a test: ``testing`` env, a private instance folder, no ``.env`` file."""

    def make(**overrides: Any) -> Settings:
        values: dict[str, Any] = {"app_env": "testing", "instance_path": tmp_path / "instance"}
        values.update(overrides)
        return Settings(_env_file=None, **values)  # pyright: ignore[reportCallIssue]

    return make


@pytest.fixture
def app(make_settings: SettingsFactory) -> APIFlask:
    return create_app(make_settings())


@pytest.fixture
def client(app: APIFlask) -> FlaskClient:
    return app.test_client()


@pytest.fixture(params=["sqlite", "mysql"])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """Each database test runs twice: on an SQLite file and on the real MariaDB."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'test.db'}"
    return MYSQL_URL


@pytest.fixture(scope="session")
def _engines(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Engine]]:
    folder = tmp_path_factory.mktemp("db")

    def engine_for(url: str) -> Engine:
        settings = Settings(
            _env_file=None,  # pyright: ignore[reportCallIssue]
            app_env="testing",
            instance_path=folder,
            database_url=url,
        )
        return create_database_engine(settings)

    engines = {
        "sqlite": engine_for(f"sqlite:///{folder / 'test.db'}"),
        "mysql": engine_for(MYSQL_URL),
    }
    yield engines
    for engine in engines.values():
        engine.dispose()


@pytest.fixture(params=["sqlite", "mysql"])
def db_engine(request: pytest.FixtureRequest, _engines: dict[str, Engine]) -> Iterator[Engine]:
    """A migrated database, emptied after the test: on SQLite, then on MariaDB."""
    engine = _engines[request.param]
    if migrations.current_revision(engine) != migrations.head_revision():
        migrations.upgrade(engine)  # tests of the migrations themselves may have dropped it
    yield engine
    with engine.begin() as connection:
        for table in reversed(Base.metadata.sorted_tables):
            connection.execute(table.delete())


@pytest.fixture
def db_session(db_engine: Engine) -> Iterator[Session]:
    with Session(db_engine, expire_on_commit=False) as session:
        yield session


@pytest.fixture
def cache_source(redis_client: redis.Redis) -> Iterator[None]:
    """The cache tests' stand-in database, reset, with Redis (and its load counter) empty."""
    from cache_support import Source  # noqa: PLC0415 - cache_support imports this module

    Source.reset()
    yield
    Source.reset()


@pytest.fixture
def redis_client() -> Iterator[redis.Redis]:
    client = redis.Redis.from_url(REDIS_URL)
    client.flushdb()
    yield client
    client.flushdb()
    client.close()


AppFactory = Callable[..., APIFlask]


@pytest.fixture
def make_api_app(
    make_settings: SettingsFactory, db_engine: Engine, redis_client: redis.Redis
) -> AppFactory:
    """Build the whole app on a migrated, empty database (SQLite, then MariaDB)
    and the test Redis, with cheap Argon2 parameters so sign-ins are fast, and
    with Meilisearch calls bounded to a second; keyword arguments override."""

    def make(**overrides: Any) -> APIFlask:
        values: dict[str, Any] = {
            "database_url": db_engine.url.render_as_string(hide_password=False),
            "redis_url": REDIS_URL,
            "password_time_cost": 1,
            "password_memory_cost": 8192,
            "meili_timeout": 1,
            "meili_task_timeout": 1.0,
        }
        return create_app(make_settings(**{**values, **overrides}))

    return make


@pytest.fixture
def api_app(make_api_app: AppFactory) -> APIFlask:
    return make_api_app()


@pytest.fixture
def meili() -> Iterator[Any]:
    """The Meilisearch stand-in (``tests/meili_fake.py``), serving on a free port."""
    from meili_fake import FakeMeilisearch  # noqa: PLC0415 - only the search tests need it

    fake = FakeMeilisearch()
    fake.start()
    yield fake
    fake.hold.set()
    fake.stop()


#: The broker the worker tests use: a Redis database of its own.
BROKER_URL = REDIS_URL.rsplit("/", 1)[0] + "/12"


@pytest.fixture
def broker() -> Iterator[redis.Redis]:
    client = redis.Redis.from_url(BROKER_URL)
    client.flushdb()
    yield client
    client.flushdb()
    client.close()


@pytest.fixture
def inbox() -> Iterator[tuple[Any, int]]:
    """A real SMTP server on a free port (aiosmtpd): its :class:`mail_support.Inbox`, and the port."""
    from aiosmtpd.controller import Controller  # noqa: PLC0415 - only the email tests need it
    from mail_support import Inbox  # noqa: PLC0415
    from serving_support import free_port  # noqa: PLC0415

    handler = Inbox()
    port = free_port()
    controller = Controller(handler, hostname="127.0.0.1", port=port)
    controller.start()
    yield handler, port
    controller.stop()


@pytest.fixture
def tencent() -> Iterator[Any]:
    """The Tencent Cloud SMS stand-in (``tests/tencent_fake.py``), on a free port."""
    from tencent_fake import FakeTencentSms  # noqa: PLC0415 - only the SMS tests need it

    fake = FakeTencentSms()
    fake.start()
    yield fake
    fake.stop()


@pytest.fixture
def api(api_app: APIFlask) -> Any:
    from api_support import Api  # noqa: PLC0415 - api_support imports the app

    return Api(api_app)
