"""Pages of published articles through the tiered cache.

Every page is a node keyed by the query that asked for it and by the
*generation* of the articles: a token, itself a node, that every write
changing an article's API view evicts (:func:`nodes_changed_by`, the
``"cache"`` commit effect in ``create_app``). The next read of any page then
loads a new token, in every process once the eviction reaches it, and so
misses every page cached under the old one; those age out of their tiers.

Only pages of published articles are cached: they are the same for every
caller. A list of drafts depends on who asks and is read from the database.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable, Iterable
from typing import Any, ClassVar

from pydantic import BaseModel
from sqlalchemy.orm import Session

from app.cache import Manager, Node
from app.extensions.database import get_database
from app.schemas.articles import ArticlePage, ArticleQuery
from app.services import articles


class Generation(BaseModel):
    token: str


class ArticlesGeneration(Node[Generation]):
    """The articles' generation: a new random token after each change."""

    storages: ClassVar = ["local", "redis"]

    def key(self) -> str:
        return "articles:generation"

    def load(self) -> Generation:
        return Generation(token=secrets.token_hex(8))


class ArticlePageNode(Node[ArticlePage]):
    """One page of published articles, under one generation."""

    storages: ClassVar = ["pages", "redis"]

    def __init__(self, generation: str, query: ArticleQuery) -> None:
        self.generation = generation
        self.query = query

    def key(self) -> str:
        return f"articles:page:{self.generation}:{self.query.model_dump_json()}"

    def load(self) -> ArticlePage:
        # A session of its own, so the page is read in a transaction that starts
        # now, after the generation was read: the request's may have started
        # before a write that evicted an older one.
        with Session(get_database().engine) as session:
            return articles.list_page(session, self.query, viewer=None)


def published_page(manager: Manager, query: ArticleQuery) -> tuple[ArticlePage, Callable[[], bool]]:
    """The page ``query`` asks for, through the cache, and how to tell that an
    answer showing it may be given again: while both the generation and the
    page are still the values the cache holds."""
    generation_node = ArticlesGeneration()
    generation = manager.get(generation_node)
    assert generation is not None  # noqa: S101 - load() never returns None
    node = ArticlePageNode(generation.token, query)
    page = manager.get(node)
    assert page is not None  # noqa: S101 - load() never returns None

    def is_current() -> bool:
        return manager.holds(generation_node, generation) and manager.holds(node, page)

    return page, is_current


def nodes_changed_by(session: Session) -> Iterable[Node[Any]]:
    """The cache's share of a flush: the node of every article it touched,
    and, if there is one, the generation, which every page depends on."""
    touched = list(articles.nodes_changed_by(session))
    return [*touched, ArticlesGeneration()] if touched else []


def nodes_deleted_with_authors(session: Session) -> Iterable[Node[Any]]:
    """Before a flush: the articles deleted by cascade with their authors, and
    the generation if there are any."""
    deleted = list(articles.nodes_deleted_with_authors(session))
    return [*deleted, ArticlesGeneration()] if deleted else []
