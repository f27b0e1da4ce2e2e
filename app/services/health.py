"""Readiness: each configured dependency checked at once, each within a bound.

A hung dependency holds up only its own thread, never the request and never
another check; a dependency that is not configured reports ``disabled``.
"""

from __future__ import annotations

import contextvars
import logging
import threading
import time
from collections.abc import Callable
from functools import partial
from typing import Any

from app.core.settings import Settings
from app.extensions.background import ping_broker
from app.extensions.database import get_database
from app.extensions.redis import get_redis
from app.extensions.redis import ping as ping_redis
from app.extensions.search import get_index

log = logging.getLogger("app.health")

Check = Callable[[], None]


def readiness(settings: Settings) -> tuple[bool, dict[str, dict[str, Any]]]:
    """Whether every configured dependency answered within
    ``HEALTH_CHECK_TIMEOUT``, and each one's status and latency."""
    results = _run_checks(_configured_checks(settings), settings.health_check_timeout)
    return all(result["status"] != "down" for result in results.values()), results


def _configured_checks(settings: Settings) -> dict[str, Check | None]:
    redis = get_redis()
    return {
        "database": get_database().ping,
        "redis": partial(ping_redis, redis) if redis is not None else None,
        "search": index.ping if (index := get_index()) is not None else None,
        "broker": (
            partial(ping_broker, settings, settings.health_check_timeout)
            if settings.celery_broker_url
            else None
        ),
    }


def _run_checks(checks: dict[str, Check | None], timeout: float) -> dict[str, dict[str, Any]]:
    started = time.perf_counter()
    runs = {name: _CheckRun(check) for name, check in checks.items() if check is not None}
    results: dict[str, dict[str, Any]] = {}
    for name in checks:
        run = runs.get(name)
        if run is None:
            results[name] = {"status": "disabled", "latency_ms": None}
            continue
        run.join(max(0.0, timeout - (time.perf_counter() - started)))
        if run.latency_ms is not None:
            results[name] = {"status": "ok", "latency_ms": round(run.latency_ms, 2)}
        elif run.error is not None:
            error = run.error
            log.warning("readiness check %s is down: %s: %s", name, type(error).__name__, error)
            elapsed = (time.perf_counter() - started) * 1000
            results[name] = {"status": "down", "latency_ms": round(elapsed, 2)}
        else:
            log.warning("readiness check %s timed out after %.1fs", name, timeout)
            results[name] = {"status": "down", "latency_ms": round(timeout * 1000, 2)}
    return results


class _CheckRun:
    """One check on a thread of its own: a hung dependency holds up only its own
    thread, never the request and never another check. The thread runs in a copy
    of the request's context, so its log lines carry the request id."""

    def __init__(self, check: Check) -> None:
        self.latency_ms: float | None = None
        self.error: Exception | None = None
        self._check = check
        context = contextvars.copy_context()
        self._thread = threading.Thread(
            target=context.run, args=(self._run,), name="health-check", daemon=True
        )
        self._thread.start()

    def join(self, timeout: float) -> None:
        self._thread.join(timeout)

    def _run(self) -> None:
        started = time.perf_counter()
        try:
            self._check()
        except Exception as exc:  # noqa: BLE001 - any failure of a dependency means "down"
            self.error = exc
        else:
            self.latency_ms = (time.perf_counter() - started) * 1000
