"""``OrJSONProvider``: Flask's JSON provider, rebuilt on orjson.

orjson already writes ``datetime``, ``date``, ``time``, ``UUID``, ``Enum`` and
dataclasses natively (and fast); :func:`default` adds pydantic models and
``Decimal``. Anything else raises :class:`TypeError` naming the type: there is no
silent ``str()`` fallback, so a view can never leak ``<object at 0x...>``.

Datetimes come out as RFC 3339 with ``Z`` for UTC; naive datetimes are taken to
be UTC. ``Decimal`` becomes a JSON string, as pydantic writes it, so no
precision is lost to a float.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from decimal import Decimal
from functools import lru_cache
from typing import TYPE_CHECKING, Any, cast

import orjson
from flask.json.provider import JSONProvider
from pydantic import BaseModel, TypeAdapter

from app.core.model_serialization import (
    Spec,
    fast_path_specs,
    naive_path_specs,
    qualifies,
    qualifies_naive,
    register,
    with_pydantic,
)

if TYPE_CHECKING:
    from flask import Response

JSON_MIMETYPE = "application/json"
Fallback = Callable[[Any], Any]

#: ``OPT_UTC_Z``: ``...T12:00:00Z`` rather than ``+00:00``. ``OPT_NAIVE_UTC``: a naive
#: datetime is UTC. ``OPT_SERIALIZE_NUMPY`` is left out: the template has no numpy.
ORJSON_OPTIONS = orjson.OPT_UTC_Z | orjson.OPT_NAIVE_UTC


def _fields_default(specs: dict[type[BaseModel], Spec], otherwise: Fallback) -> Fallback:
    """An orjson ``default`` that writes an instance of a class in ``specs`` from
    its fields, unless it departs from its class's spec: extra keys in
    ``__dict__``, or a subclass in a field declared as its base
    (model_serialization's docstring), which go to pydantic. Anything else
    goes to ``otherwise``. It runs once per model in a response, so the checks
    are inline: a call less per model is a sixth of a list's time."""
    find = specs.get

    def fields_default(obj: Any) -> Any:
        spec = find(type(obj))  # pyright: ignore[reportUnknownArgumentType]
        if spec is None:
            return otherwise(obj)
        fields = obj.__dict__
        if len(fields) != spec[0]:
            return with_pydantic(obj)
        for name, nested_model, many in spec[1]:
            value = fields[name]
            if value is None:
                continue
            if many:
                if any(type(item) is not nested_model for item in value):
                    return with_pydantic(obj)
            elif type(value) is not nested_model:
                return with_pydantic(obj)
        return fields

    return fields_default


def _unregistered(obj: Any) -> Any:
    if isinstance(obj, BaseModel):
        if register(type(obj)):
            return default(obj)  # first sight of a qualifying class: now it has a spec
        return with_pydantic(obj)
    if isinstance(obj, Decimal):
        return str(obj)
    raise TypeError(f"Object of type {type(obj).__qualname__} is not JSON serializable")


def _unregistered_naive(obj: Any) -> Any:
    if isinstance(obj, BaseModel) and register(type(obj), naive=True):
        return _default_naive(obj)
    return default(obj)


#: orjson's fallback for the types it does not know: models on the fast path
#: from their fields, other models through pydantic, ``Decimal`` as a string.
default = _fields_default(fast_path_specs, _unregistered)
#: :data:`default` for a call without ``OPT_NAIVE_UTC``, where models with
#: plain ``datetime`` fields qualify too.
_default_naive = _fields_default(naive_path_specs, _unregistered_naive)


@lru_cache(maxsize=512)
def _list_adapter(model: type[BaseModel]) -> TypeAdapter[list[Any]]:
    return TypeAdapter(list[model])  # pyright: ignore[reportInvalidTypeForm] - built at run time


def dumps_bytes(obj: Any) -> bytes:
    """Serialize ``obj`` to JSON bytes by the fastest correct path.

    Models that qualify (:mod:`app.core.model_serialization`) are written by
    orjson from their fields, and so is a list of one class that qualifies but
    for plain ``datetime`` fields, without ``OPT_NAIVE_UTC``. Other models are
    written by pydantic's serializer: a list of them of one class in a single
    call through a cached ``TypeAdapter``, which skips the intermediate dicts
    ``model_dump`` would build.
    """
    if type(obj) is list and obj:
        items = cast("list[object]", obj)
        first_class = type(items[0])
        if (
            issubclass(first_class, BaseModel)
            and not qualifies(first_class)
            and all(type(item) is first_class for item in items)
        ):
            if qualifies_naive(first_class):
                with contextlib.suppress(orjson.JSONEncodeError):  # an int past 64 bits
                    return orjson.dumps(items, default=_default_naive, option=orjson.OPT_UTC_Z)
            return _list_adapter(first_class).dump_json(items)
    try:
        return orjson.dumps(obj, default=default, option=ORJSON_OPTIONS)
    except orjson.JSONEncodeError:
        return _dumps_unusual(obj)


def _dumps_unusual(obj: Any) -> bytes:
    """The slow path, taken only after the fast one failed: dicts with non-string
    keys (written as strings, like the standard library does) and integers past
    64 bits inside models (written by pydantic). Whatever still fails raises a
    ``TypeError`` saying what."""
    return orjson.dumps(
        obj, default=_default_exact, option=ORJSON_OPTIONS | orjson.OPT_NON_STR_KEYS
    )


def _default_exact(obj: Any) -> Any:
    if isinstance(obj, BaseModel):
        return orjson.Fragment(obj.__pydantic_serializer__.to_json(obj))
    return default(obj)


class OrJSONProvider(JSONProvider):
    """A :class:`~flask.json.provider.JSONProvider` backed by orjson.

    Drop-in for Flask's ``DefaultJSONProvider``: ``app.json.dumps``,
    ``app.json.loads``, ``flask.jsonify`` and ``request.get_json`` all go through it.
    Unlike the default provider it does not sort keys (insertion order is kept)
    and never pretty-prints, so output is byte-for-byte the same in debug.
    """

    mimetype = JSON_MIMETYPE

    def dumps(self, obj: Any, **kwargs: Any) -> str:
        """Serialize to ``str``.

        Of ``json.dumps``'s options, ``sort_keys`` and ``indent`` are honoured and
        ``separators`` is accepted and ignored (output is always compact), so
        callers written for the default provider keep working. Others raise.
        """
        option = ORJSON_OPTIONS
        if kwargs.pop("sort_keys", False):
            option |= orjson.OPT_SORT_KEYS
        if kwargs.pop("indent", None):
            option |= orjson.OPT_INDENT_2
        kwargs.pop("separators", None)
        if kwargs:
            raise TypeError(f"OrJSONProvider.dumps does not support {sorted(kwargs)}")
        if option == ORJSON_OPTIONS:
            return dumps_bytes(obj).decode()
        return orjson.dumps(obj, default=default, option=option).decode()

    def loads(self, s: str | bytes, **kwargs: Any) -> Any:
        """Parse JSON. Invalid JSON or invalid UTF-8 raises ``orjson.JSONDecodeError``,
        a ``ValueError``, which Flask's request turns into a 400."""
        if kwargs:
            raise TypeError(f"OrJSONProvider.loads does not support {sorted(kwargs)}")
        return orjson.loads(s)

    def response(self, *args: Any, **kwargs: Any) -> Response:
        """Like :func:`flask.jsonify`, but writes bytes straight into the response."""
        obj = self._prepare_response_obj(args, kwargs)
        response_class = cast("type[Response]", self._app.response_class)
        return response_class(dumps_bytes(obj), mimetype=self.mimetype)
