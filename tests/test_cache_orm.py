"""Rows that change invalidate their nodes, after the commit and only then."""

from __future__ import annotations

from collections.abc import Iterator
from typing import ClassVar

import pytest
import redis
from cache_support import make_manager
from pydantic import BaseModel
from sqlalchemy import Engine
from sqlalchemy.orm import Session

from app.cache import Manager, Node
from app.cache.orm import forget_rules, invalidate_on_commit
from app.models import Article, User


class ArticleOut(BaseModel):
    id: int
    title: str


class ArticleRowNode(Node[ArticleOut]):
    storages: ClassVar = ["local", "redis"]
    engine: ClassVar[Engine]

    def __init__(self, article_id: int) -> None:
        self.article_id = article_id

    def key(self) -> str:
        return f"article-row:{self.article_id}"

    def load(self) -> ArticleOut | None:
        with Session(self.engine) as session:
            row = session.get(Article, self.article_id)
            return None if row is None else ArticleOut(id=row.id, title=row.title)


@pytest.fixture
def manager(db_engine: Engine, redis_client: redis.Redis) -> Iterator[Manager]:
    ArticleRowNode.engine = db_engine
    manager = make_manager()
    invalidate_on_commit(manager, Article, lambda row: [ArticleRowNode(row.id)])
    yield manager
    forget_rules(manager)


def new_article(engine: Engine) -> int:
    with Session(engine) as session:
        author = User(email="w@example.com", name="W", password_hash="x")
        session.add(author)
        session.flush()
        article = Article(author_id=author.id, title="first", body="")
        session.add(article)
        session.commit()
        return article.id


def test_a_committed_update_invalidates_the_node(manager: Manager, db_engine: Engine) -> None:
    article_id = new_article(db_engine)
    assert manager.get(ArticleRowNode(article_id)) == ArticleOut(id=article_id, title="first")
    with Session(db_engine) as session:
        row = session.get(Article, article_id)
        assert row is not None
        row.title = "second"
        session.commit()
    assert manager.get(ArticleRowNode(article_id)) == ArticleOut(id=article_id, title="second")


def test_a_rolled_back_update_invalidates_nothing(
    manager: Manager, db_engine: Engine, redis_client: redis.Redis
) -> None:
    article_id = new_article(db_engine)
    manager.get(ArticleRowNode(article_id))
    loads_before = manager.stats.loads
    with Session(db_engine) as session:
        row = session.get(Article, article_id)
        assert row is not None
        row.title = "never committed"
        session.flush()  # the change reached the database, inside the transaction
        session.rollback()
    assert manager.get(ArticleRowNode(article_id)) == ArticleOut(id=article_id, title="first")
    assert manager.stats.loads == loads_before  # still served from the cache
    assert redis_client.keys("cache:article-row:*") != []


def test_a_committed_delete_invalidates_the_node(manager: Manager, db_engine: Engine) -> None:
    article_id = new_article(db_engine)
    manager.get(ArticleRowNode(article_id))
    with Session(db_engine) as session:
        row = session.get(Article, article_id)
        session.delete(row)
        session.commit()
    assert manager.get(ArticleRowNode(article_id)) is None


def test_a_cache_fault_after_commit_is_logged_not_raised(
    db_engine: Engine, caplog: pytest.LogCaptureFixture
) -> None:
    broken = Manager()  # no storages: every remove is a configuration error
    invalidate_on_commit(broken, Article, lambda row: [ArticleRowNode(row.id)])
    try:
        article_id = new_article(db_engine)
    finally:
        forget_rules(broken)
    assert article_id > 0
    assert any("could not remove 1 node(s) after commit" in r.getMessage() for r in caplog.records)
