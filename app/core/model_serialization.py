"""A direct path from pydantic models to orjson, for models where it is exact.

pydantic-core's JSON writer is correct for every model, but on typical API
models (nested, with UUIDs and datetimes) orjson writes a model's ``__dict__``
about twice as fast (``bench/json_layer.py`` measures both). For a model class
whose JSON is *provably the same* either way, :func:`register` lets orjson have
the instance's ``__dict__``; for every other model it hands over pydantic's own
output as an ``orjson.Fragment``.

A class qualifies when nothing can make pydantic's output differ from orjson's:

* every field's type is one orjson writes exactly as pydantic does: ``str``,
  ``int``, ``bool``, ``float``, ``None``, ``UUID``, ``date``, ``AwareDatetime``,
  ``Decimal``, ``Literal`` and ``Enum`` of str/int values, ``list``/``dict[str, ...]``
  and ``Optional``/unions of those, and nested models that qualify themselves;
* no serializers, computed fields, excluded fields, ``cached_property``,
  ``extra="allow"``, ``serialize_by_alias`` or non-default ``ser_json_*`` options.

Nested models are checked at run time too: a field declared as ``Author`` that
holds a *subclass* of ``Author`` is written by pydantic (which keeps only
``Author``'s fields), so a subclass can never leak extra fields through here.
Plain ``datetime`` fields qualify only in a call of their own: pydantic writes
a naive value without an offset, where this layer's options
(``OPT_NAIVE_UTC``) write it as UTC. A list of one class whose only departure
from the rules above is plain ``datetime`` fields (:func:`qualifies_naive`) is
written by orjson without that option, which writes every ``datetime``, naive
or aware, as pydantic does (``tests/test_model_serialization.py`` compares
them); anywhere else such a model goes to pydantic.
"""

from __future__ import annotations

import enum
import types
import uuid
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal
from functools import cached_property
from typing import Literal, Union, get_args, get_origin

import orjson
from pydantic import AwareDatetime, BaseModel
from pydantic.functional_serializers import PlainSerializer, WrapSerializer

#: Types whose JSON is the same from orjson (with this layer's options) and pydantic.
_EXACT_TYPES: frozenset[object] = frozenset(
    {str, int, bool, float, type(None), uuid.UUID, date, AwareDatetime, Decimal}
)
#: ``model_config`` keys that only affect validation or the JSON schema, never
#: what a model serializes to. A key not listed here (``ser_json_temporal``,
#: ``json_encoders``, ``serialize_by_alias``, one a future pydantic adds...)
#: keeps the class on pydantic's path.
_NEUTRAL_CONFIG_KEYS = frozenset(
    {
        "title",
        "model_title_generator",
        "field_title_generator",
        "str_to_lower",
        "str_to_upper",
        "str_strip_whitespace",
        "str_min_length",
        "str_max_length",
        "extra",  # but not "allow": checked on its own
        "frozen",
        "populate_by_name",
        "validate_by_name",
        "validate_by_alias",
        "use_enum_values",
        "validate_assignment",
        "arbitrary_types_allowed",
        "from_attributes",
        "loc_by_alias",
        "alias_generator",
        "allow_inf_nan",
        "json_schema_extra",
        "json_schema_mode_override",
        "json_schema_serialization_defaults_required",
        "strict",
        "revalidate_instances",
        "validate_default",
        "validate_return",
        "protected_namespaces",
        "hide_input_in_errors",
        "defer_build",
        "plugin_settings",
        "coerce_numbers_to_str",
        "regex_engine",
        "validation_error_cause",
        "use_attribute_docstrings",
        "cache_strings",
        "val_json_bytes",
    }
)


@dataclass(frozen=True, slots=True)
class _NestedField:
    """A field holding models: ``many`` for ``list[Model]``, else one (or ``None``)."""

    name: str
    model: type[BaseModel]
    many: bool


@dataclass(frozen=True, slots=True)
class _Plan:
    field_count: int
    nested: tuple[_NestedField, ...]


Spec = tuple[int, tuple[tuple[str, type[BaseModel], bool], ...]]

#: Per class, under the layer's options and under the naive-preserving ones.
_plans: dict[type[BaseModel], _Plan | None] = {}
_naive_plans: dict[type[BaseModel], _Plan | None] = {}

#: For each qualifying class seen so far: its field count, and its nested-model
#: fields as ``(name, model, many)``. The JSON layer's ``default`` runs the
#: per-instance checks from these inline (see :func:`app.core.json.default`).
fast_path_specs: dict[type[BaseModel], Spec] = {}
#: The same for the classes that qualify with plain ``datetime`` fields, read by
#: the naive-preserving call's ``default`` only (it reads both).
naive_path_specs: dict[type[BaseModel], Spec] = {}


def register(cls: type[BaseModel], *, naive: bool = False) -> bool:
    """Decide once whether ``cls`` qualifies (``naive``: in a naive-preserving
    call); if so, record its spec. Returns whether it qualifies."""
    plan = _plan_of(cls, naive=naive)
    if plan is None:
        return False
    specs = naive_path_specs if naive else fast_path_specs
    if cls not in specs:
        specs[cls] = (plan.field_count, tuple((n.name, n.model, n.many) for n in plan.nested))
    return True


def qualifies(cls: type[BaseModel]) -> bool:
    """Whether instances of ``cls`` may be written by orjson from their fields."""
    return _plan_of(cls) is not None


def qualifies_naive(cls: type[BaseModel]) -> bool:
    """Whether a list of ``cls`` may be written by orjson without ``OPT_NAIVE_UTC``:
    it qualifies but for plain ``datetime`` fields."""
    return _plan_of(cls, naive=True) is not None


def with_pydantic(model: BaseModel) -> orjson.Fragment:
    # A Fragment embeds pydantic's own (Rust) output without re-parsing it.
    return orjson.Fragment(model.__pydantic_serializer__.to_json(model))


def _plan_of(cls: type[BaseModel], *, naive: bool = False) -> _Plan | None:
    plans = _naive_plans if naive else _plans
    try:
        return plans[cls]
    except KeyError:
        plans[cls] = None  # a model that contains itself stays on pydantic's path
        plan = plans[cls] = _make_plan(cls, naive=naive)
        return plan


def _make_plan(cls: type[BaseModel], *, naive: bool) -> _Plan | None:
    config = cls.model_config
    if config.get("extra") == "allow" or not _NEUTRAL_CONFIG_KEYS.issuperset(config):
        return None
    if getattr(cls, "__pydantic_root_model__", False):
        return None  # RootModel writes its root, not a "root" field
    decorators = cls.__pydantic_decorators__
    if decorators.field_serializers or decorators.model_serializers:
        return None
    if cls.__pydantic_computed_fields__ or _has_cached_property(cls):
        return None
    nested: list[_NestedField] = []
    for name, field in cls.model_fields.items():
        if field.exclude or getattr(field, "exclude_if", None) is not None:
            return None
        if any(_changes_serialization(item) for item in field.metadata):
            return None
        found = _nested_models(field.annotation, naive=naive)
        if found is None:
            return None
        nested.extend(_NestedField(name, model, many) for model, many in found)
    return _Plan(len(cls.model_fields), tuple(nested))


def _has_cached_property(cls: type[BaseModel]) -> bool:
    return any(
        isinstance(value, cached_property)
        for klass in cls.__mro__
        for value in vars(klass).values()
    )


def _changes_serialization(metadata: object) -> bool:
    return isinstance(metadata, PlainSerializer | WrapSerializer) or hasattr(
        metadata, "__get_pydantic_core_schema__"
    )


def _nested_models(
    annotation: object, *, naive: bool = False, in_list: bool = False
) -> list[tuple[type[BaseModel], bool]] | None:
    """The model classes a field of this type holds, with whether it holds a list
    of them; ``[]`` for a type with no models; ``None`` if the type does not
    qualify (``naive``: in a naive-preserving call, where ``datetime`` does)."""
    if annotation in _EXACT_TYPES or (naive and annotation is datetime):
        return []
    if isinstance(annotation, type):
        if issubclass(annotation, BaseModel):
            fits = qualifies_naive(annotation) if naive else qualifies(annotation)
            return [(annotation, in_list)] if fits else None
        if issubclass(annotation, enum.Enum):
            return [] if all(isinstance(m.value, str | int) for m in annotation) else None
        return None
    origin = get_origin(annotation)
    args = get_args(annotation)
    if origin is Literal:
        return [] if all(isinstance(arg, str | int | None) for arg in args) else None
    if origin is list and len(args) == 1 and not in_list:
        return _nested_models(args[0], naive=naive, in_list=True)
    if origin is dict and len(args) == 2 and args[0] is str:
        return [] if _nested_models(args[1], naive=naive, in_list=True) == [] else None
    if origin in (Union, types.UnionType):
        members = [arg for arg in args if arg is not type(None)]
        if len(members) == 1:
            return _nested_models(members[0], naive=naive, in_list=in_list)
        # Several types: which model pydantic picks is its business.
        return (
            []
            if all(_nested_models(arg, naive=naive, in_list=in_list) == [] for arg in members)
            else None
        )
    return None
