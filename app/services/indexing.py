"""Keeping the search index true to the database, without ever losing an update.

**The outbox.** Every flush that inserts, changes or deletes an article (or
renames or deletes its author) adds a :class:`~app.models.SearchOutbox` row
per article, in the write's own transaction: the write and the note that the
index must hear of it commit together or not at all. After the commit, the
``index_articles`` task is sent for those articles; if the broker is down, or
Meilisearch is, the rows stay, and the periodic sweep sends them again.

**Delivery** (:func:`deliver`) sends the articles *as they are now*, never as
they were when the row was written, so an old row can only ever carry the
newest state. It reads them under a lock (``SELECT ... FOR UPDATE`` on MySQL,
the write lock on SQLite) and enqueues the Meilisearch task before releasing
it; Meilisearch applies an index's tasks in the order they were enqueued, so
two deliveries of one article reach the index in the order they read it, and
a newer version is never overwritten by an older one. Published articles are
upserted whole (idempotent); drafts and deleted articles are deleted from the
index. The outbox rows seen under the lock are deleted only once Meilisearch
confirms the task; a failed or unconfirmed attempt leaves them, backed off.
The transaction that deletes them also writes the ``article.published``
notification of each article whose publication they carried
(:func:`app.services.notifications.announce`).

**Reindex** (:mod:`app.services.reindexing`) walks every article through the
same delivery.
"""

from __future__ import annotations

import logging
import random
from collections.abc import Iterable, Set
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any, TypedDict

from sqlalchemy import ColumnElement, case, delete, false, func, insert, select, update
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session

from app.extensions.database import stage_for_commit
from app.extensions.search import ArticleIndex, SearchUnavailable
from app.models import Article, ArticleStatus, SearchOutbox, utcnow
from app.services import notifications
from app.services.articles import (
    article_fields,
    articles_of_deleted_authors,
    articles_published_by,
    articles_touched,
    with_relations,
)

if TYPE_CHECKING:
    from app.core.application import APIFlask
    from app.core.settings import Settings

log = logging.getLogger("app.search")

#: The task sent after each commit that wrote outbox rows.
INDEX_TASK = "app.tasks.search.index_articles"
#: Longest wait between two attempts at a row that keeps failing.
BACKOFF_CAP = timedelta(hours=1)
#: An outbox row still failing after this many attempts is logged as an error.
ATTEMPTS_BEFORE_ALARM = 10


@dataclass
class Delivery:
    """What one delivery sent and settled."""

    indexed: int = 0
    removed: int = 0
    settled_rows: int = 0


@dataclass
class Sweep:
    delivered: Delivery = field(default_factory=Delivery)
    batches: int = 0
    failed_batches: int = 0
    error: str | None = None


@dataclass
class Backlog:
    pending: int
    failing: int
    oldest: datetime | None
    max_attempts: int
    last_error: str | None


# -- documents ----------------------------------------------------------------


def document(row: Article) -> dict[str, Any]:
    """The index's document of a published article: the API's fields
    (:func:`~app.services.articles.article_fields`), as JSON, plus numeric
    timestamps to sort on."""
    fields = article_fields(row)
    fields["created_at"] = row.created_at.isoformat()
    fields["updated_at"] = row.updated_at.isoformat()
    fields["created_at_ts"] = row.created_at.timestamp()
    fields["updated_at_ts"] = row.updated_at.timestamp()
    return fields


# -- writing the outbox -------------------------------------------------------


class Outbox:
    """The search outbox's commit effect: rows written in the write's own
    transaction, and the indexing task sent once it commits."""

    def __init__(self, app: APIFlask) -> None:
        self.app = app
        self.grace = timedelta(seconds=app.settings.search_outbox_grace)

    def record_deleted_authors(self, session: Session) -> list[int]:
        """Before a flush: rows for the articles a cascade will delete with their author."""
        return self._write(session, articles_of_deleted_authors(session))

    def record(self, session: Session) -> list[int]:
        """After a flush: rows for every article it touched; the rows of the
        articles it publishes are marked to announce them once indexed."""
        published = {row.id for row in articles_published_by(session)}
        return self._write(session, articles_touched(session), announce=published)

    def send(self, article_ids: list[int]) -> None:
        """After the commit: ask a worker to deliver them now."""
        _send_index_task(self.app, sorted(set(article_ids)))

    def _write(
        self, session: Session, article_ids: Iterable[int], *, announce: Set[int] = frozenset()
    ) -> list[int]:
        ids = sorted(set(article_ids))
        if ids:
            now = utcnow()
            session.connection().execute(
                insert(SearchOutbox),
                [
                    {
                        "article_id": article_id,
                        "created_at": now,
                        "next_attempt_at": now + self.grace,
                        "announce": article_id in announce,
                    }
                    for article_id in ids
                ],
            )
        return ids


def _send_index_task(app: APIFlask, article_ids: list[int]) -> None:
    """Send ``index_articles``; a broker that is down costs the request nothing,
    because the rows are committed and the sweep will deliver them."""
    celery = app.extensions["celery"]
    task = celery.tasks[INDEX_TASK]
    try:
        # One attempt at the broker, not kombu's default of retrying for seconds.
        with celery.connection_for_write(transport_options={"max_retries": 0}) as connection:
            task.apply_async(args=(article_ids,), connection=connection, retry=False)
    except Exception as exc:  # noqa: BLE001 - whatever the broker raised, the outbox has it
        log.warning(
            "search: could not send %s for %d article(s) (%s: %s); the outbox sweep will",
            INDEX_TASK,
            len(article_ids),
            type(exc).__name__,
            exc,
        )


# -- delivering ---------------------------------------------------------------


def deliver(
    session: Session, index: ArticleIndex, article_ids: Iterable[int], *, lease: timedelta
) -> Delivery:
    """Send these articles' current state to the index and settle their outbox
    rows once Meilisearch confirms. Raises :class:`SearchUnavailable` (the rows
    are kept, backed off) or a database error (nothing changed)."""
    ids = sorted(set(article_ids))
    if not ids:
        return Delivery()
    try:
        delivery, row_ids, task_uids, announced = _send(session, index, ids, lease)
    except SearchUnavailable as exc:
        session.rollback()
        _back_off(session, SearchOutbox.article_id.in_(ids), str(exc))
        raise
    except BaseException:
        session.rollback()
        raise
    try:
        index.confirm(task_uids)
    except SearchUnavailable as exc:
        if row_ids:
            _back_off(session, SearchOutbox.id.in_(row_ids), str(exc))
        raise
    if row_ids:
        # The author hears it is searchable in the transaction that settles the
        # row: a failure here keeps both, and the next delivery does both.
        stage_for_commit(session, notifications.EFFECT, notifications.announce(session, announced))
        session.execute(delete(SearchOutbox).where(SearchOutbox.id.in_(row_ids)))
        session.commit()
    delivery.settled_rows = len(row_ids)
    return delivery


def _send(
    session: Session, index: ArticleIndex, ids: list[int], lease: timedelta
) -> tuple[Delivery, list[int], list[int], list[tuple[int, int, str]]]:
    """Under the lock: read, claim the outbox rows, enqueue the tasks, commit."""
    _take_write_lock(session)
    rows = session.scalars(
        with_relations(select(Article).where(Article.id.in_(ids)).order_by(Article.id))
        .with_for_update()
        .execution_options(populate_existing=True)
    ).all()
    outbox_rows = session.execute(
        select(SearchOutbox.id, SearchOutbox.article_id, SearchOutbox.announce)
        .where(SearchOutbox.article_id.in_(ids))
        .with_for_update()
    ).all()
    row_ids = [row.id for row in outbox_rows]
    to_announce = {row.article_id for row in outbox_rows if row.announce}
    if row_ids:
        session.execute(
            update(SearchOutbox)
            .where(SearchOutbox.id.in_(row_ids))
            .values(next_attempt_at=utcnow() + lease)
        )
    published = [row for row in rows if row.status == ArticleStatus.PUBLISHED.value]
    published_ids = {row.id for row in published}
    gone = [article_id for article_id in ids if article_id not in published_ids]
    task_uids: list[int] = []
    if published:
        task_uids.append(index.add_documents([document(row) for row in published]))
    if gone:
        task_uids.append(index.delete_documents(gone))
    session.commit()
    announced = [(row.id, row.author_id, row.title) for row in published if row.id in to_announce]
    return Delivery(indexed=len(published), removed=len(gone)), row_ids, task_uids, announced


def _take_write_lock(session: Session) -> None:
    """SQLite has no ``FOR UPDATE``: a write, even of no row, takes the
    database's write lock, which shuts out every writer until the commit."""
    if session.get_bind().dialect.name == "sqlite":
        session.execute(update(SearchOutbox).where(false()).values(attempts=SearchOutbox.attempts))


def _back_off(session: Session, rows: ColumnElement[bool], error: str) -> None:
    """Count a failed attempt on these rows and push their next one out."""
    try:
        attempts = (session.scalar(select(func.max(SearchOutbox.attempts)).where(rows)) or 0) + 1
        session.execute(
            update(SearchOutbox)
            .where(rows)
            .values(
                attempts=SearchOutbox.attempts + 1,
                next_attempt_at=utcnow() + backoff(attempts),
                last_error=error[:500],
            )
        )
        session.commit()
    except SQLAlchemyError:
        session.rollback()
        log.exception("search: could not record a failed delivery")
        return
    level = logging.ERROR if attempts >= ATTEMPTS_BEFORE_ALARM else logging.WARNING
    log.log(level, "search: delivery failed (attempt %d), will retry: %s", attempts, error)


def backoff(attempt: int) -> timedelta:
    """Equal jitter: a random wait between half of ``2**attempt`` seconds and all
    of it, capped at an hour."""
    ceiling = min(BACKOFF_CAP.total_seconds(), 2.0**attempt)
    return timedelta(seconds=random.uniform(ceiling / 2, ceiling))  # noqa: S311 - not crypto


def sweep(session: Session, index: ArticleIndex, *, batch_size: int, lease: timedelta) -> Sweep:
    """Deliver every outbox row that is due, oldest first, a batch at a time.
    Stops at the first failure: Meilisearch is down, and hammering it helps nobody."""
    result = Sweep()
    now = utcnow()
    cursor = 0  # walks the primary key: no batch re-reads the rows an earlier one passed
    while True:
        rows = session.execute(
            select(SearchOutbox.id, SearchOutbox.article_id)
            .where(SearchOutbox.next_attempt_at <= now, SearchOutbox.id > cursor)
            .order_by(SearchOutbox.id)
            .limit(batch_size)
        ).all()
        session.commit()
        if not rows:
            return result
        cursor = rows[-1].id
        due = list(dict.fromkeys(row.article_id for row in rows))
        result.batches += 1
        try:
            delivery = deliver(session, index, due, lease=lease)
        except (SearchUnavailable, SQLAlchemyError) as exc:
            result.failed_batches += 1
            result.error = f"{type(exc).__name__}: {exc}"
            return result
        result.delivered.indexed += delivery.indexed
        result.delivered.removed += delivery.removed
        result.delivered.settled_rows += delivery.settled_rows


def backlog(session: Session) -> Backlog:
    """How much the index has yet to hear of."""
    pending, failing, oldest, max_attempts = session.execute(
        select(
            func.count(),
            func.coalesce(func.sum(case((SearchOutbox.attempts > 0, 1), else_=0)), 0),
            func.min(SearchOutbox.created_at),
            func.max(SearchOutbox.attempts),
        ).select_from(SearchOutbox)
    ).one()
    last_error = session.scalar(
        select(SearchOutbox.last_error)
        .where(SearchOutbox.last_error.is_not(None))
        .order_by(SearchOutbox.id.desc())
        .limit(1)
    )
    return Backlog(
        pending=pending,
        failing=failing,
        oldest=oldest,
        max_attempts=max_attempts or 0,
        last_error=last_error,
    )


def lease_for(settings: Settings) -> timedelta:
    """How long a row being delivered is kept from the sweep: long enough for
    the slowest confirmed delivery."""
    return timedelta(
        seconds=max(
            settings.search_outbox_grace, settings.meili_task_timeout + 2 * settings.meili_timeout
        )
    )


class Batching(TypedDict):
    batch_size: int
    lease: timedelta


def batching(settings: Settings) -> Batching:
    """The batch size and lease that the sweep and the reindex take from the settings."""
    return {"batch_size": settings.search_batch_size, "lease": lease_for(settings)}
