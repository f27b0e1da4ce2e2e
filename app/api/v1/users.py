"""``/users``: your own account, and the list of accounts for admins."""

from __future__ import annotations

from app.auth.guards import admin, require_user, signed_in
from app.core.application import APIBlueprint, current_settings
from app.extensions.database import get_database
from app.extensions.sms_codes import get_sms_codes
from app.schemas.base import PageQuery
from app.schemas.users import MeOut, PhoneBind, UserPage, UserUpdate
from app.services import accounts, phone_auth

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


@bp.operation(
    "PUT",
    "/me/phone",
    "bindMyPhone",
    guard=signed_in,
    body=PhoneBind,
    responses={
        200: MeOut,
        401: phone_auth.BAD_CODE,
        409: phone_auth.PHONE_TAKEN,
        429: "Too many wrong codes for this number: ask for a new one; see Retry-After",
    },
    headers={429: {"Retry-After": "Seconds to wait"}},
)
def bind_my_phone(body: PhoneBind) -> MeOut:
    """Bind a phone number to your account, with a code sent to it (`purpose: "bind"`).

    It replaces the number bound before, if any. A number belongs to one account.
    """
    return phone_auth.bind(
        get_database().session(),
        require_user(),
        body.phone,
        body.code,
        settings=current_settings(),
        codes=get_sms_codes(),
    )


@bp.operation(
    "DELETE",
    "/me/phone",
    "unbindMyPhone",
    guard=signed_in,
    responses={204: "The number is no longer bound; it signs in no more"},
)
def unbind_my_phone() -> None:
    """Unbind your phone number."""
    phone_auth.unbind(get_database().session(), require_user())


@bp.operation("GET", "", "listUsers", guard=admin, query=PageQuery, responses={200: UserPage})
def list_users(query: PageQuery) -> UserPage:
    """Every account, oldest first (admins only)."""
    return accounts.list_page(get_database().session(), query)
