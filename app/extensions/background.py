"""Background tasks: one Celery app, configured from the settings, bound to Flask.

Every task runs inside the Flask app context, so it gets its own database
session (sessions are scoped to the app context) and its log lines carry the
request id of the web request that sent it. Tasks are written with
``@shared_task`` in ``app/tasks/`` and bind to this app.

With ``CELERY_BROKER_URL`` empty (the embedded default), tasks run inline in
the process that sends them: ``make dev`` needs no broker and no worker.

Delivery: JSON only (pickle is never accepted); ``acks_late`` and
``task_reject_on_worker_lost``, so a task whose worker dies goes to another
worker; retries back off exponentially with jitter, capped.
"""

from __future__ import annotations

import logging
from datetime import timedelta
from typing import TYPE_CHECKING, Any, cast

import redis
from celery import Celery, Task
from celery.schedules import crontab
from celery.signals import before_task_publish
from flask import current_app
from kombu import Queue

from app.core.exceptions import ServiceUnavailable
from app.core.request_id import current_request_id, request_id_var

if TYPE_CHECKING:
    from app.core.application import APIFlask
    from app.core.settings import Settings

log = logging.getLogger("app.background")

#: Queues a worker can consume; routing sends each task to one.
QUEUES = ("default", "search")
#: Header that carries the sender's request id into the task.
REQUEST_ID_HEADER = "request_id"


def beat_schedule(settings: Settings) -> dict[str, dict[str, Any]]:
    """The periodic tasks (``celery -A app.worker beat``), timed by the settings."""
    hour, minute = settings.search_reindex_at.split(":")
    return {
        "purge-expired-refresh-tokens": {
            "task": "app.tasks.maintenance.purge_expired_refresh_tokens",
            "schedule": timedelta(hours=1),
        },
        "purge-expired-stream-tickets": {
            "task": "app.tasks.maintenance.purge_expired_stream_tickets",
            "schedule": timedelta(hours=1),
        },
        "purge-sent-messages": {
            "task": "app.tasks.maintenance.purge_sent_messages",
            "schedule": timedelta(hours=1),
        },
        "sweep-search-outbox": {
            "task": "app.tasks.search.sweep_outbox",
            "schedule": timedelta(seconds=settings.search_sweep_interval),
        },
        "reindex-search-nightly": {
            "task": "app.tasks.search.reindex",
            "schedule": crontab(hour=int(hour), minute=int(minute)),
        },
    }


class FlaskTask(Task[..., Any]):
    """Runs each task in the app context, with the sender's request id, and with
    a retry policy: exponential backoff with jitter, capped at 10 minutes."""

    flask_app: APIFlask
    retry_backoff = True
    retry_backoff_max = 600
    retry_jitter = True
    max_retries = 5

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        request_id = getattr(self.request, REQUEST_ID_HEADER, None)
        token = request_id_var.set(request_id) if request_id else None
        try:
            with self.flask_app.app_context():
                return self.run(*args, **kwargs)  # pyright: ignore[reportUnknownVariableType]
        finally:
            if token is not None:
                request_id_var.reset(token)


def celery_config(settings: Settings) -> dict[str, Any]:
    inline = not settings.celery_broker_url
    return {
        "broker_url": settings.celery_broker_url or "memory://",
        "result_backend": settings.celery_result_backend or None,
        "task_ignore_result": not settings.celery_result_backend,
        "task_always_eager": inline,
        "task_eager_propagates": inline,
        "task_serializer": "json",
        "result_serializer": "json",
        "accept_content": ["json"],
        "task_acks_late": True,
        "task_reject_on_worker_lost": True,
        "worker_prefetch_multiplier": 1,
        "task_default_queue": "default",
        "task_queues": tuple(Queue(name) for name in QUEUES),
        "task_routes": {"app.tasks.search.*": {"queue": "search"}},
        "broker_transport_options": redis_transport_options(settings),
        "broker_connection_retry_on_startup": True,
        "beat_schedule": beat_schedule(settings),
        "timezone": "UTC",
        "worker_hijack_root_logger": False,
    }


#: Longest wait between two of a worker's sweeps for unacknowledged messages.
RESTORE_INTERVAL = 10


def redis_transport_options(settings: Settings) -> dict[str, Any]:
    """kombu's Redis transport hands a dead worker's message on only when a
    live worker sweeps for it. By default it sweeps every 10 s and scans Redis
    on every 10th sweep, so redelivery could wait about 100 s past the
    visibility timeout. Sweep (and scan) every ``RESTORE_INTERVAL`` seconds, or
    every visibility timeout if that is shorter: redelivery comes at most
    about ``visibility timeout + RESTORE_INTERVAL`` seconds after the worker died."""
    visibility = settings.celery_visibility_timeout
    return {
        "visibility_timeout": visibility,
        "unacked_restore_interval": min(RESTORE_INTERVAL, visibility),
        "unacked_restore_throttle": 1,
        # A broker that does not answer costs a sender this long, not forever.
        "socket_connect_timeout": settings.redis_socket_timeout,
    }


def init_app(app: APIFlask) -> None:
    task_class = type("FlaskTask", (FlaskTask,), {"flask_app": app})
    celery = Celery(app.import_name, task_cls=task_class)
    celery.config_from_object(celery_config(app.settings))
    celery.set_default()
    app.extensions["celery"] = celery


def get_celery() -> Celery:
    return cast("Celery", current_app.extensions["celery"])


def dispatch(name: str, **kwargs: Any) -> None:
    """Send task ``name`` (by its registered name, so no layer below imports
    the tasks) with ``kwargs``; without a broker it runs inline, at once.

    One attempt at the broker, not kombu's default of retrying for seconds: a
    broker that is down answers :class:`ServiceUnavailable` (503) within
    ``REDIS_SOCKET_TIMEOUT``, and the caller knows the work was not queued."""
    celery = get_celery()
    task: Any = celery.tasks[name]  # apply_async takes connection=, which Celery's stub lacks
    if celery.conf.task_always_eager:
        task.apply_async(kwargs=kwargs)
        return
    try:
        with celery.connection_for_write(transport_options={"max_retries": 0}) as connection:
            task.apply_async(kwargs=kwargs, connection=connection, retry=False)
    except Exception as exc:  # noqa: BLE001 - whatever the broker raised, the work is not queued
        log.warning("could not send task %s (%s: %s)", name, type(exc).__name__, exc)
        raise ServiceUnavailable("Background work cannot be queued now; retry shortly") from None


def ping_broker(settings: Settings, timeout: float) -> None:
    """Raise if the broker cannot be reached within ``timeout`` seconds."""
    client = redis.Redis.from_url(  # pyright: ignore[reportUnknownMemberType] - **kwargs
        settings.celery_broker_url, socket_timeout=timeout, socket_connect_timeout=timeout
    )
    try:
        client.ping()  # pyright: ignore[reportUnknownMemberType]
    finally:
        client.close()


@before_task_publish.connect
def _send_request_id(headers: dict[str, Any] | None = None, **_: Any) -> None:
    if headers is not None:
        headers.setdefault(REQUEST_ID_HEADER, current_request_id())
