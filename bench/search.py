"""Search indexing on SQLite and MariaDB, against floors and naive rivals, in one run.

    python -m bench.search            # the full run: 5,000 articles, 10,000 outbox rows
    python -m bench.search --quick    # a sanity run: 1,000 articles, 2,000 outbox rows

(the defaults are ``--rounds 9 --articles 5000``; ``--quick`` is ``--rounds 3
--articles 1000``; ``--only sqlite`` or ``--only mariadb`` runs one database).

**No Meilisearch was measured.** None runs on this machine. The indexer target
is :class:`InstantIndex`, an in-process stand-in that subclasses the app's
:class:`~app.extensions.search.ArticleIndex` and overrides what the indexer
calls (``add_documents``, ``delete_documents``, ``confirm``, ``document_ids``):
documents go into a dict and every task is confirmed at once. So the figures
are *our side's* cost (database reads, locks, outbox bookkeeping, building the
documents), the part a real Meilisearch would add nothing to; they are not the
throughput of a deployment, where Meilisearch's own indexing usually dominates.
One extra reindex line sends the same run through the real ``ArticleIndex``
and the official ``meilisearch`` client over HTTP to ``tests/meili_fake.py``
(the test suite's stand-in of Meilisearch's REST API, run in a thread of this
process), to show what the client, JSON and the HTTP hop add; that stand-in
also confirms every task at once.

The databases: a SQLite file in a temporary folder, and the MariaDB database
``bench_search`` on 127.0.0.1:3306 (user ``root``, no password), dropped and
re-created on every run (``BENCH_SEARCH_DATABASE_URL`` points elsewhere; the
database ``test``, the test suite's, is refused). Both are migrated with the
app's own migrations and seeded by bulk inserts: 50 authors, 40 tags, the
articles (4 in 5 published, bodies of 400-1,600 characters, 0-4 tags each).
Every rival uses a fresh session from the app's own session factory
(``create_app``, so the outbox listeners are on), the app's default batch size
(``SEARCH_BATCH_SIZE``, 500) and ``indexing.lease_for(settings)``.

1. **Reindex** every article (published ones upserted, drafts deleted), the
   stand-in already holding every published document, as it does at the nightly
   reindex. Figures are articles sent per second (a document or a deletion):

   * *plain read (floor)*: keyset pages of one Core ``SELECT`` (articles join
     authors) plus one of the batch's tags, the same document dicts built by
     hand and handed to the stand-in; no ORM entities, no locks, no outbox, no
     checkpoint, no confirmation;
   * *reindexing.reindex (ours)*, with ``restart=True``: keyset batches, each
     delivered under the lock, confirmed, checkpointed, then the orphan pass;
   * *ours over HTTP*: the same, through ``ArticleIndex`` to the HTTP stand-in;
   * *naive*: ORM pages by ``OFFSET``, the author and tags lazy-loaded per
     article, one ``add_documents`` (or deletion) and one confirmation per article.

2. **Outbox sweep**: 10,000 rows pending (``--articles`` x 2: two rows on each
   article, due in the past), re-seeded before every timed run; figures are
   seconds per 10,000 rows (scaled linearly when ``--articles`` is not 5,000)
   and rows settled per second:

   * *SELECT + DELETE only*: read the due rows, delete them 500 at a time; the
     bookkeeping alone, nothing delivered;
   * *plain drain (floor)*: one ``SELECT`` of the due rows, then per 500 articles
     the plain read above, the documents handed to the stand-in, the rows seen
     deleted and committed; no locks, no lease, no confirmation;
   * *indexing.sweep (ours)*;
   * *reindexing.reindex*, one pass over all articles: the same articles, and it
     settles the same rows (``deliver`` claims an article's rows by article id);
   * *naive, row by row*: oldest row first, load its article (ORM, lazy loads),
     one task and one confirmation, delete the row, commit. It is slow, so it
     settles only the first 1,000 rows of the 10,000 and its figures are per row
     (its per-row cost still sees the whole backlog in the table).

Each round runs every rival once, in an order rotated from round to round,
after one untimed warm-up run of each; figures are medians over rounds, with
the fastest and slowest round. Only ratios between rivals of one database in
one run mean much: absolute times drift on a shared machine.
"""

from __future__ import annotations

import argparse
import contextlib
import gc
import importlib
import os
import random
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pymysql
from sqlalchemy import ColumnElement, Connection, Engine, delete, func, insert, make_url, select
from sqlalchemy.orm import Session, lazyload

from app import create_app
from app.core.application import APIFlask
from app.core.settings import Settings
from app.extensions.database import create_database_engine
from app.extensions.search import ArticleIndex, IndexSetup, create_index
from app.migrations import upgrade
from app.models import Article, ArticleStatus, SearchOutbox, Tag, User, article_tags, utcnow
from app.services import indexing, reindexing

ROOT = Path(__file__).resolve().parents[1]
MARIADB_URL = os.environ.get(
    "BENCH_SEARCH_DATABASE_URL", "mysql+pymysql://root@127.0.0.1:3306/bench_search"
)
USERS = 50
TAGS = 40
ROWS_PER_ARTICLE = 2
PER = 10_000  # outbox figures are per this many rows
#: The row-by-row rival settles this many rows of the backlog, its figure scaled.
NAIVE_ROWS = 1_000
PUBLISHED = ArticleStatus.PUBLISHED.value
WORDS = (
    *("search", "index", "outbox", "delivery", "batch", "lease", "cursor", "keyset"),
    *("database", "lock", "commit", "article", "author", "tag", "document", "confirm"),
    *("replica", "shard", "query", "token", "stream"),
)


# -- the indexer target --------------------------------------------------------------


class InstantIndex(ArticleIndex):
    """An in-process stand-in for Meilisearch: documents in a dict, every task
    confirmed at once. It has no client: every method the indexer calls is
    overridden, so ``ArticleIndex.__init__`` (and its client) is not needed."""

    def __init__(self, uid: str = "bench_articles") -> None:
        self.uid = uid
        self.task_timeout = 1.0
        self.docs: dict[int, dict[str, Any]] = {}
        self.tasks = 0

    def apply_settings(self) -> IndexSetup:
        return IndexSetup(task_uid=self._task(), created=False)

    def add_documents(self, documents: Sequence[dict[str, Any]]) -> int:
        for document in documents:
            self.docs[document["id"]] = document
        return self._task()

    def delete_documents(self, ids: Sequence[int]) -> int:
        for article_id in ids:
            self.docs.pop(article_id, None)
        return self._task()

    def confirm(self, task_uids: Sequence[int]) -> None:
        assert all(uid < self.tasks for uid in task_uids)

    def document_ids(self, batch_size: int) -> Iterator[list[int]]:
        ids = sorted(self.docs)
        for start in range(0, len(ids), batch_size):
            yield ids[start : start + batch_size]

    def _task(self) -> int:
        self.tasks += 1
        return self.tasks - 1


@contextlib.contextmanager
def http_index(settings: Settings) -> Iterator[ArticleIndex | None]:
    """The app's own ``ArticleIndex`` (``create_index``, the official client)
    over HTTP to ``tests/meili_fake.py``, or ``None`` if that stand-in cannot be
    imported."""
    sys.path.insert(0, str(ROOT / "tests"))
    try:
        fake: Any = importlib.import_module("meili_fake").FakeMeilisearch()
    except (ImportError, AttributeError) as exc:
        print(f"  (no HTTP line: tests/meili_fake.py did not import: {exc})")
        yield None
        return
    finally:
        sys.path.remove(str(ROOT / "tests"))
    fake.start()
    try:
        yield create_index(
            settings.model_copy(
                update={
                    "meili_url": fake.url,
                    "meili_index": "bench_articles_http",
                    "meili_timeout": 2,
                    "meili_task_timeout": 10.0,
                }
            )
        )
    finally:
        fake.stop()


# -- the databases ---------------------------------------------------------------------


def settings_for(database_url: str, instance: Path) -> Settings:
    return Settings(
        _env_file=None,  # pyright: ignore[reportCallIssue]
        app_env="development",
        database_url=database_url,
        instance_path=instance,
        redis_url="",
        celery_broker_url="",
        meili_url="",
        log_level="WARNING",
    )


def recreate_mariadb() -> str:
    url = make_url(MARIADB_URL)
    if url.database in (None, "", "test"):
        raise SystemExit("bench.search refuses the database 'test' (the test suite's) and none")
    server = pymysql.connect(
        host=url.host or "127.0.0.1",
        port=url.port or 3306,
        user=url.username or "root",
        password=url.password or "",
    )
    with server.cursor() as cursor:
        cursor.execute(f"DROP DATABASE IF EXISTS `{url.database}`")
        cursor.execute(
            f"CREATE DATABASE `{url.database}` CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci"
        )
    server.close()
    return MARIADB_URL


def seed(engine: Engine, articles: int) -> list[int]:
    """Authors, tags and articles by bulk insert; returns the article ids."""
    rng = random.Random(20261122)
    now = datetime.now(UTC).replace(microsecond=0)
    with engine.begin() as connection:
        connection.execute(
            insert(User),
            [
                {
                    "id": n,
                    "email": f"author{n}@bench.example",
                    "name": f"Author {n}",
                    "password_hash": "not-a-hash",
                    "is_admin": False,
                    "created_at": now,
                    "updated_at": now,
                }
                for n in range(1, USERS + 1)
            ],
        )
        connection.execute(
            insert(Tag), [{"id": n, "name": f"tag-{n:02d}"} for n in range(1, TAGS + 1)]
        )
        for start in range(1, articles + 1, 1_000):
            rows: list[dict[str, Any]] = []
            links: list[dict[str, Any]] = []
            for n in range(start, min(start + 1_000, articles + 1)):
                created = now - timedelta(minutes=articles - n, microseconds=rng.randrange(10**6))
                body = " ".join(rng.choice(WORDS) for _ in range(rng.randrange(60, 240)))
                rows.append(
                    {
                        "id": n,
                        "author_id": rng.randrange(1, USERS + 1),
                        "title": f"Article {n}: {rng.choice(WORDS)} {rng.choice(WORDS)}",
                        "body": body[: rng.randrange(400, 1_601)],
                        "status": PUBLISHED if rng.random() < 0.8 else "draft",
                        "created_at": created,
                        "updated_at": created + timedelta(seconds=rng.randrange(0, 86_400)),
                        "version": rng.randrange(1, 4),
                    }
                )
                links.extend(
                    {"article_id": n, "tag_id": tag}
                    for tag in rng.sample(range(1, TAGS + 1), rng.randrange(0, 5))
                )
            connection.execute(insert(Article), rows)
            if links:
                connection.execute(insert(article_tags), links)
    return list(range(1, articles + 1))


def fill_outbox(engine: Engine, article_ids: list[int]) -> int:
    """:data:`ROWS_PER_ARTICLE` due rows on every article, interleaved (the rows
    of one article are far apart in id order, as after two rounds of edits)."""
    now = utcnow()
    rows = [
        {
            "article_id": article_ids[n % len(article_ids)],
            "created_at": now - timedelta(hours=1),
            "next_attempt_at": now - timedelta(minutes=5),
            "attempts": 0,
        }
        for n in range(ROWS_PER_ARTICLE * len(article_ids))
    ]
    with engine.begin() as connection:
        connection.execute(delete(SearchOutbox))
        connection.execute(insert(SearchOutbox), rows)
    return len(rows)


def pending(engine: Engine) -> int:
    with engine.connect() as connection:
        return connection.scalar(select(func.count()).select_from(SearchOutbox)) or 0


# -- the plain read (the floors' way of reading) -------------------------------------------


def plain_read(
    connection: Connection, condition: ColumnElement[bool], limit: int | None
) -> tuple[list[int], list[dict[str, Any]], list[int]]:
    """The articles matching ``condition`` in id order, read by two Core queries:
    their ids, the documents of the published ones, the ids of the drafts."""
    statement = (
        select(
            Article.id,
            Article.title,
            Article.body,
            Article.status,
            Article.created_at,
            Article.updated_at,
            Article.version,
            Article.author_id,
            User.name,
        )
        .join(User, User.id == Article.author_id)
        .where(condition)
        .order_by(Article.id)
    )
    if limit is not None:
        statement = statement.limit(limit)
    rows = connection.execute(statement).all()
    ids = [row.id for row in rows]
    tags: dict[int, list[str]] = {}
    if ids:
        for article_id, name in connection.execute(
            select(article_tags.c.article_id, Tag.name)
            .join(Tag, Tag.id == article_tags.c.tag_id)
            .where(article_tags.c.article_id.in_(ids))
        ):
            tags.setdefault(article_id, []).append(name)
    documents: list[dict[str, Any]] = []
    drafts: list[int] = []
    for row in rows:
        if row.status != PUBLISHED:
            drafts.append(row.id)
            continue
        documents.append(
            {
                "id": row.id,
                "title": row.title,
                "body": row.body,
                "tags": sorted(tags.get(row.id, ())),
                "status": row.status,
                "author": {"id": row.author_id, "name": row.name},
                "created_at": row.created_at.isoformat(),
                "updated_at": row.updated_at.isoformat(),
                "version": row.version,
                "created_at_ts": row.created_at.timestamp(),
                "updated_at_ts": row.updated_at.timestamp(),
            }
        )
    return ids, documents, drafts


def hand_over(index: ArticleIndex, documents: list[dict[str, Any]], drafts: list[int]) -> None:
    if documents:
        index.add_documents(documents)
    if drafts:
        index.delete_documents(drafts)


# -- 1. reindex rivals ---------------------------------------------------------------------


@dataclass
class Context:
    settings: Settings
    engine: Engine
    factory: Callable[[], Session]
    article_ids: list[int]
    batch_size: int
    lease: timedelta


def floor_reindex(session: Session, index: ArticleIndex, ctx: Context) -> int:
    connection = session.connection()
    last = sent = 0
    while True:
        ids, documents, drafts = plain_read(connection, Article.id > last, ctx.batch_size)
        if not ids:
            break
        hand_over(index, documents, drafts)
        last = ids[-1]
        sent += len(ids)
    session.commit()
    return sent


def ours_reindex(session: Session, index: ArticleIndex, ctx: Context) -> int:
    result = reindexing.reindex(
        session, index, batch_size=ctx.batch_size, lease=ctx.lease, restart=True
    )
    assert result.orphans_removed == 0
    return result.indexed + result.removed


def naive_reindex(session: Session, index: ArticleIndex, ctx: Context) -> int:
    offset = sent = 0
    while True:
        rows = session.scalars(
            select(Article)
            .options(lazyload(Article.author), lazyload(Article.tags))
            .order_by(Article.id)
            .offset(offset)
            .limit(ctx.batch_size)
        ).all()
        if not rows:
            break
        for row in rows:
            if row.status == PUBLISHED:
                task = index.add_documents([indexing.document(row)])
            else:
                task = index.delete_documents([row.id])
            index.confirm([task])
            sent += 1
        session.commit()
        offset += ctx.batch_size
    return sent


# -- 2. outbox rivals ----------------------------------------------------------------------


def bookkeeping_sweep(session: Session, _index: ArticleIndex, ctx: Context) -> int:
    connection = session.connection()
    row_ids = list(
        connection.scalars(
            select(SearchOutbox.id)
            .where(SearchOutbox.next_attempt_at <= utcnow())
            .order_by(SearchOutbox.id)
        )
    )
    for start in range(0, len(row_ids), ctx.batch_size):
        connection.execute(
            delete(SearchOutbox).where(SearchOutbox.id.in_(row_ids[start : start + ctx.batch_size]))
        )
        session.commit()
        connection = session.connection()
    session.commit()
    return len(row_ids)


def floor_sweep(session: Session, index: ArticleIndex, ctx: Context) -> int:
    connection = session.connection()
    rows_of: dict[int, list[int]] = {}  # article id -> its due rows, oldest article first
    for row_id, article_id in connection.execute(
        select(SearchOutbox.id, SearchOutbox.article_id)
        .where(SearchOutbox.next_attempt_at <= utcnow())
        .order_by(SearchOutbox.id)
    ):
        rows_of.setdefault(article_id, []).append(row_id)
    order = list(rows_of)
    settled = 0
    for start in range(0, len(order), ctx.batch_size):
        batch = order[start : start + ctx.batch_size]
        _, documents, drafts = plain_read(connection, Article.id.in_(batch), None)
        hand_over(index, documents, drafts)
        row_ids = [row_id for article_id in batch for row_id in rows_of[article_id]]
        connection.execute(delete(SearchOutbox).where(SearchOutbox.id.in_(row_ids)))
        session.commit()
        connection = session.connection()
        settled += len(row_ids)
    session.commit()
    return settled


def ours_sweep(session: Session, index: ArticleIndex, ctx: Context) -> int:
    result = indexing.sweep(session, index, batch_size=ctx.batch_size, lease=ctx.lease)
    assert result.error is None, result.error
    return result.delivered.settled_rows


def reindex_sweep(session: Session, index: ArticleIndex, ctx: Context) -> int:
    before = pending(ctx.engine)
    reindexing.reindex(session, index, batch_size=ctx.batch_size, lease=ctx.lease, restart=True)
    return before - pending(ctx.engine)


def naive_sweep(session: Session, index: ArticleIndex, _ctx: Context) -> int:
    """The first :data:`NAIVE_ROWS` rows of the backlog only (it is slow)."""
    now = utcnow()
    settled = 0
    while settled < NAIVE_ROWS:
        row = session.scalars(
            select(SearchOutbox)
            .where(SearchOutbox.next_attempt_at <= now)
            .order_by(SearchOutbox.id)
            .limit(1)
        ).first()
        if row is None:
            return settled
        article = session.scalars(
            select(Article)
            .where(Article.id == row.article_id)
            .options(lazyload(Article.author), lazyload(Article.tags))
        ).first()
        if article is not None and article.status == PUBLISHED:
            task = index.add_documents([indexing.document(article)])
        else:
            task = index.delete_documents([row.article_id])
        index.confirm([task])
        session.delete(row)
        session.commit()
        settled += 1
    return settled


# -- timing ----------------------------------------------------------------------------------

Rival = Callable[[Session, ArticleIndex, Context], int]


@dataclass
class Entry:
    rival: Rival
    index: ArticleIndex
    #: Items (articles sent, rows settled) each run must handle.
    items: int
    prepare: Callable[[], None] | None = None


def measure(entries: dict[str, Entry], ctx: Context, rounds: int) -> dict[str, list[float]]:
    """Seconds per run of each rival, ``rounds`` rounds in rotated order, after
    one untimed warm-up run of each."""
    names = list(entries)
    samples: dict[str, list[float]] = {name: [] for name in names}

    def run(name: str) -> float:
        entry = entries[name]
        if entry.prepare is not None:
            entry.prepare()
        session = ctx.factory()
        gc.collect()
        try:
            started = time.perf_counter()
            handled = entry.rival(session, entry.index, ctx)
            seconds = time.perf_counter() - started
        finally:
            session.close()
        assert handled == entry.items, f"{name} handled {handled}, expected {entry.items}"
        return seconds

    for name in names:
        run(name)
    for number in range(rounds):
        shift = number % len(names)
        for name in names[shift:] + names[:shift]:
            samples[name].append(run(name))
    return samples


def report(
    title: str,
    entries: dict[str, Entry],
    samples: dict[str, list[float]],
    *,
    floor: str,
    unit: str,
    per: int | None = None,
) -> dict[str, float]:
    """Print one table; return each rival's median seconds per item."""
    each = {
        name: statistics.median(values) / entries[name].items for name, values in samples.items()
    }
    print(f"\n{title}")
    first = f"s per {per:,} rows" if per else "median s"
    print(f"  {'':<48} {first:>17} {unit:>11} {'x floor':>8}   fastest-slowest round")
    for name, values in samples.items():
        shown = each[name] * per if per else statistics.median(values)
        print(
            f"  {name:<48} {shown:17.3f} {1 / each[name]:11,.0f} {each[name] / each[floor]:7.2f}x"
            f"   {min(values):.3f}-{max(values):.3f} s"
        )
    return each


# -- the sections ----------------------------------------------------------------------------

FLOOR_REINDEX = "plain read (floor)"
OURS_REINDEX = "reindexing.reindex (ours)"
HTTP_REINDEX = "ours over HTTP (ArticleIndex -> meili_fake)"
NAIVE_REINDEX = "naive: ORM, OFFSET, lazy loads, 1 task/article"

BOOKKEEPING = "SELECT + DELETE only (no delivery)"
FLOOR_SWEEP = "plain drain (floor)"
OURS_SWEEP = "indexing.sweep (ours)"
REINDEX_SWEEP = "reindexing.reindex, one pass (same articles)"
NAIVE_SWEEP = "naive: row by row, commit each"


def reindex_section(label: str, ctx: Context, rounds: int) -> None:
    articles = len(ctx.article_ids)
    with http_index(ctx.settings) as over_http:
        entries = {
            FLOOR_REINDEX: Entry(floor_reindex, InstantIndex(), articles),
            OURS_REINDEX: Entry(ours_reindex, InstantIndex(), articles),
            NAIVE_REINDEX: Entry(naive_reindex, InstantIndex(), articles),
        }
        if over_http is not None:
            entries[HTTP_REINDEX] = Entry(ours_reindex, over_http, articles)
        samples = measure(entries, ctx, rounds)
    indexes = [entry.index for entry in entries.values() if isinstance(entry.index, InstantIndex)]
    assert all(index.docs == indexes[0].docs for index in indexes), "rivals disagree"
    each = report(
        f"1. reindex, {label}: {articles:,} articles ({len(indexes[0].docs):,} published),"
        f" batch {ctx.batch_size}, {rounds} rounds",
        entries,
        samples,
        floor=FLOOR_REINDEX,
        unit="articles/s",
    )
    ours = each[OURS_REINDEX]
    print(
        f"  ours / floor: {ours / each[FLOOR_REINDEX]:.2f}x the floor's time"
        f" ({each[FLOOR_REINDEX] / ours:.0%} of its rate)"
    )
    print(f"  naive / ours: ours is {each[NAIVE_REINDEX] / ours:.2f}x faster than naive")
    if HTTP_REINDEX in each:
        print(f"  over HTTP / in process: {each[HTTP_REINDEX] / ours:.2f}x")


def sweep_section(label: str, ctx: Context, rounds: int) -> None:
    rows = ROWS_PER_ARTICLE * len(ctx.article_ids)
    naive_rows = min(rows, NAIVE_ROWS)

    def refill() -> None:
        fill_outbox(ctx.engine, ctx.article_ids)

    entries = {
        BOOKKEEPING: Entry(bookkeeping_sweep, InstantIndex(), rows, refill),
        FLOOR_SWEEP: Entry(floor_sweep, InstantIndex(), rows, refill),
        OURS_SWEEP: Entry(ours_sweep, InstantIndex(), rows, refill),
        REINDEX_SWEEP: Entry(reindex_sweep, InstantIndex(), rows, refill),
        NAIVE_SWEEP
        + f" (first {naive_rows:,})": Entry(naive_sweep, InstantIndex(), naive_rows, refill),
    }
    samples = measure(entries, ctx, rounds)
    each = report(
        f"2. outbox sweep, {label}: {rows:,} due rows on {len(ctx.article_ids):,} articles,"
        f" batch {ctx.batch_size}, {rounds} rounds",
        entries,
        samples,
        floor=FLOOR_SWEEP,
        unit="rows/s",
        per=PER,
    )
    ours = each[OURS_SWEEP]
    naive = each[NAIVE_SWEEP + f" (first {naive_rows:,})"]
    scaled = "" if rows == PER else f", scaled linearly from {rows:,} rows"
    print(f"  ours: {ours * PER:.3f} s per {PER:,} pending rows ({1 / ours:,.0f} rows/s{scaled})")
    print(f"  ours / floor: {ours / each[FLOOR_SWEEP]:.2f}x the floor's time")
    print(f"  ours / one reindex pass: {ours / each[REINDEX_SWEEP]:.2f}x")
    print(f"  naive / ours: ours is {naive / ours:.2f}x faster per row than row by row")


def run_database(label: str, database_url: str, instance: Path, articles: int, rounds: int) -> None:
    settings = settings_for(database_url, instance)
    engine = create_database_engine(settings)
    upgrade(engine)
    started = time.perf_counter()
    article_ids = seed(engine, articles)
    print(f"\n== {label}: seeded {articles:,} articles in {time.perf_counter() - started:.1f}s")
    app: APIFlask = create_app(settings)
    database = app.extensions["database"]
    ctx = Context(
        settings=settings,
        engine=database.engine,
        factory=database.session.session_factory,
        article_ids=article_ids,
        batch_size=settings.search_batch_size,
        lease=indexing.lease_for(settings),
    )
    try:
        reindex_section(label, ctx, rounds)
        sweep_section(label, ctx, rounds)
    finally:
        database.engine.dispose()
        engine.dispose()


def main() -> None:
    parser = argparse.ArgumentParser(description="Benchmark search reindexing and the outbox.")
    parser.add_argument("--rounds", type=int, default=None, help="default 9 (3 with --quick)")
    parser.add_argument("--articles", type=int, default=None, help="default 5000 (1000 quick)")
    parser.add_argument("--quick", action="store_true", help="a short sanity run")
    parser.add_argument("--only", choices=["sqlite", "mariadb"], help="run one database")
    args = parser.parse_args()
    rounds = args.rounds or (3 if args.quick else 9)
    articles = args.articles or (1_000 if args.quick else 5_000)
    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="bench-search-") as folder:
        instance = Path(folder)
        if args.only in (None, "sqlite"):
            url = f"sqlite:///{instance / 'bench_search.db'}"
            run_database("SQLite", url, instance, articles, rounds)
        if args.only in (None, "mariadb"):
            version = _mariadb_version()
            run_database(f"MariaDB {version}", recreate_mariadb(), instance, articles, rounds)
    print(f"\ntotal {time.perf_counter() - started:.0f}s")


def _mariadb_version() -> str:
    url = make_url(MARIADB_URL)
    server = pymysql.connect(
        host=url.host or "127.0.0.1",
        port=url.port or 3306,
        user=url.username or "root",
        password=url.password or "",
    )
    with server.cursor() as cursor:
        cursor.execute("SELECT VERSION()")
        row = cursor.fetchone()
    server.close()
    return str(row[0]).split("-", 1)[0] if row else "?"


if __name__ == "__main__":
    main()
