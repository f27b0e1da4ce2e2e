"""Articles as the API shows them, read as JSON the database writes: the
reads behind the cached article and the list.

One ``SELECT`` (for a page, with the count of all that match) whose every row is an
article as one JSON object, built by the database's ``json_object``: the
author's name joined, the tag names gathered into an array, the timestamps as
RFC 3339 text. The driver reads one string per row instead of ten typed
columns, and pydantic validates the page's rows in one call, in Rust: no ORM
objects, no identity map, no relationship loaders, no per-column conversions
(``docs/performance.md`` has the figures). The writes load
:class:`~app.models.Article` rows and show them through
:func:`app.services.articles.to_out`; both paths give the same
:class:`~app.schemas.articles.ArticleOut` (``tests/test_api_articles.py``
compares them on both databases).
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any, NamedTuple

from pydantic import TypeAdapter
from sqlalchemy import ColumnElement, Select, bindparam, func, select
from sqlalchemy.orm import InstrumentedAttribute, Session

from app.models import Article, Tag, User, article_tags
from app.models.base import json_array_of, json_utc
from app.schemas.articles import ArticleOut
from app.schemas.base import PageQuery

#: The article's tag names, a JSON array in one column of its row.
_TAG_NAMES = (
    select(json_array_of(Tag.name))
    .select_from(article_tags.join(Tag, Tag.id == article_tags.c.tag_id))
    .where(article_tags.c.article_id == Article.id)
    .scalar_subquery()
)


def _json_object(fields: dict[str, Any]) -> ColumnElement[str]:
    """``json_object('name', value, ...)``: the database writes ``fields`` as JSON."""
    return func.json_object(*(part for pair in fields.items() for part in pair))


#: One article, as :class:`ArticleOut` reads it from JSON.
_ARTICLE_JSON = _json_object(
    {
        "id": Article.id,
        "title": Article.title,
        "body": Article.body,
        "tags": _TAG_NAMES,
        "status": Article.status,
        "author": _json_object({"id": User.id, "name": User.name}),
        "created_at": json_utc(Article.created_at),
        "updated_at": json_utc(Article.updated_at),
        "version": Article.version,
    }
)
_ARTICLES = TypeAdapter(list[ArticleOut])


def _shown() -> Select[str]:
    return select(_ARTICLE_JSON).select_from(Article).join(User, User.id == Article.author_id)


# Built once: building a statement costs more than running it from the cache of
# compiled statements, which it hits on every call.
_ONE = _shown().where(Article.id == bindparam("article_id"))


def _as_models(rows: Sequence[str]) -> list[ArticleOut]:
    """The articles in ``rows``, one JSON object each, validated in one call."""
    items = _ARTICLES.validate_json("[" + ",".join(rows) + "]")
    for item in items:
        item.tags.sort()  # as the write path shows them; the database's order is its own
    return items


def read_one(session: Session, article_id: int) -> ArticleOut | None:
    """The article ``article_id``, or ``None``."""
    row = session.scalar(_ONE, {"article_id": article_id})
    return _as_models([row])[0] if row is not None else None


#: The orders a page may come in: by a column, and whether it descends. Ties
#: break on the id, in the same direction, so pages never overlap.
_ORDERS: dict[str, tuple[InstrumentedAttribute[Any], bool]] = {
    "created_at": (Article.created_at, False),
    "-created_at": (Article.created_at, True),
    "title": (Article.title, False),
    "-title": (Article.title, True),
}


def _ordered(
    columns: Iterable[ColumnElement[Any] | InstrumentedAttribute[Any]], descending: bool
) -> tuple[Any, ...]:
    return tuple(column.desc() if descending else column.asc() for column in columns)


#: Each order as ``ORDER BY`` clauses on ``articles``.
SORTS: dict[str, tuple[Any, ...]] = {
    name: _ordered((column, Article.id), descending)
    for name, (column, descending) in _ORDERS.items()
}
#: The filters a page may use, each a condition on the parameter of its name.
_FILTERS: dict[str, Callable[[], ColumnElement[bool]]] = {
    "status": lambda: Article.status == bindparam("status"),
    "author_id": lambda: Article.author_id == bindparam("author_id"),
    "editor_id": lambda: Article.author_id == bindparam("editor_id"),
    "tag": lambda: Article.tags.any(Tag.name == bindparam("tag")),
}


class _PageStatements(NamedTuple):
    rows: Select[str, int]
    total: Select[int]


@functools.cache
def _page_statements(filters: frozenset[str], sort: str) -> _PageStatements:
    """The statements of a page filtered by ``filters`` in ``sort`` order: built
    once per combination (building one costs more than running it), and
    run with the page's parameters."""
    where = [_FILTERS[name]() for name in sorted(filters)]
    column, descending = _ORDERS[sort]
    count = select(func.count()).select_from(Article).where(*where)
    # The page's ids first, from the index alone where one fits the order, then
    # their rows: the author and the tags are looked up for those rows only, not
    # for every article that matches before the sort (a "deferred join").
    ids = (
        select(Article.id, column.label("sort_key"))
        .where(*where)
        .order_by(*SORTS[sort])
        .limit(bindparam("limit"))
        .offset(bindparam("offset"))
        .subquery("page")
    )
    # The count rides along on every row, so page and count come from one
    # snapshot in one round trip; uncorrelated, the database computes it once.
    # The rows are sorted by the ids' own columns: then MySQL sorts those 100
    # short rows first and joins in their order, rather than sorting the joined
    # rows, JSON and all, in a temporary table.
    rows = (
        _shown()
        .add_columns(count.scalar_subquery().correlate(None))
        .join(ids, ids.c.id == Article.id)
        .order_by(*_ordered((ids.c.sort_key, ids.c.id), descending))
    )
    return _PageStatements(rows, total=count)


def read_page(
    session: Session, query: PageQuery, *, filters: Mapping[str, object], sort: str
) -> tuple[list[ArticleOut], int]:
    """The page ``query`` asks for of the articles matching every filter in
    ``filters`` (:data:`_FILTERS`' names, and their values), in ``sort`` order
    (:data:`SORTS`), and how many match in all: one statement, or two for a
    page with no articles."""
    statements = _page_statements(frozenset(filters), sort)
    page = {"limit": query.per_page, "offset": (query.page - 1) * query.per_page}
    rows = session.execute(statements.rows, {**filters, **page}).all()
    if not rows:  # past the last page, or nothing matches: no row carries the count
        return [], session.scalar(statements.total, dict(filters)) or 0
    return _as_models([row[0] for row in rows]), rows[0][1]
