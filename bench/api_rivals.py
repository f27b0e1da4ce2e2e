"""The WSGI apps that ``bench.api`` serves under gunicorn beside the real one
(the FastAPI ones are in :mod:`bench.api_fastapi`).

Each is a factory, named to gunicorn as ``bench.api_rivals:make_uncached()`` and
so on, and reads its settings from the same environment variables as the app
(``DATABASE_URL``, ``REDIS_URL``, ...):

* :func:`make_uncached`: the template's app from ``create_app``, unchanged but for
  one thing: its articles views get a cache that loads on every read. The
  article read (``ArticleNode(id).load()``, the very function the cache calls on
  a miss) and the list (``ArticlePageNode.load()``, likewise) reach the
  database on every request, and no snapshot is ever current. The views, the
  visibility rule, ETags and headers, and every other hook run as in the app.
* :func:`make_stock`: a minimal ``flask.Flask`` app with its default JSON provider
  (``jsonify``), reading the same rows through the app's SQLAlchemy models on
  :func:`stock_engine` (SQLAlchemy's defaults, with pre-ping, and the app's
  connection settings: same time zone), with the same eager loading
  as the app (the author joined, the tags in a second ``SELECT``), and returning
  the same JSON data (its provider sorts keys, so not the same bytes).
* :func:`make_flask_caching`: :func:`make_stock` with its article view under
  Flask-Caching's ``@cache.cached()`` (``CACHE_TYPE="RedisCache"`` on
  ``REDIS_URL``, its own key prefix, 600 s as the app's Redis TTL): a hit is one
  Redis ``GET`` and unpickling the cached response.
* :func:`make_floor`: ``GET /articles`` only: the app's former three ``SELECT``s sent
  with PyMySQL on one autocommit connection per thread, written by orjson. The
  floor of what the list page costs a Python WSGI app on this driver.
* :func:`make_bare`: a bare WSGI callable returning, for each path, the bytes the
  real app returned for it once at start-up (``BENCH_BARE_BODIES`` names the file
  that holds them). Nothing is computed per request: the ceiling.
"""

from __future__ import annotations

import inspect
import math
import os
import threading
from collections.abc import Callable, Iterable
from datetime import datetime
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs

import orjson
import pymysql
from flask import Flask, abort, jsonify, request
from flask.typing import ResponseReturnValue
from flask_caching import Cache
from sqlalchemy import Engine, Select, create_engine, func, make_url, select
from sqlalchemy.orm import joinedload, scoped_session, selectinload, sessionmaker

from app import create_app
from app.cache import Node
from app.core.application import APIFlask
from app.core.settings import load_settings
from app.extensions.database import MYSQL_SQL_MODE
from app.models import Article, ArticleStatus, User

StartResponse = Callable[[str, list[tuple[str, str]]], object]
WSGIApp = Callable[[dict[str, Any], StartResponse], Iterable[bytes]]
ViewFunction = Callable[..., ResponseReturnValue]


# -- the app with the cache turned off ------------------------------------------------


class _NoCache:
    """Stands in for the cache ``Manager`` in the articles view: every read loads."""

    def get(self, node: Node[Any]) -> Any:
        return node.load()

    def holds(self, _node: Node[Any], _value: object) -> bool:
        """It holds nothing: an answer the app might keep and serve again while
        the cache holds its value is never current, so every request loads."""
        return False


_NO_CACHE = _NoCache()


def no_cache() -> _NoCache:
    return _NO_CACHE


def make_uncached() -> APIFlask:
    """The template's app whose article read and list bypass the cache."""
    from app.api.v1 import articles as articles_view  # noqa: PLC0415 - patched here only

    # The views call the module-level name ``get_cache()`` on each request.
    for view in (articles_view.get_article, articles_view.list_articles):
        if "get_cache" not in inspect.unwrap(view).__code__.co_names:
            raise RuntimeError(
                f"{view.__name__} no longer calls get_cache(): update make_uncached()"
            )
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


def stock_engine() -> Engine:
    """The engine a rival's author would write: SQLAlchemy's defaults (its pool,
    and its reset on return: a ``ROLLBACK`` after the session's own), with the
    pre-ping the app has too, and the app's connection settings (``utf8mb4``,
    strict mode, UTC, the same timeouts) so the rows read the same."""
    settings = load_settings()
    return create_engine(
        settings.resolved_database_url,
        pool_pre_ping=True,
        connect_args={
            "charset": "utf8mb4",
            "connect_timeout": settings.database_connect_timeout,
            "read_timeout": settings.database_read_timeout,
            "write_timeout": settings.database_write_timeout,
            "init_command": f"SET SESSION sql_mode='{MYSQL_SQL_MODE}', time_zone='+00:00'",
        },
    )


def _stock_app(name: str, cache_article: Callable[[ViewFunction], ViewFunction] | None) -> Flask:
    """A plain Flask app serving the same two endpoints from the same rows; the
    article read wrapped in ``cache_article`` when one is given."""
    engine = stock_engine()
    session = scoped_session(sessionmaker(bind=engine, expire_on_commit=False))
    stock = Flask(name)

    def with_relations(statement: Select[Article]) -> Select[Article]:
        return statement.options(
            joinedload(Article.author).load_only(User.id, User.name),
            selectinload(Article.tags),
        )

    @stock.teardown_appcontext
    def _remove_session(_exc: BaseException | None) -> None:
        session.remove()

    def get_article(article_id: int) -> ResponseReturnValue:
        row = session.scalars(
            with_relations(select(Article).where(Article.id == article_id))
        ).one_or_none()
        if row is None or row.status != ArticleStatus.PUBLISHED.value:
            abort(404)
        return jsonify(_as_dict(row))

    view = get_article if cache_article is None else cache_article(get_article)
    stock.add_url_rule("/api/v1/articles/<int:article_id>", "get_article", view)

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


def make_stock() -> Flask:
    """A plain Flask app serving the same two endpoints from the same rows."""
    return _stock_app("stock", None)


# -- stock Flask + Flask-Caching ------------------------------------------------------

#: Flask-Caching's own key prefix in Redis (its keys: ``<prefix>view//api/v1/...``).
FLASK_CACHING_PREFIX = "bench-api-flask-caching:"
#: Seconds an article lives in Redis: the app's ``CACHE_REDIS_TTL`` default.
FLASK_CACHING_TIMEOUT = 600


def make_flask_caching() -> Flask:
    """:func:`make_stock` whose article read is cached by Flask-Caching's
    ``RedisCache`` (``@cache.cached()``: the view's response, keyed by path)."""
    cache = Cache(
        config={
            "CACHE_TYPE": "RedisCache",
            "CACHE_REDIS_URL": load_settings().redis_url,
            "CACHE_KEY_PREFIX": FLASK_CACHING_PREFIX,
            "CACHE_DEFAULT_TIMEOUT": FLASK_CACHING_TIMEOUT,
        }
    )
    app = _stock_app("flask_caching", cache.cached(timeout=FLASK_CACHING_TIMEOUT))
    cache.init_app(app)
    return app


# -- the list's floor: the raw driver and orjson ----------------------------------------

_FLOOR_COUNT = "SELECT count(*) FROM articles WHERE articles.status = %s"
_FLOOR_PAGE = (
    "SELECT articles.id, articles.title, articles.`body`, articles.status,"
    " articles.created_at, articles.updated_at, articles.version, users_1.id, users_1.name"
    " FROM articles LEFT OUTER JOIN users AS users_1 ON users_1.id = articles.author_id"
    " WHERE articles.status = %s ORDER BY articles.created_at DESC, articles.id DESC"
    " LIMIT %s, %s"
)
_FLOOR_TAGS = (
    "SELECT article_tags.article_id, tags.name"
    " FROM article_tags INNER JOIN tags ON tags.id = article_tags.tag_id"
    " WHERE article_tags.article_id IN ({})"
)


def _query_int(query: dict[str, list[str]], name: str, default: int) -> int:
    try:
        return int(query[name][0])
    except (KeyError, ValueError):
        return default


def make_floor() -> WSGIApp:
    """``GET /api/v1/articles``: the app's former three ``SELECT``s (count, the page with
    its author joined, the page's tags; less two columns nothing reads) sent
    with PyMySQL on one connection per thread (autocommit: no pool, no pre-ping,
    no ``ROLLBACK``), the rows turned into dicts and written by orjson. The
    least a Python WSGI app can do for this page reading its plain columns;
    the app reads one JSON string per row instead (app/services/article_rows.py)."""
    settings = load_settings()
    url = make_url(settings.resolved_database_url)
    local = threading.local()

    def cursor() -> Any:
        connection = getattr(local, "connection", None)
        if connection is None:
            connection = local.connection = pymysql.connect(
                host=url.host or "127.0.0.1",
                port=url.port or 3306,
                user=url.username or "root",
                password=url.password or "",
                database=url.database,
                charset="utf8mb4",
                autocommit=True,
                connect_timeout=settings.database_connect_timeout,
                read_timeout=settings.database_read_timeout,
                write_timeout=settings.database_write_timeout,
                init_command=f"SET SESSION sql_mode='{MYSQL_SQL_MODE}', time_zone='+00:00'",
            )
        return connection.cursor()

    json_headers = [("Content-Type", "application/json")]
    published = ArticleStatus.PUBLISHED.value

    def floor(environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
        if environ["PATH_INFO"] != "/api/v1/articles":
            start_response("404 Not Found", [*json_headers, ("Content-Length", "2")])
            return [b"{}"]
        query = parse_qs(environ.get("QUERY_STRING", ""))
        page = max(1, _query_int(query, "page", 1))
        per_page = min(100, max(1, _query_int(query, "per_page", 20)))
        with cursor() as db:
            db.execute(_FLOOR_COUNT, (published,))
            total: int = db.fetchone()[0]
            db.execute(_FLOOR_PAGE, (published, (page - 1) * per_page, per_page))
            rows = db.fetchall()
            tags: dict[int, list[str]] = {row[0]: [] for row in rows}
            if tags:
                db.execute(_FLOOR_TAGS.format(", ".join(["%s"] * len(tags))), tuple(tags))
                for article_id, name in db.fetchall():
                    tags[article_id].append(name)
        items = [
            {
                "id": article_id,
                "title": title,
                "body": body,
                "tags": sorted(tags[article_id]),
                "status": status,
                "author": {"id": author_id, "name": author_name},
                "created_at": created_at,
                "updated_at": updated_at,
                "version": version,
            }
            for (
                article_id,
                title,
                body,
                status,
                created_at,
                updated_at,
                version,
                author_id,
                author_name,
            ) in rows
        ]
        payload = orjson.dumps(
            {
                "items": items,
                "page": page,
                "per_page": per_page,
                "total": total,
                "pages": math.ceil(total / per_page),
            },
            option=orjson.OPT_NAIVE_UTC | orjson.OPT_UTC_Z,
        )
        start_response("200 OK", [*json_headers, ("Content-Length", str(len(payload)))])
        return [payload]

    return floor


# -- the bare WSGI ceiling ------------------------------------------------------------


def make_bare(bodies_file: str | None = None, *, with_headers: bool = False) -> WSGIApp:
    """Serve, per path (with its query string), the bytes stored for it, with a
    ``Content-Type`` and ``Content-Length``; ``with_headers``: with the headers
    the app sent for that path instead (``BENCH_BARE_HEADERS``: its request id
    the same on every answer), for the item paths only."""
    path = Path(bodies_file or os.environ["BENCH_BARE_BODIES"])
    stored: dict[str, str] = orjson.loads(path.read_bytes())
    sent: dict[str, list[tuple[str, str]]] = {}
    if with_headers:
        raw = orjson.loads(Path(os.environ["BENCH_BARE_HEADERS"]).read_bytes())
        sent = {target: [(name, value) for name, value in pairs] for target, pairs in raw.items()}
    table: dict[str, tuple[bytes, list[tuple[str, str]]]] = {}
    for target, text in stored.items():
        body = text.encode()
        headers = [("Content-Type", "application/json"), ("Content-Length", str(len(body)))]
        if with_headers:
            if target not in sent:
                continue
            headers = sent[target]
        table[target] = (body, headers)
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
