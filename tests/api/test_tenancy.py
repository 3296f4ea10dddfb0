"""Two clinics on one deployment: nothing of one is visible or changeable from the other."""

from __future__ import annotations

import json
import re
import uuid
from dataclasses import dataclass

import pytest
from sqlalchemy import select

from clarity.app import walk_routes
from clarity.audit.models import AuditEvent
from clarity.auth.models import Role, User
from clarity.database import TenancyViolation
from tests.conftest import Harness, bearer

_PARAM = re.compile(r"\{([^}]+)\}")


@dataclass
class Clinic:
    org_id: uuid.UUID
    admin_email: str
    admin_id: uuid.UUID
    clinician_email: str
    clinician_id: uuid.UUID
    admin_token: str
    clinician_token: str
    session_id: uuid.UUID  # the clinician's current login session

    @property
    def user_ids(self) -> list[uuid.UUID]:
        return [self.admin_id, self.clinician_id]

    @property
    def secrets(self) -> list[str]:
        """Everything of this clinic that must never show up in the other's responses."""
        return [
            str(self.org_id),
            str(self.admin_id),
            str(self.clinician_id),
            str(self.session_id),
            self.admin_email,
            self.clinician_email,
        ]


async def _clinic(h: Harness, name: str) -> Clinic:
    admin_email, admin_id = await h.user(Role.admin, org=name)
    clinician_email, clinician_id = await h.user(Role.clinician, org=name)
    admin_token = (await h.login(admin_email))["access_token"]
    clinician_token = (await h.login(clinician_email))["access_token"]
    sessions = await h.client.get("/api/v1/auth/sessions", headers=bearer(clinician_token))
    assert sessions.status_code == 200
    (current,) = [s for s in sessions.json() if s["current"]]
    # Some activity of this clinic, so that its audit log is not empty.
    assert (await h.client.get("/api/v1/users", headers=bearer(admin_token))).status_code == 200
    return Clinic(
        org_id=await h.org(name),
        admin_email=admin_email,
        admin_id=admin_id,
        clinician_email=clinician_email,
        clinician_id=clinician_id,
        admin_token=admin_token,
        clinician_token=clinician_token,
        session_id=uuid.UUID(current["id"]),
    )


@pytest.fixture
async def clinics(h: Harness) -> tuple[Clinic, Clinic]:
    return await _clinic(h, "Clinic A"), await _clinic(h, "Clinic B")


def _assert_nothing_of(clinic: Clinic, text: str, where: str) -> None:
    for secret in clinic.secrets:
        assert secret not in text, f"{where} leaks {secret}"


async def _user_row(h: Harness, user_id: uuid.UUID) -> tuple[str, str, bool]:
    async with h.runtime.db.session(system=True) as session:
        user = await session.get(User, user_id)
        assert user is not None
        return user.email, user.role, user.is_active


async def test_user_list_shows_only_own_organization(
    h: Harness, clinics: tuple[Clinic, Clinic]
) -> None:
    a, b = clinics
    response = await h.client.get("/api/v1/users", headers=bearer(a.admin_token))
    assert response.status_code == 200
    body = response.json()
    assert {u["id"] for u in body["items"]} == {str(i) for i in a.user_ids}
    assert {u["organization_id"] for u in body["items"]} == {str(a.org_id)}
    assert body["total"] == 2
    _assert_nothing_of(b, response.text, "GET /users")


async def test_other_organizations_users_cannot_be_read_or_changed(
    h: Harness, clinics: tuple[Clinic, Clinic]
) -> None:
    a, b = clinics
    admin = bearer(a.admin_token)
    before = await _user_row(h, b.clinician_id)
    target = f"/api/v1/users/{b.clinician_id}"

    read = await h.client.get(target, headers=admin)
    assert read.status_code == 404
    assert read.json()["code"] == "not_found"
    patch = await h.client.patch(target, json={"role": "admin", "is_active": False}, headers=admin)
    assert patch.status_code == 404
    assert patch.json()["code"] == "not_found"
    deactivate = await h.client.post(f"{target}/deactivate", headers=admin)
    assert deactivate.status_code == 404
    assert deactivate.json()["code"] == "not_found"
    for response in (read, patch, deactivate):
        _assert_nothing_of(b, response.text, "a 404")

    assert await _user_row(h, b.clinician_id) == before
    # B's clinician is still signed in: none of that ended their sessions either.
    me = await h.client.get("/api/v1/auth/me", headers=bearer(b.clinician_token))
    assert me.status_code == 200
    assert me.json()["role"] == "clinician"
    # ...and the same calls within one's own organization do work (the 404s are scoping).
    own = await h.client.get(f"/api/v1/users/{a.clinician_id}", headers=admin)
    assert own.status_code == 200


async def test_other_organizations_sessions_cannot_be_revoked(
    h: Harness, clinics: tuple[Clinic, Clinic]
) -> None:
    a, b = clinics
    for token in (a.admin_token, a.clinician_token):
        response = await h.client.delete(
            f"/api/v1/auth/sessions/{b.session_id}", headers=bearer(token)
        )
        assert response.status_code == 404, response.text
    me = await h.client.get("/api/v1/auth/me", headers=bearer(b.clinician_token))
    assert me.status_code == 200


async def test_audit_log_and_export_hold_only_own_organization(
    h: Harness, clinics: tuple[Clinic, Clinic]
) -> None:
    a, b = clinics
    # A failed login in B leaves a B record too.
    failed = await h.client.post(
        "/api/v1/auth/login", json={"email": b.clinician_email, "password": "Wrong-Password-1x"}
    )
    assert failed.status_code == 401
    admin = bearer(a.admin_token)

    search = await h.client.get("/api/v1/audit", params={"limit": 1000}, headers=admin)
    assert search.status_code == 200
    _assert_nothing_of(b, search.text, "GET /audit")
    searched_ids = [item["id"] for item in search.json()["items"]]

    export = await h.client.get("/api/v1/audit/export", headers=admin)
    assert export.status_code == 200
    _assert_nothing_of(b, export.text, "GET /audit/export")
    exported_ids = [json.loads(line)["id"] for line in export.text.splitlines() if line]

    async with h.runtime.db.session(system=True) as session:
        orgs = dict(
            (await session.execute(select(AuditEvent.id, AuditEvent.organization_id))).all()
        )
    assert searched_ids
    assert exported_ids
    assert {orgs[i] for i in searched_ids + exported_ids} == {a.org_id}
    # B does have records of its own, so the absence above means something.
    assert sum(1 for org in orgs.values() if org == b.org_id) >= 3


async def test_organization_is_the_callers_own(h: Harness, clinics: tuple[Clinic, Clinic]) -> None:
    a, b = clinics
    for clinic in (a, b):
        response = await h.client.get("/api/v1/organization", headers=bearer(clinic.admin_token))
        assert response.status_code == 200
        assert response.json()["id"] == str(clinic.org_id)
    mine = await h.client.get("/api/v1/organization", headers=bearer(a.clinician_token))
    assert mine.json()["name"] == "Clinic A"
    _assert_nothing_of(b, mine.text, "GET /organization")


async def test_no_get_route_leaks_the_other_organization(
    h: Harness, clinics: tuple[Clinic, Clinic]
) -> None:
    a, b = clinics
    fill = {"user_id": str(b.clinician_id), "session_id": str(b.session_id)}
    swept: list[str] = []
    for path, route in walk_routes(h.app.routes):
        methods = getattr(route, "methods", None) or set()
        if "GET" not in methods:
            continue
        url = _PARAM.sub(lambda m: fill.get(m.group(1), str(uuid.uuid4())), path)
        for token in (a.admin_token, a.clinician_token):
            response = await h.client.get(url, headers=bearer(token))
            assert response.status_code < 500, (url, response.status_code)
            _assert_nothing_of(b, response.text, f"GET {url}")
        swept.append(path)
    assert "/api/v1/users/{user_id}" in swept
    assert {"/api/v1/users", "/api/v1/audit", "/api/v1/audit/export"} <= set(swept)


async def test_database_sessions_are_scoped_to_one_organization(
    h: Harness, clinics: tuple[Clinic, Clinic]
) -> None:
    a, b = clinics
    async with h.runtime.db.session(a.org_id) as session:
        users = (await session.scalars(select(User))).all()
        assert {u.id for u in users} == set(a.user_ids)
        assert await session.get(User, b.admin_id) is None
    async with h.runtime.db.session(b.org_id) as session:
        users = (await session.scalars(select(User))).all()
        assert {u.id for u in users} == set(b.user_ids)
    async with h.runtime.db.session() as session:
        with pytest.raises(TenancyViolation):
            await session.scalars(select(User))
        with pytest.raises(TenancyViolation):
            await session.get(User, a.admin_id)
