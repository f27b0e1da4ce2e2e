"""``flask users ...``, ``flask seed`` and ``flask tokens purge``."""

from __future__ import annotations

import random

import click
from flask.cli import AppGroup, with_appcontext
from sqlalchemy import select

from app.auth import refresh_tokens
from app.auth.passwords import hash_password, password_hash
from app.core.application import current_settings
from app.extensions.database import get_database
from app.models import Article, ArticleStatus, Tag, User

users_cli = AppGroup("users", help="Manage accounts.")
tokens_cli = AppGroup("tokens", help="Maintain refresh tokens.")

SEED_TAGS = ("flask", "python", "orjson", "redis", "celery", "search", "api", "cache")


@users_cli.command("create-admin")
@click.argument("email")
@click.option("--name", default="Admin", show_default=True)
@click.password_option(help="Prompted for (twice) when not given.")
def create_admin_command(email: str, name: str, password: str) -> None:
    """Create an admin account, or make an existing account an admin."""
    if len(password) < 8:
        raise click.BadParameter("must be at least 8 characters", param_hint="password")
    session = get_database().session()
    email = email.strip().lower()
    user = session.scalars(select(User).where(User.email == email)).one_or_none()
    if user is not None:
        user.is_admin = True
        session.commit()
        click.echo(f"{email} already existed; it is now an admin (id {user.id}).")
        return
    settings = current_settings()
    user = User(
        email=email,
        name=name,
        password_hash=hash_password(
            password, password_hash(settings.password_time_cost, settings.password_memory_cost)
        ),
        is_admin=True,
    )
    session.add(user)
    session.commit()
    click.echo(f"Created admin {email} (id {user.id}).")


@click.command("seed")
@with_appcontext
@click.option(
    "--users", "user_count", default=10, show_default=True, type=click.IntRange(1, 100_000)
)
@click.option(
    "--articles", "article_count", default=100, show_default=True, type=click.IntRange(0, 1_000_000)
)
@click.option("--seed", "random_seed", default=2026, show_default=True, help="For repeatable data.")
def seed_command(user_count: int, article_count: int, random_seed: int) -> None:
    """Fill the database with demo users (password "password") and articles."""
    rng = random.Random(random_seed)  # noqa: S311 - demo data, repeatable on purpose
    session = get_database().session()
    # One hash for every demo user: Argon2 is slow on purpose, demo data need not be.
    demo_hash = hash_password("password", password_hash(1, 8192))
    tags = {tag.name: tag for tag in session.scalars(select(Tag))}
    for name in SEED_TAGS:
        if name not in tags:
            tags[name] = Tag(name=name)
            session.add(tags[name])
    start = session.scalars(select(User.id).order_by(User.id.desc()).limit(1)).first() or 0
    users = [
        User(
            email=f"demo{start + n}@example.com",
            name=f"Demo User {start + n}",
            password_hash=demo_hash,
        )
        for n in range(1, user_count + 1)
    ]
    session.add_all(users)
    session.flush()
    with click.progressbar(range(article_count), label="Seeding articles") as bar:
        for n in bar:
            session.add(
                Article(
                    author_id=rng.choice(users).id,
                    title=f"Demo article {n + 1}",
                    body=f"Body of demo article {n + 1}. " * rng.randint(1, 20),
                    status=rng.choice(
                        [
                            ArticleStatus.DRAFT.value,
                            ArticleStatus.PUBLISHED.value,
                            ArticleStatus.PUBLISHED.value,
                        ]
                    ),
                    tags=rng.sample(list(tags.values()), k=rng.randint(0, 3)),
                )
            )
            if n % 1000 == 999:
                session.flush()
    session.commit()
    click.echo(
        f"Created {user_count} users and {article_count} articles (demo password: 'password')."
    )


@tokens_cli.command("purge")
def purge_command() -> None:
    """Delete refresh tokens that expired or were revoked."""
    deleted = refresh_tokens.purge_expired(get_database().session())
    click.echo(f"Deleted {deleted} expired or revoked refresh token(s).")
