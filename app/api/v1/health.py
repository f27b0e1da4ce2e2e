"""Liveness and readiness.

``/health`` does no I/O: it answers while the process can serve at all.
``/health/ready`` checks each configured dependency concurrently, each bounded by
``HEALTH_CHECK_TIMEOUT``, and answers 503 when a required one is down.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout
from functools import partial
from typing import Any, Literal

from app.core.application import APIBlueprint, current_settings
from app.extensions.database import get_database
from app.extensions.redis import get_redis
from app.extensions.redis import ping as ping_redis

log = logging.getLogger("app.health")

bp = APIBlueprint("health", __name__, url_prefix="/health")

CheckStatus = Literal["ok", "down", "disabled"]
Check = Callable[[], None]

#: Shared by all requests: a hung check occupies a thread, never the request.
_executor = ThreadPoolExecutor(max_workers=8, thread_name_prefix="health")


@bp.get("")
def live() -> dict[str, str]:
    return {"status": "ok"}


@bp.get("/ready")
def ready() -> tuple[dict[str, Any], int]:
    checks = _configured_checks()
    results = _run_checks(checks, current_settings().health_check_timeout)
    healthy = all(result["status"] != "down" for result in results.values())
    return {"status": "ok" if healthy else "down", "checks": results}, (200 if healthy else 503)


def _configured_checks() -> dict[str, Check | None]:
    redis = get_redis()
    return {
        "database": get_database().ping,
        "redis": partial(ping_redis, redis) if redis is not None else None,
        "search": None,
        "broker": None,
    }


def _run_checks(checks: dict[str, Check | None], timeout: float) -> dict[str, dict[str, Any]]:
    started = time.perf_counter()
    futures: dict[str, Future[float]] = {
        name: _executor.submit(_timed, check) for name, check in checks.items() if check
    }
    results: dict[str, dict[str, Any]] = {}
    for name in checks:
        future = futures.get(name)
        if future is None:
            results[name] = {"status": "disabled", "latency_ms": None}
            continue
        remaining = max(0.0, timeout - (time.perf_counter() - started))
        try:
            latency = future.result(timeout=remaining)
        except FutureTimeout:
            log.warning("readiness check %s timed out after %.1fs", name, timeout)
            results[name] = {"status": "down", "latency_ms": round(timeout * 1000, 2)}
        except Exception as exc:  # noqa: BLE001 - any failure of a dependency means "down"
            log.warning("readiness check %s is down: %s: %s", name, type(exc).__name__, exc)
            latency = (time.perf_counter() - started) * 1000
            results[name] = {"status": "down", "latency_ms": round(latency, 2)}
        else:
            results[name] = {"status": "ok", "latency_ms": round(latency, 2)}
    return results


def _timed(check: Check) -> float:
    started = time.perf_counter()
    check()
    return (time.perf_counter() - started) * 1000
