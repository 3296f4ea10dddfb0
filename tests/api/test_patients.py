"""The patient record through the real app: create, read, update, list, discharge, care
team, MRN lookup, and encryption at rest (the raw rows hold no plaintext)."""

from __future__ import annotations

import uuid
from typing import Any

from sqlalchemy import text

from clarity.audit.models import AuditEvent
from clarity.auth.models import Role
from tests.conftest import Harness, bearer

CANARY = {
    "mrn": "MRN-CANARY-77102",
    "given_name": "Quillon",
    "family_name": "Vexmarrow",
    "birth_date": "1961-07-14",
    "sex_at_birth": "female",
    "timezone": "Europe/Oslo",
    "contact": {"phone": "+47 415 55 019", "email": "quillon.v@mail.example.org"},
    "emergency_contact": {"name": "Ardis Vexmarrow", "relationship": "sister"},
    "flags": ["prefers morning appointments"],
}


async def create(h: Harness, token: str, **overrides: Any) -> dict[str, Any]:
    body = {**CANARY, "mrn": f"MRN-{uuid.uuid4().hex[:8]}", **overrides}
    response = await h.client.post("/api/v1/patients", json=body, headers=bearer(token))
    assert response.status_code == 201, response.text
    created: dict[str, Any] = response.json()
    return created


async def test_clinician_creates_reads_updates_and_discharges(h: Harness) -> None:
    clinician = await h.token_for(Role.clinician)
    patient = await create(h, clinician, mrn=CANARY["mrn"])
    assert patient["given_name"] == "Quillon"
    assert patient["status"] == "active"
    assert patient["contact"]["phone"] == "+47 415 55 019"

    read = await h.client.get(f"/api/v1/patients/{patient['id']}", headers=bearer(clinician))
    assert read.status_code == 200
    assert read.json()["mrn"] == CANARY["mrn"]
    assert read.json()["birth_date"] == "1961-07-14"

    patched = await h.client.patch(
        f"/api/v1/patients/{patient['id']}",
        json={"family_name": "Vexmarrow-Lund", "timezone": "America/New_York"},
        headers=bearer(clinician),
    )
    assert patched.status_code == 200
    assert patched.json()["family_name"] == "Vexmarrow-Lund"
    assert patched.json()["given_name"] == "Quillon"

    out = await h.client.post(
        f"/api/v1/patients/{patient['id']}/discharge", headers=bearer(clinician)
    )
    assert out.status_code == 200
    assert out.json()["status"] == "discharged"
    again = await h.client.post(
        f"/api/v1/patients/{patient['id']}/discharge", headers=bearer(clinician)
    )
    assert again.status_code == 409

    async with h.runtime.db.session(system=True) as session:
        actions = set(
            (
                await session.scalars(
                    AuditEvent.__table__.select()
                    .with_only_columns(AuditEvent.action)
                    .where(AuditEvent.resource_id == patient["id"])
                )
            ).all()
        )
    assert {"patient.create", "patient.read", "patient.update", "patient.discharge"} <= actions


async def test_bad_input_is_a_422_naming_the_field_without_echoing_it(h: Harness) -> None:
    clinician = await h.token_for(Role.clinician)
    response = await h.client.post(
        "/api/v1/patients",
        json={**CANARY, "timezone": "Mars/Olympus_Mons", "birth_date": "2999-01-01"},
        headers=bearer(clinician),
    )
    assert response.status_code == 422
    fields = {e["field"] for e in response.json()["errors"]}
    assert fields == {"body.timezone", "body.birth_date"}
    assert "Olympus" not in response.text
    assert "Quillon" not in response.text


async def test_duplicate_mrn_is_refused_and_mrn_lookup_finds_the_patient(h: Harness) -> None:
    admin = await h.token_for(Role.admin)
    patient = await create(h, admin, mrn="  mrn-dup-1 ")
    duplicate = await h.client.post(
        "/api/v1/patients", json={**CANARY, "mrn": "MRN-DUP-1"}, headers=bearer(admin)
    )
    assert duplicate.status_code == 409
    assert duplicate.json()["code"] == "mrn_taken"
    found = await h.client.get(
        "/api/v1/patients", params={"mrn": "mrn-dup-1"}, headers=bearer(admin)
    )
    assert [p["id"] for p in found.json()["items"]] == [patient["id"]]


async def test_raw_rows_hold_no_plaintext_identifiers(h: Harness) -> None:
    clinician = await h.token_for(Role.clinician)
    await create(h, clinician, mrn=CANARY["mrn"])
    async with h.runtime.db.engine.connect() as conn:
        rows = (await conn.execute(text("SELECT * FROM patients"))).all()
    dump = repr(rows)
    for secret in (
        CANARY["mrn"],
        "Quillon",
        "Vexmarrow",
        "1961-07-14",
        "415 55 019",
        "quillon.v@",
        "Ardis",
        "morning appointments",
    ):
        assert secret not in dump, secret


async def test_list_is_scoped_by_role_and_filters(h: Harness) -> None:
    admin = await h.token_for(Role.admin)
    alice_email, alice_id = await h.user(Role.clinician)
    alice = (await h.login(alice_email))["access_token"]
    bob = await h.token_for(Role.clinician)
    mine = await create(h, alice)
    theirs = await create(h, bob)

    def ids(response: Any) -> set[str]:
        return {p["id"] for p in response.json()["items"]}

    assert ids(await h.client.get("/api/v1/patients", headers=bearer(alice))) == {mine["id"]}
    assert ids(await h.client.get("/api/v1/patients", headers=bearer(admin))) == {
        mine["id"],
        theirs["id"],
    }
    by_member = await h.client.get(
        "/api/v1/patients", params={"care_team_member": str(alice_id)}, headers=bearer(admin)
    )
    assert ids(by_member) == {mine["id"]}
    await h.client.post(f"/api/v1/patients/{mine['id']}/discharge", headers=bearer(alice))
    active = await h.client.get(
        "/api/v1/patients", params={"status": "active"}, headers=bearer(admin)
    )
    assert ids(active) == {theirs["id"]}
    researcher = await h.token_for(Role.researcher)
    refused = await h.client.get("/api/v1/patients", headers=bearer(researcher))
    assert refused.status_code == 403


async def test_care_team_management_by_admin(h: Harness) -> None:
    admin = await h.token_for(Role.admin)
    owner = await h.token_for(Role.clinician)
    other_email, other_id = await h.user(Role.clinician)
    other = (await h.login(other_email))["access_token"]
    patient = await create(h, owner)
    url = f"/api/v1/patients/{patient['id']}"

    assert (await h.client.get(url, headers=bearer(other))).status_code == 404
    added = await h.client.post(
        f"{url}/care-team", json={"user_id": str(other_id)}, headers=bearer(admin)
    )
    assert added.status_code == 201
    assert (await h.client.get(url, headers=bearer(other))).status_code == 200
    team = await h.client.get(f"{url}/care-team", headers=bearer(other))
    assert {m["role"] for m in team.json()} == {"primary", "member"}
    dup = await h.client.post(
        f"{url}/care-team", json={"user_id": str(other_id)}, headers=bearer(admin)
    )
    assert dup.status_code == 409
    # Clinicians cannot manage the team (404: the route is patient-scoped).
    self_add = await h.client.post(
        f"{url}/care-team", json={"user_id": str(other_id)}, headers=bearer(owner)
    )
    assert self_add.status_code == 404
    removed = await h.client.delete(f"{url}/care-team/{other_id}", headers=bearer(admin))
    assert removed.status_code == 204
    assert (await h.client.get(url, headers=bearer(other))).status_code == 404


async def test_linked_patient_account_sees_only_its_own_record(h: Harness) -> None:
    admin = await h.token_for(Role.admin)
    clinician = await h.token_for(Role.clinician)
    own = await create(h, clinician)
    other = await create(h, clinician)
    email, user_id = await h.user(Role.patient)
    linked = await h.client.post(
        f"/api/v1/patients/{own['id']}/account",
        json={"user_id": str(user_id)},
        headers=bearer(admin),
    )
    assert linked.status_code == 204
    token = (await h.login(email))["access_token"]
    assert (
        await h.client.get(f"/api/v1/patients/{own['id']}", headers=bearer(token))
    ).status_code == 200
    assert (
        await h.client.get(f"/api/v1/patients/{other['id']}", headers=bearer(token))
    ).status_code == 404
    listed = await h.client.get("/api/v1/patients", headers=bearer(token))
    assert [p["id"] for p in listed.json()["items"]] == [own["id"]]
    me = await h.client.get("/api/v1/auth/me", headers=bearer(token))
    assert me.json()["patient_id"] == own["id"]
