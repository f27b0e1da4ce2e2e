"""Evict cached nodes when database rows change, once the change commits.

```python
evict = EvictOnCommit(manager, lambda session: [
    ArticleNode(article.id) for article in changed_rows(session, Article)
])
database.on_commit("cache", collect=evict.collect, act=evict.act)
```

Every flush collects the nodes its changes make stale; when the transaction
commits, the manager removes them from every tier in every process. A
rolled-back transaction removes nothing
(:meth:`~app.extensions.database.Database.on_commit` forgets what it collected),
so a failed write never evicts good values, and a reader can never refill the
cache from a transaction that is not committed yet.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from typing import Any, TypeVar

from sqlalchemy.orm import Session

from app.cache.manager import Manager
from app.cache.node import Node

log = logging.getLogger("app.cache")

RowT = TypeVar("RowT")
NodesChangedBy = Callable[[Session], Iterable[Node[Any]]]


def changed_rows(session: Session, model: type[RowT]) -> list[RowT]:
    """The rows of ``model`` that the flush inserted, updated or deleted."""
    return [
        row for row in (*session.new, *session.dirty, *session.deleted) if isinstance(row, model)
    ]


class EvictOnCommit:
    """The ``collect`` and ``act`` of a cache's commit effect."""

    def __init__(self, manager: Manager, nodes_changed_by: NodesChangedBy) -> None:
        self.manager = manager
        self.nodes_changed_by = nodes_changed_by

    def collect(self, session: Session) -> list[Node[Any]]:
        """The nodes that this flush's changes make stale."""
        return list(self.nodes_changed_by(session))

    def act(self, nodes: list[Node[Any]]) -> None:
        """Remove the committed changes' nodes from every tier, in every process."""
        try:
            self.manager.remove_many(nodes)
        except Exception:  # the commit happened; a cache fault must not undo the request
            log.exception("cache: could not remove %d node(s) after commit", len(nodes))
