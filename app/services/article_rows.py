"""Articles as the API shows them, read as rows: the reads behind the cached
article and the list.

One ``SELECT`` of the columns the API shows, the author's name joined and the
tag names gathered into a JSON array (for a page, after a ``SELECT count(*)``):
no ORM objects, no identity map, no relationship loaders. The writes load :class:`~app.models.Article` rows
and show them through :func:`app.services.articles.to_out`; both paths give
the same :class:`~app.schemas.articles.ArticleOut` (``tests/test_api_articles.py``
compares them).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import orjson
from sqlalchemy import ColumnElement, Row, Select, bindparam, func, select
from sqlalchemy.orm import Session

from app.models import Article, Tag, User, article_tags
from app.models.base import json_array_of
from app.schemas.articles import ArticleOut
from app.schemas.base import PageQuery

#: The article's tag names, a JSON array in one column of its row.
_TAG_NAMES = (
    select(json_array_of(Tag.name))
    .select_from(article_tags.join(Tag, Tag.id == article_tags.c.tag_id))
    .where(article_tags.c.article_id == Article.id)
    .scalar_subquery()
)
_COLUMNS = (
    Article.id,
    Article.title,
    Article.body,
    Article.status,
    Article.created_at,
    Article.updated_at,
    Article.version,
    Article.author_id,
    User.name,
    _TAG_NAMES,
)


def _shown() -> Select[*tuple[Any, ...]]:
    return select(*_COLUMNS).join(User, User.id == Article.author_id)


# Built once: building a statement costs more than running it from the cache of
# compiled statements, which it hits on every call.
_ONE = _shown().where(Article.id == bindparam("article_id"))


def _shown_as_models(rows: Sequence[Row[*tuple[Any, ...]]]) -> list[ArticleOut]:
    return [_as_model(row) for row in rows]


def _as_model(row: Sequence[Any]) -> ArticleOut:
    """One row of :data:`_COLUMNS`, in their order."""
    return ArticleOut.model_validate(
        {
            "id": row[0],
            "title": row[1],
            "body": row[2],
            "tags": sorted(orjson.loads(row[9])) if row[9] is not None else [],
            "status": row[3],
            "author": {"id": row[7], "name": row[8]},
            "created_at": row[4],
            "updated_at": row[5],
            "version": row[6],
        }
    )


def read_one(session: Session, article_id: int) -> ArticleOut | None:
    """The article ``article_id``, or ``None``."""
    row = session.execute(_ONE, {"article_id": article_id}).one_or_none()
    return _as_model(row) if row is not None else None


def read_page(
    session: Session,
    query: PageQuery,
    *,
    where: Sequence[ColumnElement[bool]],
    order_by: Sequence[Any],
) -> tuple[list[ArticleOut], int]:
    """The page ``query`` asks for of the articles matching ``where``, in
    ``order_by`` order (ending with the id, so pages never overlap), and how
    many match in all."""
    total = session.scalar(select(func.count()).select_from(Article).where(*where)) or 0
    # The page's ids first, from the index alone where one fits the order, then
    # their rows: the author and the tags are looked up for those rows only, not
    # for every article that matches before the sort (a "deferred join").
    ids = (
        select(Article.id)
        .where(*where)
        .order_by(*order_by)
        .limit(query.per_page)
        .offset((query.page - 1) * query.per_page)
        .subquery("page")
    )
    rows = session.execute(_shown().join(ids, ids.c.id == Article.id).order_by(*order_by)).all()
    return _shown_as_models(rows), total
