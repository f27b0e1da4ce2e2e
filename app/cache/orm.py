"""Invalidate cached nodes when database rows change, once the change commits.

```python
invalidate_on_commit(manager, Article, lambda article: [ArticleNode(article.id)])
```

Every flush records which rows of ``Article`` were inserted, updated or deleted
in the session; when the transaction commits, the manager removes their nodes
from every tier in every process. A rolled-back transaction removes nothing, so
a failed write never evicts good values, and a reader can never refill the cache
from a transaction that is not committed yet.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from typing import Any, TypeVar

from sqlalchemy import event
from sqlalchemy.orm import Session, UOWTransaction

from app.cache.manager import Manager
from app.cache.node import Node

log = logging.getLogger("app.cache")

RowT = TypeVar("RowT")
NodesFor = Callable[[Any], Iterable[Node[Any]]]

_PENDING = "cache_nodes_to_remove"
_rules: list[tuple[Manager, type[Any], NodesFor]] = []


def invalidate_on_commit(
    manager: Manager, model: type[RowT], nodes_for: Callable[[RowT], Iterable[Node[Any]]]
) -> None:
    """After each commit that changed rows of ``model``, remove ``nodes_for(row)``."""
    _rules.append((manager, model, nodes_for))


def forget_rules(manager: Manager) -> None:
    """Drop the rules of ``manager`` (an app being torn down, a test)."""
    _rules[:] = [rule for rule in _rules if rule[0] is not manager]


@event.listens_for(Session, "after_flush")
def _collect(session: Session, _flush: UOWTransaction) -> None:
    if not _rules:
        return
    changed = [*session.new, *session.dirty, *session.deleted]
    pending: list[tuple[Manager, Node[Any]]] = session.info.setdefault(_PENDING, [])
    for manager, model, nodes_for in _rules:
        for row in changed:
            if isinstance(row, model):
                pending.extend((manager, node) for node in nodes_for(row))


@event.listens_for(Session, "after_commit")
def _remove(session: Session) -> None:
    pending: list[tuple[Manager, Node[Any]]] = session.info.pop(_PENDING, [])
    by_manager: dict[int, tuple[Manager, list[Node[Any]]]] = {}
    for manager, node in pending:
        by_manager.setdefault(id(manager), (manager, []))[1].append(node)
    for manager, nodes in by_manager.values():
        try:
            manager.remove_many(nodes)
        except Exception:  # the commit happened; a cache fault must not undo the request
            log.exception("cache: could not remove %d node(s) after commit", len(nodes))


@event.listens_for(Session, "after_rollback")
def _discard(session: Session) -> None:
    session.info.pop(_PENDING, None)
