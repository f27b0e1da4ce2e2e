"""Liveness and readiness.

``/health`` does no I/O: it answers while the process can serve at all.
``/health/ready`` checks each configured dependency concurrently, each bounded by
``HEALTH_CHECK_TIMEOUT``, and answers 503 when a required one is down.
"""

from __future__ import annotations

import contextvars
import logging
import threading
import time
from collections.abc import Callable
from functools import partial
from typing import Any, Literal

from pydantic import BaseModel

from app.api.v1.schemas import Status
from app.core.application import APIBlueprint, current_settings
from app.extensions.background import ping_broker
from app.extensions.database import get_database
from app.extensions.redis import get_redis
from app.extensions.redis import ping as ping_redis
from app.extensions.search import get_index

log = logging.getLogger("app.health")

bp = APIBlueprint("health", __name__, url_prefix="/health")

CheckStatus = Literal["ok", "down", "disabled"]
Check = Callable[[], None]


class CheckResult(BaseModel):
    status: CheckStatus
    latency_ms: float | None


class Checks(BaseModel):
    database: CheckResult
    redis: CheckResult
    search: CheckResult
    broker: CheckResult


class Readiness(BaseModel):
    status: Literal["ok", "down"]
    checks: Checks


@bp.operation("GET", "", "getHealth", responses={200: Status}, tag="health", uses_services=False)
def live() -> dict[str, str]:
    """Liveness: answers while the process can serve at all (no I/O)."""
    return {"status": "ok"}


@bp.operation(
    "GET",
    "/ready",
    "getReadiness",
    responses={200: Readiness, 503: Readiness},
    tag="health",
)
def ready() -> tuple[dict[str, Any], int]:
    """Readiness: each dependency checked at once, each within HEALTH_CHECK_TIMEOUT.

    503 when one that is configured is down; ``disabled`` ones do not count.
    """
    checks = _configured_checks()
    results = _run_checks(checks, current_settings().health_check_timeout)
    healthy = all(result["status"] != "down" for result in results.values())
    return {"status": "ok" if healthy else "down", "checks": results}, (200 if healthy else 503)


def _configured_checks() -> dict[str, Check | None]:
    redis = get_redis()
    settings = current_settings()
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
