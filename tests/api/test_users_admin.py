"""Admin user management: create, list, change role, deactivate; refusals; audit trail."""

from __future__ import annotations

import uuid

import jwt
from sqlalchemy import select

from clarity.audit.models import AuditEvent
from clarity.auth.models import Role
from tests.conftest import PASSWORD, TEST_SECRET, Harness, bearer


async def _admin(h: Harness) -> tuple[uuid.UUID, dict[str, str]]:
    email, admin_id = await h.user(Role.admin)
    return admin_id, bearer((await h.login(email))["access_token"])


async def _create(h: Harness, auth: dict[str, str], role: str = "clinician") -> dict[str, str]:
    email = f"{role}-{uuid.uuid4().hex[:8]}@clinic.example.org"
    response = await h.client.post(
        "/api/v1/users", json={"email": email, "password": PASSWORD, "role": role}, headers=auth
    )
    assert response.status_code == 201, response.text
    body: dict[str, str] = response.json()
    return body


async def test_admin_creates_a_user_who_can_log_in(h: Harness) -> None:
    _, admin = await _admin(h)
    email = "New.Clinician@Clinic.Example.org"
    response = await h.client.post(
        "/api/v1/users",
        json={"email": email, "password": PASSWORD, "role": "clinician"},
        headers=admin,
    )
    assert response.status_code == 201, response.text
    created = response.json()
    assert created["email"] == email.lower()
    assert created["role"] == "clinician"
    assert created["is_active"] is True
    assert "password" not in response.text
    assert "hash" not in response.text
    me = await h.client.get(
        "/api/v1/auth/me", headers=bearer((await h.login(email.lower()))["access_token"])
    )
    assert me.json()["id"] == created["id"]


async def test_weak_passwords_are_refused_with_the_reason(h: Harness) -> None:
    _, admin = await _admin(h)
    cases = {
        "Short-1": "at least 12 characters",
        "password1234": "commonly used",
        "pat.smith-Long-Enough-1": "email name",
    }
    for password, reason in cases.items():
        response = await h.client.post(
            "/api/v1/users",
            json={"email": "pat.smith@clinic.example.org", "password": password, "role": "patient"},
            headers=admin,
        )
        assert response.status_code == 422, (password, response.text)
        body = response.json()
        assert body["code"] == "weak_password"
        assert reason in body["detail"], body
        assert body["errors"]
        assert body["errors"][0]["field"] == "password"
        assert password not in response.text
    listed = await h.client.get("/api/v1/users", headers=admin)
    assert "pat.smith" not in listed.text


async def test_duplicate_email_is_409_within_and_across_organizations(h: Harness) -> None:
    _, admin = await _admin(h)
    taken = await _create(h, admin)
    again = await h.client.post(
        "/api/v1/users",
        json={"email": taken["email"].upper(), "password": PASSWORD, "role": "patient"},
        headers=admin,
    )
    assert again.status_code == 409
    assert again.json()["code"] == "email_taken"

    elsewhere, _ = await h.user(Role.patient, org="Another clinic")
    across = await h.client.post(
        "/api/v1/users",
        json={"email": elsewhere, "password": PASSWORD, "role": "clinician"},
        headers=admin,
    )
    assert across.status_code == 409
    assert across.json()["code"] == "email_taken"


async def test_list_filters_and_paginates(h: Harness) -> None:
    admin_id, admin = await _admin(h)
    clinicians = [await _create(h, admin, "clinician") for _ in range(3)]
    patients = [await _create(h, admin, "patient") for _ in range(2)]
    gone = clinicians[0]
    deactivated = await h.client.post(f"/api/v1/users/{gone['id']}/deactivate", headers=admin)
    assert deactivated.status_code == 200

    async def ids(**params: object) -> tuple[list[str], int]:
        response = await h.client.get("/api/v1/users", params=params, headers=admin)
        assert response.status_code == 200, response.text
        body = response.json()
        return [u["id"] for u in body["items"]], body["total"]

    everyone, total = await ids()
    assert total == 6
    assert len(everyone) == 6
    assert str(admin_id) in everyone
    assert set((await ids(role="clinician"))[0]) == {c["id"] for c in clinicians}
    assert set((await ids(role="patient"))[0]) == {p["id"] for p in patients}
    assert (await ids(role="clinician", active="true"))[1] == 2
    assert (await ids(active="false"))[0] == [gone["id"]]

    pages: list[str] = []
    for offset in range(0, 6, 4):
        page, page_total = await ids(limit=4, offset=offset)
        assert page_total == 6
        pages.extend(page)
    assert pages == everyone  # stable order, no overlap, nothing skipped
    assert len((await ids(limit=4, offset=4))[0]) == 2
    bad = await h.client.get("/api/v1/users", params={"limit": 0}, headers=admin)
    assert bad.status_code == 422


async def test_role_change_ends_the_users_sessions_and_applies_at_next_login(h: Harness) -> None:
    _, admin = await _admin(h)
    email, user_id = await h.user(Role.clinician)
    old = await h.login(email)
    response = await h.client.patch(
        f"/api/v1/users/{user_id}", json={"role": "researcher"}, headers=admin
    )
    assert response.status_code == 200
    assert response.json()["role"] == "researcher"

    me = await h.client.get("/api/v1/auth/me", headers=bearer(old["access_token"]))
    assert me.status_code == 401
    assert me.json()["code"] == "token_revoked"
    refreshed = await h.client.post(
        "/api/v1/auth/refresh", json={"refresh_token": old["refresh_token"]}
    )
    assert refreshed.status_code == 401

    new = await h.login(email)
    claims = jwt.decode(
        new["access_token"], TEST_SECRET, algorithms=["HS256"], audience="clarity-api"
    )
    assert claims["role"] == "researcher"
    me = await h.client.get("/api/v1/auth/me", headers=bearer(new["access_token"]))
    assert me.status_code == 200
    assert me.json()["role"] == "researcher"


async def test_admin_cannot_demote_or_deactivate_self(h: Harness) -> None:
    admin_id, admin = await _admin(h)
    own = f"/api/v1/users/{admin_id}"
    for response in (
        await h.client.patch(own, json={"role": "clinician"}, headers=admin),
        await h.client.patch(own, json={"is_active": False}, headers=admin),
        await h.client.post(f"{own}/deactivate", headers=admin),
    ):
        assert response.status_code == 409, response.text
        assert response.json()["code"] == "cannot_demote_self"
    still = await h.client.get(own, headers=admin)
    assert still.status_code == 200
    assert still.json()["role"] == "admin"
    assert still.json()["is_active"] is True


async def test_clinician_cannot_manage_users(h: Harness) -> None:
    _, admin = await _admin(h)
    target = await _create(h, admin, "patient")
    clinician = bearer(await h.token_for(Role.clinician))
    url = f"/api/v1/users/{target['id']}"
    for response in (
        await h.client.get("/api/v1/users", headers=clinician),
        await h.client.post(
            "/api/v1/users",
            json={"email": "x-new@clinic.example.org", "password": PASSWORD, "role": "admin"},
            headers=clinician,
        ),
        await h.client.get(url, headers=clinician),
        await h.client.patch(url, json={"role": "admin"}, headers=clinician),
        await h.client.post(f"{url}/deactivate", headers=clinician),
    ):
        assert response.status_code == 403, response.text
        assert response.json()["code"] == "forbidden"
    unchanged = await h.client.get(url, headers=admin)
    assert unchanged.json()["role"] == "patient"
    assert unchanged.json()["is_active"] is True


async def test_user_changes_are_audited_with_the_admin_as_actor(h: Harness) -> None:
    admin_id, admin = await _admin(h)
    created = await _create(h, admin, "clinician")
    patched = await h.client.patch(
        f"/api/v1/users/{created['id']}", json={"role": "researcher"}, headers=admin
    )
    assert patched.status_code == 200
    gone = await h.client.post(f"/api/v1/users/{created['id']}/deactivate", headers=admin)
    assert gone.status_code == 200

    async with h.runtime.db.session(system=True) as session:
        events = (
            await session.scalars(
                select(AuditEvent)
                .where(AuditEvent.resource_id == created["id"])
                .order_by(AuditEvent.id)
            )
        ).all()
    by_action = {e.action: e for e in events}
    assert {"user.create", "user.update", "user.deactivate"} <= by_action.keys()
    for action in ("user.create", "user.update", "user.deactivate"):
        event = by_action[action]
        assert event.actor_id == admin_id, action
        assert event.actor_role == "admin"
        assert event.resource_type == "user"
        assert event.outcome == "success"
        assert event.organization_id == uuid.UUID(created["organization_id"])
    assert by_action["user.update"].details == {"role": "clinician->researcher"}
    assert by_action["user.deactivate"].details == {"is_active": "True->False"}
    assert created["email"] not in str([e.details for e in events])
