"""``/api/v1``: the contract in ``docs/api.md``. One module per resource."""

from __future__ import annotations

from app.api.v1 import health
from app.core.application import APIBlueprint

api_v1 = APIBlueprint("api_v1", __name__, url_prefix="/api/v1")
api_v1.register_blueprint(health.bp)
