"""Housekeeping that beat runs on a schedule."""

from __future__ import annotations

import logging

from celery import shared_task

from app.auth import refresh_tokens
from app.extensions.database import get_database
from app.services import notifications, sending

log = logging.getLogger("app.tasks")


@shared_task(name="app.tasks.maintenance.purge_expired_refresh_tokens")
def purge_expired_refresh_tokens() -> int:
    """Delete refresh tokens that expired or were revoked; return how many."""
    deleted = refresh_tokens.purge_expired(get_database().session())
    log.info("purged %d expired or revoked refresh token(s)", deleted)
    return deleted


@shared_task(name="app.tasks.maintenance.purge_expired_stream_tickets")
def purge_expired_stream_tickets() -> int:
    """Delete the stream tickets that expired unspent; return how many."""
    deleted = notifications.purge_expired_tickets(get_database().session())
    log.info("purged %d expired stream ticket(s)", deleted)
    return deleted


@shared_task(name="app.tasks.maintenance.purge_sent_messages")
def purge_sent_messages() -> int:
    """Forget the keys of messages sent over a week ago; return how many."""
    deleted = sending.purge_sent(get_database().session())
    log.info("forgot %d sent message key(s)", deleted)
    return deleted
