"""The OpenAPI 3.1 document, built from the operations of an app.

:func:`build_document` reads every operation (:mod:`app.core.operations`) routed
under a base path and writes its parameters, request body and responses from
the same pydantic models the operation validates with, so the document cannot
drift from what the code does. The schemas themselves are pydantic's
(``models_json_schema``), each component named by its schema's ``title``; every
error response is the :class:`~app.core.envelope.ErrorEnvelope`.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from http import HTTPStatus
from typing import TYPE_CHECKING, Any, cast

from pydantic import BaseModel
from pydantic.json_schema import JsonSchemaMode, models_json_schema

from app.core.envelope import ErrorEnvelope
from app.core.json import JSON_MIMETYPE
from app.core.operations import FORM_MIMETYPE, Operation, ResponseSpec, operation_of
from app.core.routing import MAX_ID

if TYPE_CHECKING:
    from flask import Flask

_REF_PREFIX = "#/components/schemas/"
#: What pydantic appends to a name when a model needs two schemas, one per mode.
_MODE_SUFFIX = re.compile(r"-(?:Input|Output)(?=(?:__\d+)?$)")
#: A component name is ``[a-zA-Z0-9._-]+``: ``Page[Article]`` becomes ``Page_Article_``.
_NOT_IN_A_NAME = re.compile(r"[^a-zA-Z0-9._-]")
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


#: The request headers an operation reads when it can answer 304 or 412: the
#: conditional requests of RFC 9110, typed for a generated client.
_CONDITIONAL_HEADERS: dict[int, tuple[str, dict[str, Any]]] = {
    304: (
        "If-None-Match",
        {
            "description": "The ETag you hold; a match answers 304 with no body",
            "schema": {"type": "string"},
        },
    ),
    412: (
        "If-Match",
        {
            "description": "The ETag you read; the write happens only if it still matches, else 412",
            "schema": {"type": "string"},
        },
    ),
}
_WWW_AUTHENTICATE = {
    "description": 'The scheme to authenticate with: Bearer, with error="invalid_token" for a bad token',
    "schema": {"type": "string"},
}
_ALLOW = {"description": "The methods the path allows", "schema": {"type": "string"}}


def build_document(
    app: Flask, *, title: str, version: str, base_path: str, description: str = ""
) -> dict[str, Any]:
    """The OpenAPI 3.1 document of every operation under ``base_path``.

    Each component is named by its model's title (the class name, unless
    ``model_config = ConfigDict(title=...)`` says otherwise), so a class can be
    renamed without changing the document. Raises :class:`ValueError` if two
    different schemas would get one name."""
    operations = [
        (rule.rule, spec)
        for rule in app.url_map.iter_rules()
        if rule.rule.startswith(base_path + "/")
        and (spec := operation_of(app.view_functions[rule.endpoint])) is not None
    ]
    models: list[tuple[type[BaseModel], JsonSchemaMode]] = [(ErrorEnvelope, "serialization")]
    for _, spec in operations:
        for model in (spec.query, *spec.bodies):
            if model is not None:
                models.append((model, "validation"))
        for response in spec.responses.values():
            if not isinstance(response, str):
                models.append((response, "serialization"))
    refs, schemas = _component_schemas(list(dict.fromkeys(models)))

    static = {
        rule.rule: rule.methods or set()
        for rule in app.url_map.iter_rules()
        if not _PATH_PARAMETER.search(rule.rule)
    }
    paths: dict[str, dict[str, Any]] = {}
    for rule, spec in sorted(operations, key=lambda item: item[0]):
        path = _PATH_PARAMETER.sub(r"{\g<name>}", rule.removeprefix(base_path)) or "/"
        paths.setdefault(path, {})[spec.method.lower()] = _operation_object(
            rule, spec, refs, schemas, shadowed=_shadowed(rule, spec.method, static)
        )
    return _as_markdown(
        {
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
    )


#: A reStructuredText inline literal, as docstrings write them: ````status````.
_RST_LITERAL = re.compile(r"``(.+?)``", re.DOTALL)


def _as_markdown(value: Any) -> Any:
    """``value`` with every ``summary`` and ``description`` in Markdown, as
    OpenAPI reads them (CommonMark): the docstrings' ````x```` become `` `x` ``,
    so a tool shows code and not doubled backticks, and an ``<em>`` in it is
    shown, not taken for HTML."""
    if isinstance(value, list):
        return [_as_markdown(item) for item in cast("list[Any]", value)]
    if not isinstance(value, dict):
        return value
    return {
        key: (
            _RST_LITERAL.sub(r"`\1`", item)
            if key in ("summary", "description") and isinstance(item, str)
            else _as_markdown(item)
        )
        for key, item in cast("dict[Any, Any]", value).items()
    }


def _component_schemas(
    models: list[tuple[type[BaseModel], JsonSchemaMode]],
) -> tuple[dict[Any, Any], dict[str, Any]]:
    """The schemas of ``models`` and of everything they use, each named by its
    ``title`` (the class name, unless ``model_config`` sets another), and the
    ``$ref`` of each model: renaming a class renames no component. Two schemas
    of one title are an error; mind that a subclass inherits its base's title."""
    refs, definitions = models_json_schema(models, ref_template=_REF_PREFIX + "{model}")
    schemas: dict[str, Any] = definitions.get("$defs", {})
    owners = {ref["$ref"].removeprefix(_REF_PREFIX): model for (model, _), ref in refs.items()}
    names: dict[str, str] = {}  # pydantic's name -> the component's
    claimed: dict[str, str] = {}  # the component's name -> pydantic's
    for pydantic_name, schema in schemas.items():
        name = _component_name(pydantic_name, schema)
        if name in claimed:
            both = " and ".join(_describe(each, owners) for each in (claimed[name], pydantic_name))
            raise ValueError(
                f"Two schemas would be the one OpenAPI component {name!r}: {both}."
                " Give one of them another title: model_config = ConfigDict(title=...)"
            )
        claimed[name] = pydantic_name
        names[pydantic_name] = name
    if all(pydantic_name == name for pydantic_name, name in names.items()):
        return refs, schemas
    renamed = {names[pydantic_name]: schema for pydantic_name, schema in schemas.items()}
    return _with_refs_renamed(refs, names), _with_refs_renamed(renamed, names)


def _component_name(pydantic_name: str, schema: Mapping[str, Any]) -> str:
    """The schema's title, in the characters a component name may have. pydantic's
    ``-Input``/``-Output`` suffix stays: it tells apart the two schemas of a model
    whose validation and serialization differ."""
    title = schema.get("title")
    if not isinstance(title, str) or not title:
        return pydantic_name
    mode = _MODE_SUFFIX.search(pydantic_name)
    return _NOT_IN_A_NAME.sub("_", title) + (mode[0] if mode else "")


def _describe(pydantic_name: str, owners: Mapping[str, type[Any]]) -> str:
    model = owners.get(pydantic_name)
    if model is None:
        return repr(pydantic_name)
    return f"{model.__module__}.{model.__qualname__} ({pydantic_name!r})"


def _with_refs_renamed(value: Any, names: Mapping[str, str]) -> Any:
    """``value`` with every reference to a component (each ``$ref``, and the
    values of a discriminator's ``mapping``) pointing at its new name."""
    if isinstance(value, list):
        return [_with_refs_renamed(item, names) for item in cast("list[Any]", value)]
    if not isinstance(value, dict):
        return value
    result: dict[Any, Any] = {}
    for key, item in cast("dict[Any, Any]", value).items():
        if key == "$ref" and isinstance(item, str):
            result[key] = _renamed_ref(item, names)
            continue
        result[key] = renamed = _with_refs_renamed(item, names)
        if key == "discriminator" and isinstance(renamed, dict):
            mapping = cast("dict[str, Any]", renamed).get("mapping")
            if isinstance(mapping, dict):
                renamed["mapping"] = {
                    tag: _renamed_ref(ref, names) if isinstance(ref, str) else ref
                    for tag, ref in cast("dict[str, Any]", mapping).items()
                }
    return result


def _renamed_ref(ref: str, names: Mapping[str, str]) -> str:
    name = ref.removeprefix(_REF_PREFIX)
    if name == ref or name not in names:
        return ref
    return _REF_PREFIX + names[name]


def _shadowed(rule: str, method: str, static: Mapping[str, set[str]]) -> bool:
    """Whether some value of the rule's path parameters names another route,
    one that does not allow ``method``: ``DELETE /articles/search`` is the
    search route's path, so it answers 405, not ``DELETE /articles/{id}``'s 404."""
    pieces = _PATH_PARAMETER.split(rule)[::3]  # split() also yields the two groups
    if len(pieces) == 1:
        return False
    pattern = re.compile("[^/]+".join(re.escape(piece) for piece in pieces))
    return any(
        pattern.fullmatch(other) and method not in methods
        for other, methods in static.items()
        if other != rule
    )


def _operation_object(
    rule: str,
    spec: Operation,
    refs: Mapping[Any, Any],
    schemas: Mapping[str, Any],
    *,
    shadowed: bool = False,
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
    parameters.extend(
        {"name": name, "in": "header", "required": False, **parameter}
        for status, (name, parameter) in _CONDITIONAL_HEADERS.items()
        if status in spec.responses
    )

    errors: dict[int, str] = {}
    if spec.guard is not None:
        errors.update(spec.guard.responses)
    if spec.query is not None or spec.bodies:
        errors[422] = "The request breaks the schema; details say where"
    if spec.bodies:
        errors.update(_BODY_ERRORS)
    if spec.uses_services:
        errors.update(_SERVICE_ERRORS)
    if shadowed:
        errors[405] = (
            "The path is another route's, which does not allow this method"
            " (`Allow` lists those it does)"
        )

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
    if spec.bodies:
        shapes = [refs[(model, "validation")] for model in spec.bodies]
        # Alternatives are one schema under every media type: generators keep
        # only one media type (the JSON one), so each shape must be in it.
        schema = shapes[0] if len(shapes) == 1 else {"oneOf": shapes}
        content = {JSON_MIMETYPE: {"schema": schema}}
        if spec.form:
            content[FORM_MIMETYPE] = {"schema": schema}
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
    if status == 401:
        headers["WWW-Authenticate"] = _WWW_AUTHENTICATE
    if status == 405:
        headers["Allow"] = _ALLOW
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
