"""The flask commands, on SQLite and on MariaDB."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from conftest import SettingsFactory
from flask.testing import FlaskCliRunner
from sqlalchemy import Engine, func, select
from sqlalchemy.orm import Session

from app import create_app
from app.auth import refresh_tokens
from app.auth.passwords import password_hash, verify_password
from app.models import Article, RefreshToken, Tag, User


def runner_for(make_settings: SettingsFactory, engine: Engine) -> FlaskCliRunner:
    settings = make_settings(
        database_url=engine.url.render_as_string(hide_password=False),
        password_time_cost=1,
        password_memory_cost=8192,
    )
    return create_app(settings).test_cli_runner()


def test_create_admin(make_settings: SettingsFactory, db_engine: Engine) -> None:
    runner = runner_for(make_settings, db_engine)
    result = runner.invoke(
        args=[
            "users",
            "create-admin",
            "Boss@Example.com",
            "--name",
            "Boss",
            "--password",
            "s3cret-pass",
        ]
    )
    assert result.exit_code == 0, result.output
    assert result.output.startswith("Created admin boss@example.com (id ")
    with Session(db_engine) as session:
        user = session.scalars(select(User)).one()
        assert (user.email, user.name, user.is_admin) == ("boss@example.com", "Boss", True)
        assert verify_password("s3cret-pass", user.password_hash, password_hash(1, 8192))[0]


def test_create_admin_promotes_an_existing_account(
    make_settings: SettingsFactory, db_engine: Engine
) -> None:
    with Session(db_engine) as session:
        session.add(User(email="ada@example.com", name="Ada", password_hash="x"))
        session.commit()
    result = runner_for(make_settings, db_engine).invoke(
        args=["users", "create-admin", "ada@example.com", "--password", "whatever-1"]
    )
    assert "already existed; it is now an admin" in result.output
    with Session(db_engine) as session:
        assert session.scalars(select(User.is_admin)).one() is True


def test_create_admin_refuses_a_short_password(
    make_settings: SettingsFactory, db_engine: Engine
) -> None:
    result = runner_for(make_settings, db_engine).invoke(
        args=["users", "create-admin", "a@example.com", "--password", "short"]
    )
    assert result.exit_code == 2
    assert "at least 8 characters" in result.output


def test_seed_creates_users_articles_and_tags_with_a_progress_bar(
    make_settings: SettingsFactory, db_engine: Engine
) -> None:
    result = runner_for(make_settings, db_engine).invoke(
        args=["seed", "--users", "5", "--articles", "40"]
    )
    assert result.exit_code == 0, result.output
    assert "Seeding articles" in result.output
    assert "Created 5 users and 40 articles" in result.output
    with Session(db_engine) as session:
        assert session.scalar(select(func.count()).select_from(User)) == 5
        assert session.scalar(select(func.count()).select_from(Article)) == 40
        assert session.scalar(select(func.count()).select_from(Tag)) == 8


def test_seed_twice_adds_new_users(make_settings: SettingsFactory, db_engine: Engine) -> None:
    runner = runner_for(make_settings, db_engine)
    runner.invoke(args=["seed", "--users", "2", "--articles", "0"])
    second = runner.invoke(args=["seed", "--users", "2", "--articles", "1"])
    assert second.exit_code == 0, second.output
    with Session(db_engine) as session:
        assert session.scalar(select(func.count()).select_from(User)) == 4


def test_tokens_purge(make_settings: SettingsFactory, db_engine: Engine) -> None:
    with Session(db_engine, expire_on_commit=False) as session:
        user = User(email="t@example.com", name="T", password_hash="x")
        session.add(user)
        session.commit()
        refresh_tokens.issue(
            session, user.id, timedelta(days=1), now=datetime.now(UTC) - timedelta(days=2)
        )
        refresh_tokens.issue(session, user.id, timedelta(days=1))
    result = runner_for(make_settings, db_engine).invoke(args=["tokens", "purge"])
    assert result.output.strip() == "Deleted 1 expired or revoked refresh token(s)."
    with Session(db_engine) as session:
        assert session.scalar(select(func.count()).select_from(RefreshToken)) == 1
