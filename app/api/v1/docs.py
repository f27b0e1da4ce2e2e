"""``/openapi.json`` and ``/docs``: the API described, and tried in a browser.

The document is built once per app from the operations' own models (see
:mod:`app.core.openapi`). The docs page is Swagger UI, served by the app from
the ``swagger-ui-py`` package's files: it works with no internet access, and
its strict Content-Security-Policy allows nothing from elsewhere.
"""

from __future__ import annotations

import functools
import importlib.util
from pathlib import Path
from typing import TYPE_CHECKING, cast

from flask import current_app, send_from_directory, url_for

from app.core.application import APIBlueprint, APIFlask
from app.core.exceptions import NotFound
from app.core.json import dumps_bytes
from app.core.openapi import build_document

if TYPE_CHECKING:
    from flask import Response

bp = APIBlueprint("docs", __name__)

BASE_PATH = "/api/v1"
TITLE = "Flask API template"
#: The contract's version (info.version): bump it when /api/v1 changes.
API_VERSION = "1.0.0"
DESCRIPTION = (
    "The /api/v1 contract. Errors always use one envelope: "
    '`{"code", "error_code", "message", "details"?, "request_id"}`; '
    "the error codes are listed in the project's docs (errors.md)."
)


@functools.cache
def _swagger_ui_files() -> Path:
    spec = importlib.util.find_spec("swagger_ui")  # no import: only its files are needed
    if spec is None or not spec.submodule_search_locations:
        raise RuntimeError("swagger-ui-py is not installed")
    return Path(next(iter(spec.submodule_search_locations))) / "static"


#: The only files the docs page needs, so nothing else in the package is served.
ASSETS = frozenset({"swagger-ui.css", "swagger-ui-bundle.js", "swagger-ui-standalone-preset.js"})
DOCS_CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self' 'unsafe-inline';"
    " img-src 'self' data:; connect-src 'self'; frame-ancestors 'none'"
)


@bp.operation(
    "GET",
    "/openapi.json",
    "getOpenApiDocument",
    tag="docs",
    responses={200: "The OpenAPI 3.1 document of this API"},
    uses_services=False,
)
def openapi_document() -> tuple[bytes, dict[str, str]]:
    """This document."""
    app = cast("APIFlask", current_app)
    body = app.extensions.get("openapi_document")
    if body is None:
        document = build_document(
            app, title=TITLE, version=API_VERSION, base_path=BASE_PATH, description=DESCRIPTION
        )
        body = app.extensions["openapi_document"] = dumps_bytes(document)
    return body, {"Cache-Control": "no-cache"}


@bp.operation(
    "GET",
    "/docs",
    "getDocsPage",
    tag="docs",
    responses={200: "The interactive docs page (HTML)"},
    uses_services=False,
)
def docs_page() -> tuple[bytes, dict[str, str]]:
    """The interactive API docs (Swagger UI), served without any CDN."""
    assets = {name: url_for(".docs_asset", name=name) for name in ASSETS}
    html = f"""<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{TITLE} · API docs</title>
<link rel="stylesheet" href="{assets["swagger-ui.css"]}">
</head>
<body>
<div id="swagger-ui" data-openapi-url="{url_for(".openapi_document")}"></div>
<script src="{assets["swagger-ui-bundle.js"]}"></script>
<script src="{assets["swagger-ui-standalone-preset.js"]}"></script>
<script src="{url_for(".docs_asset", name="init.js")}"></script>
</body>
</html>
"""
    return html.encode(), {
        "Content-Type": "text/html; charset=utf-8",
        "Content-Security-Policy": DOCS_CSP,
    }


_INIT_JS = b"""window.addEventListener("load", function () {
  var root = document.getElementById("swagger-ui");
  window.ui = SwaggerUIBundle({
    url: root.dataset.openapiUrl,
    dom_id: "#swagger-ui",
    deepLinking: true,
    persistAuthorization: true,
    presets: [SwaggerUIBundle.presets.apis, SwaggerUIStandalonePreset],
    layout: "BaseLayout"
  });
});
"""


@bp.operation(
    "GET",
    "/docs/assets/<name>",
    "getDocsAsset",
    tag="docs",
    responses={200: "A file of the docs page (JavaScript or CSS)", 404: "No such file"},
    uses_services=False,
)
def docs_asset(name: str) -> Response | tuple[bytes, dict[str, str]]:
    """A file the docs page loads."""
    if name == "init.js":
        return _INIT_JS, {"Content-Type": "text/javascript; charset=utf-8"}
    if name not in ASSETS:
        raise NotFound("No such file")
    return send_from_directory(_swagger_ui_files(), name, max_age=86_400)
