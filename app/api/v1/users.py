"""``/users``: your own account, and the list of accounts for admins."""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import func, select, update

from app.api.v1.auth import user_out
from app.api.v1.schemas import PageQuery, User, UserPage, UserUpdate
from app.auth.guards import admin, require_user, signed_in
from app.auth.passwords import hash_password, password_hash, verify_password
from app.core.application import APIBlueprint, current_settings
from app.core.exceptions import Forbidden, ValidationFailed
from app.extensions.database import get_database
from app.models import RefreshToken
from app.models import User as UserRow

bp = APIBlueprint("users", __name__, url_prefix="/users")


@bp.operation("GET", "/me", "getMe", guard=signed_in, responses={200: User})
def get_me() -> User:
    """Your account."""
    return user_out(require_user())


@bp.operation(
    "PATCH",
    "/me",
    "updateMe",
    guard=signed_in,
    body=UserUpdate,
    responses={200: User, 403: "current_password is wrong"},
)
def update_me(body: UserUpdate) -> User:
    """Change your name, or your password.

    A new ``password`` needs ``current_password``; changing it signs out every
    other session (all refresh tokens are revoked).
    """
    user = require_user()
    session = get_database().session()
    if body.password is not None:  # None: not sent (an explicit null is refused)
        settings = current_settings()
        hasher = password_hash(settings.password_time_cost, settings.password_memory_cost)
        if body.current_password is None:
            raise ValidationFailed(
                details=[
                    {
                        "loc": ["body", "current_password"],
                        "msg": "Field required to change the password",
                        "type": "missing",
                    }
                ]
            )
        if not verify_password(body.current_password, user.password_hash, hasher)[0]:
            raise Forbidden("current_password is not your current password")
        user.password_hash = hash_password(body.password, hasher)
        session.execute(
            update(RefreshToken)
            .where(RefreshToken.user_id == user.id, RefreshToken.revoked_at.is_(None))
            .values(revoked_at=datetime.now(UTC))
        )
    if body.name is not None:
        user.name = body.name
    session.commit()
    return user_out(user)


@bp.operation("GET", "", "listUsers", guard=admin, query=PageQuery, responses={200: UserPage})
def list_users(query: PageQuery) -> UserPage:
    """Every account, oldest first (admins only)."""
    session = get_database().session()
    total = session.scalar(select(func.count()).select_from(UserRow)) or 0
    rows = session.scalars(
        select(UserRow)
        .order_by(UserRow.id)
        .limit(query.per_page)
        .offset((query.page - 1) * query.per_page)
    )
    return UserPage.of([user_out(row) for row in rows], query, total)
