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

**Reindex** (:func:`reindex`) walks every article in id order through the same
delivery, recording a checkpoint after each confirmed batch so a stopped run
resumes, then removes documents whose article no longer exists.
"""

from __future__ import annotations

import logging
import random
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any, TypedDict

from sqlalchemy import (
    ColumnElement,
    case,
    delete,
    event,
    false,
    func,
    insert,
    inspect,
    select,
    update,
)
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session, UOWTransaction

from app.extensions.search import ArticleIndex, SearchUnavailable
from app.models import Article, ArticleStatus, SearchOutbox, SearchReindex, User, utcnow
from app.services.articles import with_relations

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

_PENDING = "search_outbox_article_ids"
_DELETED_AUTHORS = "search_outbox_deleted_author_articles"


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
class Reindex:
    indexed: int
    removed: int
    orphans_removed: int
    resumed_from: int
    seconds: float


@dataclass
class Backlog:
    pending: int
    failing: int
    oldest: datetime | None
    max_attempts: int
    last_error: str | None


# -- documents ----------------------------------------------------------------


def document(row: Article) -> dict[str, Any]:
    """The index's document of a published article: the API's fields, plus
    numeric timestamps to sort on."""
    return {
        "id": row.id,
        "title": row.title,
        "body": row.body,
        "tags": sorted(tag.name for tag in row.tags),
        "status": row.status,
        "author": {"id": row.author.id, "name": row.author.name},
        "created_at": row.created_at.isoformat(),
        "updated_at": row.updated_at.isoformat(),
        "version": row.version,
        "created_at_ts": row.created_at.timestamp(),
        "updated_at_ts": row.updated_at.timestamp(),
    }


# -- writing the outbox -------------------------------------------------------


def init_app(app: APIFlask) -> None:
    """Record outbox rows for every session of this app; send them after commit."""
    factory = app.extensions["database"].session.session_factory
    grace = timedelta(seconds=app.settings.search_outbox_grace)

    def after_commit(session: Session) -> None:
        article_ids: set[int] = session.info.pop(_PENDING, set())
        if article_ids:
            _send_index_task(app, sorted(article_ids))

    event.listen(factory, "before_flush", _remember_deleted_authors)

    def after_flush(session: Session, _flush: UOWTransaction) -> None:
        _record(session, grace)

    event.listen(factory, "after_flush", after_flush)
    event.listen(factory, "after_commit", after_commit)
    event.listen(factory, "after_rollback", _forget)


def _remember_deleted_authors(session: Session, _flush: UOWTransaction, _instances: Any) -> None:
    """The database deletes an author's articles by cascade, so the ORM never
    sees them go: note their ids before the author's row is deleted."""
    authors = [row.id for row in session.deleted if isinstance(row, User)]
    if authors:
        ids = session.scalars(select(Article.id).where(Article.author_id.in_(authors)))
        session.info.setdefault(_DELETED_AUTHORS, set()).update(ids)


def _record(session: Session, grace: timedelta) -> None:
    article_ids: set[int] = session.info.pop(_DELETED_AUTHORS, set())
    renamed: list[int] = []
    for row in (*session.new, *session.dirty, *session.deleted):
        if isinstance(row, Article):
            article_ids.add(row.id)
        elif (
            isinstance(row, User)
            and row not in session.new
            and inspect(row).attrs.name.history.has_changes()
        ):
            renamed.append(row.id)
    if renamed:
        article_ids.update(
            session.scalars(select(Article.id).where(Article.author_id.in_(renamed)))
        )
    if not article_ids:
        return
    now = utcnow()
    session.connection().execute(
        insert(SearchOutbox),
        [
            {"article_id": article_id, "created_at": now, "next_attempt_at": now + grace}
            for article_id in sorted(article_ids)
        ],
    )
    session.info.setdefault(_PENDING, set()).update(article_ids)


def _forget(session: Session) -> None:
    session.info.pop(_PENDING, None)
    session.info.pop(_DELETED_AUTHORS, None)


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
        delivery, row_ids, task_uids = _send(session, index, ids, lease)
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
        session.execute(delete(SearchOutbox).where(SearchOutbox.id.in_(row_ids)))
        session.commit()
    delivery.settled_rows = len(row_ids)
    return delivery


def _send(
    session: Session, index: ArticleIndex, ids: list[int], lease: timedelta
) -> tuple[Delivery, list[int], list[int]]:
    """Under the lock: read, claim the outbox rows, enqueue the tasks, commit."""
    _take_write_lock(session)
    rows = session.scalars(
        with_relations(select(Article).where(Article.id.in_(ids)).order_by(Article.id))
        .with_for_update()
        .execution_options(populate_existing=True)
    ).all()
    row_ids = list(
        session.scalars(
            select(SearchOutbox.id).where(SearchOutbox.article_id.in_(ids)).with_for_update()
        )
    )
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
    return Delivery(indexed=len(published), removed=len(gone)), row_ids, task_uids


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


# -- reindexing ---------------------------------------------------------------


def reindex(
    session: Session,
    index: ArticleIndex,
    *,
    batch_size: int,
    lease: timedelta,
    restart: bool = False,
    on_start: Callable[[int], None] | None = None,
    on_batch: Callable[[int], None] | None = None,
) -> Reindex:
    """Send every article to the index, in id order, a batch at a time.

    After each confirmed batch the checkpoint (:class:`~app.models.SearchReindex`)
    moves on, so a run that stops (Meilisearch down, the process killed) resumes
    where it stopped, unless ``restart``. Then documents whose article no longer
    exists are removed. The index's settings are applied first (idempotent);
    when that finds the index gone, the run starts from the first article. ``on_start`` gets the number of articles to go;
    ``on_batch`` the size of each batch done.
    """
    started = time.perf_counter()
    # A lost or new index gets its settings before any document, and a run that
    # finds the index gone starts from the first article, checkpoint or not.
    lost = index.apply_settings().created
    checkpoint = session.get(SearchReindex, index.uid)
    if checkpoint is None or restart or lost or checkpoint.finished_at is not None:
        checkpoint = session.merge(
            SearchReindex(
                index_uid=index.uid,
                last_article_id=0,
                indexed=0,
                removed=0,
                started_at=utcnow(),
                finished_at=None,
            )
        )
    resumed_from = checkpoint.last_article_id
    session.commit()
    if on_start is not None:
        remaining = session.scalar(
            select(func.count()).select_from(Article).where(Article.id > resumed_from)
        )
        on_start(remaining or 0)

    last = resumed_from
    while True:
        ids = list(
            session.scalars(
                select(Article.id).where(Article.id > last).order_by(Article.id).limit(batch_size)
            )
        )
        session.commit()
        if not ids:
            break
        delivery = deliver(session, index, ids, lease=lease)
        last = ids[-1]
        checkpoint.last_article_id = last
        checkpoint.indexed += delivery.indexed
        checkpoint.removed += delivery.removed
        session.commit()
        if on_batch is not None:
            on_batch(len(ids))

    orphans = _orphans(session, index, batch_size)
    for start in range(0, len(orphans), batch_size):
        deliver(session, index, orphans[start : start + batch_size], lease=lease)
    checkpoint.finished_at = utcnow()
    session.commit()
    return Reindex(
        indexed=checkpoint.indexed,
        removed=checkpoint.removed,
        orphans_removed=len(orphans),
        resumed_from=resumed_from,
        seconds=time.perf_counter() - started,
    )


def _orphans(session: Session, index: ArticleIndex, batch_size: int) -> list[int]:
    """Documents in the index whose article is gone or no longer published."""
    orphans: list[int] = []
    for ids in list(index.document_ids(batch_size)):
        published = set(
            session.scalars(
                select(Article.id).where(
                    Article.id.in_(ids), Article.status == ArticleStatus.PUBLISHED.value
                )
            )
        )
        orphans.extend(i for i in ids if i not in published)
    session.commit()
    return orphans


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
