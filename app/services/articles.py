"""Articles: the queries, the cached read, and the rules that keep the cache true.

``GET /articles/{id}`` reads through :class:`ArticleNode` (the in-process tier,
then Redis, then the database under a load lock). Nothing in a view evicts it:
:func:`init_app` registers ``after_commit`` rules, so every committed change to
an article, or to its author's name, removes the node from every tier in every
process, and a rolled-back change removes nothing.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING, Any, ClassVar

from sqlalchemy import Select, func, inspect, select
from sqlalchemy.dialects.mysql import insert as mysql_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Session, joinedload, selectinload

from app.api.v1 import schemas
from app.cache import Node
from app.cache.orm import invalidate_on_commit
from app.extensions.database import get_database
from app.models import Article, ArticleStatus, Tag, User

if TYPE_CHECKING:
    from app.cache import Manager
    from app.core.application import APIFlask

SORTS: dict[str, tuple[Any, ...]] = {
    "created_at": (Article.created_at.asc(), Article.id.asc()),
    "-created_at": (Article.created_at.desc(), Article.id.desc()),
    "title": (Article.title.asc(), Article.id.asc()),
    "-title": (Article.title.desc(), Article.id.desc()),
}


class ArticleNode(Node[schemas.Article]):
    """One article as the API shows it, cached in process and in Redis."""

    storages: ClassVar = ["local", "redis"]

    def __init__(self, article_id: int) -> None:
        self.article_id = article_id

    def key(self) -> str:
        return f"article:{self.article_id}"

    def load(self) -> schemas.Article | None:
        row = (
            get_database()
            .session()
            .scalars(with_relations(select(Article).where(Article.id == self.article_id)))
            .one_or_none()
        )
        return to_schema(row) if row is not None else None


def with_relations(statement: Select[Article]) -> Select[Article]:
    """Author and tags in a constant number of queries, however many rows."""
    return statement.options(
        joinedload(Article.author).load_only(User.id, User.name),
        selectinload(Article.tags),
    )


def to_schema(row: Article) -> schemas.Article:
    return schemas.Article(**article_fields(row))


def article_fields(row: Article) -> dict[str, Any]:
    """The API's fields of an article, for :class:`schemas.Article` and its subclasses."""
    return {
        "id": row.id,
        "title": row.title,
        "body": row.body,
        "tags": sorted(tag.name for tag in row.tags),
        "status": ArticleStatus(row.status),
        "author": schemas.Author(id=row.author.id, name=row.author.name),
        "created_at": row.created_at,
        "updated_at": row.updated_at,
        "version": row.version,
    }


def find(session: Session, article_id: int) -> Article | None:
    """The row, with its relations, for a write."""
    return session.scalars(
        with_relations(select(Article).where(Article.id == article_id))
    ).one_or_none()


def search(
    session: Session, query: schemas.ArticleQuery, *, viewer: User | None
) -> tuple[list[schemas.Article], int]:
    """One page of articles and the total, as ``viewer`` may see them."""
    conditions: list[Any] = []
    if query.status == ArticleStatus.DRAFT:
        conditions.append(Article.status == ArticleStatus.DRAFT.value)
        if viewer is None or not viewer.is_admin:
            conditions.append(Article.author_id == (viewer.id if viewer else -1))
    else:
        conditions.append(Article.status == ArticleStatus.PUBLISHED.value)
    if query.author_id is not None:
        conditions.append(Article.author_id == query.author_id)
    if query.tag is not None:
        conditions.append(Article.tags.any(Tag.name == query.tag))

    rows, total = page_of(session, conditions, query.sort, query.page, query.per_page)
    return [to_schema(row) for row in rows], total


def page_of(
    session: Session, conditions: Sequence[Any], sort: str, page: int, per_page: int
) -> tuple[list[Article], int]:
    """One page of the articles matching ``conditions``, with their relations,
    and how many match in all."""
    total = session.scalar(select(func.count()).select_from(Article).where(*conditions)) or 0
    rows = session.scalars(
        with_relations(
            select(Article)
            .where(*conditions)
            .order_by(*SORTS[sort])
            .limit(per_page)
            .offset((page - 1) * per_page)
        )
    )
    return list(rows), total


def tags_named(session: Session, names: Sequence[str]) -> list[Tag]:
    """The tags with these names, creating the missing ones. Safe against a
    concurrent request creating the same tag: the insert ignores duplicates."""
    unique = list(dict.fromkeys(names))
    if not unique:
        return []
    rows = [{"name": name} for name in unique]
    if session.get_bind().dialect.name == "sqlite":
        session.execute(sqlite_insert(Tag).values(rows).on_conflict_do_nothing())
    else:
        session.execute(mysql_insert(Tag).values(rows).prefix_with("IGNORE"))
    by_name = {tag.name: tag for tag in session.scalars(select(Tag).where(Tag.name.in_(unique)))}
    return [by_name[name] for name in unique]


def _nodes_for_article(article: Article) -> Iterable[ArticleNode]:
    return [ArticleNode(article.id)]


def _nodes_for_author(user: User) -> Iterable[ArticleNode]:
    """A renamed author changes how each of their articles reads."""
    state = inspect(user)
    if not state.attrs.name.history.deleted:  # inserted, or the name did not change
        return []
    session = state.session
    if session is None:
        return []
    ids = session.scalars(select(Article.id).where(Article.author_id == user.id))
    return [ArticleNode(article_id) for article_id in ids]


def init_app(app: APIFlask) -> None:
    manager: Manager = app.extensions["cache"]
    manager.validate(ArticleNode)
    invalidate_on_commit(manager, Article, _nodes_for_article)
    invalidate_on_commit(manager, User, _nodes_for_author)
