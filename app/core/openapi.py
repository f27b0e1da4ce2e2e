"""The OpenAPI 3.1 document, built from the operations of an app.

:func:`build_document` reads every operation (:mod:`app.core.operations`) routed
under a base path and writes its parameters, request body and responses from
the same pydantic models the operation validates with, so the document cannot
drift from what the code does. The schemas themselves are pydantic's
(``models_json_schema``); every error response is the
:class:`~app.core.envelope.ErrorEnvelope`.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from http import HTTPStatus
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel
from pydantic.json_schema import JsonSchemaMode, models_json_schema

from app.core.envelope import ErrorEnvelope
from app.core.json import JSON_MIMETYPE
from app.core.operations import FORM_MIMETYPE, Operation, ResponseSpec, operation_of
from app.core.routing import MAX_ID

if TYPE_CHECKING:
    from flask import Flask

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
