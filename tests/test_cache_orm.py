"""Rows that change evict their nodes, after the commit and only then; and the
commit-effect registry that runs it (``Database.on_commit``)."""

from __future__ import annotations

from typing import Any, ClassVar

import pytest
import redis
from cache_support import make_manager
from pydantic import BaseModel
from sqlalchemy import Engine
from sqlalchemy.orm import Session

from app.cache import EvictOnCommit, Manager, Node, changed_rows
from app.extensions.database import Database
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


def article_nodes(session: Session) -> list[Node[Any]]:
    return [ArticleRowNode(row.id) for row in changed_rows(session, Article)]


@pytest.fixture
def database(db_engine: Engine) -> Database:
    """The app's database extension on the test engine, with no effects yet."""
    ArticleRowNode.engine = db_engine
    return Database(db_engine)


@pytest.fixture
def manager(database: Database, redis_client: redis.Redis) -> Manager:
    manager = make_manager()
    evict = EvictOnCommit(manager, article_nodes)
    database.on_commit("cache", collect=evict.collect, act=evict.act)
    return manager


def new_article(database: Database) -> int:
    with database.session_factory() as session:
        author = User(email="w@example.com", name="W", password_hash="x")
        session.add(author)
        session.flush()
        article = Article(author_id=author.id, title="first", body="")
        session.add(article)
        session.commit()
        return article.id


def retitle(database: Database, article_id: int, title: str) -> None:
    with database.session_factory() as session:
        row = session.get(Article, article_id)
        assert row is not None
        row.title = title
        session.commit()


def test_a_committed_update_invalidates_the_node(manager: Manager, database: Database) -> None:
    article_id = new_article(database)
    assert manager.get(ArticleRowNode(article_id)) == ArticleOut(id=article_id, title="first")
    retitle(database, article_id, "second")
    assert manager.get(ArticleRowNode(article_id)) == ArticleOut(id=article_id, title="second")


def test_a_rolled_back_update_invalidates_nothing(
    manager: Manager, database: Database, redis_client: redis.Redis
) -> None:
    article_id = new_article(database)
    manager.get(ArticleRowNode(article_id))
    loads_before = manager.stats.loads
    with database.session_factory() as session:
        row = session.get(Article, article_id)
        assert row is not None
        row.title = "never committed"
        session.flush()  # the change reached the database, inside the transaction
        session.rollback()
    assert manager.get(ArticleRowNode(article_id)) == ArticleOut(id=article_id, title="first")
    assert manager.stats.loads == loads_before  # still served from the cache
    assert redis_client.keys("cache:article-row:*") != []


def test_a_committed_delete_invalidates_the_node(manager: Manager, database: Database) -> None:
    article_id = new_article(database)
    manager.get(ArticleRowNode(article_id))
    with database.session_factory() as session:
        session.delete(session.get(Article, article_id))
        session.commit()
    assert manager.get(ArticleRowNode(article_id)) is None


def test_sessions_of_another_factory_trigger_nothing(
    manager: Manager, database: Database, db_engine: Engine
) -> None:
    """Effects belong to one app's database: a session made elsewhere is not its."""
    article_id = new_article(database)
    manager.get(ArticleRowNode(article_id))
    with Session(db_engine) as session:
        row = session.get(Article, article_id)
        assert row is not None
        row.title = "elsewhere"
        session.commit()
    assert manager.get(ArticleRowNode(article_id)) == ArticleOut(id=article_id, title="first")


def test_a_cache_fault_after_commit_is_logged_not_raised(
    database: Database, caplog: pytest.LogCaptureFixture
) -> None:
    broken = Manager()  # no storages: every remove is a configuration error
    evict = EvictOnCommit(broken, article_nodes)
    database.on_commit("cache", collect=evict.collect, act=evict.act)
    article_id = new_article(database)
    assert article_id > 0
    assert any("could not remove 1 node(s) after commit" in r.getMessage() for r in caplog.records)


# -- the registry -----------------------------------------------------------------


def record_effects(database: Database) -> list[list[Any]]:
    """Register an effect that records what each commit hands to ``act``."""
    acted: list[list[Any]] = []
    database.on_commit(
        "titles",
        collect=lambda session: [row.title for row in changed_rows(session, Article)],
        act=acted.append,
    )
    return acted


def test_act_gets_what_every_flush_of_the_transaction_collected_once(
    database: Database,
) -> None:
    acted = record_effects(database)
    article_id = new_article(database)
    assert acted == [["first"]]
    with database.session_factory() as session:
        row = session.get(Article, article_id)
        assert row is not None
        row.title = "one"
        session.flush()
        row.title = "two"
        session.flush()
        assert acted == [["first"]]  # nothing before the commit
        session.commit()
    assert acted == [["first"], ["one", "two"]]


def test_a_rollback_acts_on_nothing_and_forgets_what_it_collected(database: Database) -> None:
    acted = record_effects(database)
    article_id = new_article(database)
    with database.session_factory() as session:
        row = session.get(Article, article_id)
        assert row is not None
        row.title = "rolled back"
        session.flush()
        session.rollback()
        row = session.get(Article, article_id)
        assert row is not None
        row.title = "kept"
        session.commit()
    assert acted == [["first"], ["kept"]]


def test_a_commit_that_collected_nothing_acts_not(database: Database) -> None:
    acted = record_effects(database)
    with database.session_factory() as session:
        session.add(User(email="u@example.com", name="U", password_hash="x"))
        session.commit()
    assert acted == []


def test_collect_before_flush_sees_rows_the_flush_makes_unreadable(database: Database) -> None:
    """A cascade deletes an author's articles in the database, out of the ORM's sight."""
    acted: list[list[int]] = []

    def articles_of_deleted_authors(session: Session) -> list[int]:
        authors = [row.id for row in session.deleted if isinstance(row, User)]
        return [a.id for a in session.query(Article).filter(Article.author_id.in_(authors))]

    database.on_commit(
        "deleted",
        collect_before_flush=articles_of_deleted_authors,
        collect=lambda _session: [],
        act=acted.append,
    )
    article_id = new_article(database)
    with database.session_factory() as session:
        session.delete(session.get(User, session.get_one(Article, article_id).author_id))
        session.commit()
    assert acted == [[article_id]]


def test_an_effect_that_raises_is_logged_and_the_next_one_still_runs(
    database: Database, caplog: pytest.LogCaptureFixture
) -> None:
    def fail(_items: list[Any]) -> None:
        raise RuntimeError("boom")

    database.on_commit("failing", collect=lambda s: list(changed_rows(s, Article)), act=fail)
    acted = record_effects(database)
    new_article(database)
    assert acted == [["first"]]
    assert any("commit effect failing failed" in r.getMessage() for r in caplog.records)


def test_effect_names_are_unique(database: Database) -> None:
    record_effects(database)
    with pytest.raises(ValueError, match="'titles' is registered already"):
        record_effects(database)
    assert [effect.name for effect in database.commit_effects] == ["titles"]
