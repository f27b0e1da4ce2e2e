"""How values cross into a shared storage: JSON through orjson, validated on the way back."""

from __future__ import annotations

from typing import Any, Protocol

from pydantic import TypeAdapter

from app.core.json import dumps_bytes


class Serializer(Protocol):
    def dumps(self, value: Any) -> bytes: ...
    def loads(self, data: bytes, adapter: TypeAdapter[Any]) -> Any: ...


class JSONSerializer:
    """Writes with the app's JSON layer (:func:`app.core.json.dumps_bytes`) and reads
    back through the node's ``TypeAdapter``: a value from Redis comes back as the
    node's model type, validated, never as a bare dict. A value that no longer
    validates raises ``pydantic.ValidationError``; the manager treats it as a miss.
    """

    def dumps(self, value: Any) -> bytes:
        return dumps_bytes(value)

    def loads(self, data: bytes, adapter: TypeAdapter[Any]) -> Any:
        return adapter.validate_json(data)
