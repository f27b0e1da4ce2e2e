"""``flask search ...``: the Meilisearch index, its outbox and its rebuild."""

from __future__ import annotations

import contextlib
from typing import TYPE_CHECKING

import click
from flask.cli import AppGroup
from sqlalchemy.exc import SQLAlchemyError

from app.core.application import current_settings
from app.extensions.database import get_database
from app.extensions.search import SearchUnavailable, require_index
from app.services import indexing, reindexing

if TYPE_CHECKING:
    from click._termui_impl import ProgressBar

search_cli = AppGroup("search", help="Manage the Meilisearch index.")


@search_cli.command("init")
def init_command() -> None:
    """Create the index if needed and apply its settings (idempotent)."""
    try:
        index = require_index()
        task_uid = index.apply_settings().task_uid
    except SearchUnavailable as exc:
        raise click.ClickException(str(exc)) from None
    click.echo(f"Applied the settings of index {index.uid!r} (Meilisearch task {task_uid}).")


@search_cli.command("status")
def status_command() -> None:
    """Show the index's document count and the outbox backlog."""
    try:
        line = _backlog_line(indexing.backlog(get_database().session()))
    except SQLAlchemyError as exc:
        line = f"Outbox: unknown, the database did not answer ({type(exc).__name__})."
    try:
        index = require_index()
        stats = index.stats()
    except SearchUnavailable as exc:
        click.echo(line)
        raise click.ClickException(str(exc)) from None
    state = "indexing" if stats["indexing"] else "idle"
    click.echo(f"Index {index.uid!r}: {stats['documents']} documents, {state}.")
    click.echo(line)


def _backlog_line(backlog: indexing.Backlog) -> str:
    if not backlog.pending:
        return "Outbox: empty, the index has heard of every change."
    line = f"Outbox: {backlog.pending} row(s) pending"
    if backlog.oldest is not None:
        line += f", the oldest from {backlog.oldest:%Y-%m-%d %H:%M:%S}Z"
    if backlog.failing:
        line += (
            f"; {backlog.failing} failed at least once (up to {backlog.max_attempts} attempts),"
            f" last error: {backlog.last_error}"
        )
    return line + "."


@search_cli.command("reindex")
@click.option(
    "--batch-size",
    type=click.IntRange(1, 10_000),
    default=None,
    help="Articles per batch  [default: SEARCH_BATCH_SIZE]",
)
@click.option(
    "--restart",
    is_flag=True,
    help="Start from the first article, not where a stopped run left off.",
)
def reindex_command(batch_size: int | None, restart: bool) -> None:
    """Rebuild the index from the database, in batches.

    A run that stops resumes from its last confirmed batch; documents whose
    article is gone are removed at the end.
    """
    options = indexing.batching(current_settings())
    if batch_size is not None:
        options["batch_size"] = batch_size
    with contextlib.ExitStack() as stack:
        bar: list[ProgressBar[int]] = []

        def start(total: int) -> None:
            bar.append(stack.enter_context(click.progressbar(length=total, label="Reindexing")))

        def advance(done: int) -> None:
            bar[0].update(done)

        try:
            result = reindexing.reindex(
                get_database().session(),
                require_index(),
                **options,
                restart=restart,
                on_start=start,
                on_batch=advance,
            )
        except SearchUnavailable as exc:
            raise click.ClickException(
                f"{exc}\nThe checkpoint is kept: run `flask search reindex` again to resume."
            ) from None
    resumed = f" (resumed after article {result.resumed_from})" if result.resumed_from else ""
    sent = result.indexed + result.removed
    rate = sent / result.seconds if result.seconds > 0 else 0.0
    click.echo(
        f"Reindexed {sent} article(s){resumed}: {result.indexed} indexed,"
        f" {result.removed} removed (not published), {result.orphans_removed} orphan(s) removed,"
        f" in {result.seconds:.1f}s ({rate:.0f} articles/s)."
    )


@search_cli.command("sweep")
def sweep_command() -> None:
    """Deliver the outbox rows that are due now (what beat does every
    SEARCH_SWEEP_INTERVAL; without a broker there is no beat)."""
    try:
        index = require_index()
    except SearchUnavailable as exc:
        raise click.ClickException(str(exc)) from None
    result = indexing.sweep(
        get_database().session(), index, **indexing.batching(current_settings())
    )
    delivered = result.delivered
    click.echo(
        f"Swept {delivered.settled_rows} outbox row(s) in {result.batches} batch(es):"
        f" {delivered.indexed} indexed, {delivered.removed} removed."
    )
    if result.error:
        raise click.ClickException(f"stopped at a failed batch: {result.error}")
