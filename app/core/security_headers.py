"""Security headers on every response.

A JSON API needs few, and they cost nothing: no sniffing a JSON body into HTML,
no framing, no referrer, a Content-Security-Policy that allows nothing (the docs
page sets its own), and HSTS when ``HSTS_MAX_AGE`` (or production) asks for it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from flask import Response

    from app.core.application import APIFlask

HEADERS = {
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "no-referrer",
    "Cross-Origin-Opener-Policy": "same-origin",
    "Content-Security-Policy": "default-src 'none'; frame-ancestors 'none'",
}


def init_app(app: APIFlask) -> None:
    headers = dict(HEADERS)
    if app.settings.resolved_hsts_max_age:
        headers["Strict-Transport-Security"] = (
            f"max-age={app.settings.resolved_hsts_max_age}; includeSubDomains"
        )
    items = tuple(headers.items())
    lowered = tuple((name.lower(), (name, value)) for name, value in items)

    def add_headers(response: Response) -> Response:
        # One pass over the response's headers, then one extend: each `in` or
        # `[]=` on werkzeug's Headers would scan them all again.
        present = {name.lower() for name in response.headers.keys()}  # noqa: SIM118
        response.headers.extend([item for key, item in lowered if key not in present])
        return response

    app.after_request(add_headers)
