"""Background tasks, one module per area. Each is a ``@shared_task``; import the
module here so the worker registers it (see ``app/extensions/background.py``)."""

from __future__ import annotations

from app.tasks import maintenance, search

__all__ = ["maintenance", "search"]
