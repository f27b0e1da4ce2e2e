"""``@cached``: cache a plain function through a node made for it.

```python
@cached(manager, storages=["local", "redis"])
def top_tags(limit: int) -> list[str]:
    ...

top_tags(10)              # loads once, then served from the cache
top_tags.remove(10)       # every tier, every process
```

The key is the function's module and name plus its arguments (``repr`` of each,
so arguments must have a stable ``repr``: ints, strings, enums...). The cached
type is the function's return annotation; values read back from Redis are
validated against it.
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable, Sequence
from datetime import timedelta
from typing import TYPE_CHECKING, Any, Generic, ParamSpec, TypeVar, cast, get_type_hints

from app.cache.node import Node, StorageEntry

if TYPE_CHECKING:
    from app.cache.manager import Manager

P = ParamSpec("P")
R = TypeVar("R")


class FunctionNodeBase:
    """What every ``@cached`` node does: key on the call's arguments, load by calling."""

    name: str

    def __init__(self, target: Callable[..., Any], arguments: dict[str, Any]) -> None:
        self.target = target
        self.arguments = arguments

    def key(self) -> str:
        rendered = ",".join(f"{k}={v!r}" for k, v in self.arguments.items())
        return f"fn:{self.name}({rendered})"

    def load(self) -> Any:
        return self.target(**self.arguments)


class CachedFunction(Generic[P, R]):
    """The wrapper ``@cached`` returns: call it, or ``.remove(...)`` one entry."""

    def __init__(
        self, manager: Manager, function: Callable[P, R], node_class: type[FunctionNodeBase]
    ) -> None:
        self.manager = manager
        self.function = function
        self.node_class = node_class
        self._signature = inspect.signature(function)
        functools.update_wrapper(self, function)

    def node(self, *args: P.args, **kwargs: P.kwargs) -> Node[Any]:
        """The node for one call, e.g. to pass to ``Manager.get_many``."""
        bound = self._signature.bind(*args, **kwargs)
        bound.apply_defaults()
        return cast("Node[Any]", self.node_class(self.function, bound.arguments))

    def __call__(self, *args: P.args, **kwargs: P.kwargs) -> R:
        return cast("R", self.manager.get(self.node(*args, **kwargs)))

    def remove(self, *args: P.args, **kwargs: P.kwargs) -> None:
        self.manager.remove(self.node(*args, **kwargs))


def cached(
    manager: Manager,
    *,
    storages: Sequence[StorageEntry] = ("local",),
    version: int = 1,
    negative_ttl: timedelta = timedelta(seconds=5),
) -> Callable[[Callable[P, R]], CachedFunction[P, R]]:
    """Cache ``function(...)`` by its arguments. ``None`` results are cached as
    negative entries for ``negative_ttl``."""

    def decorate(function: Callable[P, R]) -> CachedFunction[P, R]:
        return_type = get_type_hints(function).get("return")
        if return_type is None:
            raise TypeError(f"@cached needs a return annotation on {function.__qualname__}")
        function_name = f"{function.__module__}.{function.__qualname__}"
        storage_list = list(storages)
        node_version = version
        node_negative_ttl = negative_ttl

        class FunctionNode(FunctionNodeBase, Node[return_type]):  # type: ignore[valid-type]
            name = function_name
            storages = storage_list
            version = node_version
            negative_ttl = node_negative_ttl

        FunctionNode.__qualname__ = f"cached[{function_name}]"
        manager.validate(FunctionNode)
        return CachedFunction(
            manager, function, FunctionNode
        )  # pyright: ignore[reportUnknownArgumentType]

    return decorate
