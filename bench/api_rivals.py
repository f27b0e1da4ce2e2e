"""The WSGI apps that ``bench.api`` serves under gunicorn beside the real one.

Each is a factory, named to gunicorn as ``bench.api_rivals:make_uncached()`` and
so on, and reads its settings from the same environment variables as the app
(``DATABASE_URL``, ``REDIS_URL``, ...):

* :func:`make_uncached`: the template's app from ``create_app``, unchanged but for
  one thing: ``GET /articles/<id>`` loads the article from the database on every
  request (``ArticleNode(id).load()``, the very function the cache calls on a
  miss) instead of asking the cache. The view, its visibility rule, ETag and
  headers, and every other hook run as they do in the app.
* :func:`make_stock`: a minimal ``flask.Flask`` app with its default JSON provider
  (``jsonify``), reading the same rows through the app's SQLAlchemy models and
  engine settings (same pool, pre-ping, time zone), with the same eager loading
  as the app (the author joined, the tags in a second ``SELECT``), and returning
  the same JSON data (its provider sorts keys, so not the same bytes).
* :func:`make_bare`: a bare WSGI callable returning, for each path, the bytes the
  real app returned for it once at start-up (``BENCH_BARE_BODIES`` names the file
  that holds them). Nothing is computed per request: the ceiling.
"""

from __future__ import annotations

import inspect
import math
import os
from collections.abc import Callable, Iterable
from datetime import datetime
from pathlib import Path
from typing import Any

import orjson
from flask import Flask, abort, jsonify, request
from flask.typing import ResponseReturnValue
from sqlalchemy import Select, func, select
from sqlalchemy.orm import joinedload, scoped_session, selectinload, sessionmaker

from app import create_app
from app.cache import Node
from app.core.application import APIFlask
from app.core.settings import load_settings
from app.extensions.database import create_database_engine
from app.models import Article, ArticleStatus, User

StartResponse = Callable[[str, list[tuple[str, str]]], object]
WSGIApp = Callable[[dict[str, Any], StartResponse], Iterable[bytes]]


# -- the app with the cache turned off ------------------------------------------------


class _NoCache:
    """Stands in for the cache ``Manager`` in the articles view: every read loads."""

    def get(self, node: Node[Any]) -> Any:
        return node.load()


_NO_CACHE = _NoCache()


def no_cache() -> _NoCache:
    return _NO_CACHE


def make_uncached() -> APIFlask:
    """The template's app whose article read bypasses the cache."""
    from app.api.v1 import articles as articles_view  # noqa: PLC0415 - patched here only

    # The view calls the module-level name ``get_cache()`` on each request.
    if "get_cache" not in inspect.unwrap(articles_view.get_article).__code__.co_names:
        raise RuntimeError("get_article no longer calls get_cache(): update make_uncached()")
    articles_view.get_cache = no_cache  # type: ignore[assignment]
    return create_app()


# -- stock Flask ----------------------------------------------------------------------


def _iso(value: datetime) -> str:
    """As the app writes an aware UTC datetime: RFC 3339 with ``Z``."""
    return value.isoformat().replace("+00:00", "Z")


def _as_dict(row: Article) -> dict[str, Any]:
    return {
        "id": row.id,
        "title": row.title,
        "body": row.body,
        "tags": sorted(tag.name for tag in row.tags),
        "status": row.status,
        "author": {"id": row.author.id, "name": row.author.name},
        "created_at": _iso(row.created_at),
        "updated_at": _iso(row.updated_at),
        "version": row.version,
    }


def make_stock() -> Flask:
    """A plain Flask app serving the same two endpoints from the same rows."""
    engine = create_database_engine(load_settings())
    session = scoped_session(sessionmaker(bind=engine, expire_on_commit=False))
    stock = Flask("stock")

    def with_relations(statement: Select[Article]) -> Select[Article]:
        return statement.options(
            joinedload(Article.author).load_only(User.id, User.name),
            selectinload(Article.tags),
        )

    @stock.teardown_appcontext
    def _remove_session(_exc: BaseException | None) -> None:
        session.remove()

    @stock.get("/api/v1/articles/<int:article_id>")
    def get_article(article_id: int) -> ResponseReturnValue:
        row = session.scalars(
            with_relations(select(Article).where(Article.id == article_id))
        ).one_or_none()
        if row is None or row.status != ArticleStatus.PUBLISHED.value:
            abort(404)
        return jsonify(_as_dict(row))

    @stock.get("/api/v1/articles")
    def list_articles() -> ResponseReturnValue:
        page = max(1, request.args.get("page", 1, type=int) or 1)
        per_page = min(100, max(1, request.args.get("per_page", 20, type=int) or 20))
        published = Article.status == ArticleStatus.PUBLISHED.value
        total = session.scalar(select(func.count()).select_from(Article).where(published)) or 0
        rows = session.scalars(
            with_relations(
                select(Article)
                .where(published)
                .order_by(Article.created_at.desc(), Article.id.desc())
                .limit(per_page)
                .offset((page - 1) * per_page)
            )
        )
        return jsonify(
            items=[_as_dict(row) for row in rows],
            page=page,
            per_page=per_page,
            total=total,
            pages=math.ceil(total / per_page),
        )

    return stock


# -- the bare WSGI ceiling ------------------------------------------------------------


def make_bare(bodies_file: str | None = None) -> WSGIApp:
    """Serve, per path (with its query string), the bytes stored for it."""
    path = Path(bodies_file or os.environ["BENCH_BARE_BODIES"])
    stored: dict[str, str] = orjson.loads(path.read_bytes())
    table: dict[str, tuple[bytes, list[tuple[str, str]]]] = {}
    for target, text in stored.items():
        body = text.encode()
        table[target] = (
            body,
            [("Content-Type", "application/json"), ("Content-Length", str(len(body)))],
        )
    not_found = [("Content-Type", "application/json"), ("Content-Length", "2")]

    def bare(environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
        query = environ.get("QUERY_STRING")
        target = environ["PATH_INFO"] + ("?" + query if query else "")
        entry = table.get(target)
        if entry is None:
            start_response("404 Not Found", not_found)
            return [b"{}"]
        start_response("200 OK", entry[1])
        return [entry[0]]

    return bare
