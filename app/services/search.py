"""Article search: from Meilisearch when ``MEILI_URL`` is set, else from the
database (the embedded default), with the same response shape either way.

Meilisearch answers ranked, typo-tolerant matches in title, body, tags and
author name, filtered to published articles (only those are indexed, and the
filter says so again). Its highlights are escaped here exactly as the
database search escapes its own: the text is HTML-escaped and each match
wrapped in ``<em>``, so the only markup in ``_formatted`` is ours. If
Meilisearch is down, the search answers a 503 within ``MEILI_TIMEOUT``.

The database search finds published articles whose title or body contains
``q`` (case-insensitively, as a plain substring: ``LIKE`` with ``%`` and ``_``
escaped), newest first, and highlights the matches as Meilisearch does: wrapped
in ``<em>`` tags, with the body cropped around its first match. It is meant for
development and small sites; it scans the articles table.
"""

from __future__ import annotations

import html
import logging
import re
import time
from typing import Any

from meilisearch.errors import MeilisearchApiError
from sqlalchemy import ColumnElement, or_
from sqlalchemy.orm import Session

from app.core.error_codes import ErrorCode
from app.core.exceptions import ServiceUnavailable
from app.extensions.search import ArticleIndex, SearchUnavailable
from app.models import Article, ArticleStatus, Tag
from app.schemas.articles import ArticleOut
from app.schemas.search import Highlighted, SearchHit, SearchPage, SearchQuery
from app.services.article_rows import SORTS
from app.services.articles import WITH_RELATIONS, article_fields
from app.services.pagination import page_of

log = logging.getLogger("app.search")

HIGHLIGHT_PRE = "<em>"
HIGHLIGHT_POST = "</em>"
#: Characters of body kept on each side of its first match.
CROP_MARGIN = 100
ELLIPSIS = "…"
#: Words of body Meilisearch keeps around the best match (about the same text
#: as ``CROP_MARGIN`` characters on each side).
CROP_WORDS = 32
#: Markers Meilisearch puts around matches; private-use characters, which no
#: article text can fake, are swapped for ``<em>`` after escaping.
_MARK_PRE = "\ue000"
_MARK_POST = "\ue001"
#: Seconds a client should wait before searching again after a 503.
RETRY_AFTER = 5


def search(session: Session, index: ArticleIndex | None, query: SearchQuery) -> SearchPage:
    """Search with Meilisearch when there is an index, else in the database."""
    if index is None:
        return search_database(session, query)
    return search_index(index, query)


def search_index(index: ArticleIndex, query: SearchQuery) -> SearchPage:
    try:
        result = index.search(query.q, meilisearch_params(query))
    except SearchUnavailable as exc:
        # Unreachable or slow is an outage; an error answer (no index, a filter
        # on an attribute that is not filterable) is a misconfiguration.
        if isinstance(exc.__cause__, MeilisearchApiError):
            log.error("search: Meilisearch refused a search (run `flask search init`?): %s", exc)
        else:
            log.warning("search: Meilisearch did not answer a search: %s", exc)
        raise ServiceUnavailable(
            "Search is unavailable; try again shortly",
            error_code=ErrorCode.SEARCH_UNAVAILABLE,
            headers={"Retry-After": str(RETRY_AFTER)},
        ) from None
    items = [_hit(hit, highlighted=bool(query.q)) for hit in result["hits"]]
    return SearchPage(
        items=items,
        query=query.q,
        page=query.page,
        per_page=query.per_page,
        total=result.get("totalHits", len(items)),
        processing_time_ms=result.get("processingTimeMs", 0),
    )


def meilisearch_params(query: SearchQuery) -> dict[str, Any]:
    """The body of ``POST /indexes/{uid}/search`` for this query (without ``q``)."""
    filters = ['status = "published"']
    if query.tag is not None:
        filters.append(f"tags = {filter_string(query.tag)}")
    params: dict[str, Any] = {
        "filter": filters,
        "page": query.page,
        "hitsPerPage": query.per_page,
    }
    if query.q:
        params.update(
            attributesToHighlight=["title", "body"],
            attributesToCrop=["body"],
            cropLength=CROP_WORDS,
            cropMarker=ELLIPSIS,
            highlightPreTag=_MARK_PRE,
            highlightPostTag=_MARK_POST,
        )
    else:
        params["sort"] = ["created_at_ts:desc", "id:desc"]  # no words to rank by: newest first
    return params


def filter_string(value: str) -> str:
    """A Meilisearch filter value: double-quoted, with ``\\`` and ``"`` escaped."""
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _hit(hit: dict[str, Any], *, highlighted: bool) -> SearchHit:
    fields = {name: hit[name] for name in ArticleOut.model_fields}
    formatted: dict[str, Any] | None = hit.get("_formatted") if highlighted else None
    if formatted:
        fields["formatted"] = {
            name: _escape_marked(formatted.get(name, hit[name]), raw=hit[name])
            for name in ("title", "body")
        }
    return SearchHit.model_validate(fields)


def _escape_marked(text: str, *, raw: str) -> str:
    """Escape Meilisearch's fragment, then turn its markers into ``<em>``. A
    text that holds a marker character itself is shown without highlights."""
    if _MARK_PRE in raw or _MARK_POST in raw:
        return html.escape(text.replace(_MARK_PRE, "").replace(_MARK_POST, ""), quote=False)
    return (
        html.escape(text, quote=False)
        .replace(_MARK_PRE, HIGHLIGHT_PRE)
        .replace(_MARK_POST, HIGHLIGHT_POST)
    )


def search_database(session: Session, query: SearchQuery) -> SearchPage:
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
    rows, total = page_of(
        session,
        Article,
        query,
        where=conditions,
        order_by=SORTS["-created_at"],
        options=WITH_RELATIONS,
    )
    items = [SearchHit(**article_fields(row), formatted=highlight(row, query.q)) for row in rows]
    return SearchPage(
        items=items,
        query=query.q,
        page=query.page,
        per_page=query.per_page,
        total=total,
        processing_time_ms=round((time.perf_counter() - started) * 1000),
    )


def highlight(row: Article, q: str) -> Highlighted | None:
    if not q:
        return None
    pattern = re.compile(re.escape(q), re.IGNORECASE)
    return Highlighted(
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
