"""Background tasks, one module per area. Each is a ``@shared_task``, which binds
to every Celery app; :func:`register` makes sure one app has them all."""

from __future__ import annotations

from celery import Celery

from app.tasks import maintenance, search

__all__ = ["maintenance", "register", "search"]

MODULES = (maintenance, search)


def register(celery: Celery) -> None:
    """Bind every task of :data:`MODULES` to ``celery`` now, so the app that
    sends a task knows it before any worker starts."""
    celery.finalize()
