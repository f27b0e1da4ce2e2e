"""The error envelope as pydantic models: the one shape of every error.

:class:`ErrorEnvelope` is both the schema the OpenAPI document gives every
4xx/5xx response and the model :func:`app.core.errors.error_response` writes
every error body with, so the two cannot drift apart.
"""

from __future__ import annotations

from pydantic import BaseModel, SkipValidation


class ErrorDetail(BaseModel):
    """One problem with the request, pydantic-style."""

    loc: list[str | int] | None = None
    msg: str
    type: str


class ErrorEnvelope(BaseModel):
    """The one shape of every error (docs/errors.md lists every ``error_code``)."""

    code: int
    error_code: int
    message: str
    #: Left as given, not validated into :class:`ErrorDetail`: the handlers build
    #: them, and each is written with its keys in the order it has (a debug 500's
    #: ``{"type", "msg"}`` included). Write with ``serialize_as_any=True``.
    details: SkipValidation[list[ErrorDetail] | None] = None
    request_id: str
