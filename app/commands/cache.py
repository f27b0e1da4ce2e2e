"""``flask cache ...``: inspect and clear the app's tiered cache."""

from __future__ import annotations

from typing import Any

import click
import orjson
from flask.cli import AppGroup

from app.cache.storage import StorageUnavailable
from app.extensions.cache import get_cache

cache_cli = AppGroup("cache", help="Inspect and clear the cache.")


@cache_cli.command("stats")
def stats_command() -> None:
    """Print the cache counters of every running process that reports them
    (through Redis, every 10 s), and of this one, as JSON."""
    by_process = get_cache().process_stats()
    click.echo(
        orjson.dumps(
            {"processes": by_process, "total": total_stats(by_process)},
            option=orjson.OPT_INDENT_2,
        )
    )


def total_stats(by_process: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """Counters summed over processes."""
    total: dict[str, Any] = {"tiers": {}}
    for stats in by_process.values():
        for name, value in stats.items():
            if name == "tiers":
                for tier, counts in value.items():
                    into = total["tiers"].setdefault(tier, {})
                    for counter, amount in counts.items():
                        into[counter] = into.get(counter, 0) + amount
            else:
                total[name] = total.get(name, 0) + value
    return total


@cache_cli.command("clear")
def clear_command() -> None:
    """Delete every cached value, in Redis and in every process's local tier."""
    manager = get_cache()
    try:
        manager.clear()
    except StorageUnavailable as exc:
        raise click.ClickException(
            f"Redis is unreachable ({exc}); only this process's local tier was cleared"
        ) from None
    click.echo(f"Cleared every cached value under the prefix {manager.prefix!r}, in every process.")
