"""CORS, for browser frontends on other origins (``CORS_ORIGINS``).

Off unless origins are configured: same-origin frontends need none of it.
Responses expose ``X-Request-ID``, ``ETag``, ``Location`` and ``Retry-After`` to
scripts; requests may send ``Authorization``, ``If-Match`` and ``If-None-Match``.
No cookies are involved (bearer tokens), so credentials are not allowed.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from flask_cors import CORS

if TYPE_CHECKING:
    from app.core.application import APIFlask
    from app.core.settings import Settings

EXPOSED_HEADERS = ["X-Request-ID", "ETag", "Last-Modified", "Location", "Retry-After"]
ALLOWED_HEADERS = [
    "Authorization",
    "Content-Type",
    "If-Match",
    "If-None-Match",
    "X-Request-ID",
]


def is_enabled(settings: Settings) -> bool:
    return bool(settings.cors_origin_list)


def init_app(app: APIFlask) -> None:
    origins = app.settings.cors_origin_list
    CORS(
        app,
        resources={r"/api/*": {"origins": "*" if origins == ["*"] else origins}},
        expose_headers=EXPOSED_HEADERS,
        allow_headers=ALLOWED_HEADERS,
        methods=["GET", "POST", "PATCH", "DELETE", "OPTIONS"],
        max_age=app.settings.cors_max_age,
        supports_credentials=False,
        vary_header=True,
    )
