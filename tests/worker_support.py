"""Tasks that exist only for the tests, on the app's own Celery app.

Loaded by in-process test workers (imported by ``tests/test_tasks.py``) and by
worker subprocesses (``celery -A worker_support worker``, with ``tests`` on the
path), which build the app from the environment like ``app.worker`` does.
"""

from __future__ import annotations

import os
import time

import redis
from celery import shared_task
from sqlalchemy import text

from app.core.request_id import request_id_var
from app.extensions.database import get_database

MARKS_URL = os.environ.get("TEST_REDIS_URL", "redis://127.0.0.1:6379/15")


def marks() -> redis.Redis:
    return redis.Redis.from_url(MARKS_URL)


@shared_task(name="tests.record_context")
def record_context(key: str) -> None:
    """Write what the task sees: the request id, and a query through its session."""
    one = get_database().session().execute(text("SELECT 1")).scalar()
    marks().set(key, f"{request_id_var.get()}|{one}")


@shared_task(
    name="tests.flaky",
    bind=True,
    autoretry_for=(RuntimeError,),
    retry_backoff=1,
    retry_backoff_max=2,
)
def flaky(self: object, key: str, failures: int) -> None:
    """Fail ``failures`` times, then succeed; each attempt's time is recorded."""
    client = marks()
    client.rpush(key, time.time())
    if client.llen(key) <= failures:
        raise RuntimeError("not yet")
    client.set(f"{key}:done", "1")


@shared_task(name="tests.slow")
def slow(key: str, seconds: float) -> None:
    """Count the start; the first run works for ``seconds`` (long enough to be
    killed), a later one finishes at once; mark the end."""
    client = marks()
    if client.incr(f"{key}:started") == 1:
        time.sleep(seconds)
    client.set(f"{key}:done", "1")


if os.environ.get("WORKER_SUPPORT_APP"):  # a worker subprocess: build the app like app.worker
    from app.worker import celery  # noqa: F401
