"""/users: your own account, changing it, and the admin list."""

from __future__ import annotations

from api_support import PASSWORD, Api
from sqlalchemy import select

from app.extensions.database import get_database
from app.models import RefreshToken


def test_me_answers_your_account(api: Api) -> None:
    caller = api.register("Ada")
    response = api.client.get("/api/v1/users/me", headers=caller.headers)
    assert response.status_code == 200
    assert response.json is not None
    assert response.json["id"] == caller.id
    assert response.json["email"] == caller.email
    assert set(response.json) == {
        "id",
        "email",
        "email_verified",
        "name",
        "is_admin",
        "created_at",
        "phone",
    }
    assert response.json["phone"] is None


def test_others_see_no_phone(api: Api) -> None:
    admin = api.register("Root", admin=True)
    api.register("Ada")
    listed = api.client.get("/api/v1/users", headers=admin.headers).json
    assert listed is not None
    assert all("phone" not in user and "email_verified" in user for user in listed["items"])


def test_change_name(api: Api) -> None:
    caller = api.register("Ada")
    response = api.client.patch(
        "/api/v1/users/me", json={"name": "Ada Lovelace"}, headers=caller.headers
    )
    assert response.status_code == 200
    assert response.json is not None
    assert response.json["name"] == "Ada Lovelace"
    assert api.client.get("/api/v1/users/me", headers=caller.headers).json["name"] == (  # type: ignore[index]
        "Ada Lovelace"
    )


def test_a_new_password_needs_the_current_one(api: Api) -> None:
    caller = api.register()
    missing = api.client.patch(
        "/api/v1/users/me", json={"password": "a new password"}, headers=caller.headers
    )
    assert missing.status_code == 422
    assert missing.json is not None
    assert missing.json["details"][0]["loc"] == ["body", "current_password"]
    wrong = api.client.patch(
        "/api/v1/users/me",
        json={"password": "a new password", "current_password": "not it at all"},
        headers=caller.headers,
    )
    assert wrong.status_code == 403
    api.login(caller.email)  # the old password still works: nothing changed


def test_changing_the_password_signs_out_every_session(api: Api) -> None:
    caller = api.register()
    other_session = api.login(caller.email)
    response = api.client.patch(
        "/api/v1/users/me",
        json={"password": "a new password", "current_password": PASSWORD},
        headers=caller.headers,
    )
    assert response.status_code == 200
    refused = api.client.post(
        "/api/v1/auth/refresh", json={"refresh_token": other_session.refresh_token}
    )
    assert refused.status_code == 401
    old = api.client.post("/api/v1/auth/token", json={"email": caller.email, "password": PASSWORD})
    assert old.status_code == 401
    api.login(caller.email, password="a new password")
    with api.app.app_context():
        live = (
            get_database()
            .session()
            .scalars(select(RefreshToken).where(RefreshToken.revoked_at.is_(None)))
            .all()
        )
        assert len(live) == 1  # only the sign-in made after the change


def test_admins_list_every_account_in_pages(api: Api) -> None:
    admin = api.register("Root", admin=True)
    for n in range(4):
        api.register(f"User{n}")
    page = api.client.get("/api/v1/users?per_page=2&page=2", headers=admin.headers)
    assert page.status_code == 200
    body = page.json
    assert body is not None
    assert body["total"] == 5
    assert body["pages"] == 3
    assert [user["name"] for user in body["items"]] == ["User1", "User2"]
    assert all("password" not in key for user in body["items"] for key in user)


def test_the_user_list_is_for_admins_only(api: Api) -> None:
    user = api.register()
    assert api.client.get("/api/v1/users").status_code == 401
    forbidden = api.client.get("/api/v1/users", headers=user.headers)
    assert forbidden.status_code == 403
    assert forbidden.json is not None
    assert forbidden.json["error_code"] == 12000
