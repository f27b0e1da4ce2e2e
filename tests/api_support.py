"""Helpers for tests of the HTTP API: accounts, tokens and articles made through
the API itself (an admin is promoted in the database, as the CLI does)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from flask.testing import FlaskClient
from sqlalchemy import update

from app.core.application import APIFlask
from app.extensions.database import get_database
from app.models import SearchOutbox, User, utcnow

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
