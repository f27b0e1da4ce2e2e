"""``/articles``: list, create, read (through the tiered cache), update, delete.

Each article carries ``ETag: "<id>-<version>"`` and ``Last-Modified``. A GET
whose ``If-None-Match`` matches answers 304 with no body; a PATCH or DELETE
whose ``If-Match`` no longer matches answers 412. Who may see and change what
is :mod:`app.services.articles`' to say; these views only speak HTTP.
"""

from __future__ import annotations

import hashlib

from flask import request, url_for
from werkzeug.http import http_date, quote_etag

from app.auth.guards import current_user, optional_auth, require_user, signed_in
from app.core import snapshots
from app.core.application import APIBlueprint
from app.core.json import dumps_bytes
from app.extensions.cache import get_cache
from app.extensions.database import get_database
from app.extensions.search import get_index
from app.models import ArticleStatus
from app.schemas.articles import ArticleCreate, ArticleOut, ArticlePage, ArticleQuery, ArticleUpdate
from app.schemas.search import SearchPage, SearchQuery
from app.services import article_pages, search
from app.services import articles as service
from app.services.articles import NO_SUCH_ARTICLE, TagMatcher

bp = APIBlueprint("articles", __name__, url_prefix="/articles")

_ETAG = {"ETag": 'The article\'s version tag, `"<id>-<version>"`'}
_CURRENT_ETAG = {"ETag": "The current version's tag, when the If-Match sent is out of date"}


@bp.operation(
    "GET",
    "",
    "listArticles",
    guard=optional_auth,
    query=ArticleQuery,
    responses={
        200: ArticlePage,
        304: "Not modified: the page's ETag matches If-None-Match",
        401: "status=draft needs a valid access token",
    },
    headers={200: {"ETag": "A weak tag of this page's content"}, 304: {"ETag": "As for 200"}},
)
def list_articles(query: ArticleQuery) -> tuple[bytes | None, int, dict[str, str]]:
    """A page of articles.

    Published articles by default; ``status=draft`` lists your own drafts (an
    admin's: everyone's). Sorted newest first unless ``sort`` says otherwise.
    """
    if query.status == ArticleStatus.DRAFT:
        page = service.list_page(get_database().session(), query, viewer=require_user())
        is_current = None
    else:
        page, is_current = article_pages.published_page(get_cache(), query)
    body = dumps_bytes(page)
    tag = hashlib.blake2b(body, digest_size=16).hexdigest()
    headers = {"ETag": quote_etag(tag, weak=True), "Cache-Control": "no-cache"}
    if request.if_none_match.contains_weak(tag):
        return None, 304, headers
    snapshots.offer(is_current)
    return body, 200, headers


@bp.operation(
    "GET",
    "/search",
    "searchArticles",
    query=SearchQuery,
    responses={200: SearchPage, 503: "Meilisearch is down (error_code 19003); retry later"},
    headers={503: {"Retry-After": "Seconds to wait before searching again"}},
)
def search_articles(query: SearchQuery) -> SearchPage:
    """Search published articles.

    Matches of ``q`` come back highlighted in each item's ``_formatted``
    (HTML: the text escaped, each match wrapped in ``<em>``).
    """
    return search.search(get_database().session(), get_index(), query)


@bp.operation(
    "POST",
    "",
    "createArticle",
    guard=signed_in,
    body=ArticleCreate,
    responses={201: ArticleOut},
    headers={201: {"Location": "The new article's URL", **_ETAG}},
)
def create_article(body: ArticleCreate) -> tuple[ArticleOut, int, dict[str, str]]:
    """Write an article (a draft unless ``status`` says ``published``)."""
    article = service.create(get_database().session(), author=require_user(), fields=body)
    headers = _headers(article)
    headers["Location"] = url_for(".get_article", article_id=article.id)
    return article, 201, headers


@bp.operation(
    "GET",
    "/<id:article_id>",
    "getArticle",
    guard=optional_auth,
    responses={
        200: ArticleOut,
        304: "Not modified: the ETag matches If-None-Match",
        404: NO_SUCH_ARTICLE,
    },
    headers={
        200: {**_ETAG, "Last-Modified": "When the article last changed"},
        304: _ETAG,
    },
)
def get_article(article_id: int) -> tuple[ArticleOut | None, int, dict[str, str]]:
    """One article, served through the tiered cache."""
    cache = get_cache()
    article = service.get_visible(cache, article_id, current_user)
    headers = _headers(article)
    if request.if_none_match.contains_weak(service.entity_tag(article)):
        return None, 304, headers
    snapshots.offer(service.while_cached(cache, article))
    return article, 200, headers


@bp.operation(
    "PATCH",
    "/<id:article_id>",
    "updateArticle",
    guard=signed_in,
    body=ArticleUpdate,
    responses={
        200: ArticleOut,
        403: "Only the author or an admin may change it",
        404: NO_SUCH_ARTICLE,
        409: "Changed by someone else meanwhile; fetch it again and retry",
        412: "If-Match does not match the current version",
    },
    headers={200: _ETAG, 412: _CURRENT_ETAG},
)
def update_article(article_id: int, body: ArticleUpdate) -> tuple[ArticleOut, dict[str, str]]:
    """Change an article's title, body, tags or status.

    Send ``If-Match`` with the ETag you read to be sure nobody changed it since.
    """
    article = service.update(
        get_database().session(),
        article_id,
        actor=require_user(),
        changes=body,
        if_match=_if_match(),
    )
    return article, _headers(article)


@bp.operation(
    "DELETE",
    "/<id:article_id>",
    "deleteArticle",
    guard=signed_in,
    responses={
        204: "Deleted",
        403: "Only the author or an admin may delete it",
        404: NO_SUCH_ARTICLE,
        409: "Changed by someone else meanwhile; fetch it again and retry",
        412: "If-Match does not match the current version",
    },
    headers={412: _CURRENT_ETAG},
)
def delete_article(article_id: int) -> None:
    """Delete an article. ``If-Match`` works as for PATCH."""
    service.delete(get_database().session(), article_id, actor=require_user(), if_match=_if_match())


def _if_match() -> TagMatcher | None:
    """The versions ``If-Match`` accepts, if it was sent."""
    return request.if_match.contains if request.if_match else None


def _headers(article: ArticleOut) -> dict[str, str]:
    return {
        "ETag": quote_etag(service.entity_tag(article)),
        "Last-Modified": http_date(article.updated_at),
        "Cache-Control": (
            "no-cache" if article.status == ArticleStatus.PUBLISHED else "private, no-cache"
        ),
    }
