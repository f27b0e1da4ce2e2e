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
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, TypeVar

import click
import meilisearch
from flask import current_app
from flask.cli import AppGroup
from meilisearch.errors import MeilisearchError

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
    "filterableAttributes": ["status", "tags", "author.id"],
    "sortableAttributes": ["created_at", "updated_at"],
    "displayedAttributes": ["*"],
    "rankingRules": ["words", "typo", "proximity", "attribute", "sort", "exactness"],
    "typoTolerance": {
        "enabled": True,
        "minWordSizeForTypos": {"oneTypo": 5, "twoTypos": 9},
    },
}

search_cli = AppGroup("search", help="Manage the Meilisearch index.")


class SearchUnavailable(Exception):  # noqa: N818 - reads as a state
    """Meilisearch could not be reached, answered an error, or a task did not
    finish in time."""


class ArticleIndex:
    def __init__(self, client: meilisearch.Client, uid: str, task_timeout: float) -> None:
        self.client = client
        self.uid = uid
        self.task_timeout = task_timeout

    def apply_settings(self) -> int:
        """Create the index if needed and apply :data:`INDEX_SETTINGS`; return
        the settings task's uid. Safe to run any number of times."""
        created = self._wait(
            self._call(lambda: self.client.create_index(self.uid, {"primaryKey": "id"})).task_uid
        )
        if created.status != "succeeded" and _error_code(created) != "index_already_exists":
            raise SearchUnavailable(f"creating index {self.uid!r} failed: {_error_text(created)}")
        info = self._call(lambda: self.client.index(self.uid).update_settings(INDEX_SETTINGS))
        task = self._wait(info.task_uid)
        if task.status != "succeeded":
            raise SearchUnavailable(
                f"updating the settings of {self.uid!r} failed: {_error_text(task)}"
            )
        return task.uid

    def stats(self) -> dict[str, Any]:
        stats = self._call(lambda: self.client.index(self.uid).get_stats())
        return {"documents": stats.number_of_documents, "indexing": stats.is_indexing}

    def ping(self) -> None:
        self._call(self.client.health)

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
    client = meilisearch.Client(
        settings.meili_url,
        settings.meili_master_key.get_secret_value() or None,
        timeout=settings.meili_timeout,
    )
    return ArticleIndex(client, settings.meili_index, settings.meili_task_timeout)


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


@search_cli.command("init")
def init_command() -> None:
    """Create the index if needed and apply its settings (idempotent)."""
    index = _require_index()
    try:
        task_uid = index.apply_settings()
    except SearchUnavailable as exc:
        raise click.ClickException(str(exc)) from None
    click.echo(f"Applied the settings of index {index.uid!r} (Meilisearch task {task_uid}).")


@search_cli.command("status")
def status_command() -> None:
    """Show the index's document count and whether it is indexing."""
    index = _require_index()
    try:
        stats = index.stats()
    except SearchUnavailable as exc:
        raise click.ClickException(str(exc)) from None
    state = "indexing" if stats["indexing"] else "idle"
    click.echo(f"Index {index.uid!r}: {stats['documents']} documents, {state}.")


def _require_index() -> ArticleIndex:
    index = get_index()
    if index is None:
        raise click.ClickException("MEILI_URL is not set: search is served from the database.")
    return index
