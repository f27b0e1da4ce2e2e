"""Exceptions a view raises to answer with an error envelope.

Raise the most specific subclass; the error handlers in :mod:`app.core.errors`
turn each into ``{"code", "error_code", "message", "details"?, "request_id"}``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, ClassVar

from app.core.error_codes import ErrorCode


class APIException(Exception):  # noqa: N818 - the name the whole team knows it by
    """An error with a place in the public error catalogue.

    ``code`` is the HTTP status, ``error_code`` the catalogue entry, and ``details``
    an optional list of machine-readable problems. ``headers`` are added to the
    response (``Retry-After``, ``WWW-Authenticate``, ...).
    """

    default_error_code: ClassVar[ErrorCode] = ErrorCode.BAD_REQUEST

    def __init__(
        self,
        message: str | None = None,
        *,
        error_code: ErrorCode | None = None,
        code: int | None = None,
        details: Sequence[Mapping[str, Any]] | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        self.error_code = error_code or self.default_error_code
        self.code = int(code or self.error_code.http_status)
        self.message = message or self.error_code.default_message
        self.details = [dict(detail) for detail in details] if details is not None else None
        self.headers = dict(headers or {})
        super().__init__(self.message)

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.code}, {self.error_code.name}, {self.message!r})"


class BadRequest(APIException):
    default_error_code = ErrorCode.BAD_REQUEST


class ValidationFailed(APIException):
    """422: the body or the query parameters break the schema."""

    default_error_code = ErrorCode.VALIDATION_FAILED


class Unauthorized(APIException):
    """401: no credentials, or credentials that are not valid."""

    default_error_code = ErrorCode.UNAUTHORIZED

    def __init__(self, message: str | None = None, **kwargs: Any) -> None:
        kwargs.setdefault("headers", {"WWW-Authenticate": "Bearer"})
        super().__init__(message, **kwargs)


class Forbidden(APIException):
    """403: the caller is known and may not do this."""

    default_error_code = ErrorCode.FORBIDDEN


class NotFound(APIException):
    default_error_code = ErrorCode.NOT_FOUND


class Conflict(APIException):
    """409: the request clashes with the current state (a taken email, ...)."""

    default_error_code = ErrorCode.CONFLICT


class PreconditionFailed(APIException):
    """412: an ``If-Match`` no longer matches."""

    default_error_code = ErrorCode.PRECONDITION_FAILED


class RateLimited(APIException):
    """429: too many requests. Pass ``retry_after`` in seconds."""

    default_error_code = ErrorCode.RATE_LIMITED

    def __init__(self, message: str | None = None, *, retry_after: int, **kwargs: Any) -> None:
        kwargs.setdefault("headers", {"Retry-After": str(retry_after)})
        super().__init__(message, **kwargs)


class ServiceUnavailable(APIException):
    """503: a dependency (database, search, ...) is down. Safe to retry later."""

    default_error_code = ErrorCode.SERVICE_UNAVAILABLE
