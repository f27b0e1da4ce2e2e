"""HTTP routes, one package per API version. Views speak HTTP only: they parse
the request, call one service function, and set the status and headers."""

from __future__ import annotations

from typing import TYPE_CHECKING

from app.api.v1 import api_v1

if TYPE_CHECKING:
    from flask import Flask


def register_blueprints(app: Flask) -> None:
    app.register_blueprint(api_v1)
