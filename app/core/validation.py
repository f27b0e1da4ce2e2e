"""One way to validate what a request brings: the body, the query string, a form.

The request's JSON checks (415 for a body not sent as JSON, 400 for malformed
JSON or a value other than an object) stay with :class:`APIRequest`; this is
what comes after, for every input alike.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError

from app.core.errors import validation_details
from app.core.exceptions import ValidationFailed

ModelT = TypeVar("ModelT", bound=BaseModel)


def validated(model: type[ModelT], data: Mapping[str, Any], *, location: str) -> ModelT:
    """``data`` validated as ``model``. Problems answer 422, one ``details`` entry
    each, located under ``location`` (``{"loc": ["body", "title"], ...}``)."""
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise ValidationFailed(details=validation_details(exc, location=location)) from None
