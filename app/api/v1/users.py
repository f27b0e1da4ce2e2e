"""``/users``: your own account, and the list of accounts for admins."""

from __future__ import annotations

from app.auth.guards import admin, require_user, signed_in
from app.core.application import APIBlueprint, current_settings
from app.extensions.database import get_database
from app.schemas.base import PageQuery
from app.schemas.users import MeOut, UserPage, UserUpdate
from app.services import accounts

bp = APIBlueprint("users", __name__, url_prefix="/users")


@bp.operation("GET", "/me", "getMe", guard=signed_in, responses={200: MeOut})
def get_me() -> MeOut:
    """Your account, with its phone number."""
    return accounts.me_out(require_user())


@bp.operation(
    "PATCH",
    "/me",
    "updateMe",
    guard=signed_in,
    body=UserUpdate,
    responses={200: MeOut, 403: "current_password is wrong"},
)
def update_me(body: UserUpdate) -> MeOut:
    """Change your name, or your password.

    A new ``password`` needs ``current_password``; changing it signs out every
    other session (all refresh tokens are revoked).
    """
    return accounts.update_account(
        get_database().session(), require_user(), body, settings=current_settings()
    )


@bp.operation("GET", "", "listUsers", guard=admin, query=PageQuery, responses={200: UserPage})
def list_users(query: PageQuery) -> UserPage:
    """Every account, oldest first (admins only)."""
    return accounts.list_page(get_database().session(), query)
