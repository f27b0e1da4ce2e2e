"""Articles: who may see and change them, the cached read, and the writes.

``get_visible`` reads through :class:`ArticleNode` (the in-process tier, then
Redis, then the database under a load lock). Nothing here evicts it by hand:
the cache's commit effect (registered in ``create_app``) collects
:func:`nodes_changed_by` every flush, so each committed change to an article,
or to its author's name, removes the node from every tier in every process,
and a rolled-back change removes nothing.

**Who sees what.** A published article is anyone's to read. A draft exists
only for its *editors*, its author and the admins: to anyone else it is not
found, so its id leaks nothing. Editors alone may change or delete an
article; anyone else gets "not permitted" on a published one, and "not found"
on a draft. :func:`is_editor` is that rule; :func:`may_read` and
:func:`drafts_visible_to` apply it in Python and in SQL.

**Versions.** Every write names, optionally, the version it read (an entity
tag ``"<id>-<version>"``); a mismatch is :class:`VersionMismatchError`. Two writers
racing on one version cannot both win either way: the version is checked in
the ``UPDATE`` itself, and the loser gets :class:`EditConflictError` (or
:class:`VersionMismatchError` if it named a version).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from typing import Any, ClassVar

from sqlalchemy import Select, inspect, select
from sqlalchemy.dialects.mysql import insert as mysql_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Session, joinedload, selectinload
from sqlalchemy.orm.exc import StaleDataError
from sqlalchemy.orm.interfaces import ORMOption

from app.cache import Manager, Node
from app.core.domain_errors import (
    EditConflictError,
    NotFoundError,
    NotPermittedError,
    VersionMismatchError,
)
from app.extensions.database import get_database
from app.models import Article, ArticleStatus, Tag, User, utcnow
from app.schemas.articles import (
    ArticleCreate,
    ArticleOut,
    ArticlePage,
    ArticleQuery,
    ArticleUpdate,
)
from app.services import article_rows

NO_SUCH_ARTICLE = "No such article (or a draft that is not yours)"
#: Whether a write sent ``If-Match``: the tags it accepts, as a callable.
TagMatcher = Callable[[str], bool]

#: Author and tags in a constant number of queries, however many rows.
WITH_RELATIONS: tuple[ORMOption, ...] = (
    joinedload(Article.author).load_only(User.id, User.name),
    selectinload(Article.tags),
)


class ArticleNode(Node[ArticleOut]):
    """One article as the API shows it, cached in process and in Redis."""

    storages: ClassVar = ["local", "redis"]

    def __init__(self, article_id: int) -> None:
        self.article_id = article_id

    def key(self) -> str:
        return f"article:{self.article_id}"

    def load(self) -> ArticleOut | None:
        return article_rows.read_one(get_database().session(), self.article_id)


# -- what the API shows of an article -----------------------------------------------


def with_relations(statement: Select[Article]) -> Select[Article]:
    """``statement`` loading each article's author and tags alongside."""
    return statement.options(*WITH_RELATIONS)


def article_fields(row: Article) -> dict[str, Any]:
    """The API's fields of an article, as plain values: the one mapping behind
    :class:`ArticleOut`, search hits and the search index's documents."""
    return {
        "id": row.id,
        "title": row.title,
        "body": row.body,
        "tags": sorted(tag.name for tag in row.tags),
        "status": row.status,
        "author": {"id": row.author.id, "name": row.author.name},
        "created_at": row.created_at,
        "updated_at": row.updated_at,
        "version": row.version,
    }


def to_out(row: Article) -> ArticleOut:
    return ArticleOut.model_validate(article_fields(row))


def entity_tag(article: ArticleOut | Article) -> str:
    """The version's tag (unquoted): the id and the version."""
    return f"{article.id}-{article.version}"


# -- who may see and change what ----------------------------------------------------


def is_editor(viewer: User | None, author_id: int) -> bool:
    """Editors of an article: its author and every admin. They alone see its
    drafts and may change it."""
    return viewer is not None and (viewer.is_admin or viewer.id == author_id)


def may_read(viewer: User | None, status: str, author_id: int) -> bool:
    return status == ArticleStatus.PUBLISHED or is_editor(viewer, author_id)


def drafts_visible_to(viewer: User | None) -> dict[str, object]:
    """:func:`is_editor` as a page's filters (:func:`article_rows.read_page`):
    those that keep the drafts ``viewer`` edits."""
    if viewer is not None and viewer.is_admin:
        return {}
    return {"editor_id": viewer.id if viewer is not None else -1}


# -- reads --------------------------------------------------------------------------


def find(session: Session, article_id: int) -> Article | None:
    """The row, with its relations."""
    return session.scalars(
        with_relations(select(Article).where(Article.id == article_id))
    ).one_or_none()


def get_visible(manager: Manager, article_id: int, viewer: Callable[[], User | None]) -> ArticleOut:
    """The article through the cache, if ``viewer`` may read it. ``viewer`` is
    asked only for a draft, so a published read costs no account lookup."""
    article = manager.get(ArticleNode(article_id))
    if article is None or (
        article.status != ArticleStatus.PUBLISHED and not is_editor(viewer(), article.author.id)
    ):
        raise NotFoundError(NO_SUCH_ARTICLE)
    return article


def while_cached(manager: Manager, article: ArticleOut) -> Callable[[], bool] | None:
    """How to tell that the answer showing ``article`` may be given again as
    it is, to anyone: while the cache still holds this very value. Only a
    published article's answer is the same for every caller (a draft's is a
    404 to most), so only it gets one."""
    if article.status != ArticleStatus.PUBLISHED:
        return None
    node = ArticleNode(article.id)
    return lambda: manager.holds(node, article)


def list_page(session: Session, query: ArticleQuery, *, viewer: User | None) -> ArticlePage:
    """One page of articles: published ones, or with ``status=draft`` the
    drafts ``viewer`` edits."""
    filters: dict[str, object] = {"status": (query.status or ArticleStatus.PUBLISHED).value}
    if query.status == ArticleStatus.DRAFT:
        filters.update(drafts_visible_to(viewer))
    if query.author_id is not None:
        filters["author_id"] = query.author_id
    if query.tag is not None:
        filters["tag"] = query.tag
    items, total = article_rows.read_page(session, query, filters=filters, sort=query.sort)
    return ArticlePage.of(items, query, total)


# -- writes -------------------------------------------------------------------------


def create(session: Session, *, author: User, fields: ArticleCreate) -> ArticleOut:
    """Write a new article by ``author``."""
    row = Article(
        author_id=author.id,
        title=fields.title,
        body=fields.body,
        status=fields.status.value,
        tags=tags_named(session, fields.tags),
    )
    row.author = author
    session.add(row)
    session.commit()
    return to_out(row)


def update(
    session: Session,
    article_id: int,
    *,
    actor: User,
    changes: ArticleUpdate,
    if_match: TagMatcher | None = None,
) -> ArticleOut:
    """Apply the fields ``changes`` carries; the others keep their values."""
    row = _writable(session, article_id, actor, if_match)
    if changes.title is not None:
        row.title = changes.title
    if changes.body is not None:
        row.body = changes.body
    if changes.tags is not None:
        row.tags = tags_named(session, changes.tags)
    if changes.status is not None:
        row.status = changes.status.value
    if session.is_modified(row):
        row.updated_at = utcnow()  # an UPDATE even when only tags changed: the version moves
        _commit(session, if_match)
    return to_out(row)


def delete(
    session: Session, article_id: int, *, actor: User, if_match: TagMatcher | None = None
) -> None:
    session.delete(_writable(session, article_id, actor, if_match))
    _commit(session, if_match)


def _writable(
    session: Session, article_id: int, actor: User, if_match: TagMatcher | None
) -> Article:
    """The row, if ``actor`` edits it and ``if_match`` (if given) accepts its version."""
    row = find(session, article_id)
    if row is None or not may_read(actor, row.status, row.author_id):
        raise NotFoundError(NO_SUCH_ARTICLE)
    if not is_editor(actor, row.author_id):
        raise NotPermittedError("Only the author or an admin may change this article")
    if if_match is not None and not if_match(entity_tag(row)):
        raise VersionMismatchError(
            "The article changed since that ETag; fetch it again", current_tag=entity_tag(row)
        )
    return row


def _commit(session: Session, if_match: TagMatcher | None) -> None:
    try:
        session.commit()
    except StaleDataError:
        session.rollback()
        if if_match is not None:
            raise VersionMismatchError("The article changed meanwhile; fetch it again") from None
        raise EditConflictError("The article changed meanwhile; fetch it again and retry") from None


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
        # Not INSERT IGNORE: it would also turn strict mode's "data too long"
        # into a warning and store the name truncated.
        insert = mysql_insert(Tag).values(rows)
        session.execute(insert.on_duplicate_key_update(name=insert.inserted.name))
    by_name = {tag.name: tag for tag in session.scalars(select(Tag).where(Tag.name.in_(unique)))}
    return [by_name[name] for name in unique]


# -- what a flush changed (for the commit effects) ----------------------------------


def author_renamed(session: Session, user: User) -> bool:
    """Whether this flush changes an existing account's name, which every one of
    its articles shows."""
    return user not in session.new and inspect(user).attrs.name.history.has_changes()


def articles_touched(session: Session) -> set[int]:
    """The ids of the articles whose API view this flush changes: the articles
    written or deleted, and every article of a renamed author."""
    article_ids: set[int] = set()
    renamed: list[int] = []
    for row in (*session.new, *session.dirty, *session.deleted):
        if isinstance(row, Article):
            article_ids.add(row.id)
        elif isinstance(row, User) and author_renamed(session, row):
            renamed.append(row.id)
    if renamed:
        article_ids.update(
            session.scalars(select(Article.id).where(Article.author_id.in_(renamed)))
        )
    return article_ids


def articles_published_by(session: Session) -> list[Article]:
    """The articles this flush publishes: written as published, or turned from
    a draft into a published article."""
    published = ArticleStatus.PUBLISHED.value
    return [
        row
        for row in (*session.new, *session.dirty)
        if isinstance(row, Article)
        and row.status == published
        and (row in session.new or inspect(row).attrs.status.history.has_changes())
    ]


def articles_of_deleted_authors(session: Session) -> list[int]:
    """Before a flush: the articles that the database will delete by cascade with
    their author, which the ORM never sees go."""
    authors = [row.id for row in session.deleted if isinstance(row, User)]
    if not authors:
        return []
    return list(session.scalars(select(Article.id).where(Article.author_id.in_(authors))))


def nodes_changed_by(session: Session) -> Iterable[ArticleNode]:
    """The cache's share of a flush: the node of every article it touched."""
    return [ArticleNode(article_id) for article_id in articles_touched(session)]


def nodes_deleted_with_authors(session: Session) -> Iterable[ArticleNode]:
    return [ArticleNode(article_id) for article_id in articles_of_deleted_authors(session)]
