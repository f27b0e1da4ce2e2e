"""The error envelope as pydantic models: the one shape of every error.

:class:`ErrorEnvelope` is both what :func:`app.core.errors.error_response`
writes and the schema the OpenAPI document gives every 4xx/5xx response.
"""

from __future__ import annotations

from pydantic import BaseModel


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
    details: list[ErrorDetail] | None = None
    request_id: str
