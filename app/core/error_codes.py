"""The stable catalogue of ``error_code`` values in the error envelope.

Frontends branch on these numbers, so a code is never reused or renumbered:
retire one by leaving it here, deprecated. ``docs/errors.md`` lists the same
table; tests fail if the two differ or if a number changes.

Codes are grouped by family: ``10xxx`` request problems, ``11xxx`` authentication,
``12xxx`` authorisation, ``13xxx`` missing things, ``14xxx`` state conflicts,
``15xxx`` throttling, ``19xxx`` server-side faults.
"""

from __future__ import annotations

from enum import IntEnum
from http import HTTPStatus


class ErrorCode(IntEnum):
    """An ``error_code``, with the HTTP status and message it defaults to."""

    http_status: HTTPStatus
    default_message: str

    def __new__(cls, value: int, http_status: HTTPStatus, default_message: str) -> ErrorCode:
        member = int.__new__(cls, value)
        member._value_ = value
        member.http_status = http_status
        member.default_message = default_message
        return member

    # 10xxx: the request itself is wrong
    BAD_REQUEST = 10000, HTTPStatus.BAD_REQUEST, "Bad request"
    VALIDATION_FAILED = 10001, HTTPStatus.UNPROCESSABLE_ENTITY, "Request validation failed"
    MALFORMED_JSON = 10002, HTTPStatus.BAD_REQUEST, "The request body is not valid JSON"
    BODY_NOT_OBJECT = 10003, HTTPStatus.BAD_REQUEST, "The request body must be a JSON object"
    UNSUPPORTED_MEDIA_TYPE = (
        10004,
        HTTPStatus.UNSUPPORTED_MEDIA_TYPE,
        "The request body must be sent as application/json",
    )
    PAYLOAD_TOO_LARGE = 10005, HTTPStatus.REQUEST_ENTITY_TOO_LARGE, "The request body is too large"
    METHOD_NOT_ALLOWED = 10006, HTTPStatus.METHOD_NOT_ALLOWED, "Method not allowed"
    NOT_ACCEPTABLE = 10007, HTTPStatus.NOT_ACCEPTABLE, "Not acceptable"
    URI_TOO_LONG = 10008, HTTPStatus.REQUEST_URI_TOO_LONG, "The request line is too long"
    HEADERS_TOO_LARGE = (
        10009,
        HTTPStatus.REQUEST_HEADER_FIELDS_TOO_LARGE,
        "A request header is too large, or there are too many",
    )
    UPGRADE_REQUIRED = (
        10010,
        HTTPStatus.UPGRADE_REQUIRED,
        "This path is a WebSocket: connect with an upgrade",
    )

    # 11xxx: who are you?
    UNAUTHORIZED = 11000, HTTPStatus.UNAUTHORIZED, "Authentication required"
    LINK_INVALID = 11001, HTTPStatus.BAD_REQUEST, "The link is not valid, or was used already"
    LINK_EXPIRED = 11002, HTTPStatus.GONE, "The link has expired; ask for a new one"

    # 12xxx: you may not
    FORBIDDEN = 12000, HTTPStatus.FORBIDDEN, "Forbidden"

    # 13xxx: no such thing
    NOT_FOUND = 13000, HTTPStatus.NOT_FOUND, "Not found"
    ROUTE_NOT_FOUND = 13001, HTTPStatus.NOT_FOUND, "No such route"

    # 14xxx: the resource's state forbids it
    CONFLICT = 14000, HTTPStatus.CONFLICT, "Conflict"
    PRECONDITION_FAILED = 14001, HTTPStatus.PRECONDITION_FAILED, "Precondition failed"

    # 15xxx: slow down
    RATE_LIMITED = 15000, HTTPStatus.TOO_MANY_REQUESTS, "Too many requests"

    # 19xxx: our fault, or a dependency's
    INTERNAL_ERROR = 19000, HTTPStatus.INTERNAL_SERVER_ERROR, "Internal server error"
    SERVICE_UNAVAILABLE = 19001, HTTPStatus.SERVICE_UNAVAILABLE, "Service unavailable"
    HTTP_ERROR = 19002, HTTPStatus.INTERNAL_SERVER_ERROR, "HTTP error"
    SEARCH_UNAVAILABLE = 19003, HTTPStatus.SERVICE_UNAVAILABLE, "Search is unavailable"


#: The code a bare Werkzeug ``HTTPException`` of each status maps to.
#: A status not listed here gets :attr:`ErrorCode.HTTP_ERROR` with its own status.
ERROR_CODE_FOR_STATUS: dict[int, ErrorCode] = {
    400: ErrorCode.BAD_REQUEST,
    401: ErrorCode.UNAUTHORIZED,
    403: ErrorCode.FORBIDDEN,
    404: ErrorCode.NOT_FOUND,
    405: ErrorCode.METHOD_NOT_ALLOWED,
    406: ErrorCode.NOT_ACCEPTABLE,
    409: ErrorCode.CONFLICT,
    412: ErrorCode.PRECONDITION_FAILED,
    413: ErrorCode.PAYLOAD_TOO_LARGE,
    414: ErrorCode.URI_TOO_LONG,
    415: ErrorCode.UNSUPPORTED_MEDIA_TYPE,
    422: ErrorCode.VALIDATION_FAILED,
    429: ErrorCode.RATE_LIMITED,
    431: ErrorCode.HEADERS_TOO_LARGE,
    500: ErrorCode.INTERNAL_ERROR,
    503: ErrorCode.SERVICE_UNAVAILABLE,
}
