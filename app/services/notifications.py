"""Notifications: written with the change that causes them, published after it
commits, read back by the REST routes and replayed by the stream.

**Written first.** :func:`write` adds the row in the caller's transaction,
after locking the user's :class:`~app.models.notification.NotificationHead`,
so a user's ids increase in commit order (``after=<id>`` depends on it). Two
causes write one:

* a comment by someone else on your article (:func:`comments_created`, after
  each flush, so every way a comment is written sends it);
* your article becoming searchable: at once, in the publishing flush, without
  Meilisearch (:func:`articles_published`); with it, in the transaction that
  settles the article's outbox row once the index confirmed it
  (:func:`announce`, called by :func:`app.services.indexing.deliver`).

**Published after.** :class:`Notifier` is the commit effect
``"notifications"`` (``create_app``): ``record`` writes the rows during the
flush, ``publish`` hands their frames to the fan-out once the transaction
commits. A rolled-back write publishes nothing; a publish that fails loses
nothing, because the stream replays from the table.

**A message** on the fan-out is ``b"<user_id> <previous_id> <id> <frame>"``:
the stream sends ``frame`` (the contract's JSON text) to the user's sockets,
and checks ``previous_id`` against the last id it sent, to see a gap.
"""

from __future__ import annotations

import hashlib
import secrets
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import timedelta
from typing import TYPE_CHECKING, Any, cast

from pydantic import TypeAdapter
from sqlalchemy import delete, func, insert, select, update
from sqlalchemy.dialects import mysql, sqlite
from sqlalchemy.orm import Session

from app.core.domain_errors import NotFoundError
from app.models import Article, User, utcnow
from app.models.comment import Comment
from app.models.notification import Notification, NotificationHead, StreamTicket
from app.schemas.notifications import (
    ARTICLE_PUBLISHED,
    COMMENT_CREATED,
    MarkRead,
    MarkReadIds,
    NotificationOut,
    NotificationPage,
    NotificationQuery,
    StreamTicketOut,
)
from app.services.articles import articles_published_by
from app.services.pagination import page_of

if TYPE_CHECKING:
    from sqlalchemy.engine import Connection, CursorResult

    from app.extensions.fanout import Fanout

#: The commit effect's name: :func:`app.extensions.database.stage_for_commit` hands it rows.
EFFECT = "notifications"
#: Seconds a stream ticket is valid.
TICKET_TTL = 30
#: Characters of a comment a ``comment.created`` notification quotes.
EXCERPT_LENGTH = 140
#: Rows one replay query reads; the stream reads on until it has them all.
REPLAY_BATCH = 500

NO_SUCH_NOTIFICATION = "No such notification (or not yours)"

_adapter: TypeAdapter[NotificationOut] = TypeAdapter(NotificationOut)


@dataclass(frozen=True, slots=True)
class Sent:
    """One notification written: what the fan-out carries to the streams."""

    user_id: int
    id: int
    previous_id: int
    #: The stream's text frame, ``{"type": "notification", "notification": {...}}``.
    frame: bytes

    def message(self) -> bytes:
        return b"%d %d %d %s" % (self.user_id, self.previous_id, self.id, self.frame)


@dataclass(frozen=True, slots=True)
class Message:
    """A fan-out message, read back by a stream process."""

    user_id: int
    previous_id: int
    id: int
    frame: bytes

    @classmethod
    def parse(cls, raw: bytes) -> Message:
        """Raises :class:`ValueError` for a message this module did not write."""
        user_id, previous_id, notification_id, frame = raw.split(b" ", 3)
        return cls(int(user_id), int(previous_id), int(notification_id), frame)


# -- writing ------------------------------------------------------------------------


def write(connection: Connection, user_id: int, type_: str, data: dict[str, Any]) -> Sent:
    """Add one notification for ``user_id`` in the caller's transaction."""
    previous_id = _lock_head(connection, user_id)
    now = utcnow()
    result = cast(
        "CursorResult[Any]",
        connection.execute(
            insert(Notification).values(user_id=user_id, type=type_, data=data, created_at=now)
        ),
    )
    (notification_id,) = result.inserted_primary_key or (None,)
    if notification_id is None:  # pragma: no cover - both databases return it
        raise RuntimeError("the database did not return the notification's id")
    connection.execute(
        update(NotificationHead)
        .where(NotificationHead.user_id == user_id)
        .values(last_id=notification_id)
    )
    out = _adapter.validate_python(
        {"id": notification_id, "type": type_, "created_at": now, "read_at": None, "data": data}
    )
    return Sent(user_id, int(notification_id), previous_id, frame_of(out))


def _lock_head(connection: Connection, user_id: int) -> int:
    """Create the user's head if need be, lock it until the commit, and return
    the id of their last notification (0 for none)."""
    if connection.dialect.name == "mysql":
        upsert: Any = (
            mysql.insert(NotificationHead)
            .values(user_id=user_id, last_id=0)
            .on_duplicate_key_update(last_id=NotificationHead.last_id)
        )
    else:
        upsert = (
            sqlite.insert(NotificationHead)
            .values(user_id=user_id, last_id=0)
            .on_conflict_do_nothing(index_elements=["user_id"])
        )
    connection.execute(upsert)
    last_id = connection.scalar(
        select(NotificationHead.last_id)
        .where(NotificationHead.user_id == user_id)
        .with_for_update()
    )
    return int(last_id or 0)


def frame_of(notification: NotificationOut) -> bytes:
    return b'{"type":"notification","notification":' + _adapter.dump_json(notification) + b"}"


def comments_created(session: Session) -> list[Sent]:
    """After a flush: a ``comment.created`` for the author of each article that
    someone else commented on."""
    comments = sorted(
        (row for row in session.new if isinstance(row, Comment)), key=lambda row: row.id
    )
    if not comments:
        return []
    articles = {
        article_id: (author_id, title)
        for article_id, author_id, title in session.execute(
            select(Article.id, Article.author_id, Article.title).where(
                Article.id.in_({row.article_id for row in comments})
            )
        )
    }
    actors = dict(
        session.execute(
            select(User.id, User.name).where(User.id.in_({row.author_id for row in comments}))
        ).all()
    )
    notes: list[tuple[int, dict[str, Any]]] = []
    for row in comments:
        author_id, title = articles[row.article_id]
        if author_id == row.author_id:
            continue
        data = {
            "article_id": row.article_id,
            "article_title": title,
            "comment_id": row.id,
            "actor": {"id": row.author_id, "name": actors[row.author_id]},
            "excerpt": row.body[:EXCERPT_LENGTH],
        }
        notes.append((author_id, data))
    return _write_all(session.connection(), COMMENT_CREATED, notes)


def articles_published(session: Session) -> list[Sent]:
    """After a flush, without Meilisearch: an ``article.published`` for the
    author of each article it publishes (it is searchable at once)."""
    rows = sorted(articles_published_by(session), key=lambda row: row.id)
    notes = [(row.author_id, published_data(row.id, row.title)) for row in rows]
    return _write_all(session.connection(), ARTICLE_PUBLISHED, notes)


def announce(session: Session, articles: Iterable[tuple[int, int, str]]) -> list[Sent]:
    """An ``article.published`` for each ``(article_id, author_id, title)``, in
    the caller's transaction (the search delivery's, once the index confirmed)."""
    notes = [
        (author_id, published_data(article_id, title))
        for article_id, author_id, title in sorted(articles)
    ]
    return _write_all(session.connection(), ARTICLE_PUBLISHED, notes)


def published_data(article_id: int, title: str) -> dict[str, Any]:
    return {"article_id": article_id, "article_title": title}


def _write_all(
    connection: Connection, type_: str, notes: Sequence[tuple[int, dict[str, Any]]]
) -> list[Sent]:
    # The heads are locked in user order, so two transactions never wait on each other in a cycle.
    ordered = sorted(notes, key=lambda note: note[0])
    return [write(connection, user_id, type_, data) for user_id, data in ordered]


class Notifier:
    """The ``"notifications"`` commit effect: rows in the flush, frames after the commit."""

    def __init__(self, fanout: Fanout, *, announce_on_publish: bool) -> None:
        self.fanout = fanout
        #: Without Meilisearch, publishing is what makes an article searchable.
        self.announce_on_publish = announce_on_publish

    def record(self, session: Session) -> list[Sent]:
        sent = comments_created(session)
        if self.announce_on_publish:
            sent += articles_published(session)
        return sent

    def publish(self, sent: list[Sent]) -> None:
        self.fanout.publish(item.message() for item in sent)


# -- reading ------------------------------------------------------------------------


def to_out(row: Notification) -> NotificationOut:
    return _adapter.validate_python(
        {
            "id": row.id,
            "type": row.type,
            "created_at": row.created_at,
            "read_at": row.read_at,
            "data": row.data,
        }
    )


def list_page(session: Session, user_id: int, query: NotificationQuery) -> NotificationPage:
    """A page of the user's notifications, newest first."""
    where = [Notification.user_id == user_id]
    if query.unread:
        where.append(Notification.read_at.is_(None))
    rows, total = page_of(
        session, Notification, query, where=where, order_by=[Notification.id.desc()]
    )
    return NotificationPage.of([to_out(row) for row in rows], query, total)


def unread_count(session: Session, user_id: int) -> int:
    count = session.scalar(
        select(func.count())
        .select_from(Notification)
        .where(Notification.user_id == user_id, Notification.read_at.is_(None))
    )
    return count or 0


def mark_read(session: Session, user_id: int, which: MarkRead) -> None:
    """Mark the listed notifications read, or all of them. An id that is not
    one of the user's notifications is a 404, and then nothing is marked."""
    where = [Notification.user_id == user_id, Notification.read_at.is_(None)]
    if isinstance(which, MarkReadIds):
        ids = set(which.ids)
        mine = session.scalar(
            select(func.count())
            .select_from(Notification)
            .where(Notification.user_id == user_id, Notification.id.in_(ids))
        )
        if mine != len(ids):
            raise NotFoundError(NO_SUCH_NOTIFICATION)
        where.append(Notification.id.in_(ids))
    session.execute(update(Notification).where(*where).values(read_at=utcnow()))
    session.commit()


def replay(session: Session, user_id: int, after: int, *, limit: int = REPLAY_BATCH) -> list[Sent]:
    """The user's notifications with an id above ``after``, oldest first, at
    most ``limit`` of them (``previous_id`` is the id before each)."""
    rows = session.scalars(
        select(Notification)
        .where(Notification.user_id == user_id, Notification.id > after)
        .order_by(Notification.id)
        .limit(limit)
    ).all()
    sent: list[Sent] = []
    previous = after
    for row in rows:
        sent.append(Sent(user_id, row.id, previous, frame_of(to_out(row))))
        previous = row.id
    return sent


def last_id(session: Session, user_id: int) -> int:
    """The id of the user's last notification, 0 for none."""
    value = session.scalar(
        select(NotificationHead.last_id).where(NotificationHead.user_id == user_id)
    )
    return int(value or 0)


# -- stream tickets -----------------------------------------------------------------


def _hash(ticket: str) -> str:
    return hashlib.sha256(ticket.encode()).hexdigest()


def issue_ticket(session: Session, user_id: int) -> StreamTicketOut:
    """A single-use ticket that opens the stream as ``user_id`` for :data:`TICKET_TTL` s."""
    ticket = secrets.token_urlsafe(32)
    session.add(
        StreamTicket(
            ticket_hash=_hash(ticket),
            user_id=user_id,
            expires_at=utcnow() + timedelta(seconds=TICKET_TTL),
        )
    )
    session.commit()
    return StreamTicketOut(ticket=ticket, expires_in=TICKET_TTL)


def redeem_ticket(session: Session, ticket: str) -> int | None:
    """The user a valid ticket names, and the ticket is spent; ``None`` for a
    ticket that is unknown, expired or spent already."""
    if not 0 < len(ticket) <= 100:
        return None
    digest = _hash(ticket)
    user_id = session.scalar(
        select(StreamTicket.user_id).where(
            StreamTicket.ticket_hash == digest, StreamTicket.expires_at > utcnow()
        )
    )
    if user_id is None:
        session.rollback()
        return None
    result = cast(
        "CursorResult[Any]",
        session.execute(delete(StreamTicket).where(StreamTicket.ticket_hash == digest)),
    )
    session.commit()
    # Two redemptions at once: only one deletes the row.
    return user_id if result.rowcount == 1 else None


def purge_expired_tickets(session: Session) -> int:
    """Delete the tickets that expired unspent; how many."""
    result = cast(
        "CursorResult[Any]",
        session.execute(delete(StreamTicket).where(StreamTicket.expires_at <= utcnow())),
    )
    session.commit()
    return result.rowcount
