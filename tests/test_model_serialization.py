"""The orjson fast path for models writes exactly what pydantic would, or stands aside."""

from __future__ import annotations

import enum
import random
import uuid
import warnings
from datetime import UTC, date, datetime, timedelta, timezone
from decimal import Decimal
from functools import cached_property
from typing import Annotated, Any, Literal

import orjson
import pytest
from pydantic import (
    AwareDatetime,
    BaseModel,
    ConfigDict,
    Field,
    PlainSerializer,
    RootModel,
    SecretStr,
    computed_field,
    field_serializer,
)

from app.core.json import dumps_bytes
from app.core.model_serialization import (
    fast_path_specs,
    naive_path_specs,
    qualifies,
    qualifies_naive,
)


class Mood(enum.StrEnum):
    HAPPY = "happy"
    SAD = "sad"


class Level(enum.IntEnum):
    LOW = 1
    HIGH = 2


class Author(BaseModel):
    id: int
    name: str
    email: str | None = None


class Article(BaseModel):
    id: uuid.UUID
    title: str
    status: Literal["draft", "published"]
    mood: Mood
    level: Level
    score: float
    price: Decimal
    day: date
    created_at: AwareDatetime
    tags: list[str]
    counts: dict[str, int]
    author: Author
    editor: Author | None
    reviewers: list[Author]
    flag: bool = False
    note: str | int | None = None


def random_datetime(rng: random.Random) -> datetime:
    offset = timezone(timedelta(minutes=rng.choice([0, 0, 60, -300, 330, 765])))
    return datetime(
        rng.randint(1, 9999),
        rng.randint(1, 12),
        rng.randint(1, 28),
        rng.randint(0, 23),
        rng.randint(0, 59),
        rng.randint(0, 59),
        rng.choice([0, 0, 1, 500_000, rng.randint(0, 999_999)]),
        tzinfo=UTC if offset.utcoffset(None) == timedelta(0) else offset,
    )


def random_float(rng: random.Random) -> float:
    return rng.choice(
        [
            0.0,
            -0.0,
            1.0,
            0.1 + 0.2,
            1e16,
            1.5e-7,
            5e-324,
            1.7976931348623157e308,
            float("inf"),
            float("nan"),
            rng.uniform(-1e6, 1e6),
            rng.random() * 10 ** rng.randint(-30, 30),
        ]
    )


def random_text(rng: random.Random) -> str:
    alphabet = 'abc XYZ "quoted" \\ / \n\t\u00e9\u4e2d\U0001f600\u2028\x00\x1f<>&'
    return "".join(rng.choice(alphabet) for _ in range(rng.randint(0, 20)))


def random_author(rng: random.Random) -> Author:
    return Author(
        id=rng.randint(-(2**63), 2**63 - 1),
        name=random_text(rng),
        email=rng.choice([None, random_text(rng)]),
    )


def random_article(rng: random.Random) -> Article:
    return Article(
        id=uuid.UUID(int=rng.getrandbits(128)),
        title=random_text(rng),
        status=rng.choice(["draft", "published"]),
        mood=rng.choice(list(Mood)),
        level=rng.choice(list(Level)),
        score=random_float(rng),
        price=Decimal(
            rng.choice(["0", "19.99", "-1.5E+3", "0.000000001", "123456789012345678901234"])
        ),
        day=date(rng.randint(1, 9999), rng.randint(1, 12), rng.randint(1, 28)),
        created_at=random_datetime(rng),
        tags=[random_text(rng) for _ in range(rng.randint(0, 3))],
        counts={random_text(rng): rng.randint(0, 10) for _ in range(rng.randint(0, 3))},
        author=random_author(rng),
        editor=rng.choice([None, random_author(rng)]),
        reviewers=[random_author(rng) for _ in range(rng.randint(0, 3))],
        flag=rng.random() < 0.5,
        note=rng.choice([None, 7, random_text(rng)]),
    )


def test_the_article_model_takes_the_fast_path() -> None:
    assert qualifies(Article)
    assert qualifies(Author)


def test_fast_path_output_is_byte_for_byte_pydantics() -> None:
    rng = random.Random(20261121)
    for _ in range(2_000):
        article = random_article(rng)
        assert dumps_bytes(article) == article.model_dump_json().encode()


def test_a_list_of_models_is_byte_for_byte_the_type_adapters() -> None:
    rng = random.Random(7)
    articles = [random_article(rng) for _ in range(200)]
    expected = b"[" + b",".join(a.model_dump_json().encode() for a in articles) + b"]"
    assert dumps_bytes(articles) == expected


class SecretAuthor(Author):
    password_hash: str


def test_a_subclass_in_a_declared_field_never_leaks_its_extra_fields() -> None:
    leaky = SecretAuthor(id=1, name="Eve", password_hash="argon2$secret")
    article = random_article(random.Random(1)).model_copy(
        update={"author": leaky, "reviewers": [leaky], "editor": leaky}
    )
    out = dumps_bytes(article)
    assert b"argon2" not in out
    assert b"password_hash" not in out
    assert out == article.model_dump_json().encode()


def test_a_subclass_at_the_top_level_is_written_whole() -> None:
    # Returned on purpose as itself: its own fields are what the view asked for.
    out = orjson.loads(dumps_bytes(SecretAuthor(id=1, name="Eve", password_hash="h")))
    assert out == {"id": 1, "name": "Eve", "email": None, "password_hash": "h"}


class NaiveTimes(BaseModel):
    at: datetime


class WithSerializer(BaseModel):
    n: int

    @field_serializer("n")
    def double(self, n: int) -> int:
        return n * 2


class WithComputed(BaseModel):
    n: int

    @computed_field
    @property
    def twice(self) -> int:
        return self.n * 2


class WithCachedProperty(BaseModel):
    n: int

    @cached_property
    def expensive(self) -> int:
        return self.n * 3


class WithExcluded(BaseModel):
    n: int
    hidden: str = Field(exclude=True)


class WithAnnotatedSerializer(BaseModel):
    n: Annotated[int, PlainSerializer(lambda v: f"#{v}")]


class WithExtra(BaseModel):
    model_config = ConfigDict(extra="allow")
    n: int


class ByAlias(BaseModel):
    model_config = ConfigDict(serialize_by_alias=True)
    n: int = Field(serialization_alias="number")


class WithTimedelta(BaseModel):
    d: timedelta


class WithSecret(BaseModel):
    s: SecretStr


class WithAny(BaseModel):
    a: Any


class Tree(BaseModel):
    name: str
    children: list[Tree] = []


class EitherAuthor(BaseModel):
    who: Author | WithSerializer


class WithBadChild(BaseModel):
    child: WithSerializer


@pytest.mark.parametrize(
    ("model", "expected"),
    [
        (NaiveTimes(at=datetime(2026, 1, 1)), b'{"at":"2026-01-01T00:00:00"}'),
        (WithSerializer(n=2), b'{"n":4}'),
        (WithComputed(n=2), b'{"n":2,"twice":4}'),
        (WithCachedProperty(n=2), b'{"n":2}'),
        (WithExcluded(n=2, hidden="x"), b'{"n":2}'),
        (WithAnnotatedSerializer(n=2), b'{"n":"#2"}'),
        (WithExtra(n=2, more=3), b'{"n":2,"more":3}'),  # pyright: ignore[reportCallIssue]
        (ByAlias(n=2), b'{"number":2}'),
        (WithTimedelta(d=timedelta(hours=1)), b'{"d":"PT1H"}'),
        (WithSecret(s=SecretStr("pw")), b'{"s":"**********"}'),
        (WithAny(a={1, 2}), b'{"a":[1,2]}'),
        (
            Tree(name="a", children=[Tree(name="b")]),
            b'{"name":"a","children":[{"name":"b","children":[]}]}',
        ),
        (EitherAuthor(who=Author(id=1, name="x")), b'{"who":{"id":1,"name":"x","email":null}}'),
        (WithBadChild(child=WithSerializer(n=1)), b'{"child":{"n":2}}'),
    ],
    ids=lambda value: type(value).__name__ if isinstance(value, BaseModel) else "",
)
def test_models_that_do_not_qualify_go_through_pydantic(model: BaseModel, expected: bytes) -> None:
    if isinstance(model, WithCachedProperty):
        assert model.expensive == 6  # now in the instance __dict__, must not be written
    assert not qualifies(type(model))
    assert dumps_bytes(model) == expected == model.model_dump_json().encode()
    assert dumps_bytes([model, model]) == b"[" + expected + b"," + expected + b"]"
    assert dumps_bytes({"x": model}) == b'{"x":' + expected + b"}"


def test_a_class_is_planned_once() -> None:
    article = random_article(random.Random(3))
    dumps_bytes(article)
    spec = fast_path_specs[Article]
    dumps_bytes(article)
    assert fast_path_specs[Article] is spec


class Comment(BaseModel):
    body: str
    author: Author


class Thread(BaseModel):
    title: str
    owner: Author
    replies: list[Author]


class IsoTimedelta(BaseModel):
    model_config = ConfigDict(ser_json_timedelta="float")
    n: int


class WithTuple(BaseModel):
    pair: tuple[int, int]


def test_one_nested_model_takes_the_fast_path_and_checks_its_type() -> None:
    comment = Comment(body="hi", author=Author(id=1, name="a"))
    assert qualifies(Comment)
    assert dumps_bytes(comment) == comment.model_dump_json().encode()
    leaky = comment.model_copy(update={"author": SecretAuthor(id=1, name="a", password_hash="h")})
    assert b"password_hash" not in dumps_bytes(leaky)


def test_a_subclass_inside_a_list_field_is_caught_too() -> None:
    thread = Thread(
        title="t",
        owner=Author(id=1, name="a"),
        replies=[Author(id=2, name="b"), SecretAuthor(id=3, name="c", password_hash="h")],
    )
    assert qualifies(Thread)
    assert b"password_hash" not in dumps_bytes(thread)
    assert dumps_bytes(thread) == thread.model_dump_json().encode()


@pytest.mark.parametrize("model", [IsoTimedelta(n=1), WithTuple(pair=(1, 2))])
def test_other_configs_and_types_stay_with_pydantic(model: BaseModel) -> None:
    assert not qualifies(type(model))
    assert dumps_bytes(model) == model.model_dump_json().encode()


class Tags(RootModel[list[str]]):
    pass


class Temporal(BaseModel):
    model_config = ConfigDict(ser_json_temporal="milliseconds")
    at: AwareDatetime


with warnings.catch_warnings():
    warnings.simplefilter("ignore", DeprecationWarning)  # json_encoders: deprecated, still honoured

    class Encoded(BaseModel):
        model_config = ConfigDict(
            json_encoders={uuid.UUID: lambda u: "custom"}
        )  # pyright: ignore[reportDeprecated]
        id: uuid.UUID


class Plain(BaseModel):
    n: int


@pytest.mark.parametrize(
    "model",
    [
        Tags(["a", "b"]),
        Temporal(at=datetime(2026, 1, 1, tzinfo=UTC)),
        Encoded(id=uuid.UUID(int=1)),
    ],
    ids=["RootModel", "ser_json_temporal", "json_encoders"],
)
def test_root_models_and_serialization_config_stay_with_pydantic(model: BaseModel) -> None:
    assert not qualifies(type(model))
    assert dumps_bytes(model) == model.model_dump_json().encode()
    assert dumps_bytes([model]) == b"[" + model.model_dump_json().encode() + b"]"


def test_extra_keys_in_the_instance_dict_are_not_written() -> None:
    copy = Plain(n=1).model_copy(update={"secret": "x"})
    assert dumps_bytes(copy) == b'{"n":1}' == copy.model_dump_json().encode()
    by_hand = Plain(n=2)
    object.__setattr__(by_hand, "leak", "y")
    assert dumps_bytes(by_hand) == b'{"n":2}'


def test_integers_past_64_bits_in_a_model_are_written_by_pydantic() -> None:
    huge = Plain(n=2**64)
    assert dumps_bytes(huge) == b'{"n":18446744073709551616}'
    assert dumps_bytes({"items": [huge]}) == b'{"items":[{"n":18446744073709551616}]}'


def test_integers_past_64_bits_in_plain_data_raise_a_clear_type_error() -> None:
    with pytest.raises(TypeError, match="64-bit"):
        dumps_bytes({"n": 2**64})


def test_dicts_with_non_string_keys_are_written_like_the_standard_library() -> None:
    assert dumps_bytes({1: "a", 2026: [Plain(n=1)]}) == b'{"1":"a","2026":[{"n":1}]}'


# -- plain datetime fields: orjson without OPT_NAIVE_UTC, in a list of their own -----


class Stamp(BaseModel):
    at: datetime
    maybe: datetime | None = None
    days: list[date]


class Stamped(BaseModel):
    id: int
    at: datetime
    stamps: list[Stamp]
    first: Stamp


_ZONES = [
    None,
    UTC,
    timezone(timedelta(hours=5, minutes=30)),
    timezone(timedelta(hours=-8)),
    timezone(timedelta(seconds=3723)),  # an offset in seconds
]


def _any_datetime(rng: random.Random) -> datetime:
    return datetime(
        rng.randint(1, 9999),
        rng.randint(1, 12),
        rng.randint(1, 28),
        rng.randint(0, 23),
        rng.randint(0, 59),
        rng.randint(0, 59),
        rng.choice([0, 1, 10, 120_000, 999_999, rng.randint(0, 999_999)]),
        tzinfo=rng.choice(_ZONES),
    )


def test_a_list_of_models_with_plain_datetimes_is_byte_for_byte_the_type_adapters() -> None:
    """Naive, UTC, other offsets, microseconds or none: what pydantic writes."""
    from pydantic import TypeAdapter  # noqa: PLC0415 - this test's alone

    rng = random.Random(15)
    items = [
        Stamped(
            id=n,
            at=_any_datetime(rng),
            stamps=[
                Stamp(at=_any_datetime(rng), maybe=_any_datetime(rng), days=[date(2026, 1, 2)])
                for _ in range(3)
            ],
            first=Stamp(at=_any_datetime(rng), days=[]),
        )
        for n in range(2_000)
    ]
    assert not qualifies(Stamped)
    assert qualifies_naive(Stamped)
    assert dumps_bytes(items) == TypeAdapter(list[Stamped]).dump_json(items)
    assert {Stamped, Stamp} <= naive_path_specs.keys()  # orjson wrote them, from their fields


def test_a_model_with_plain_datetimes_anywhere_else_is_pydantics() -> None:
    """Inside a dict, or alone, the layer's OPT_NAIVE_UTC would write a naive
    value as UTC: such a model goes to pydantic there, and keeps no offset."""
    naive = Stamp(at=datetime(2026, 1, 2, 3, 4, 5), days=[])
    assert dumps_bytes(naive) == naive.model_dump_json().encode()
    wrapped = orjson.loads(dumps_bytes({"stamp": naive, "when": datetime(2026, 1, 2)}))
    assert wrapped == {
        "stamp": orjson.loads(naive.model_dump_json()),
        "when": "2026-01-02T00:00:00Z",
    }
    assert wrapped["stamp"]["at"] == "2026-01-02T03:04:05"
