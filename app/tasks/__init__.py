"""Background tasks, one module per area. Each is a ``@shared_task``, which binds
to every Celery app once this package is imported; :func:`register` binds them
to one app at once, so the app that sends a task knows it before any worker starts."""

from __future__ import annotations

from celery import Celery

from app.tasks import maintenance, messages, search

__all__ = ["maintenance", "messages", "register", "search"]


def register(celery: Celery) -> None:
    """Bind every task of this package to ``celery`` now."""
    celery.finalize()
