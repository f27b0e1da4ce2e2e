"""``Node``: the unit of the cache. It names a value, says where it is kept and
for how long, and knows how to load it on a miss.

```python
class ArticleNode(Node[ArticleOut]):
    storages = ["local", {"storage": "redis", "ttl": timedelta(seconds=120)}]

    def __init__(self, article_id: int) -> None:
        self.article_id = article_id

    def key(self) -> str:
        return f"article:{self.article_id}"

    def load(self) -> ArticleOut | None:
        ...  # read the database; None caches a short-lived "does not exist"
```

The class is checked when it is defined: ``storages`` must be a non-empty list
of storage names or ``{"storage": name, "ttl": timedelta}`` entries, and the
model type must be given as ``Node[Model]``. Whether those names are registered
is checked by the :class:`~app.cache.manager.Manager` that serves the node.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import timedelta
from typing import Any, ClassVar, Generic, TypeVar, cast, get_args, get_origin

import orjson
from pydantic import TypeAdapter

ModelT = TypeVar("ModelT")

StorageEntry = str | Mapping[str, Any]


class NodeDefinitionError(TypeError):
    """A ``Node`` subclass is declared wrongly (its storages, model or TTLs)."""


@dataclass(frozen=True, slots=True)
class StorageSpec:
    """One entry of a node's ``storages``: a storage name, and a TTL override."""

    name: str
    ttl: timedelta | None


class Node(Generic[ModelT]):
    """Subclass as ``Node[Model]`` and define ``storages``, ``key()`` and ``load()``.

    Optional class attributes:

    * ``version`` (default ``1``): bump it to abandon every cached value of the
      node at once. Keys also carry a fingerprint of the model's JSON schema, so
      a changed model shape never reads old-shaped values even if you forget.
    * ``negative_ttl`` (default 5 s): how long a ``None`` from ``load()`` is
      cached, so lookups of missing ids do not reach the database every time.
    * ``load_many(nodes)``: a classmethod that loads many nodes at once; used by
      ``Manager.get_many``. It returns one value (or ``None``) per node, in order.
    """

    storages: ClassVar[Sequence[StorageEntry]]
    version: ClassVar[int] = 1
    negative_ttl: ClassVar[timedelta] = timedelta(seconds=5)

    # Filled in by __init_subclass__.
    model_type: ClassVar[Any]
    storage_specs: ClassVar[tuple[StorageSpec, ...]]
    adapter: ClassVar[TypeAdapter[Any]]
    schema_fingerprint: ClassVar[str]

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        model_type = _model_type_of(cls)
        if model_type is None:
            if "storages" in cls.__dict__:
                raise NodeDefinitionError(
                    f"{cls.__qualname__} must name its model type: class {cls.__name__}(Node[Model])"
                )
            return  # an abstract intermediate class
        cls.model_type = model_type
        cls.storage_specs = parse_storages(cls.__qualname__, getattr(cls, "storages", None))
        if type(cls.version) is not int or cls.version < 1:
            raise NodeDefinitionError(f"{cls.__qualname__}.version must be a positive int")
        if cls.negative_ttl <= timedelta(0):
            raise NodeDefinitionError(f"{cls.__qualname__}.negative_ttl must be positive")
        cls.adapter = TypeAdapter(model_type)
        cls.schema_fingerprint = _fingerprint(cls.adapter)

    def key(self) -> str:
        """This value's key (``"article:42"``). Node classes of the same model and
        ``version`` whose keys are equal share one entry: include the class's
        own word in the key (``article:``) unless that sharing is meant."""
        raise NotImplementedError

    def load(self) -> ModelT | None:
        """Read the value from its source. ``None`` means it does not exist."""
        raise NotImplementedError

    def __repr__(self) -> str:
        return f"<{type(self).__qualname__} {self.key()!r}>"


def parse_storages(owner: str, storages: object) -> tuple[StorageSpec, ...]:
    if isinstance(storages, str) or not isinstance(storages, Sequence) or not storages:
        raise NodeDefinitionError(
            f"{owner}.storages must be a non-empty list of storage names or"
            ' {"storage": name, "ttl": timedelta} entries'
        )
    specs: list[StorageSpec] = []
    for entry in cast("Sequence[object]", storages):
        if isinstance(entry, str):
            specs.append(StorageSpec(entry, None))
            continue
        mapping = cast("Mapping[str, object]", entry) if isinstance(entry, Mapping) else None
        if mapping is None or set(mapping) - {"storage", "ttl"}:
            raise NodeDefinitionError(
                f"{owner}.storages entry {entry!r} must be a name"
                ' or {"storage": name, "ttl": timedelta}'
            )
        name = mapping.get("storage")
        ttl = mapping.get("ttl")
        if not isinstance(name, str):
            raise NodeDefinitionError(f"{owner}.storages entry {entry!r} has no storage name")
        if ttl is not None and (not isinstance(ttl, timedelta) or ttl <= timedelta(0)):
            raise NodeDefinitionError(
                f"{owner}.storages[{name!r}] ttl must be a positive timedelta"
            )
        specs.append(StorageSpec(name, ttl))
    names = [spec.name for spec in specs]
    if len(set(names)) != len(names):
        raise NodeDefinitionError(f"{owner}.storages names a storage twice: {names}")
    return tuple(specs)


def _model_type_of(cls: type) -> Any:
    for base in getattr(cls, "__orig_bases__", ()):
        if get_origin(base) is Node:
            (model_type,) = get_args(base)
            return None if isinstance(model_type, TypeVar) else model_type
    for base in cls.__mro__[1:]:
        model_type = base.__dict__.get("model_type")
        if model_type is not None:
            return model_type
    return None


def _fingerprint(adapter: TypeAdapter[Any]) -> str:
    schema = orjson.dumps(adapter.json_schema(), option=orjson.OPT_SORT_KEYS)
    return hashlib.blake2b(schema, digest_size=4).hexdigest()
