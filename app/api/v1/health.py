"""Liveness and readiness.

``/health`` does no I/O: it answers while the process can serve at all.
``/health/ready`` checks each configured dependency concurrently, each bounded by
``HEALTH_CHECK_TIMEOUT``, and answers 503 when a required one is down.
"""

from __future__ import annotations

from typing import Any

from app.core.application import APIBlueprint, current_settings
from app.schemas.health import Readiness, Status
from app.services import health

bp = APIBlueprint("health", __name__, url_prefix="/health")


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
    healthy, results = health.readiness(current_settings())
    return {"status": "ok" if healthy else "down", "checks": results}, (200 if healthy else 503)
