"""``APIFlask``: a Flask app whose every answer is JSON.

A view returns plain data; :meth:`APIFlask.make_response` picks the fastest
correct way to write it (see :func:`app.core.json.dumps_bytes`):

=====================================  =============================================
view returns                           response
=====================================  =============================================
``dict``, ``list``, dataclass, scalar  JSON (``"text"``, ``42``, ``true`` included)
pydantic model, list of models         JSON written by pydantic's own serializer
``None``                               ``204 No Content``, empty body
``bytes`` / ``bytearray``              sent as is: JSON the view already serialized
a ``Response``                         passed through untouched
=====================================  =============================================

Each may come in the tuple forms ``(body, status)``, ``(body, headers)`` and
``(body, status, headers)``. A bare ``str`` is *not* HTML here, as it would be in
stock Flask: it becomes a JSON string, because every body this API sends is JSON.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from http import HTTPStatus
from typing import TYPE_CHECKING, Any, NoReturn, TypeVar, cast

from flask import Blueprint, Flask, Request, Response, current_app, request
from flask.sessions import NullSession, SessionInterface, SessionMixin
from werkzeug.datastructures import Headers
from werkzeug.exceptions import HTTPException, RequestEntityTooLarge
from werkzeug.routing import RequestRedirect
from werkzeug.wrappers import Response as WerkzeugResponse

from app.core.error_codes import ErrorCode
from app.core.exceptions import APIException
from app.core.json import JSON_MIMETYPE, OrJSONProvider, dumps_bytes
from app.core.operations import Method, ResponseSpec, operation
from app.core.routing import IDConverter
from app.core.snapshots import Snapshots, StartResponse

if TYPE_CHECKING:
    from types import TracebackType

    from app.core.settings import Settings

log = logging.getLogger("app.error")

HeadersLike = Headers | Mapping[str, str] | list[tuple[str, str]]
StatusLike = int | str | HTTPStatus


class APIRequest(Request):
    """A request whose JSON failures are answered with the error envelope."""

    def on_json_loading_failed(self, e: ValueError | None) -> NoReturn:
        if e is None:
            raise APIException(error_code=ErrorCode.UNSUPPORTED_MEDIA_TYPE)
        if not self.get_data(cache=True):
            raise APIException(
                "The request body is empty; send a JSON object",
                error_code=ErrorCode.MALFORMED_JSON,
            )
        raise APIException(error_code=ErrorCode.MALFORMED_JSON)

    @property
    def max_content_length(self) -> int | None:
        """One byte past the configured limit, so :meth:`get_data` can tell a body
        of exactly the limit from a longer streamed (chunked) one, which Werkzeug
        would otherwise cut short without a word."""
        limit = super().max_content_length
        return None if limit is None else limit + 1

    @max_content_length.setter
    def max_content_length(self, value: int | None) -> None:
        Request.max_content_length.__set__(self, value)

    def get_data(  # type: ignore[override]
        self, cache: bool = True, as_text: bool = False, parse_form_data: bool = False
    ) -> Any:
        data = super().get_data(cache=cache, as_text=as_text, parse_form_data=parse_form_data)
        limit = self.max_content_length
        if limit is not None and len(data) >= limit:
            raise RequestEntityTooLarge
        return data

    def json_object(self) -> dict[str, Any]:
        """The body as a JSON object: 415 if it is not JSON, 400 if it is malformed
        or is a JSON value other than an object (an array, a string, ...)."""
        body = self.get_json()
        if not isinstance(body, dict):
            raise APIException(error_code=ErrorCode.BODY_NOT_OBJECT)
        return body  # pyright: ignore[reportUnknownVariableType]


class APIResponse(Response):
    """A response whose body is JSON unless it says otherwise."""

    default_mimetype = JSON_MIMETYPE


class StatelessSessionInterface(SessionInterface):
    """No cookie sessions: clients authenticate with bearer tokens.

    Writing to ``flask.session`` raises. It also spares every request the cost of
    building a signing serializer for a cookie nobody sends.
    """

    def open_session(self, app: Flask, request: Request) -> NullSession:
        return self.make_null_session(app)

    def save_session(self, app: Flask, session: SessionMixin, response: Response) -> None:
        return None


ViewT = TypeVar("ViewT", bound=Callable[..., Any])


class _TypedRoutes:
    """Route decorators typed for what :meth:`APIFlask.make_response` accepts.

    Flask types a view's return as ``ResponseReturnValue``, which has no room for
    a pydantic model, a dataclass or ``None``; these signatures let a view be
    annotated with what it really returns (``-> ArticleOut``) under pyright strict.
    """

    if TYPE_CHECKING:

        def route(self, rule: str, **options: Any) -> Callable[[ViewT], ViewT]: ...
        def get(self, rule: str, **options: Any) -> Callable[[ViewT], ViewT]: ...
        def post(self, rule: str, **options: Any) -> Callable[[ViewT], ViewT]: ...
        def put(self, rule: str, **options: Any) -> Callable[[ViewT], ViewT]: ...
        def patch(self, rule: str, **options: Any) -> Callable[[ViewT], ViewT]: ...
        def delete(self, rule: str, **options: Any) -> Callable[[ViewT], ViewT]: ...


class APIBlueprint(_TypedRoutes, Blueprint):
    """A blueprint whose views may return anything :class:`APIFlask` turns into JSON."""

    def operation(
        self,
        method: Method,
        rule: str,
        operation_id: str,
        *,
        responses: Mapping[int, ResponseSpec],
        **options: Any,
    ) -> Callable[[ViewT], ViewT]:
        """Route a view as a declared operation (see :mod:`app.core.operations`).
        The tag defaults to the blueprint's name."""
        options.setdefault("tag", self.name)

        def register(view: ViewT) -> ViewT:
            run = operation(method, rule, operation_id, responses=responses, **options)(view)
            self.add_url_rule(rule, view.__name__, run, methods=[method])
            return run

        return register


class APIFlask(_TypedRoutes, Flask):
    """Flask, answering every view's return value with JSON through orjson."""

    json_provider_class = OrJSONProvider
    request_class = APIRequest
    response_class = APIResponse
    session_interface = StatelessSessionInterface()

    def __init__(self, import_name: str, *, settings: Settings, **kwargs: Any) -> None:
        super().__init__(import_name, **kwargs)
        self.settings = settings
        self.url_map.converters["id"] = IDConverter
        #: Responses a view offered to serve again while current (app/core/snapshots.py).
        self.snapshots = Snapshots()

    def wsgi_app(self, environ: dict[str, Any], start_response: StartResponse) -> Any:
        served = self.snapshots.serve(environ, start_response)
        if served is not None:
            return served
        return super().wsgi_app(environ, start_response)  # pyright: ignore[reportArgumentType]

    def process_response(self, response: Response) -> Response:
        response = super().process_response(response)
        self.snapshots.record(response)
        return response

    def make_response(self, rv: Any) -> Response:
        # The common case first: no tuple, no Response.
        if type(rv) is dict or type(rv) is list:
            return self.response_class(dumps_bytes(rv))
        if isinstance(rv, WerkzeugResponse):
            return super().make_response(rv)
        if isinstance(rv, HTTPException):
            # Flask hands back routing redirects and abort(Response) unhandled.
            return self._http_exception_response(rv)

        status: StatusLike | None = None
        headers: HeadersLike | None = None
        if isinstance(rv, tuple):
            rv, status, headers = _unpack_tuple(rv)  # pyright: ignore[reportUnknownArgumentType]
            if isinstance(rv, WerkzeugResponse):
                parts: Any = (rv, status, headers) if headers else (rv, status)
                return super().make_response(parts)

        if rv is None:
            response = self.response_class(None, status or HTTPStatus.NO_CONTENT, headers)
            if not _names_content_type(headers):
                del response.headers["Content-Type"]  # no body, so no type
            return response
        body = bytes(rv) if isinstance(rv, bytes | bytearray) else dumps_bytes(rv)
        # JSON unless the view's own headers name another Content-Type.
        return self.response_class(body, status, headers)

    def make_default_options_response(self) -> Response:
        response = super().make_default_options_response()
        del response.headers["Content-Type"]  # OPTIONS answers with Allow and no body
        return response

    def _http_exception_response(self, exc: HTTPException) -> Response:
        if exc.response is not None:  # abort(Response(...))
            return super().make_response(exc.response)
        response = self.response_class(None, exc.code or HTTPStatus.INTERNAL_SERVER_ERROR)
        del response.headers["Content-Type"]
        for name, value in exc.get_headers():
            if name.lower() != "content-type":
                response.headers[name] = value
        if isinstance(exc, RequestRedirect):  # /api/v1/items -> /api/v1/items/
            response.headers["Location"] = exc.new_url
        return response

    def log_exception(
        self,
        exc_info: (
            tuple[type[BaseException], BaseException, TracebackType] | tuple[None, None, None]
        ),
    ) -> None:
        """Unhandled errors go to the error log, with their traceback and request id."""
        log.error("Unhandled exception on %s %s", request.method, request.path, exc_info=exc_info)


def _names_content_type(headers: HeadersLike | None) -> bool:
    if headers is None:
        return False
    items = headers.items() if isinstance(headers, Headers | Mapping) else headers
    return any(name.lower() == "content-type" for name, _ in items)


def current_settings() -> Settings:
    """The settings of the app handling the current request, command or task."""
    app = cast("APIFlask", current_app)
    return app.settings


def _unpack_tuple(
    rv: tuple[Any, ...],
) -> tuple[Any, StatusLike | None, HeadersLike | None]:
    """Split ``(body, status)``, ``(body, headers)`` or ``(body, status, headers)``."""
    if len(rv) == 3:
        return rv[0], rv[1], rv[2]
    if len(rv) == 2:
        if isinstance(rv[1], Headers | Mapping | list):
            return rv[0], None, cast("HeadersLike", rv[1])
        return rv[0], rv[1], None
    raise TypeError(
        "A view's tuple must be (body, status), (body, headers) or (body, status, headers);"
        f" got a tuple of {len(rv)}"
    )
