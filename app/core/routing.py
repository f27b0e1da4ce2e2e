"""URL converters: ``<id:name>`` path segments.

:class:`IDConverter` is registered as ``id`` on every :class:`APIFlask`; the
OpenAPI document describes such a segment as an integer from 1 to :data:`MAX_ID`.
"""

from __future__ import annotations

from werkzeug.routing import BaseConverter

#: Largest id an ``<id:...>`` path segment accepts: BIGINT's. Larger ones are a 404.
MAX_ID = 2**63 - 1


class IDConverter(BaseConverter):
    """``<id:name>``: an id. Digits that are not a possible id (``0``, or beyond
    BIGINT) become ``0``, which no row has, so the view answers its own 404.
    (Refusing the match instead would make Werkzeug answer a PATCH to
    ``/articles/0`` with 405, because a GET rule's pattern matched.)"""

    regex = r"\d+"
    weight = 50

    def to_python(self, value: str) -> int:
        number = int(value)
        return number if 1 <= number <= MAX_ID else 0

    def to_url(self, value: int) -> str:
        return str(value)
