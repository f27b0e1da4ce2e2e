"""Alembic owns the schema, on SQLite and on MariaDB alike."""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from conftest import MYSQL_URL, SettingsFactory
from sqlalchemy import Engine, MetaData, inspect, select
from sqlalchemy.exc import DBAPIError, StatementError
from sqlalchemy.orm import Session
from sqlalchemy.orm.exc import StaleDataError

from app import create_app, migrations
from app.extensions.database import create_database_engine
from app.models import Article, Base, Tag, User

VERSIONS = Path(migrations.__file__).parent / "versions"
#: The newest migration, by its file name (``0002_search_outbox.py``): a new
#: resource's migration moves it, and these tests follow.
HEAD = max(path.name.partition("_")[0] for path in VERSIONS.glob("[0-9]*_*.py"))
#: Every table the models define, and Alembic's own.
TABLES = {*Base.metadata.tables, "alembic_version"}


def drop_everything(engine: Engine) -> None:
    metadata = MetaData()
    metadata.reflect(engine)
    metadata.drop_all(engine)


@pytest.fixture
def engine(make_settings: SettingsFactory, database_url: str) -> Iterator[Engine]:
    engine = create_database_engine(make_settings(database_url=database_url))
    drop_everything(engine)
    yield engine
    drop_everything(engine)
    engine.dispose()


@pytest.fixture
def migrated(engine: Engine) -> Engine:
    migrations.upgrade(engine)
    return engine


def test_upgrade_from_empty_creates_every_table(engine: Engine) -> None:
    assert migrations.current_revision(engine) is None
    migrations.upgrade(engine)
    assert set(inspect(engine).get_table_names()) == TABLES
    assert {
        "users",
        "refresh_tokens",
        "articles",
        "tags",
        "article_tags",
        "search_outbox",
        "search_reindex",
    } <= TABLES
    assert migrations.current_revision(engine) == migrations.head_revision() == HEAD


def test_the_models_and_the_migrations_do_not_drift(migrated: Engine) -> None:
    assert migrations.schema_drift(migrated) == []


def test_drift_is_detected(migrated: Engine) -> None:
    on_table = " ON articles" if migrated.dialect.name == "mysql" else ""
    with migrated.begin() as connection:
        connection.exec_driver_sql(f"DROP INDEX ix_articles_status_created_at{on_table}")
    drift = migrations.schema_drift(migrated)
    assert any("ix_articles_status_created_at" in str(diff) for diff in drift)


def test_downgrade_to_base_removes_every_table(migrated: Engine) -> None:
    migrations.downgrade(migrated, "base")
    assert set(inspect(migrated).get_table_names()) <= {"alembic_version"}


def test_upgrade_is_safe_to_run_again(migrated: Engine) -> None:
    migrations.upgrade(migrated)
    assert migrations.current_revision(migrated) == HEAD


def test_flask_db_commands(
    make_settings: SettingsFactory, database_url: str, engine: Engine
) -> None:
    runner = create_app(make_settings(database_url=database_url)).test_cli_runner()
    assert (
        f"Database at base; latest is {HEAD} (behind"
        in runner.invoke(args=["db", "current"]).output
    )
    assert (
        runner.invoke(args=["db", "upgrade"]).output.strip()
        == f"Upgraded the database from base to {HEAD}."
    )
    assert "nothing to do" in runner.invoke(args=["db", "upgrade"]).output
    check = runner.invoke(args=["db", "check"])
    assert (check.exit_code, check.output.strip()) == (0, "The models match the migrated database.")
    assert "(up to date)" in runner.invoke(args=["db", "current"]).output
    downgraded = runner.invoke(args=["db", "downgrade", "base"])
    assert downgraded.output.strip() == f"Downgraded the database from {HEAD} to base."


def test_flask_db_check_fails_on_drift(
    make_settings: SettingsFactory, database_url: str, migrated: Engine
) -> None:
    with migrated.begin() as connection:
        connection.exec_driver_sql("DROP TABLE article_tags")
    result = (
        create_app(make_settings(database_url=database_url))
        .test_cli_runner()
        .invoke(args=["db", "check"])
    )
    assert result.exit_code == 1
    assert "difference(s) between the models and the database" in result.output


def make_user(session: Session, email: str = "ada@example.com") -> User:
    user = User(email=email, name="Ada", password_hash="x")
    session.add(user)
    session.commit()
    return user


def test_timestamps_are_set_per_row_at_write_time_in_utc(migrated: Engine) -> None:
    with Session(migrated) as session:
        first = make_user(session, "a@example.com")
        time.sleep(0.01)
        second = make_user(session, "b@example.com")
        session.expire_all()
        first_created = session.get(User, first.id).created_at  # type: ignore[union-attr]
        second_created = session.get(User, second.id).created_at  # type: ignore[union-attr]
    assert first_created.tzinfo is UTC
    assert second_created > first_created
    assert abs((datetime.now(UTC) - second_created).total_seconds()) < 60


def test_microseconds_survive_a_round_trip(migrated: Engine) -> None:
    moment = datetime(2026, 11, 21, 12, 0, 0, 123456, tzinfo=UTC)
    with Session(migrated) as session:
        user = User(email="m@example.com", name="M", password_hash="x", created_at=moment)
        session.add(user)
        session.commit()
        session.expire_all()
        assert session.get(User, user.id).created_at == moment  # type: ignore[union-attr]


def test_naive_datetimes_are_refused(migrated: Engine) -> None:
    with Session(migrated) as session:
        session.add(
            User(
                email="n@example.com", name="N", password_hash="x", created_at=datetime(2026, 1, 1)
            )
        )
        with pytest.raises(StatementError, match="naive datetime"):
            session.commit()


def test_concurrent_updates_cannot_silently_overwrite_each_other(migrated: Engine) -> None:
    with Session(migrated) as session:
        author = make_user(session)
        article = Article(author_id=author.id, title="t", body="b")
        session.add(article)
        session.commit()
        article_id = article.id
    with Session(migrated) as first, Session(migrated) as second:
        mine = first.get(Article, article_id)
        theirs = second.get(Article, article_id)
        assert mine is not None
        assert theirs is not None
        mine.title = "mine"
        first.commit()
        theirs.title = "theirs"
        with pytest.raises(StaleDataError):
            second.commit()
    with Session(migrated) as session:
        stored = session.get(Article, article_id)
        assert stored is not None
        assert (stored.title, stored.version) == ("mine", 2)


def test_tags_are_shared_between_articles(migrated: Engine) -> None:
    with Session(migrated) as session:
        author = make_user(session)
        flask_tag = Tag(name="flask")
        session.add_all(
            [
                Article(author_id=author.id, title="a", body="", tags=[flask_tag]),
                Article(author_id=author.id, title="b", body="", tags=[flask_tag]),
            ]
        )
        session.commit()
        assert session.scalars(select(Tag)).all() == [flask_tag]


def test_mysql_refuses_a_value_too_long_instead_of_truncating_it(
    make_settings: SettingsFactory,
) -> None:
    engine = create_database_engine(make_settings(database_url=MYSQL_URL))
    drop_everything(engine)
    migrations.upgrade(engine)
    try:
        with Session(engine) as session:
            author = make_user(session)
            session.add(Article(author_id=author.id, title="x" * 201, body=""))
            with pytest.raises(DBAPIError, match="too long"):
                session.commit()
    finally:
        drop_everything(engine)
        engine.dispose()
