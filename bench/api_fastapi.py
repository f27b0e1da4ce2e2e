"""The FastAPI apps that ``bench.api`` serves beside the real one, under gunicorn
with ``--worker-class uvicorn_worker.UvicornWorker``.

Each is a factory named to gunicorn (``bench.api_fastapi:make_fsft()``, ...) and
reads the same environment variables as the app (``DATABASE_URL``,
``REDIS_URL``, ...), through the app's own settings and engine factory (same
pool, pre-ping, time zone):

* :func:`make_fsft`: FastAPI written the way full-stack-fastapi-template writes
  it: sync ``def`` endpoints (FastAPI runs them in its thread pool), a
  SQLAlchemy ``Session`` per request from a ``Depends`` generator
  (``SessionDep``), the ORM row returned as it is and turned into JSON through
  a pydantic ``response_model`` (``from_attributes``). The same rows, with the
  same eager loading as the app (the author joined, the tags in a second
  ``SELECT``). No cache.
* :func:`make_cached`: the article read cached with fastapi-cache2 in Redis
  (``FastAPICache.init(RedisBackend(redis.asyncio.from_url(REDIS_URL)))`` in the
  lifespan, ``@cache(expire=600)`` on the endpoint, its default ``JsonCoder``
  and key builder). The endpoint is ``async`` and takes no ``Session``
  dependency, so a hit costs one Redis round trip (a ``TTL`` + ``GET``
  pipeline) and nothing else: the best case for fastapi-cache2. A miss loads
  the row in the thread pool, as the FSFT-style endpoint does.

Both answer with the app's JSON data: pydantic writes an aware UTC datetime
with ``Z``, as the app does, and the tags are sorted by name.
"""

import math
import os
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from datetime import datetime
from typing import Annotated, Any

import redis.asyncio
from fastapi import Depends, FastAPI, HTTPException, Query
from fastapi.concurrency import run_in_threadpool
from fastapi_cache import FastAPICache
from fastapi_cache.backends.redis import RedisBackend
from fastapi_cache.decorator import cache
from pydantic import BaseModel, BeforeValidator, ConfigDict
from sqlalchemy import Engine, Select, func, select
from sqlalchemy.orm import Session, joinedload, selectinload

from app.core.settings import load_settings
from app.models import Article, ArticleStatus, User
from bench.api_rivals import stock_engine

#: The first segment of fastapi-cache2's keys in Redis (``<prefix>::<md5>``).
FASTAPI_CACHE_PREFIX = os.environ.get("BENCH_FASTAPI_CACHE_PREFIX", "bench-api-fastapi-cache")
#: Seconds an article lives in Redis: the app's ``CACHE_REDIS_TTL`` default.
EXPIRE = 600


# -- the response models, as FSFT declares its ``*Public`` models ----------------------


def _tag_names(value: Any) -> Any:
    """The ORM's ``Tag`` rows (or, from the cache, their names), as sorted names."""
    if isinstance(value, list):
        return sorted(tag if isinstance(tag, str) else tag.name for tag in value)
    return value


class AuthorPublic(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    name: str


class ArticlePublic(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    title: str
    body: str
    tags: Annotated[list[str], BeforeValidator(_tag_names)]
    status: str
    author: AuthorPublic
    created_at: datetime
    updated_at: datetime
    version: int


class ArticlesPublic(BaseModel):
    items: list[ArticlePublic]
    page: int
    per_page: int
    total: int
    pages: int


# -- the database, as FSFT's ``app/api/deps.py`` wires it -----------------------------

_engine: Engine | None = None


def engine() -> Engine:
    """One engine per worker process, built on first use (after gunicorn's fork)."""
    global _engine  # noqa: PLW0603 - one per process, as FSFT's module-level engine
    if _engine is None:
        _engine = stock_engine()
    return _engine


def get_db() -> Iterator[Session]:
    with Session(engine()) as session:
        yield session


SessionDep = Annotated[Session, Depends(get_db)]


def with_relations(statement: Select[Article]) -> Select[Article]:
    return statement.options(
        joinedload(Article.author).load_only(User.id, User.name),
        selectinload(Article.tags),
    )


def published_article(session: Session, article_id: int) -> Article:
    row = session.scalars(
        with_relations(select(Article).where(Article.id == article_id))
    ).one_or_none()
    if row is None or row.status != ArticleStatus.PUBLISHED.value:
        raise HTTPException(status_code=404, detail="Article not found")
    return row


# -- FSFT-style, no cache -------------------------------------------------------------


def make_fsft() -> FastAPI:
    """FastAPI as full-stack-fastapi-template writes it, on the app's rows."""
    api = FastAPI(title="fsft-style")

    @api.get("/api/v1/articles/{article_id}", response_model=ArticlePublic)
    def read_article(session: SessionDep, article_id: int) -> Any:
        return published_article(session, article_id)

    @api.get("/api/v1/articles", response_model=ArticlesPublic)
    def read_articles(
        session: SessionDep,
        page: Annotated[int, Query(ge=1)] = 1,
        per_page: Annotated[int, Query(ge=1, le=100)] = 20,
    ) -> Any:
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
        ).all()
        return ArticlesPublic(
            items=[ArticlePublic.model_validate(row) for row in rows],
            page=page,
            per_page=per_page,
            total=total,
            pages=math.ceil(total / per_page),
        )

    return api


# -- fastapi-cache2 -------------------------------------------------------------------


def _load(article_id: int) -> ArticlePublic:
    with Session(engine()) as session:
        return ArticlePublic.model_validate(published_article(session, article_id))


@asynccontextmanager
async def _lifespan(_: FastAPI) -> AsyncIterator[None]:
    client = redis.asyncio.from_url(load_settings().redis_url)
    FastAPICache.init(RedisBackend(client), prefix=FASTAPI_CACHE_PREFIX, expire=EXPIRE)
    yield
    await client.aclose()


def make_cached() -> FastAPI:
    """The article read cached in Redis by fastapi-cache2."""
    api = FastAPI(title="fastapi-cache2", lifespan=_lifespan)

    @api.get("/api/v1/articles/{article_id}")
    @cache(expire=EXPIRE)
    async def read_article(article_id: int) -> ArticlePublic:
        return await run_in_threadpool(_load, article_id)

    return api
