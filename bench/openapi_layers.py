"""Per-request cost of the request-validation layer: ours against flask-openapi3
and spectree, with plain Flask + pydantic as the baseline, in one run.

    python -m bench.openapi_layers --rounds 7

Every rival serves the same two routes from a bare ``flask.Flask`` app, each
declaring its inputs as pydantic models the library's own way:

* ``GET /items?page=2&per_page=50&tag=x``  a query model of four fields;
* ``POST /items`` with ``{"title": "...", "tags": [...]}``  a body model.

``baseline`` validates by hand (``Query.model_validate(request.args.to_dict())``,
``Body.model_validate(request.get_json())``): what any layer must at least cost.
Each request is a direct WSGI call with a prebuilt environ (no test-client
overhead); rivals run interleaved round after round, and each figure is the
median over rounds. The figure printed is microseconds per request and the
ratio to the baseline.
"""

from __future__ import annotations

import argparse
import io
import statistics
import time
from collections.abc import Callable, Iterable
from typing import Any

import orjson
from flask import Flask, request
from pydantic import BaseModel, ConfigDict, Field
from werkzeug.test import EnvironBuilder

from app.core.application import APIBlueprint, APIRequest

WSGIApp = Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]]


class Query(BaseModel):
    model_config = ConfigDict(extra="forbid")
    page: int = Field(1, ge=1)
    per_page: int = Field(20, ge=1, le=100)
    tag: str | None = None
    sort: str = "-created_at"


class Body(BaseModel):
    model_config = ConfigDict(extra="forbid")
    title: str = Field(min_length=1, max_length=200)
    tags: list[str] = []


def baseline_app() -> Flask:
    app = Flask("baseline")

    @app.get("/items")
    def items() -> dict[str, Any]:
        query = Query.model_validate(request.args.to_dict())
        return {"page": query.page}

    @app.post("/items")
    def create() -> dict[str, Any]:
        body = Body.model_validate(request.get_json())
        return {"title": body.title}

    return app


def ours_app() -> Flask:
    app = Flask("ours")
    app.request_class = APIRequest
    bp = APIBlueprint("items", __name__)

    @bp.operation("GET", "/items", "listItems", query=Query, responses={200: "ok"})
    def items(query: Query) -> dict[str, Any]:
        return {"page": query.page}

    @bp.operation("POST", "/items", "createItem", body=Body, responses={200: "ok"})
    def create(body: Body) -> dict[str, Any]:
        return {"title": body.title}

    app.register_blueprint(bp)
    return app


def flask_openapi3_app() -> Flask:
    from flask_openapi3.openapi import OpenAPI  # noqa: PLC0415 - a bench-only dependency

    app = OpenAPI("flask_openapi3")

    @app.get("/items")
    def items(query: Query) -> dict[str, Any]:
        return {"page": query.page}

    @app.post("/items")
    def create(body: Body) -> dict[str, Any]:
        return {"title": body.title}

    return app


def spectree_app() -> Flask:
    from spectree import SpecTree  # noqa: PLC0415 - a bench-only dependency

    app = Flask("spectree")
    api = SpecTree("flask", app=app)

    @app.get("/items")
    @api.validate(query=Query)
    def items() -> dict[str, Any]:
        return {"page": request.context.query.page}  # type: ignore[attr-defined]

    @app.post("/items")
    @api.validate(json=Body)
    def create() -> dict[str, Any]:
        return {"title": request.context.json.title}  # type: ignore[attr-defined]

    return app


RIVALS: dict[str, Callable[[], Flask]] = {
    "baseline": baseline_app,
    "ours": ours_app,
    "flask-openapi3": flask_openapi3_app,
    "spectree": spectree_app,
}

BODY = orjson.dumps({"title": "A title", "tags": ["flask", "api"]})
REQUESTS = {
    "GET query": EnvironBuilder(
        path="/items", query_string="page=2&per_page=50&tag=x"
    ).get_environ(),
    "POST body": EnvironBuilder(
        path="/items", method="POST", data=BODY, content_type="application/json"
    ).get_environ(),
}


def _start_response(status: str, headers: list[tuple[str, str]], exc_info: Any = None) -> None:
    assert status.startswith("200"), status


def _time(app: WSGIApp, environ: dict[str, Any], count: int) -> float:
    body = environ.get("wsgi.input")
    raw = body.getvalue() if isinstance(body, io.BytesIO) else b""
    started = time.perf_counter()
    for _ in range(count):
        call = dict(environ)
        call["wsgi.input"] = io.BytesIO(raw)
        b"".join(app(call, _start_response))
    return (time.perf_counter() - started) / count * 1e6


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n")[0])
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--requests", type=int, default=3_000, help="per rival, per round")
    args = parser.parse_args()

    apps = {name: make() for name, make in RIVALS.items()}
    for app in apps.values():  # warm up, and check each answers 200
        for environ in REQUESTS.values():
            _time(app.wsgi_app, environ, 200)
    results: dict[tuple[str, str], list[float]] = {}
    for _ in range(args.rounds):
        for label, environ in REQUESTS.items():
            for name, app in apps.items():
                micros = _time(app.wsgi_app, environ, args.requests)
                results.setdefault((label, name), []).append(micros)

    print(f"µs per request, median of {args.rounds} rounds x {args.requests} requests")
    print(f"{'request':<10} {'rival':<15} {'µs/req':>8} {'vs baseline':>12}")
    for label in REQUESTS:
        base = statistics.median(results[(label, "baseline")])
        for name in apps:
            micros = statistics.median(results[(label, name)])
            print(f"{label:<10} {name:<15} {micros:>8.1f} {micros / base:>11.2f}x")


if __name__ == "__main__":
    main()
