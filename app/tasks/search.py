"""Keeping the search index in step with the database (``app/services/indexing.py``).

These tasks never retry through Celery: the outbox is their retry. A delivery
that fails leaves its rows, backed off, and the next sweep sends them again.
"""

from __future__ import annotations

import logging

from celery import shared_task

from app.core.application import current_settings
from app.extensions.database import get_database
from app.extensions.search import SearchUnavailable, get_index
from app.services import indexing, reindexing

log = logging.getLogger("app.tasks")


@shared_task(name="app.tasks.search.index_articles")
def index_articles(article_ids: list[int]) -> int:
    """Deliver these articles (sent after the commit that changed them);
    return how many outbox rows were settled."""
    index = get_index()
    if index is None:
        return 0
    try:
        delivery = indexing.deliver(
            get_database().session(),
            index,
            article_ids,
            lease=indexing.lease_for(current_settings()),
        )
    except SearchUnavailable as exc:
        log.warning(
            "search: indexing %d article(s) failed; the sweep will retry: %s", len(article_ids), exc
        )
        return 0
    return delivery.settled_rows


@shared_task(name="app.tasks.search.sweep_outbox")
def sweep_outbox() -> int:
    """Deliver the outbox rows that are due (beat, every SEARCH_SWEEP_INTERVAL)."""
    index = get_index()
    if index is None:
        return 0
    result = indexing.sweep(
        get_database().session(), index, **indexing.batching(current_settings())
    )
    if result.error:
        log.warning("search: the outbox sweep stopped: %s", result.error)
    elif result.batches:
        log.info(
            "search: swept %d outbox row(s): %d indexed, %d removed",
            result.delivered.settled_rows,
            result.delivered.indexed,
            result.delivered.removed,
        )
    return result.delivered.settled_rows


@shared_task(name="app.tasks.search.reindex")
def reindex() -> int:
    """Rebuild the index from the database (beat, nightly at SEARCH_REINDEX_AT);
    resumes a run that stopped. Return how many documents were indexed."""
    index = get_index()
    if index is None:
        return 0
    result = reindexing.reindex(
        get_database().session(), index, **indexing.batching(current_settings())
    )
    log.info(
        "search: reindexed: %d indexed, %d removed, %d orphan(s) removed in %.1fs",
        result.indexed,
        result.removed,
        result.orphans_removed,
        result.seconds,
    )
    return result.indexed
