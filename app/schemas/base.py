"""What every request and response model shares: strict requests, partial
updates, pages, and the bounded field types."""

from __future__ import annotations

import math
from typing import Annotated, Any, Generic, Self, TypeVar

from pydantic import BaseModel, ConfigDict, Field, field_validator

from app.core.openapi import without_null
from app.core.routing import MAX_ID

#: What a page holds: a model, or a union of models told apart by a field.
ItemT = TypeVar("ItemT")

ID = Annotated[int, Field(ge=1, le=MAX_ID)]


class StrictModel(BaseModel):
    """Base of every request model: unknown fields are an error, not ignored."""

    model_config = ConfigDict(extra="forbid")


def omit_null_defaults(schema: dict[str, Any]) -> None:
    """In the document, a field left out keeps its value: it is not nullable
    and has no ``null`` default."""
    properties: dict[str, dict[str, Any]] = schema.get("properties", {})
    for name, field in properties.items():
        properties[name] = without_null(field)


class Patch(StrictModel):
    """Base of partial updates: send only the fields to change. ``null`` is
    refused rather than read as "no change", so the two cannot be confused.
    In code, ``None`` means "not sent"; the document shows no ``null`` at all."""

    model_config = ConfigDict(json_schema_extra=omit_null_defaults)

    @field_validator("*", mode="before")
    @classmethod
    def _not_null(cls, value: Any) -> Any:
        if value is None:
            raise ValueError("null is not a value here; leave the field out to keep it")
        return value


class PageQuery(StrictModel):
    page: Annotated[int, Field(ge=1, le=1_000_000, description="1-based page number")] = 1
    per_page: Annotated[int, Field(ge=1, le=100, description="Items per page (1-100)")] = 20


class Page(BaseModel, Generic[ItemT]):
    items: list[ItemT]
    page: int
    per_page: int
    total: int
    pages: int

    @classmethod
    def of(cls, items: list[ItemT], query: PageQuery, total: int) -> Self:
        """The page ``query`` asked for, holding ``items`` of ``total`` in all."""
        return cls(
            items=items,
            page=query.page,
            per_page=query.per_page,
            total=total,
            pages=math.ceil(total / query.per_page),
        )
