"""Notifications: the signed-in user's list, unread count and marking read, and
the ticket a browser opens the stream with. The stream itself is served by
``app/realtime`` (its own process, or a thread of ``make dev``); these views
only speak HTTP, and :mod:`app.services.notifications` has the rules."""

from __future__ import annotations

from app.auth.guards import require_user, signed_in
from app.core.application import APIBlueprint
from app.extensions.database import get_database
from app.schemas.notifications import (
    MarkRead,
    MarkReadAll,
    MarkReadIds,
    NotificationPage,
    NotificationQuery,
    StreamTicketOut,
    UnreadCount,
)
from app.services import notifications as service
from app.services.notifications import NO_SUCH_NOTIFICATION

bp = APIBlueprint("notifications", __name__)

NO_STORE = {"Cache-Control": "no-store"}


@bp.operation(
    "GET",
    "/notifications",
    "listNotifications",
    guard=signed_in,
    query=NotificationQuery,
    responses={200: NotificationPage},
)
def list_notifications(query: NotificationQuery) -> NotificationPage:
    """Your notifications, newest first; ``unread=true`` for the unread ones only."""
    return service.list_page(get_database().session(), require_user().id, query)


@bp.operation(
    "GET",
    "/notifications/unread-count",
    "countUnreadNotifications",
    guard=signed_in,
    responses={200: UnreadCount},
)
def unread_count() -> UnreadCount:
    """How many of your notifications are not read yet."""
    return UnreadCount(count=service.unread_count(get_database().session(), require_user().id))


@bp.operation(
    "POST",
    "/notifications/read",
    "markNotificationsRead",
    guard=signed_in,
    body=(MarkReadIds, MarkReadAll),
    responses={204: "Marked read", 404: NO_SUCH_NOTIFICATION},
)
def mark_read(body: MarkRead) -> None:
    """Mark the listed notifications read (at most 100), or all of them.
    If any id is not one of yours, nothing is marked."""
    service.mark_read(get_database().session(), require_user().id, body)


@bp.operation(
    "POST",
    "/notifications/ticket",
    "createStreamTicket",
    guard=signed_in,
    responses={201: StreamTicketOut},
    headers={201: {"Cache-Control": "no-store"}},
)
def create_ticket() -> tuple[StreamTicketOut, int, dict[str, str]]:
    """A single-use ticket for the stream, valid 30 seconds:
    connect to ``/notifications/stream?ticket=<ticket>``."""
    ticket = service.issue_ticket(get_database().session(), require_user().id)
    return ticket, 201, NO_STORE
