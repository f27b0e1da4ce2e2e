"""The JSON layer against stock Flask and against the floor, in one run.

    python -m bench.json_layer            # or: make bench

Each payload is served as a full request through a Flask test client:

* ``APIFlask``   the template's app (``create_app``), the view returns the data as is;
* ``stock``      ``flask.Flask``: ``model_dump(mode="json")`` per model, then its
                 default JSON provider (dict payload: returned as is);
* ``floor req``  the same ``APIFlask`` app, the view returns bytes serialized beforehand;
* ``serialize``  the bare serializer alone (``TypeAdapter(list[Model]).dump_json`` or
                 ``orjson.dumps``), no request;
* ``dumps_bytes`` the template's own serializer alone (``app.core.json.dumps_bytes``);
* ``dump+orjson`` (models) ``model_dump(mode="json")`` per model, then ``orjson.dumps``.

The floor is ``floor req + serialize``: what a request costs if serialization were
free of any glue. Rivals run interleaved, round after round, and each figure is the
median over rounds, so drift on a shared machine hits them all alike.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, Literal

import orjson
from flask import Flask
from pydantic import AwareDatetime, BaseModel, TypeAdapter

from app import create_app
from app.core.json import ORJSON_OPTIONS, dumps_bytes
from app.core.settings import Settings

PAYLOAD_SIZE = 1_000


class Author(BaseModel):
    id: uuid.UUID
    name: str
    joined_at: AwareDatetime


class Article(BaseModel):
    id: uuid.UUID
    title: str
    body: str
    status: Literal["draft", "published"]
    tags: list[str]
    author: Author
    created_at: AwareDatetime
    updated_at: AwareDatetime
    version: int
    score: float


class PlainAuthor(BaseModel):
    id: uuid.UUID
    name: str
    joined_at: datetime


class PlainArticle(BaseModel):
    """The same shape with plain ``datetime`` fields: not on the orjson fast path."""

    id: uuid.UUID
    title: str
    body: str
    status: Literal["draft", "published"]
    tags: list[str]
    author: PlainAuthor
    created_at: datetime
    updated_at: datetime
    version: int
    score: float


def make_articles(count: int) -> list[Article]:
    start = datetime(2026, 1, 1, tzinfo=UTC)
    return [
        Article(
            id=uuid.UUID(int=n + 1),
            title=f"Article number {n}",
            body="Lorem ipsum dolor sit amet, consectetur adipiscing elit. " * 3,
            status="published" if n % 3 else "draft",
            tags=["flask", "orjson", f"tag{n % 10}"],
            author=Author(
                id=uuid.UUID(int=n % 50 + 10_000), name=f"Author {n % 50}", joined_at=start
            ),
            created_at=start + timedelta(minutes=n),
            updated_at=start + timedelta(minutes=n, seconds=30),
            version=n % 7 + 1,
            score=n / 7,
        )
        for n in range(count)
    ]


def make_dicts(count: int) -> list[dict[str, Any]]:
    """Plain dicts of the same shape, with real datetimes and UUIDs in them."""
    return [article.model_dump() for article in make_articles(count)]


Rival = Callable[[], None]


def request_rival(app: Flask, path: str) -> Rival:
    client = app.test_client()

    def run() -> None:
        response = client.get(path)
        assert response.status_code == 200

    return run


def build_rivals(
    articles: list[Article], dicts: list[dict[str, Any]]
) -> dict[str, dict[str, Rival]]:
    instance = Path(tempfile.mkdtemp(prefix="bench-json-"))
    settings = Settings(
        _env_file=None,  # pyright: ignore[reportCallIssue]
        app_env="testing",
        log_level="WARNING",
        instance_path=instance,
    )
    ours = create_app(settings)
    stock = Flask("stock")
    adapter = TypeAdapter(list[Article])
    models_bytes = adapter.dump_json(articles)
    dicts_bytes = orjson.dumps(dicts, option=ORJSON_OPTIONS)

    plain = [PlainArticle.model_validate(a.model_dump()) for a in articles]
    plain_adapter = TypeAdapter(list[PlainArticle])
    plain_bytes = plain_adapter.dump_json(plain)
    ours.add_url_rule("/plain", "plain", lambda: plain)
    ours.add_url_rule("/plain-bytes", "plain_bytes", lambda: plain_bytes)
    stock.add_url_rule("/plain", "plain", lambda: [a.model_dump(mode="json") for a in plain])
    ours.add_url_rule("/models", "models", lambda: articles)
    ours.add_url_rule("/dicts", "dicts", lambda: dicts)
    ours.add_url_rule("/models-bytes", "models_bytes", lambda: models_bytes)
    ours.add_url_rule("/dicts-bytes", "dicts_bytes", lambda: dicts_bytes)
    stock.add_url_rule("/models", "models", lambda: [a.model_dump(mode="json") for a in articles])
    stock.add_url_rule("/dicts", "dicts", lambda: dicts)

    _check_outputs(ours, stock, articles, dicts)
    return {
        "models": {
            "APIFlask": request_rival(ours, "/models"),
            "stock Flask": request_rival(stock, "/models"),
            "floor req": request_rival(ours, "/models-bytes"),
            "serialize": call(adapter.dump_json, articles),
            "dumps_bytes": call(dumps_bytes, articles),
            "dump+orjson": call(dump_then_orjson, articles),
        },
        "models, plain datetime": {
            "APIFlask": request_rival(ours, "/plain"),
            "stock Flask": request_rival(stock, "/plain"),
            "floor req": request_rival(ours, "/plain-bytes"),
            "serialize": call(plain_adapter.dump_json, plain),
            "dumps_bytes": call(dumps_bytes, plain),
        },
        "dicts": {
            "APIFlask": request_rival(ours, "/dicts"),
            "stock Flask": request_rival(stock, "/dicts"),
            "floor req": request_rival(ours, "/dicts-bytes"),
            "serialize": call(orjson_dumps, dicts),
            "dumps_bytes": call(dumps_bytes, dicts),
        },
    }


def call(function: Callable[[Any], bytes], payload: Any) -> Rival:
    def run() -> None:
        function(payload)

    return run


def dump_then_orjson(articles: list[Article]) -> bytes:
    return orjson.dumps([a.model_dump(mode="json") for a in articles], option=ORJSON_OPTIONS)


def orjson_dumps(payload: Any) -> bytes:
    return orjson.dumps(payload, option=ORJSON_OPTIONS)


def _check_outputs(
    ours: Flask, stock: Flask, articles: list[Article], dicts: list[dict[str, Any]]
) -> None:
    """Rivals must produce the same data, or the comparison means nothing."""
    ours_models = orjson.loads(ours.test_client().get("/models").data)
    stock_models = orjson.loads(stock.test_client().get("/models").data)
    assert ours_models == stock_models == [a.model_dump(mode="json") for a in articles]
    ours_dicts = orjson.loads(ours.test_client().get("/dicts").data)
    assert len(ours_dicts) == len(dicts)
    assert ours_dicts[0]["created_at"] == "2026-01-01T00:00:00Z"


def measure(rivals: dict[str, Rival], rounds: int, repeat: int) -> dict[str, float]:
    """Median seconds per call of each rival, rivals interleaved within each round."""
    samples: dict[str, list[float]] = {name: [] for name in rivals}
    for rival in rivals.values():  # warm up
        for _ in range(3):
            rival()
    for _ in range(rounds):
        for name, rival in rivals.items():
            started = time.perf_counter()
            for _ in range(repeat):
                rival()
            samples[name].append((time.perf_counter() - started) / repeat)
    return {name: statistics.median(values) for name, values in samples.items()}


def report(payload: str, timings: dict[str, float]) -> list[str]:
    floor = timings["floor req"] + timings["serialize"]
    lines = [f"{payload}: {PAYLOAD_SIZE:,} items per response"]
    for name, seconds in timings.items():
        lines.append(f"  {name:<12} {seconds * 1000:8.3f} ms")
    lines.append(f"  {'floor':<12} {floor * 1000:8.3f} ms  (floor req + serialize)")
    speedup = timings["stock Flask"] / timings["APIFlask"]
    over_floor = timings["APIFlask"] / floor
    lines.append(f"  stock Flask / APIFlask = {speedup:5.2f}x   (target >= 5x)")
    lines.append(f"  APIFlask / floor       = {over_floor:5.2f}x   (target <= 1.25x)")
    glue = timings["APIFlask"] / (timings["floor req"] + timings["dumps_bytes"])
    lines.append(
        f"  APIFlask / (floor req + dumps_bytes) = {glue:5.2f}x   (the response glue alone)"
    )
    if "dump+orjson" in timings:
        lines.append(
            "  model_dump+orjson / TypeAdapter.dump_json = "
            f"{timings['dump+orjson'] / timings['serialize']:5.2f}x,"
            f"  TypeAdapter.dump_json / dumps_bytes = "
            f"{timings['serialize'] / timings['dumps_bytes']:5.2f}x"
        )
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description="Benchmark the JSON layer.")
    parser.add_argument("--rounds", type=int, default=15)
    parser.add_argument("--repeat", type=int, default=10)
    args = parser.parse_args()

    rivals = build_rivals(make_articles(PAYLOAD_SIZE), make_dicts(PAYLOAD_SIZE))
    for payload, payload_rivals in rivals.items():
        timings = measure(payload_rivals, args.rounds, args.repeat)
        print("\n".join(report(payload, timings)))
        print()


if __name__ == "__main__":
    main()
