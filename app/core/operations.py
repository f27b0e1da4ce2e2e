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
then validates the query string (``query=``) and the body (``body=``: a model,
or a tuple of alternative shapes; ``form=True`` accepts it form-encoded too)
and hands the view the models; problems answer
the error envelope: 401/403 from the guard, 400/413/415 for a body that is not a
JSON object, 422 with ``loc`` under ``"query"`` or ``"body"``. And
:func:`app.core.openapi.build_document` turns every operation of the app into the OpenAPI 3.1
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
from typing import TYPE_CHECKING, Any, Literal, Protocol, TypeVar, cast

from flask import request
from pydantic import BaseModel

from app.core.validation import accepted_keys, validated

if TYPE_CHECKING:
    from app.core.application import APIRequest

ViewT = TypeVar("ViewT", bound=Callable[..., Any])
Method = Literal["GET", "POST", "PUT", "PATCH", "DELETE"]

#: What a response is: a model for a JSON body, or a description (an error
#: envelope for 4xx/5xx, no body for 204/304).
ResponseSpec = type[BaseModel] | str

FORM_MIMETYPE = "application/x-www-form-urlencoded"

#: Flask's request proxy, typed as what :class:`APIFlask` makes it (a cast once, at import).
_request = cast("APIRequest", request)


class Guard(Protocol):
    """Who may call an operation: called before anything else is read, it raises
    an :class:`APIException` (401, 403) to refuse. It also tells the document
    what it needs and what it may answer."""

    #: OpenAPI security requirements, e.g. ``[{"bearerAuth": []}]``; ``[]`` for none.
    security: list[dict[str, list[str]]]
    #: Error statuses the guard itself may answer, with their descriptions.
    responses: Mapping[int, str]

    def __call__(self) -> None: ...


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
    #: The shapes the body may take: none, one, or alternatives (``oneOf``).
    bodies: tuple[type[BaseModel], ...]
    #: Whether the body may also come as ``application/x-www-form-urlencoded``.
    form: bool
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
    body: type[BaseModel] | tuple[type[BaseModel], ...] | None = None,
    form: bool = False,
    headers: Mapping[int, Mapping[str, str]] | None = None,
    uses_services: bool = True,
) -> Callable[[ViewT], ViewT]:
    """Wrap a view as an operation. :meth:`APIBlueprint.operation` is the way in."""
    if not _OPERATION_ID.fullmatch(operation_id):
        raise ValueError(f"operationId {operation_id!r} must be camelCase, e.g. 'listArticles'")
    bodies = body if isinstance(body, tuple) else () if body is None else (body,)
    if form and not bodies:
        raise ValueError("form=True is another encoding of body=; declare body= too")

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
            bodies=bodies,
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
                path_args["query"] = validated(query, _request.args.to_dict(), location="query")
            if bodies:
                if form and _request.mimetype == FORM_MIMETYPE:
                    data: Mapping[str, Any] = _request.form.to_dict()
                else:
                    data = _request.json_object()
                path_args["body"] = validated(shape_of(bodies, data), data, location="body")
            return view(**path_args)

        run.__operation__ = spec  # type: ignore[attr-defined]
        return run  # type: ignore[return-value]

    return decorate


def shape_of(bodies: tuple[type[BaseModel], ...], data: Mapping[str, Any]) -> type[BaseModel]:
    """Which of the alternative shapes a body is: the first that declares every
    field sent, else the first (whose 422 then says what is wrong). The shapes
    of one body differ in their required fields, so at most one can fit."""
    sent = data.keys()
    return next((model for model in bodies if sent <= accepted_keys(model)), bodies[0])


def operation_of(view: Callable[..., Any]) -> Operation | None:
    return getattr(view, "__operation__", None)


def _dedent(text: str) -> str:
    lines = text.splitlines()
    indents = [len(line) - len(line.lstrip()) for line in lines if line.strip()]
    cut = min(indents, default=0)
    return "\n".join(line[cut:] for line in lines).strip()
