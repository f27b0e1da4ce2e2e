"""One page of rows and how many there are in all: the one pagination helper,
behind every list (articles, users, the database search)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, TypeVar

from sqlalchemy import ColumnElement, func, select
from sqlalchemy.orm import Session
from sqlalchemy.orm.interfaces import ORMOption

from app.schemas.base import PageQuery

RowT = TypeVar("RowT")


def page_of(
    session: Session,
    model: type[RowT],
    query: PageQuery,
    *,
    where: Sequence[ColumnElement[bool]] = (),
    order_by: Sequence[Any],
    options: Sequence[ORMOption] = (),
) -> tuple[list[RowT], int]:
    """The rows of ``model`` matching ``where`` on the page ``query`` asks for,
    in ``order_by`` order, and the number matching in all. ``order_by`` should
    end with the primary key, so that pages never overlap."""
    total = session.scalar(select(func.count()).select_from(model).where(*where)) or 0
    rows = session.scalars(
        select(model)
        .where(*where)
        .order_by(*order_by)
        .options(*options)
        .limit(query.per_page)
        .offset((query.page - 1) * query.per_page)
    )
    return list(rows), total
