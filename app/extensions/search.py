"""Meilisearch: the official client, wrapped in one place.

:class:`ArticleIndex` owns the articles index: its settings (searchable,
filterable and sortable attributes, ranking rules, typo tolerance), applied
idempotently by ``flask search init`` and, with ``MEILI_INIT_ON_START``, at
start-up. Every HTTP call is bounded by ``MEILI_TIMEOUT`` and every wait for a
Meilisearch task by ``MEILI_TASK_TIMEOUT``; a failure of either raises
:class:`SearchUnavailable`, which callers turn into a 503 or a retry.

With ``MEILI_URL`` empty this extension is off, and search is served from the
database (``app/services/search.py``).
"""

from __future__ import annotations

import logging
import threading
import warnings
from collections.abc import Callable, Iterator, Sequence
from functools import partial
from typing import TYPE_CHECKING, Any, NamedTuple, TypeVar

import meilisearch
from flask import current_app
from meilisearch.errors import MeilisearchApiError, MeilisearchError

if TYPE_CHECKING:
    from meilisearch.models.task import Task

    from app.core.application import APIFlask
    from app.core.settings import Settings

log = logging.getLogger("app.search")

T = TypeVar("T")

#: The index's settings. Changing them here and running ``flask search init``
#: is how the index changes (Meilisearch reindexes in the background).
INDEX_SETTINGS: dict[str, Any] = {
    "searchableAttributes": ["title", "body", "tags", "author.name"],
    "filterableAttributes": ["id", "status", "tags", "author.id"],
    "sortableAttributes": ["id", "created_at_ts", "updated_at_ts"],
    "displayedAttributes": ["*"],
    "rankingRules": ["words", "typo", "proximity", "attribute", "sort", "exactness"],
    "typoTolerance": {
        "enabled": True,
        "minWordSizeForTypos": {"oneTypo": 5, "twoTypos": 9},
    },
}


class SearchUnavailable(Exception):  # noqa: N818 - reads as a state
    """Meilisearch could not be reached, answered an error, or a task did not
    finish in time."""


class IndexSetup(NamedTuple):
    task_uid: int
    #: The index did not exist: every document has to be sent again.
    created: bool


class ArticleIndex:
    def __init__(
        self, connect: Callable[[], meilisearch.Client], uid: str, task_timeout: float
    ) -> None:
        self._connect = connect
        self._local = threading.local()
        self.uid = uid
        self.task_timeout = task_timeout

    @property
    def client(self) -> meilisearch.Client:
        """This thread's client: the official one keeps per-request state (its
        ``Content-Type`` header) on the instance, so threads must not share one."""
        client: meilisearch.Client | None = getattr(self._local, "client", None)
        if client is None:
            client = self._local.client = self._connect()
        return client

    def apply_settings(self) -> IndexSetup:
        """Create the index if needed and apply :data:`INDEX_SETTINGS`. Safe to
        run any number of times; says whether the index had to be created."""
        creation = self._wait(
            self._call(lambda: self.client.create_index(self.uid, {"primaryKey": "id"})).task_uid
        )
        created = creation.status == "succeeded"
        if not created and _error_code(creation) != "index_already_exists":
            raise SearchUnavailable(f"creating index {self.uid!r} failed: {_error_text(creation)}")
        info = self._call(lambda: self.client.index(self.uid).update_settings(INDEX_SETTINGS))
        task = self._wait(info.task_uid)
        if task.status != "succeeded":
            raise SearchUnavailable(
                f"updating the settings of {self.uid!r} failed: {_error_text(task)}"
            )
        return IndexSetup(task_uid=task.uid, created=created)

    def stats(self) -> dict[str, Any]:
        stats = self._call(lambda: self.client.index(self.uid).get_stats())
        return {"documents": stats.number_of_documents, "indexing": stats.is_indexing}

    def ping(self) -> None:
        self._call(self.client.health)

    def add_documents(self, documents: Sequence[dict[str, Any]]) -> int:
        """Enqueue an upsert of whole documents (by ``id``); return the task's uid."""
        index = self.client.index(self.uid)
        return self._call(lambda: index.add_documents(list(documents), primary_key="id")).task_uid

    def delete_documents(self, ids: Sequence[int]) -> int:
        """Enqueue the deletion of these documents by primary key (which, unlike
        a filter, needs no index settings); return the task's uid."""
        index = self.client.index(self.uid)
        keys: list[str | int] = [str(int(i)) for i in ids]
        with warnings.catch_warnings():
            # The client deprecates deleting by ids in favour of filters; the
            # REST route it calls (documents/delete-batch) is Meilisearch's own.
            warnings.simplefilter("ignore", DeprecationWarning)
            return self._call(lambda: index.delete_documents(keys)).task_uid

    def confirm(self, task_uids: Sequence[int]) -> None:
        """Wait for each task; raise :class:`SearchUnavailable` unless every one
        succeeded within ``MEILI_TASK_TIMEOUT``."""
        for uid in task_uids:
            task = self._wait(uid)
            if task.status != "succeeded":
                raise SearchUnavailable(f"Meilisearch task {uid} {_error_text(task)}")

    def search(self, q: str, params: dict[str, Any]) -> dict[str, Any]:
        """One search request (``POST /indexes/{uid}/search``)."""
        index = self.client.index(self.uid)
        return self._call(lambda: index.search(q, params))

    def document_ids(self, batch_size: int) -> Iterator[list[int]]:
        """Every document id in the index, a batch at a time."""
        index = self.client.index(self.uid)
        offset = 0
        while True:
            query = {"fields": ["id"], "limit": batch_size, "offset": offset}
            page = self._call(partial(index.get_documents, query))
            ids = [int(document.id) for document in page.results]
            if ids:
                yield ids
            offset += batch_size
            if offset >= page.total or not ids:
                return

    def _wait(self, task_uid: int) -> Task:
        return self._call(
            lambda: self.client.wait_for_task(
                task_uid, timeout_in_ms=int(self.task_timeout * 1000), interval_in_ms=50
            )
        )

    @staticmethod
    def _call(action: Callable[[], T]) -> T:
        try:
            return action()
        except MeilisearchApiError as exc:
            code = str(getattr(exc, "code", None))
            message = str(getattr(exc, "message", exc))
            raise SearchUnavailable(f"{type(exc).__name__} {code}: {message}") from exc
        except MeilisearchError as exc:
            raise SearchUnavailable(f"{type(exc).__name__}: {exc}") from exc


def _error_code(task: Task) -> str | None:
    return (task.error or {}).get("code")


def _error_text(task: Task) -> str:
    error = task.error or {}
    return f"{error.get('code', task.status)}: {error.get('message', '')}".rstrip(": ")


def is_enabled(settings: Settings) -> bool:
    return bool(settings.meili_url)


def create_index(settings: Settings) -> ArticleIndex:
    connect = partial(
        meilisearch.Client,
        settings.meili_url,
        settings.meili_master_key.get_secret_value() or None,
        timeout=settings.meili_timeout,
    )
    return ArticleIndex(connect, settings.meili_index, settings.meili_task_timeout)


def init_app(app: APIFlask) -> None:
    index = create_index(app.settings)
    app.extensions["search"] = index
    if app.settings.meili_init_on_start:
        try:
            index.apply_settings()
        except SearchUnavailable as exc:  # the app still serves; search answers 503 meanwhile
            log.warning("search: could not apply the index settings at start-up: %s", exc)


def get_index() -> ArticleIndex | None:
    """The app's index, or ``None`` when search is served from the database."""
    index: ArticleIndex | None = current_app.extensions.get("search")
    return index


def require_index() -> ArticleIndex:
    """The app's index, for commands that make no sense without Meilisearch."""
    index = get_index()
    if index is None:
        raise SearchUnavailable("MEILI_URL is not set: search is served from the database.")
    return index
