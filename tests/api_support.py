"""Helpers for tests of the HTTP API: accounts, tokens and articles made through
the API itself (an admin is promoted in the database, as the CLI does), the
error envelope checked, every row read back, and the SQL a block ran."""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from flask.testing import FlaskClient
from sqlalchemy import event, select, update

from app.core.application import APIFlask
from app.core.error_codes import ErrorCode
from app.extensions.database import get_database
from app.models import Base, SearchOutbox, User, utcnow

PASSWORD = "correct horse battery"


@dataclass
class Caller:
    """Someone calling the API: anonymous when ``token`` is empty."""

    id: int | None = None
    email: str = ""
    token: str = ""
    refresh_token: str = ""
    headers: dict[str, str] = field(default_factory=dict[str, str])


class Api:
    def __init__(self, app: APIFlask) -> None:
        self.app = app
        self.client: FlaskClient = app.test_client()
        self.anonymous = Caller()
        self._count = 0

    def register(
        self, name: str = "Ada", *, admin: bool = False, email: str | None = None
    ) -> Caller:
        self._count += 1
        email = email or f"{name.lower()}{self._count}@example.com"
        response = self.client.post(
            "/api/v1/auth/register", json={"email": email, "password": PASSWORD, "name": name}
        )
        assert response.status_code == 201, response.json
        user_id = response.json["id"]  # type: ignore[index]
        if admin:
            with self.app.app_context():
                session = get_database().session()
                session.execute(update(User).where(User.id == user_id).values(is_admin=True))
                session.commit()
        return self.login(email, user_id)

    def login(self, email: str, user_id: int | None = None, password: str = PASSWORD) -> Caller:
        response = self.client.post(
            "/api/v1/auth/token", json={"email": email, "password": password}
        )
        assert response.status_code == 200, response.json
        body: dict[str, Any] = response.json  # type: ignore[assignment]
        return Caller(
            id=user_id,
            email=email,
            token=body["access_token"],
            refresh_token=body["refresh_token"],
            headers={"Authorization": f"Bearer {body['access_token']}"},
        )

    def article(self, author: Caller, **fields: Any) -> dict[str, Any]:
        payload = {"title": "A title", "body": "A body", "status": "published", **fields}
        response = self.client.post("/api/v1/articles", json=payload, headers=author.headers)
        assert response.status_code == 201, response.json
        return response.json  # type: ignore[return-value]

    def queue_outbox(self, *article_ids: int) -> None:
        """Outbox rows for these articles, due now (as after an outage)."""
        with self.app.app_context():
            session = get_database().session()
            session.add_all(
                SearchOutbox(article_id=article_id, next_attempt_at=utcnow())
                for article_id in article_ids
            )
            session.commit()


# -- checks --------------------------------------------------------------------------


def snapshot(api: Api) -> dict[str, list[tuple[Any, ...]]]:
    """Every row of every table, in primary key order."""
    with api.app.app_context():
        session = get_database().session()
        return {
            table.name: [
                tuple(row)
                for row in session.execute(select(table).order_by(*table.primary_key.columns)).all()
            ]
            for table in Base.metadata.sorted_tables
        }


def error(response: Any, status: int, error_code: ErrorCode | set[ErrorCode]) -> dict[str, Any]:
    """The response's error envelope, checked to be a ``status``/``error_code`` one."""
    assert response.status_code == status, response.get_data()[:500]
    assert response.mimetype == "application/json"
    body: dict[str, Any] = response.json
    assert body["code"] == status
    assert body["error_code"] in (error_code if isinstance(error_code, set) else {error_code})
    assert isinstance(body["message"], str)
    assert body["message"]
    assert body["request_id"] == response.headers["X-Request-ID"]
    return body


@contextmanager
def count_queries(api: Api) -> Iterator[list[str]]:
    """Every SQL statement the app's engine runs inside the block."""
    with api.app.app_context():
        engine = get_database().engine
    statements: list[str] = []

    def record(*args: Any) -> None:
        statements.append(args[2])

    event.listen(engine, "before_cursor_execute", record)
    try:
        yield statements
    finally:
        event.remove(engine, "before_cursor_execute", record)


# -- timing ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Timed:
    """What one side of :func:`paired_medians` answered, and how fast."""

    median_ms: float
    statuses: set[int]
    bodies: set[bytes]


def paired_medians(
    first: Callable[[], Any], second: Callable[[], Any], tries: int = 100
) -> tuple[Timed, Timed]:
    """The median time of ``first`` and of ``second`` over ``tries`` each
    (after 10 unmeasured), and what each answered. The two take turns, each
    going first every other time, so a drift of the machine weighs on both alike."""
    for _ in range(10):
        first()
        second()
    times: tuple[list[float], list[float]] = ([], [])
    statuses: tuple[set[int], set[int]] = (set(), set())
    bodies: tuple[set[bytes], set[bytes]] = (set(), set())
    sides = (first, second)
    for attempt in range(tries):
        for side in (0, 1) if attempt % 2 == 0 else (1, 0):
            started = time.perf_counter()
            response = sides[side]()
            times[side].append((time.perf_counter() - started) * 1000)
            statuses[side].add(response.status_code)
            bodies[side].add(response.get_data())
    timed = [Timed(statistics.median(times[side]), statuses[side], bodies[side]) for side in (0, 1)]
    return timed[0], timed[1]


def within_ten_percent(a: float, b: float) -> bool:
    return abs(a - b) <= 0.10 * max(a, b)
