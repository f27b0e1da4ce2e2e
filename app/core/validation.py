"""One way to validate what a request brings: the body, the query string, a form.

The request's JSON checks (415 for a body not sent as JSON, 400 for malformed
JSON or a value other than an object) stay with :class:`APIRequest`; this is
what comes after, for every input alike.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError

from app.core.errors import MAX_DETAILS, validation_details
from app.core.exceptions import ValidationFailed

ModelT = TypeVar("ModelT", bound=BaseModel)


def validated(model: type[ModelT], data: Mapping[str, Any], *, location: str) -> ModelT:
    """``data`` validated as ``model``. Problems answer 422, one ``details`` entry
    each, located under ``location`` (``{"loc": ["body", "title"], ...}``).

    A model that forbids unknown keys gets one pydantic error per such key,
    so a 1 MiB body of 90,000 of them would cost a third of a second to
    refuse. Past :data:`MAX_DETAILS` unknown keys, only the known ones go to
    pydantic and the unknown are counted: the same ``details``, built in a
    small fraction of the time (``bench/validation.py``)."""
    unknown = _unknown_keys(model, data)
    if len(unknown) <= MAX_DETAILS:
        try:
            return model.model_validate(data)
        except ValidationError as exc:
            raise ValidationFailed(details=validation_details(exc, location=location)) from None
    names = accepted_keys(model)
    known = {key: value for key, value in data.items() if key in names}
    try:
        model.model_validate(known)
    except ValidationError as exc:
        problems = validation_details(exc, location=location, unknown=unknown)
    else:
        problems = validation_details(None, location=location, unknown=unknown)
    raise ValidationFailed(details=problems)


def accepted_keys(model: type[BaseModel]) -> frozenset[str]:
    """The keys ``model`` accepts: each field's name, and its alias."""
    names = _NAMES.get(model)
    if names is None:
        fields = model.model_fields
        names = _NAMES[model] = frozenset(
            {*fields, *(field.alias for field in fields.values() if field.alias)}
        )
    return names


def _unknown_keys(model: type[BaseModel], data: Mapping[str, Any]) -> list[str]:
    """The keys of ``data`` that ``model`` forbids, in their order; none if it
    ignores or keeps unknown keys."""
    if model.model_config.get("extra") != "forbid":
        return []
    names = accepted_keys(model)
    return [key for key in data if key not in names]


_NAMES: dict[type[BaseModel], frozenset[str]] = {}
