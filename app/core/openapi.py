"""Operations: routes that declare their inputs and outputs as pydantic models.

```python
@bp.operation(
    "PATCH", "/<id:article_id>", "updateArticle",
    body=ArticleUpdate,
    guard=signed_in,
    responses={200: ArticleOut, 404: "No such article", 412: "If-Match does not match"},
    headers={200: {"ETag": "The new version's tag"}},
)
def update_article(article_id: int, body: ArticleUpdate) -> ArticleOut: ...
```

One declaration does two jobs. At request time the operation runs its guard,
then validates the query string (``query=``) and the body (``body=``, plus a
form alternative with ``form=``) and hands the view the models; problems answer
the error envelope: 401/403 from the guard, 400/413/415 for a body that is not a
JSON object, 422 with ``loc`` under ``"query"`` or ``"body"``. And
:func:`build_document` turns every operation of the app into the OpenAPI 3.1
document, from the same models, so the document cannot drift from what the
code validates.

Why not flask-openapi3 or spectree: ``docs/api.md`` ("Why the OpenAPI layer is
our own") has the measurements; ``bench/openapi_layers.py`` repeats them.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from functools import wraps
from http import HTTPStatus
from typing import TYPE_CHECKING, Any, Literal, Protocol, TypeVar

from flask import request
from pydantic import BaseModel, ValidationError
from pydantic.json_schema import JsonSchemaMode, models_json_schema
from werkzeug.routing import BaseConverter

from app.core.errors import validation_details
from app.core.exceptions import ValidationFailed
from app.core.json import JSON_MIMETYPE

if TYPE_CHECKING:
    from flask import Flask

ViewT = TypeVar("ViewT", bound=Callable[..., Any])
Method = Literal["GET", "POST", "PUT", "PATCH", "DELETE"]

#: What a response is: a model for a JSON body, or a description (an error
#: envelope for 4xx/5xx, no body for 204/304).
ResponseSpec = type[BaseModel] | str

FORM_MIMETYPE = "application/x-www-form-urlencoded"
#: Largest id an ``<id:...>`` path segment accepts: BIGINT's. Larger ones are a 404.
MAX_ID = 2**63 - 1


class Guard(Protocol):
    """Who may call an operation: called before anything else is read, it raises
    an :class:`APIException` (401, 403) to refuse. It also tells the document
    what it needs and what it may answer."""

    #: OpenAPI security requirements, e.g. ``[{"bearerAuth": []}]``; ``[]`` for none.
    security: list[dict[str, list[str]]]
    #: Error statuses the guard itself may answer, with their descriptions.
    responses: Mapping[int, str]

    def __call__(self) -> None: ...


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


@dataclass(frozen=True, slots=True)
class Operation:
    method: Method
    rule: str
    operation_id: str
    summary: str
    description: str
    tag: str
    guard: Guard | None
    query: type[BaseModel] | None
    body: type[BaseModel] | None
    form: type[BaseModel] | None
    responses: Mapping[int, ResponseSpec]
    headers: Mapping[int, Mapping[str, str]] = field(default_factory=dict[int, Mapping[str, str]])
    #: Whether it touches the database or another service (so may answer 503).
    uses_services: bool = True


_OPERATION_ID = re.compile(r"[a-z][A-Za-z0-9]*")


def operation(
    method: Method,
    rule: str,
    operation_id: str,
    *,
    tag: str,
    responses: Mapping[int, ResponseSpec],
    guard: Guard | None = None,
    query: type[BaseModel] | None = None,
    body: type[BaseModel] | None = None,
    form: type[BaseModel] | None = None,
    headers: Mapping[int, Mapping[str, str]] | None = None,
    uses_services: bool = True,
) -> Callable[[ViewT], ViewT]:
    """Wrap a view as an operation. :meth:`APIBlueprint.operation` is the way in."""
    if not _OPERATION_ID.fullmatch(operation_id):
        raise ValueError(f"operationId {operation_id!r} must be camelCase, e.g. 'listArticles'")
    if form is not None and body is None:
        raise ValueError("form= is an alternative encoding of body=; declare body= too")

    def decorate(view: ViewT) -> ViewT:
        doc = (view.__doc__ or "").strip()
        summary, _, description = doc.partition("\n")
        spec = Operation(
            method=method,
            rule=rule,
            operation_id=operation_id,
            summary=summary.strip() or operation_id,
            description=_dedent(description),
            tag=tag,
            guard=guard,
            query=query,
            body=body,
            form=form,
            responses=dict(responses),
            headers=dict(headers or {}),
            uses_services=uses_services,
        )

        @wraps(view)
        def run(**path_args: Any) -> Any:
            if guard is not None:
                guard()
            if query is not None:
                path_args["query"] = _validate(query, request.args.to_dict(), "query")
            if body is not None:
                if form is not None and request.mimetype == FORM_MIMETYPE:
                    path_args["body"] = _validate(form, request.form.to_dict(), "body")
                else:
                    path_args["body"] = request.validated_json(body)  # type: ignore[attr-defined]
            return view(**path_args)

        run.__operation__ = spec  # type: ignore[attr-defined]
        return run  # type: ignore[return-value]

    return decorate


def operation_of(view: Callable[..., Any]) -> Operation | None:
    return getattr(view, "__operation__", None)


def _validate(model: type[BaseModel], data: Mapping[str, Any], location: str) -> BaseModel:
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise ValidationFailed(details=validation_details(exc, location=location)) from None


def _dedent(text: str) -> str:
    lines = text.splitlines()
    indents = [len(line) - len(line.lstrip()) for line in lines if line.strip()]
    cut = min(indents, default=0)
    return "\n".join(line[cut:] for line in lines).strip()


# -- the document -----------------------------------------------------------------


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


_PATH_PARAMETER = re.compile(r"<(?:(?P<converter>[a-z]+)(?:\([^)]*\))?:)?(?P<name>\w+)>")
_PARAMETER_SCHEMAS: dict[str, dict[str, Any]] = {
    "id": {"type": "integer", "minimum": 1, "maximum": MAX_ID},
    "int": {"type": "integer", "minimum": 0},
    "string": {"type": "string", "pattern": "^[^/]+$"},
}
_BODY_ERRORS: dict[int, str] = {
    400: "The body is not valid JSON, or not a JSON object",
    413: "The body is larger than the server accepts",
    415: "The body is not sent as application/json",
}
_SERVICE_ERRORS: dict[int, str] = {
    500: "Unexpected server error (the traceback is in the error log under the request id)",
    503: "A service this needs (the database, Redis, ...) is unavailable",
}
_HEADERS: dict[str, dict[str, Any]] = {
    "X-Request-ID": {
        "description": "The client's X-Request-ID when it sent a sane one, else a new one",
        "schema": {"type": "string"},
    },
}


def build_document(
    app: Flask, *, title: str, version: str, base_path: str, description: str = ""
) -> dict[str, Any]:
    """The OpenAPI 3.1 document of every operation under ``base_path``."""
    operations = [
        (rule.rule, spec)
        for rule in app.url_map.iter_rules()
        if rule.rule.startswith(base_path + "/")
        and (spec := operation_of(app.view_functions[rule.endpoint])) is not None
    ]
    models: list[tuple[type[BaseModel], JsonSchemaMode]] = [(ErrorEnvelope, "serialization")]
    for _, spec in operations:
        for model in (spec.query, spec.body, spec.form):
            if model is not None:
                models.append((model, "validation"))
        for response in spec.responses.values():
            if not isinstance(response, str):
                models.append((response, "serialization"))
    refs, definitions = models_json_schema(
        list(dict.fromkeys(models)), ref_template="#/components/schemas/{model}"
    )
    schemas: dict[str, Any] = definitions.get("$defs", {})

    paths: dict[str, dict[str, Any]] = {}
    for rule, spec in sorted(operations, key=lambda item: item[0]):
        path = _PATH_PARAMETER.sub(r"{\g<name>}", rule.removeprefix(base_path)) or "/"
        paths.setdefault(path, {})[spec.method.lower()] = _operation_object(
            rule, spec, refs, schemas
        )
    return {
        "openapi": "3.1.0",
        "info": {"title": title, "version": version, "description": description},
        "servers": [{"url": base_path}],
        "paths": paths,
        "components": {
            "schemas": dict(sorted(schemas.items())),
            "securitySchemes": {
                "bearerAuth": {
                    "type": "http",
                    "scheme": "bearer",
                    "bearerFormat": "JWT",
                    "description": "The access_token from POST /auth/token",
                },
            },
        },
    }


def _operation_object(
    rule: str,
    spec: Operation,
    refs: Mapping[Any, Any],
    schemas: Mapping[str, Any],
) -> dict[str, Any]:
    parameters: list[dict[str, Any]] = [
        {
            "name": match["name"],
            "in": "path",
            "required": True,
            "schema": _PARAMETER_SCHEMAS[match["converter"] or "string"],
        }
        for match in _PATH_PARAMETER.finditer(rule)
    ]
    if spec.query is not None:
        query_schema = schemas[refs[(spec.query, "validation")]["$ref"].rpartition("/")[2]]
        required = set(query_schema.get("required", []))
        for name, field_schema in query_schema.get("properties", {}).items():
            schema = without_null(field_schema)
            parameter = {"name": name, "in": "query", "required": name in required}
            if "description" in schema:
                parameter["description"] = schema["description"]
            parameters.append({**parameter, "schema": schema})

    errors: dict[int, str] = {}
    if spec.guard is not None:
        errors.update(spec.guard.responses)
    if spec.query is not None or spec.body is not None:
        errors[422] = "The request breaks the schema; details say where"
    if spec.body is not None:
        errors.update(_BODY_ERRORS)
    if spec.uses_services:
        errors.update(_SERVICE_ERRORS)

    responses: dict[str, Any] = {}
    for status in sorted({*spec.responses, *errors}):
        described = spec.responses.get(status, errors.get(status, ""))
        responses[str(status)] = _response_object(status, described, spec, refs)

    result: dict[str, Any] = {
        "operationId": spec.operation_id,
        "summary": spec.summary,
        "tags": [spec.tag],
        "parameters": parameters,
        "responses": responses,
        "security": spec.guard.security if spec.guard is not None else [],
    }
    if spec.description:
        result["description"] = spec.description
    if spec.body is not None:
        content = {JSON_MIMETYPE: {"schema": refs[(spec.body, "validation")]}}
        if spec.form is not None:
            content[FORM_MIMETYPE] = {"schema": refs[(spec.form, "validation")]}
        result["requestBody"] = {"required": True, "content": content}
    return result


def without_null(schema: dict[str, Any]) -> dict[str, Any]:
    """A query string or a form cannot carry ``null``: leaving the field out is
    how a client says "none". Drop the ``null`` branch pydantic writes for an
    optional field, and its ``null`` default."""
    options = schema.get("anyOf")
    if options is None:
        return schema
    kept = [option for option in options if option != {"type": "null"}]
    if len(kept) != 1:
        return schema
    result = {key: value for key, value in schema.items() if key != "anyOf"}
    if result.get("default", "") is None:
        del result["default"]
    return {**kept[0], **result}


def _response_object(
    status: int,
    described: ResponseSpec,
    spec: Operation,
    refs: Mapping[Any, Any],
) -> dict[str, Any]:
    headers = dict(_HEADERS)
    for name, description in spec.headers.get(status, {}).items():
        headers[name] = {"description": description, "schema": {"type": "string"}}
    if isinstance(described, str):
        response: dict[str, Any] = {"description": described, "headers": headers}
        if status >= 400:
            response["content"] = {
                JSON_MIMETYPE: {"schema": refs[(ErrorEnvelope, "serialization")]}
            }
        return response
    return {
        "description": HTTPStatus(status).phrase,
        "headers": headers,
        "content": {JSON_MIMETYPE: {"schema": refs[(described, "serialization")]}},
    }
