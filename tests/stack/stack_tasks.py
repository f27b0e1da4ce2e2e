"""A task for the stack test only, built into the worker's image by
``Dockerfile`` beside this file: slow enough to kill a worker in its middle,
and a write to the database at its end, so a lost task shows."""

from __future__ import annotations

import time

from celery import shared_task
from sqlalchemy import update

from app.extensions.database import get_database
from app.models import User


@shared_task(name="stack.rename_slowly")
def rename_slowly(user_id: int, name: str, seconds: float) -> str:
    """Wait ``seconds``, then rename the user (running it twice is harmless)."""
    time.sleep(seconds)
    session = get_database().session()
    session.execute(update(User).where(User.id == user_id).values(name=name))
    session.commit()
    return name
