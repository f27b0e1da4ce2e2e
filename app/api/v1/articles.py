"""``/articles``: list, create, read (through the tiered cache), update, delete.

Each article carries ``ETag: "<id>-<version>"`` and ``Last-Modified``. A GET
whose ``If-None-Match`` matches answers 304 with no body; a PATCH or DELETE
whose ``If-Match`` no longer matches answers 412. Without ``If-Match``, two
writers racing on the same version cannot both win either: the loser gets 409
(the version counter is checked in the ``UPDATE`` itself).

Drafts are visible to their author and to admins only; to anyone else a draft
does not exist (404), so its id leaks nothing.
"""

from __future__ import annotations

import hashlib

from flask import request, url_for
from sqlalchemy.orm import Session
from sqlalchemy.orm.exc import StaleDataError
from werkzeug.http import http_date, quote_etag

from app.api.v1.schemas import (
    Article,
    ArticleCreate,
    ArticlePage,
    ArticleQuery,
    ArticleUpdate,
    SearchPage,
    SearchQuery,
)
from app.auth.guards import current_user, optional_auth, require_user, signed_in
from app.core.application import APIBlueprint
from app.core.exceptions import Conflict, Forbidden, NotFound, PreconditionFailed
from app.core.json import dumps_bytes
from app.extensions.cache import get_cache
from app.extensions.database import get_database
from app.extensions.search import get_index
from app.models import Article as ArticleRow
from app.models import ArticleStatus
from app.models.base import utcnow
from app.services import articles as service
from app.services import search
from app.services.articles import ArticleNode

bp = APIBlueprint("articles", __name__, url_prefix="/articles")

NO_SUCH_ARTICLE = "No such article (or a draft that is not yours)"
_ETAG = {"ETag": 'The article\'s version tag: "<id>-<version>"'}


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
    viewer = require_user() if query.status == ArticleStatus.DRAFT else None
    items, total = service.search(get_database().session(), query, viewer=viewer)
    body = dumps_bytes(ArticlePage.of(items, query, total))
    tag = hashlib.blake2b(body, digest_size=16).hexdigest()
    headers = {"ETag": quote_etag(tag, weak=True), "Cache-Control": "no-cache"}
    if request.if_none_match.contains_weak(tag):
        return None, 304, headers
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
    responses={201: Article},
    headers={201: {"Location": "The new article's URL", **_ETAG}},
)
def create_article(body: ArticleCreate) -> tuple[Article, int, dict[str, str]]:
    """Write an article (a draft unless ``status`` says ``published``)."""
    author = require_user()
    session = get_database().session()
    row = ArticleRow(
        author_id=author.id,
        title=body.title,
        body=body.body,
        status=body.status.value,
        tags=service.tags_named(session, body.tags),
    )
    row.author = author
    session.add(row)
    session.commit()
    article = service.to_schema(row)
    headers = _headers(article)
    headers["Location"] = url_for(".get_article", article_id=article.id)
    return article, 201, headers


@bp.operation(
    "GET",
    "/<id:article_id>",
    "getArticle",
    guard=optional_auth,
    responses={
        200: Article,
        304: "Not modified: the ETag matches If-None-Match",
        404: NO_SUCH_ARTICLE,
    },
    headers={
        200: {**_ETAG, "Last-Modified": "When the article last changed"},
        304: _ETAG,
    },
)
def get_article(article_id: int) -> tuple[Article | None, int, dict[str, str]]:
    """One article, served through the tiered cache."""
    article = get_cache().get(ArticleNode(article_id))
    if article is None or not _may_read(article):
        raise NotFound(NO_SUCH_ARTICLE)
    headers = _headers(article)
    if request.if_none_match.contains_weak(_tag(article)):
        return None, 304, headers
    return article, 200, headers


@bp.operation(
    "PATCH",
    "/<id:article_id>",
    "updateArticle",
    guard=signed_in,
    body=ArticleUpdate,
    responses={
        200: Article,
        403: "Only the author or an admin may change it",
        404: NO_SUCH_ARTICLE,
        409: "Changed by someone else meanwhile; fetch it again and retry",
        412: "If-Match does not match the current version",
    },
    headers={200: _ETAG},
)
def update_article(article_id: int, body: ArticleUpdate) -> tuple[Article, dict[str, str]]:
    """Change an article's title, body, tags or status.

    Send ``If-Match`` with the ETag you read to be sure nobody changed it since.
    """
    session = get_database().session()
    row = _writable(article_id)
    changes = body.model_dump(exclude_unset=True)
    if "tags" in changes:
        row.tags = service.tags_named(session, changes.pop("tags"))
    if "status" in changes:
        changes["status"] = changes["status"].value
    for field, value in changes.items():
        setattr(row, field, value)
    if session.is_modified(row):
        row.updated_at = utcnow()  # an UPDATE even when only tags changed: the version moves
        _commit(session)
    article = service.to_schema(row)
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
)
def delete_article(article_id: int) -> None:
    """Delete an article. ``If-Match`` works as for PATCH."""
    session = get_database().session()
    session.delete(_writable(article_id))
    _commit(session)


def _tag(article: Article | ArticleRow) -> str:
    """The ETag's value (unquoted): the id and the version."""
    return f"{article.id}-{article.version}"


def _headers(article: Article) -> dict[str, str]:
    return {
        "ETag": quote_etag(_tag(article)),
        "Last-Modified": http_date(article.updated_at),
        "Cache-Control": (
            "no-cache" if article.status == ArticleStatus.PUBLISHED else "private, no-cache"
        ),
    }


def _may_read(article: Article) -> bool:
    if article.status == ArticleStatus.PUBLISHED:
        return True
    viewer = current_user()
    return viewer is not None and (viewer.is_admin or viewer.id == article.author.id)


def _writable(article_id: int) -> ArticleRow:
    """The row, if the caller may change it and ``If-Match`` (if sent) matches."""
    user = require_user()
    row = service.find(get_database().session(), article_id)
    if row is None:
        raise NotFound(NO_SUCH_ARTICLE)
    if not (user.is_admin or user.id == row.author_id):
        if row.status != ArticleStatus.PUBLISHED.value:
            raise NotFound(NO_SUCH_ARTICLE)
        raise Forbidden("Only the author or an admin may change this article")
    if request.if_match and not request.if_match.contains(_tag(row)):
        raise PreconditionFailed(
            "The article changed since that ETag; fetch it again",
            headers={"ETag": quote_etag(_tag(row))},
        )
    return row


def _commit(session: Session) -> None:
    try:
        session.commit()
    except StaleDataError:
        session.rollback()
        if request.if_match:
            raise PreconditionFailed("The article changed meanwhile; fetch it again") from None
        raise Conflict("The article changed meanwhile; fetch it again and retry") from None
