"""Reindexing: every article sent to the search index again, resumably.

:func:`reindex` walks every article in id order through the outbox's own
delivery (:func:`app.services.indexing.deliver`), recording a checkpoint after
each confirmed batch so a stopped run resumes, then removes documents whose
article no longer exists.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from app.extensions.search import ArticleIndex
from app.models import Article, ArticleStatus, SearchReindex, utcnow
from app.services.indexing import deliver


@dataclass
class Reindex:
    indexed: int
    removed: int
    orphans_removed: int
    resumed_from: int
    seconds: float


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
