"""OrJSONProvider: every supported type, and a clear error for the rest."""

from __future__ import annotations

import dataclasses
import enum
import uuid
from datetime import UTC, date, datetime, time, timedelta, timezone
from decimal import Decimal

import orjson
import pytest
from flask import json as flask_json
from pydantic import BaseModel

from app.core.application import APIFlask
from app.core.json import OrJSONProvider, dumps_bytes


class Color(enum.Enum):
    RED = "red"


@dataclasses.dataclass
class Point:
    x: int
    y: int


class Author(BaseModel):
    id: int
    name: str


class Article(BaseModel):
    id: uuid.UUID
    title: str
    published_at: datetime
    author: Author
    price: Decimal


class Special(Article):
    extra: str = "x"


ARTICLE = Article(
    id=uuid.UUID("12345678-1234-5678-1234-567812345678"),
    title="Hello",
    published_at=datetime(2026, 11, 21, 12, 0, tzinfo=UTC),
    author=Author(id=7, name="Ada"),
    price=Decimal("19.99"),
)


def test_app_uses_the_orjson_provider(app: APIFlask) -> None:
    assert isinstance(app.json, OrJSONProvider)


def test_aware_utc_datetime_is_rfc3339_with_z() -> None:
    assert dumps_bytes({"t": datetime(2026, 11, 21, 12, 0, tzinfo=UTC)}) == (
        b'{"t":"2026-11-21T12:00:00Z"}'
    )


def test_naive_datetime_is_taken_as_utc() -> None:
    assert dumps_bytes(datetime(2026, 11, 21, 12, 0)) == b'"2026-11-21T12:00:00Z"'


def test_other_offsets_are_kept() -> None:
    plus_two = timezone(timedelta(hours=2))
    assert dumps_bytes(datetime(2026, 1, 1, tzinfo=plus_two)) == b'"2026-01-01T00:00:00+02:00"'


def test_date_uuid_enum_and_dataclass() -> None:
    value = {
        "d": date(2026, 11, 21),
        "u": uuid.UUID("12345678-1234-5678-1234-567812345678"),
        "e": Color.RED,
        "p": Point(1, 2),
    }
    assert orjson.loads(dumps_bytes(value)) == {
        "d": "2026-11-21",
        "u": "12345678-1234-5678-1234-567812345678",
        "e": "red",
        "p": {"x": 1, "y": 2},
    }


def test_decimal_becomes_a_string_so_no_precision_is_lost() -> None:
    assert dumps_bytes({"price": Decimal("0.1000000000000000000001")}) == (
        b'{"price":"0.1000000000000000000001"}'
    )


def test_pydantic_model_uses_pydantic_serializer() -> None:
    assert orjson.loads(dumps_bytes(ARTICLE)) == {
        "id": "12345678-1234-5678-1234-567812345678",
        "title": "Hello",
        "published_at": "2026-11-21T12:00:00Z",
        "author": {"id": 7, "name": "Ada"},
        "price": "19.99",
    }


def test_list_of_models_matches_model_dump() -> None:
    models = [ARTICLE, ARTICLE.model_copy(update={"title": "Second"})]
    assert orjson.loads(dumps_bytes(models)) == [m.model_dump(mode="json") for m in models]


def test_list_mixing_model_classes_serializes_each_fully() -> None:
    special = Special(**ARTICLE.model_dump(), extra="only on Special")
    decoded = orjson.loads(dumps_bytes([ARTICLE, special]))
    assert decoded[1]["extra"] == "only on Special"
    assert "extra" not in decoded[0]


def test_models_nested_in_dicts_and_lists() -> None:
    decoded = orjson.loads(dumps_bytes({"items": [ARTICLE], "first": ARTICLE, "total": 1}))
    assert decoded["first"] == ARTICLE.model_dump(mode="json")
    assert decoded["items"] == [ARTICLE.model_dump(mode="json")]


def test_unknown_type_raises_type_error_naming_it() -> None:
    class Mystery:
        pass

    with pytest.raises(TypeError, match="Mystery"):
        dumps_bytes({"x": Mystery()})


def test_set_is_not_silently_stringified() -> None:
    with pytest.raises(TypeError, match="set"):
        dumps_bytes({"tags": {"a"}})


def test_provider_dumps_returns_str_and_honours_sort_keys_and_indent(app: APIFlask) -> None:
    assert app.json.dumps({"b": 1, "a": 2}) == '{"b":1,"a":2}'
    assert app.json.dumps({"b": 1, "a": 2}, sort_keys=True) == '{"a":2,"b":1}'
    assert app.json.dumps({"a": 1}, indent=2) == '{\n  "a": 1\n}'
    assert app.json.dumps({"a": 1}, separators=(",", ":")) == '{"a":1}'


def test_provider_rejects_options_it_cannot_honour(app: APIFlask) -> None:
    with pytest.raises(TypeError, match="ensure_ascii"):
        app.json.dumps({}, ensure_ascii=True)
    with pytest.raises(TypeError, match="object_hook"):
        app.json.loads("{}", object_hook=dict)


def test_provider_loads_str_and_bytes(app: APIFlask) -> None:
    assert app.json.loads('{"a": [1, 2]}') == {"a": [1, 2]}
    assert app.json.loads(b'{"a": null}') == {"a": None}


def test_flask_json_helpers_go_through_orjson(app: APIFlask) -> None:
    with app.app_context():
        assert flask_json.dumps({"t": datetime(2026, 1, 1, tzinfo=UTC)}) == (
            '{"t":"2026-01-01T00:00:00Z"}'
        )
        response = flask_json.jsonify(ARTICLE)
    assert response.mimetype == "application/json"
    assert orjson.loads(response.data) == ARTICLE.model_dump(mode="json")


def test_jsonify_with_keyword_arguments(app: APIFlask) -> None:
    with app.app_context():
        response = flask_json.jsonify(a=1, b=[2])
    assert orjson.loads(response.data) == {"a": 1, "b": [2]}


def test_time_of_day() -> None:
    assert dumps_bytes({"at": time(12, 30, 5)}) == b'{"at":"12:30:05"}'
