"""Error handlers: every failure leaves as the one error envelope of the contract.

    {"code": 404, "error_code": 13001, "message": "No such route", "request_id": "..."}

``details`` appears for validation errors, one entry per problem. In production
a 500 carries nothing but the envelope: the traceback goes to the error log,
tagged with the same request id the client sees.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from flask import current_app, request
from pydantic import ValidationError
from sqlalchemy.exc import InterfaceError, OperationalError
from sqlalchemy.exc import TimeoutError as SQLAlchemyTimeoutError
from werkzeug.exceptions import HTTPException, InternalServerError
from werkzeug.http import quote_etag

from app.core import domain_errors
from app.core.envelope import ErrorEnvelope
from app.core.error_codes import ERROR_CODE_FOR_STATUS, ErrorCode
from app.core.exceptions import APIException
from app.core.json import JSON_MIMETYPE
from app.core.request_id import current_request_id

if TYPE_CHECKING:
    from flask import Flask, Response

log = logging.getLogger("app.error")

#: Headers of an ``HTTPException`` worth keeping (``Allow`` on a 405, ``Retry-After``, ...).
_DROPPED_HEADERS = frozenset({"content-type", "content-length"})
#: The envelope model's own validator and JSON writer, called without the Python
#: layer of ``model_validate`` and ``model_dump_json`` (about 0.6 µs an error).
_envelope = ErrorEnvelope.__pydantic_validator__.validate_python
_envelope_json = ErrorEnvelope.__pydantic_serializer__.to_json


def error_response(
    error_code: ErrorCode,
    message: str | None = None,
    *,
    code: int | None = None,
    details: Sequence[Mapping[str, Any]] | None = None,
    headers: Iterable[tuple[str, str]] = (),
) -> Response:
    """Build the envelope response. Everything that answers with an error calls this.

    The body is an :class:`~app.core.envelope.ErrorEnvelope`, written by pydantic:
    the model the OpenAPI document shows is the one that writes the bytes."""
    status = code or int(error_code.http_status)
    envelope = _envelope(
        {
            "code": status,
            "error_code": int(error_code),
            "message": message or error_code.default_message,
            "details": details,
            "request_id": current_request_id(),
        }
    )
    # No "details" key at all when there are none; the details as they were given.
    body = _envelope_json(envelope, exclude_none=True, serialize_as_any=True)
    response = current_app.response_class(body, status, mimetype=JSON_MIMETYPE)
    for name, value in headers:
        response.headers[name] = value
    return response


#: At most this many problems are listed in a 422's ``details``; one more entry
#: counts the rest, so a body of 100,000 bad keys cannot make a response of megabytes.
MAX_DETAILS = 50


def validation_details(
    exc: ValidationError | None,
    *,
    location: str | None = None,
    unknown: Sequence[str] = (),
) -> list[dict[str, Any]]:
    """pydantic's errors as envelope ``details``, optionally under a location
    (``"body"``, ``"query"``), the first :data:`MAX_DETAILS` of them, and then
    one ``too_many_errors`` entry saying how many more there were. ``unknown``
    are keys a model forbids, found without asking pydantic for one error
    each; they come after pydantic's errors, as pydantic lists them. The
    offending input is left out on purpose: it may be a password."""
    prefix: tuple[str | int, ...] = (location,) if location else ()
    errors = (
        exc.errors(include_url=False, include_context=False, include_input=False) if exc else []
    )
    details: list[dict[str, Any]] = [
        {"loc": [*prefix, *error["loc"]], "msg": error["msg"], "type": error["type"]}
        for error in errors[:MAX_DETAILS]
    ]
    details.extend(
        {"loc": [*prefix, key], "msg": "Extra inputs are not permitted", "type": "extra_forbidden"}
        for key in unknown[: MAX_DETAILS - len(details)]
    )
    total = len(errors) + len(unknown)
    if total > MAX_DETAILS:
        details.append(
            {
                "loc": list(prefix),
                "msg": f"{total - MAX_DETAILS} more problems, not listed",
                "type": "too_many_errors",
            }
        )
    return details


def handle_api_exception(exc: APIException) -> Response:
    return error_response(
        exc.error_code,
        exc.message,
        code=exc.code,
        details=exc.details,
        headers=exc.headers.items(),
    )


#: The answer to each refusal of the domain (:mod:`app.core.domain_errors`).
DOMAIN_ERRORS: dict[type[domain_errors.DomainError], ErrorCode] = {
    domain_errors.NotFoundError: ErrorCode.NOT_FOUND,
    domain_errors.NotPermittedError: ErrorCode.FORBIDDEN,
    domain_errors.AlreadyExistsError: ErrorCode.CONFLICT,
    domain_errors.EditConflictError: ErrorCode.CONFLICT,
    domain_errors.StateConflictError: ErrorCode.CONFLICT,
    domain_errors.VersionMismatchError: ErrorCode.PRECONDITION_FAILED,
    domain_errors.NotAuthenticatedError: ErrorCode.UNAUTHORIZED,
    domain_errors.LinkInvalidError: ErrorCode.LINK_INVALID,
    domain_errors.LinkExpiredError: ErrorCode.LINK_EXPIRED,
}


def handle_domain_error(exc: domain_errors.DomainError) -> Response:
    headers: list[tuple[str, str]] = []
    if isinstance(exc, domain_errors.NotAuthenticatedError):
        headers.append(("WWW-Authenticate", "Bearer"))
    elif isinstance(exc, domain_errors.VersionMismatchError) and exc.current_tag is not None:
        headers.append(("ETag", quote_etag(exc.current_tag)))
    error_code = next(code for kind, code in DOMAIN_ERRORS.items() if isinstance(exc, kind))
    return error_response(error_code, exc.message, headers=headers)


def handle_validation_error(exc: ValidationError) -> Response:
    return error_response(ErrorCode.VALIDATION_FAILED, details=validation_details(exc))


def handle_http_exception(exc: HTTPException) -> Response:
    status = exc.code or 500
    if status >= 500 and isinstance(exc, InternalServerError):
        return _internal_error(exc.original_exception)
    if status == 404 and request.url_rule is None:
        error_code = ErrorCode.ROUTE_NOT_FOUND
    else:
        error_code = ERROR_CODE_FOR_STATUS.get(status, ErrorCode.HTTP_ERROR)
    # Werkzeug's stock descriptions are prose for browsers; keep only one a view chose.
    custom = exc.description if exc.description != type(exc).description else None
    headers = [
        (name, value) for name, value in exc.get_headers() if name.lower() not in _DROPPED_HEADERS
    ]
    return error_response(error_code, custom, code=status, headers=headers)


def handle_database_unavailable(
    exc: OperationalError | InterfaceError | SQLAlchemyTimeoutError,
) -> Response:
    """The database cannot be reached, or is refusing work: 503, safe to retry.
    Logged as a warning without the SQL, which may hold user data. (Other
    database errors, an IntegrityError say, are bugs: they stay 500s.)"""
    log.warning(
        "database unavailable on %s %s: %s",
        request.method,
        request.path,
        type(getattr(exc, "orig", None) or exc).__name__,
    )
    return error_response(
        ErrorCode.SERVICE_UNAVAILABLE, "The database is unavailable; retry shortly"
    )


def handle_unexpected_exception(exc: Exception) -> Response:
    log.error("Unhandled exception on %s %s", request.method, request.path, exc_info=exc)
    return _internal_error(exc)


def _internal_error(exc: BaseException | None) -> Response:
    details = None
    if current_app.debug and exc is not None:
        # Only with DEBUG on, which production refuses to start with.
        details = [{"type": type(exc).__qualname__, "msg": str(exc)}]
    return error_response(ErrorCode.INTERNAL_ERROR, details=details)


def register_error_handlers(app: Flask) -> None:
    app.register_error_handler(APIException, handle_api_exception)
    app.register_error_handler(domain_errors.DomainError, handle_domain_error)
    app.register_error_handler(ValidationError, handle_validation_error)
    app.register_error_handler(HTTPException, handle_http_exception)
    for unavailable in (OperationalError, InterfaceError, SQLAlchemyTimeoutError):
        app.register_error_handler(unavailable, handle_database_unavailable)
    app.register_error_handler(Exception, handle_unexpected_exception)
