"""The caller's own account: sessions, password change, and patient self-registration."""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable

from sqlalchemy import select

from clarity.auth.models import Role, User
from tests.conftest import PASSWORD, Harness, bearer

Factory = Callable[..., Awaitable[Harness]]
NEW_PASSWORD = "Quartz-Pelican-Orchard-77"


async def _three_sessions(h: Harness) -> tuple[str, list[str]]:
    email, _ = await h.user(Role.clinician)
    tokens = [(await h.login(email))["access_token"] for _ in range(3)]
    return email, tokens


async def test_sessions_lists_own_active_sessions_and_marks_the_current(h: Harness) -> None:
    _, tokens = await _three_sessions(h)
    other_user = await h.token_for(Role.clinician)  # someone else's session: not listed

    response = await h.client.get("/api/v1/auth/sessions", headers=bearer(tokens[1]))
    assert response.status_code == 200
    sessions = response.json()
    assert len(sessions) == 3
    assert [s["current"] for s in sessions] == [False, True, False]  # oldest first
    assert all(s["client_address"] == "127.0.0.1" for s in sessions)
    theirs = await h.client.get("/api/v1/auth/sessions", headers=bearer(other_user))
    assert len(theirs.json()) == 1
    assert theirs.json()[0]["id"] not in {s["id"] for s in sessions}

    # A logged-out session is no longer listed.
    out = await h.client.post("/api/v1/auth/logout", headers=bearer(tokens[2]))
    assert out.status_code == 204
    after = await h.client.get("/api/v1/auth/sessions", headers=bearer(tokens[0]))
    assert len(after.json()) == 2
    assert [s["current"] for s in after.json()] == [True, False]


async def test_revoking_one_session_rejects_its_token(h: Harness) -> None:
    _, tokens = await _three_sessions(h)
    sessions = (await h.client.get("/api/v1/auth/sessions", headers=bearer(tokens[0]))).json()
    victim = sessions[2]["id"]  # the third login's session

    response = await h.client.delete(f"/api/v1/auth/sessions/{victim}", headers=bearer(tokens[0]))
    assert response.status_code == 204
    gone = await h.client.get("/api/v1/auth/me", headers=bearer(tokens[2]))
    assert gone.status_code == 401
    assert gone.json()["code"] == "token_revoked"
    for token in tokens[:2]:
        assert (await h.client.get("/api/v1/auth/me", headers=bearer(token))).status_code == 200
    left = (await h.client.get("/api/v1/auth/sessions", headers=bearer(tokens[0]))).json()
    assert victim not in {s["id"] for s in left}

    unknown = await h.client.delete(
        f"/api/v1/auth/sessions/{uuid.uuid4()}", headers=bearer(tokens[0])
    )
    assert unknown.status_code == 404
    # A colleague's session in the same organization is not ours to end.
    colleague = await h.token_for(Role.clinician)
    theirs = (await h.client.get("/api/v1/auth/sessions", headers=bearer(colleague))).json()
    foreign = await h.client.delete(
        f"/api/v1/auth/sessions/{theirs[0]['id']}", headers=bearer(tokens[0])
    )
    assert foreign.status_code == 404
    assert (await h.client.get("/api/v1/auth/me", headers=bearer(colleague))).status_code == 200


async def test_password_change(h: Harness) -> None:
    email, tokens = await _three_sessions(h)
    current = bearer(tokens[0])

    wrong = await h.client.post(
        "/api/v1/auth/password",
        json={"current_password": PASSWORD + "x", "new_password": NEW_PASSWORD},
        headers=current,
    )
    assert wrong.status_code == 403
    assert wrong.json()["code"] == "wrong_password"
    weak = await h.client.post(
        "/api/v1/auth/password",
        json={"current_password": PASSWORD, "new_password": "short"},
        headers=current,
    )
    assert weak.status_code == 422
    assert weak.json()["code"] == "weak_password"
    # Neither attempt changed anything or ended a session.
    for token in tokens:
        assert (await h.client.get("/api/v1/auth/me", headers=bearer(token))).status_code == 200

    ok = await h.client.post(
        "/api/v1/auth/password",
        json={"current_password": PASSWORD, "new_password": NEW_PASSWORD},
        headers=current,
    )
    assert ok.status_code == 200, ok.text
    assert "2 other session(s) ended" in ok.json()["detail"]
    assert (await h.client.get("/api/v1/auth/me", headers=current)).status_code == 200
    for token in tokens[1:]:
        other = await h.client.get("/api/v1/auth/me", headers=bearer(token))
        assert other.status_code == 401
        assert other.json()["code"] == "token_revoked"

    old = await h.client.post("/api/v1/auth/login", json={"email": email, "password": PASSWORD})
    assert old.status_code == 401
    assert (await h.login(email, NEW_PASSWORD))["access_token"]


async def test_registration_is_off_by_default(h: Harness) -> None:
    response = await h.client.post(
        "/api/v1/auth/register",
        json={"email": "self-signup@clinic.example.org", "password": NEW_PASSWORD},
    )
    assert response.status_code == 403
    assert response.json()["code"] == "registration_disabled"
    login = await h.client.post(
        "/api/v1/auth/login",
        json={"email": "self-signup@clinic.example.org", "password": NEW_PASSWORD},
    )
    assert login.status_code == 401


async def test_registration_creates_a_patient_without_revealing_known_emails(
    harness_factory: Factory,
) -> None:
    h = await harness_factory(self_registration=True)
    email = "self-signup@clinic.example.org"
    first = await h.client.post(
        "/api/v1/auth/register", json={"email": email, "password": NEW_PASSWORD}
    )
    assert first.status_code == 202, first.text

    tokens = await h.login(email, NEW_PASSWORD)
    me = await h.client.get("/api/v1/auth/me", headers=bearer(tokens["access_token"]))
    assert me.status_code == 200
    assert me.json()["role"] == "patient"
    async with h.runtime.db.session(system=True) as session:
        users = (await session.scalars(select(User).where(User.email == email))).all()
    assert len(users) == 1
    assert users[0].role == "patient"

    # The same address again, even with another password: the same answer, nothing changes.
    again = await h.client.post(
        "/api/v1/auth/register", json={"email": email, "password": "Other-Lantern-Field-5"}
    )
    assert again.status_code == 202
    assert again.json() == first.json()
    assert (await h.login(email, NEW_PASSWORD))["access_token"]
    # An address that belongs to a staff account gets that same answer as well.
    staff, _ = await h.user(Role.admin)
    staff_again = await h.client.post(
        "/api/v1/auth/register", json={"email": staff, "password": NEW_PASSWORD}
    )
    assert staff_again.status_code == 202
    assert staff_again.json() == first.json()
    assert (await h.login(staff))["access_token"]

    weak = await h.client.post(
        "/api/v1/auth/register", json={"email": "another@clinic.example.org", "password": "abc"}
    )
    assert weak.status_code == 422
    assert weak.json()["code"] == "weak_password"
