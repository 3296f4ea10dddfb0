"""Consent through the real app: append-only decisions, the state in force per category,
who may record (staff, and the patient themself), and the helpers other features use."""

from __future__ import annotations

import uuid
from typing import Any

import pytest
from sqlalchemy import select

from clarity.audit.models import AuditEvent
from clarity.auth.models import Role
from clarity.consent.models import ConsentRecord
from clarity.consent.schemas import ConsentCategory
from clarity.consent.service import consenting_patients, has_consent
from clarity.patients.models import Patient
from tests.conftest import Harness, bearer

CATEGORIES = ["wearable_data", "note_analysis", "research_use"]


async def new_patient(h: Harness, token: str) -> str:
    body = {
        "mrn": f"MRN-{uuid.uuid4().hex[:8]}",
        "given_name": "Cato",
        "family_name": "Consenttest",
        "birth_date": "1975-09-30",
    }
    response = await h.client.post("/api/v1/patients", json=body, headers=bearer(token))
    assert response.status_code == 201, response.text
    patient_id: str = response.json()["id"]
    return patient_id


async def decide(
    h: Harness, token: str, patient_id: str, category: str, granted: bool
) -> dict[str, Any]:
    response = await h.client.post(
        f"/api/v1/patients/{patient_id}/consents",
        json={"category": category, "granted": granted},
        headers=bearer(token),
    )
    assert response.status_code == 201, response.text
    body: dict[str, Any] = response.json()
    return body


async def overview(h: Harness, token: str, patient_id: str) -> dict[str, Any]:
    response = await h.client.get(f"/api/v1/patients/{patient_id}/consents", headers=bearer(token))
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


async def test_grant_then_withdraw_leaves_history_and_not_granted(h: Harness) -> None:
    email, clinician_id = await h.user(Role.clinician)
    clinician = (await h.login(email))["access_token"]
    patient_id = await new_patient(h, clinician)

    before = await overview(h, clinician, patient_id)
    assert before["history"] == []
    assert [(c["category"], c["granted"], c["recorded_at"]) for c in before["current"]] == [
        (category, False, None) for category in CATEGORIES
    ]

    granted = await decide(h, clinician, patient_id, "research_use", True)
    assert granted["granted"] is True
    assert granted["recorded_by"] == str(clinician_id)
    state = await overview(h, clinician, patient_id)
    current = {c["category"]: c["granted"] for c in state["current"]}
    assert current == {"wearable_data": False, "note_analysis": False, "research_use": True}

    withdrawn = await decide(h, clinician, patient_id, "research_use", False)
    state = await overview(h, clinician, patient_id)
    research = next(c for c in state["current"] if c["category"] == "research_use")
    assert research["granted"] is False
    assert research["recorded_at"] == withdrawn["recorded_at"]
    assert research["recorded_by"] == str(clinician_id)
    assert [r["id"] for r in state["history"]] == [withdrawn["id"], granted["id"]]
    assert [r["granted"] for r in state["history"]] == [False, True]
    assert state["patient_id"] == patient_id

    events = await _audit(h, "consent.record", "consent.read")
    records = [e.details for e in events if e.action == "consent.record"]
    assert [(d["category"], d["granted"]) for d in records] == [
        ("research_use", True),
        ("research_use", False),
    ]
    assert all(e.resource_id == patient_id for e in events)
    assert sum(e.action == "consent.read" for e in events) == 3


async def test_bad_input_is_refused(h: Harness) -> None:
    clinician = await h.token_for(Role.clinician)
    patient_id = await new_patient(h, clinician)
    url = f"/api/v1/patients/{patient_id}/consents"
    for body in (
        {"category": "telepathy", "granted": True},
        {"category": "research_use"},
        {"category": "research_use", "granted": "perhaps"},
        {"category": "research_use", "granted": True, "recorded_by": str(uuid.uuid4())},
    ):
        response = await h.client.post(url, json=body, headers=bearer(clinician))
        assert response.status_code == 422, body
        assert "telepathy" not in response.text
    assert (await overview(h, clinician, patient_id))["history"] == []


async def test_patient_records_own_consent_but_not_anyone_elses(h: Harness) -> None:
    admin = await h.token_for(Role.admin)
    clinician = await h.token_for(Role.clinician)
    own = await new_patient(h, clinician)
    other = await new_patient(h, clinician)
    email, user_id = await h.user(Role.patient)
    linked = await h.client.post(
        f"/api/v1/patients/{own}/account", json={"user_id": str(user_id)}, headers=bearer(admin)
    )
    assert linked.status_code == 204
    patient = (await h.login(email))["access_token"]

    recorded = await decide(h, patient, own, "wearable_data", True)
    assert recorded["recorded_by"] == str(user_id)
    state = await overview(h, patient, own)
    assert {c["category"]: c["granted"] for c in state["current"]}["wearable_data"] is True

    refused = await h.client.post(
        f"/api/v1/patients/{other}/consents",
        json={"category": "wearable_data", "granted": True},
        headers=bearer(patient),
    )
    assert refused.status_code == 404
    assert (
        await h.client.get(f"/api/v1/patients/{other}/consents", headers=bearer(patient))
    ).status_code == 404
    # An admin records for any patient of the organization.
    await decide(h, admin, other, "note_analysis", True)
    assert [r["granted"] for r in (await overview(h, admin, other))["history"]] == [True]


async def test_researchers_and_off_team_clinicians_get_404(h: Harness) -> None:
    clinician = await h.token_for(Role.clinician)
    patient_id = await new_patient(h, clinician)
    await decide(h, clinician, patient_id, "research_use", True)
    url = f"/api/v1/patients/{patient_id}/consents"
    for token in (await h.token_for(Role.researcher), await h.token_for(Role.clinician)):
        assert (await h.client.get(url, headers=bearer(token))).status_code == 404
        written = await h.client.post(
            url, json={"category": "research_use", "granted": False}, headers=bearer(token)
        )
        assert written.status_code == 404
        assert written.json()["code"] == "not_found"
    history = (await overview(h, clinician, patient_id))["history"]
    assert [r["granted"] for r in history] == [True]


async def test_has_consent_and_consenting_patients(h: Harness) -> None:
    clinician = await h.token_for(Role.clinician)
    granted, withdrawn, regranted, never, other_kind = [
        await new_patient(h, clinician) for _ in range(5)
    ]
    await decide(h, clinician, granted, "research_use", True)
    await decide(h, clinician, withdrawn, "research_use", True)
    await decide(h, clinician, withdrawn, "research_use", False)
    await decide(h, clinician, regranted, "research_use", False)
    await decide(h, clinician, regranted, "research_use", True)
    await decide(h, clinician, other_kind, "wearable_data", True)
    # Another organization's consenting patient never shows up in this one's export.
    elsewhere = await h.token_for(Role.clinician, org="Other clinic")
    foreign = await new_patient(h, elsewhere)
    await decide(h, elsewhere, foreign, "research_use", True)

    org_id = await h.org()
    async with h.runtime.db.session(org_id) as session:
        expected = {
            granted: True,
            withdrawn: False,
            regranted: True,
            never: False,
            other_kind: False,
        }
        for patient_id, consent in expected.items():
            pid = uuid.UUID(patient_id)
            assert await has_consent(session, pid, ConsentCategory.research_use) is consent
            assert await has_consent(session, pid, "research_use") is consent
        assert await has_consent(session, uuid.UUID(other_kind), "wearable_data") is True
        with pytest.raises(ValueError, match="telepathy"):
            await has_consent(session, uuid.UUID(granted), "telepathy")

        research = consenting_patients(ConsentCategory.research_use)
        ids = set((await session.scalars(research)).all())
        assert ids == {uuid.UUID(granted), uuid.UUID(regranted)}
        # Composable: e.g. a research export selects the consenting patients' records.
        export = select(Patient.id).where(Patient.id.in_(consenting_patients("wearable_data")))
        assert set((await session.scalars(export)).all()) == {uuid.UUID(other_kind)}

        # A tie between a grant and a withdrawal at one instant counts as not granted.
        tied = (
            await session.scalars(
                select(ConsentRecord).where(ConsentRecord.patient_id == uuid.UUID(granted))
            )
        ).one()
        session.add(
            ConsentRecord(
                patient_id=tied.patient_id,
                category="research_use",
                granted=False,
                recorded_by=None,
                recorded_at=tied.recorded_at,
            )
        )
        await session.flush()
        assert await has_consent(session, tied.patient_id, "research_use") is False
        ids = set((await session.scalars(research)).all())
        assert ids == {uuid.UUID(regranted)}
        await session.rollback()


async def _audit(h: Harness, *actions: str) -> list[AuditEvent]:
    async with h.runtime.db.session(system=True) as session:
        rows = await session.scalars(
            select(AuditEvent).where(AuditEvent.action.in_(actions)).order_by(AuditEvent.id)
        )
        return list(rows.all())
