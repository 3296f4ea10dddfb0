"""Login, /me, refresh rotation, reuse detection, logout and revocation through the real app."""

from __future__ import annotations

import jwt

from clarity.auth.models import Role
from tests.conftest import PASSWORD, TEST_SECRET, Harness, bearer


async def test_login_returns_bearer_pair_and_me_works(h: Harness) -> None:
    email, user_id = await h.user(Role.clinician)
    tokens = await h.login(email)
    assert tokens["token_type"] == "bearer"
    assert 800 <= int(tokens["expires_in"]) <= 1000  # about 15 minutes
    claims = jwt.decode(
        tokens["access_token"], TEST_SECRET, algorithms=["HS256"], audience="clarity-api"
    )
    assert {"sub", "role", "jti", "exp", "iat", "type", "iss", "aud"} <= claims.keys()
    assert claims["type"] == "access"
    assert claims["role"] == "clinician"

    me = await h.client.get("/api/v1/auth/me", headers=bearer(tokens["access_token"]))
    assert me.status_code == 200
    assert me.json()["id"] == str(user_id)
    assert me.json()["email"] == email


async def test_me_without_token_is_401_problem(h: Harness) -> None:
    response = await h.client.get("/api/v1/auth/me")
    assert response.status_code == 401
    assert response.headers["content-type"].startswith("application/problem+json")
    assert response.json()["code"] == "not_authenticated"
    assert response.headers["www-authenticate"] == "Bearer"


async def test_refresh_rotates_and_each_token_works_once(h: Harness) -> None:
    email, _ = await h.user()
    first = await h.login(email)
    second = await h.client.post(
        "/api/v1/auth/refresh", json={"refresh_token": first["refresh_token"]}
    )
    assert second.status_code == 200
    rotated = second.json()
    assert rotated["refresh_token"] != first["refresh_token"]
    assert rotated["access_token"] != first["access_token"]
    me = await h.client.get("/api/v1/auth/me", headers=bearer(rotated["access_token"]))
    assert me.status_code == 200


async def test_reusing_a_refresh_token_revokes_the_whole_family(h: Harness) -> None:
    email, _ = await h.user()
    first = await h.login(email)
    rotated = (
        await h.client.post("/api/v1/auth/refresh", json={"refresh_token": first["refresh_token"]})
    ).json()

    reuse = await h.client.post(
        "/api/v1/auth/refresh", json={"refresh_token": first["refresh_token"]}
    )
    assert reuse.status_code == 401
    assert reuse.json()["code"] == "refresh_token_reused"

    # Everything issued from that login is now dead: the rotated refresh and access tokens.
    later = await h.client.post(
        "/api/v1/auth/refresh", json={"refresh_token": rotated["refresh_token"]}
    )
    assert later.status_code == 401
    me = await h.client.get("/api/v1/auth/me", headers=bearer(rotated["access_token"]))
    assert me.status_code == 401
    assert me.json()["code"] == "token_revoked"

    # Another login of the same user is a different family and still works.
    other = await h.login(email)
    ok = await h.client.get("/api/v1/auth/me", headers=bearer(other["access_token"]))
    assert ok.status_code == 200


async def test_logout_revokes_access_and_refresh_tokens(h: Harness) -> None:
    email, _ = await h.user()
    tokens = await h.login(email)
    out = await h.client.post("/api/v1/auth/logout", headers=bearer(tokens["access_token"]))
    assert out.status_code == 204
    me = await h.client.get("/api/v1/auth/me", headers=bearer(tokens["access_token"]))
    assert me.status_code == 401
    assert me.json()["code"] == "token_revoked"
    again = await h.client.post(
        "/api/v1/auth/refresh", json={"refresh_token": tokens["refresh_token"]}
    )
    assert again.status_code == 401


async def test_refresh_token_is_not_an_access_token_and_vice_versa(h: Harness) -> None:
    email, _ = await h.user()
    tokens = await h.login(email)
    me = await h.client.get("/api/v1/auth/me", headers=bearer(tokens["refresh_token"]))
    assert me.status_code == 401
    assert me.json()["code"] == "invalid_token"
    swapped = await h.client.post(
        "/api/v1/auth/refresh", json={"refresh_token": tokens["access_token"]}
    )
    assert swapped.status_code == 401


async def test_unknown_email_and_wrong_password_get_the_same_answer(h: Harness) -> None:
    email, _ = await h.user()
    wrong = await h.client.post(
        "/api/v1/auth/login", json={"email": email, "password": PASSWORD + "x"}
    )
    unknown = await h.client.post(
        "/api/v1/auth/login",
        json={"email": "nobody-here@clinic.example.org", "password": PASSWORD},
    )
    assert wrong.status_code == unknown.status_code == 401
    strip = lambda body: {k: v for k, v in body.items() if k != "request_id"}  # noqa: E731
    assert strip(wrong.json()) == strip(unknown.json())


async def test_deactivated_user_cannot_log_in_and_loses_sessions(h: Harness) -> None:
    admin = await h.token_for(Role.admin)
    email, user_id = await h.user(Role.clinician)
    tokens = await h.login(email)
    response = await h.client.post(f"/api/v1/users/{user_id}/deactivate", headers=bearer(admin))
    assert response.status_code == 200
    assert response.json()["is_active"] is False
    me = await h.client.get("/api/v1/auth/me", headers=bearer(tokens["access_token"]))
    assert me.status_code == 401
    login = await h.client.post("/api/v1/auth/login", json={"email": email, "password": PASSWORD})
    assert login.status_code == 401
