"""Article search. Without a search engine configured (the embedded default),
it is served from the database, with the same response shape.

The database search finds published articles whose title or body contains
``q`` (case-insensitively, as a plain substring: ``LIKE`` with ``%`` and ``_``
escaped), newest first, and highlights the matches as Meilisearch does: wrapped
in ``<em>`` tags, with the body cropped around its first match. It is meant for
development and small sites; it scans the articles table.
"""

from __future__ import annotations

import html
import re
import time

from sqlalchemy import ColumnElement, or_
from sqlalchemy.orm import Session

from app.api.v1 import schemas
from app.models import Article, ArticleStatus, Tag
from app.services.articles import article_fields, page_of

HIGHLIGHT_PRE = "<em>"
HIGHLIGHT_POST = "</em>"
#: Characters of body kept on each side of its first match.
CROP_MARGIN = 100
ELLIPSIS = "…"


def search_database(session: Session, query: schemas.SearchQuery) -> schemas.SearchPage:
    started = time.perf_counter()
    conditions: list[ColumnElement[bool]] = [Article.status == ArticleStatus.PUBLISHED.value]
    if query.q:
        conditions.append(
            or_(
                Article.title.icontains(query.q, autoescape=True),
                Article.body.icontains(query.q, autoescape=True),
            )
        )
    if query.tag is not None:
        conditions.append(Article.tags.any(Tag.name == query.tag))
    rows, total = page_of(session, conditions, "-created_at", query.page, query.per_page)
    items = [
        schemas.SearchHit(**article_fields(row), formatted=highlight(row, query.q)) for row in rows
    ]
    return schemas.SearchPage(
        items=items,
        query=query.q,
        page=query.page,
        per_page=query.per_page,
        total=total,
        processing_time_ms=round((time.perf_counter() - started) * 1000),
    )


def highlight(row: Article, q: str) -> schemas.Highlighted | None:
    if not q:
        return None
    pattern = re.compile(re.escape(q), re.IGNORECASE)
    return schemas.Highlighted(
        title=_mark(pattern, row.title), body=_mark(pattern, _crop(pattern, row.body))
    )


def _mark(pattern: re.Pattern[str], text: str) -> str:
    """Escape the text, then wrap each match, so the only markup is ours."""
    parts: list[str] = []
    last = 0
    for match in pattern.finditer(text):
        parts.append(html.escape(text[last : match.start()], quote=False))
        parts.append(HIGHLIGHT_PRE + html.escape(match.group(), quote=False) + HIGHLIGHT_POST)
        last = match.end()
    parts.append(html.escape(text[last:], quote=False))
    return "".join(parts)


def _crop(pattern: re.Pattern[str], text: str) -> str:
    match = pattern.search(text)
    if match is None:
        return text[: 2 * CROP_MARGIN] + (ELLIPSIS if len(text) > 2 * CROP_MARGIN else "")
    start = max(0, match.start() - CROP_MARGIN)
    end = min(len(text), match.end() + CROP_MARGIN)
    return (ELLIPSIS if start else "") + text[start:end] + (ELLIPSIS if end < len(text) else "")
