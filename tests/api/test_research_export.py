"""The research export: consenting patients only, researchers only, and none of the 18
Safe Harbor identifiers (canary values are planted everywhere a record can hold them)."""

from __future__ import annotations

import uuid
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any

import orjson

from clarity.assessments.models import AssessmentResponse
from clarity.auth.models import Role
from clarity.clinical.models import Diagnosis, MedicationStatement
from clarity.consent.models import ConsentRecord
from clarity.notes.models import Note, NoteVersion
from clarity.research.deidentify import age_group, date_shift, pseudonym
from tests.conftest import Harness, bearer

CANARIES = {
    "mrn": "MRN-SH-550021",
    "given_name": "Thaddeus",
    "family_name": "Okonkwo-Brambleby",
    "birth_date": "1931-02-27",  # over 89: the age must be grouped
    "sex_at_birth": "male",
    "gender_identity": "canary-gender-free-text",
    "timezone": "America/Anchorage",
    "contact": {
        "phone": "+1 907 555 0143",
        "email": "thaddeus.ob@canary-mail.example.org",
        "address": "1428 Elmwood Lane, Fairbanks AK 99701",
    },
    "emergency_contact": {"name": "Philippa Brambleby", "phone": "+1 907 555 0199"},
    "flags": ["SSN 078-05-1120 on file", "plan id HP-99812345", "device SN-4471-ACX"],
}
NOTE_TEXT = "Seen at https://canary.example.org/visit from 203.0.113.77, licence DL-C99812"
ADMINISTERED = datetime(2025, 3, 14, 10, 30, tzinfo=UTC)
ONSET = date(2024, 11, 5)


async def _patient(h: Harness, token: str, consent: bool | None, **overrides: Any) -> str:
    body = {**CANARIES, "mrn": f"{CANARIES['mrn']}-{uuid.uuid4().hex[:4]}", **overrides}
    response = await h.client.post("/api/v1/patients", json=body, headers=bearer(token))
    assert response.status_code == 201, response.text
    patient_id = uuid.UUID(response.json()["id"])
    org_id = await h.org()
    async with h.runtime.db.session(org_id) as session:
        session.add(Diagnosis(patient_id=patient_id, code="F33.1", onset=ONSET))
        session.add(
            MedicationStatement(
                patient_id=patient_id,
                drug="sertraline",
                drug_class="SSRI",
                rxcui="36437",
                dose=Decimal("100"),
                unit="mg",
                frequency="QD",
                start=ONSET,
            )
        )
        session.add(
            AssessmentResponse(
                patient_id=patient_id,
                instrument_id="phq9",
                instrument_version="1",
                answers={f"q{i}": 2 for i in range(1, 10)},
                total=18,
                severity="moderately severe",
                administered_at=ADMINISTERED,
            )
        )
        note = Note(patient_id=patient_id, kind="progress", author_id=uuid.uuid4())
        session.add(note)
        await session.flush()
        session.add(
            NoteVersion(note_id=note.id, version=1, text=NOTE_TEXT, author_id=note.author_id)
        )
        if consent is not None:
            # Withdrawn consent is the later record and must win.
            session.add(
                ConsentRecord(
                    patient_id=patient_id,
                    category="research_use",
                    granted=True,
                    recorded_at=datetime.now(UTC) - timedelta(days=2),
                )
            )
            if not consent:
                session.add(
                    ConsentRecord(patient_id=patient_id, category="research_use", granted=False)
                )
        await session.commit()
    return str(patient_id)


async def _export(h: Harness, token: str) -> tuple[int, bytes]:
    response = await h.client.get("/api/v1/research/export", headers=bearer(token))
    return response.status_code, response.content


async def test_export_holds_no_safe_harbor_identifier(h: Harness) -> None:
    clinician = await h.token_for(Role.clinician)
    consenting = await _patient(h, clinician, consent=True)
    withdrawn = await _patient(h, clinician, consent=False)
    never = await _patient(h, clinician, consent=None)
    researcher = await h.token_for(Role.researcher)

    status, body = await _export(h, researcher)
    assert status == 200
    records = [orjson.loads(line) for line in body.splitlines()]
    assert len(records) == 1  # withdrawn and never-asked patients are left out

    text = body.decode()
    planted = [
        CANARIES["given_name"],
        CANARIES["family_name"],
        "Brambleby",
        CANARIES["mrn"],
        CANARIES["birth_date"],
        "1931",
        "907 555",
        "canary-mail",
        "Elmwood",
        "Fairbanks",
        "99701",
        "Anchorage",
        "078-05-1120",
        "HP-99812345",
        "SN-4471",
        "canary.example.org",
        "203.0.113.77",
        "DL-C99812",
        "canary-gender",
        "Philippa",
        "2025-03-14",
        "2024-11-05",
        consenting,
        withdrawn,
        never,
    ]
    for value in planted:
        assert value not in text, value

    record = records[0]
    assert record["age"] == "90+"
    assert record["subject"].startswith("R-")
    assert record["diagnoses"][0]["code"] == "F33.1"
    assert record["assessments"][0]["total"] == 18
    # Intervals are kept: onset to assessment is the same number of days after shifting.
    onset = date.fromisoformat(record["diagnoses"][0]["onset"])
    taken = date.fromisoformat(record["assessments"][0]["date"])
    assert (taken - onset) == (ADMINISTERED.date() - ONSET)

    # Stable across exports.
    assert orjson.loads((await _export(h, researcher))[1].splitlines()[0]) == record


async def test_only_researchers_and_admins_export(h: Harness) -> None:
    for role, expected in (
        (Role.clinician, 403),
        (Role.patient, 403),
        (Role.researcher, 200),
        (Role.admin, 200),
    ):
        assert (await _export(h, await h.token_for(role)))[0] == expected, role


def test_pseudonym_and_shift_are_keyed_and_stable() -> None:
    patient = uuid.uuid4()
    assert pseudonym(b"k1", patient) == pseudonym(b"k1", patient)
    assert pseudonym(b"k1", patient) != pseudonym(b"k2", patient)
    shift = date_shift(b"k1", patient)
    assert timedelta(days=-365) <= shift <= timedelta(days=365)
    assert shift != timedelta(0)
    assert age_group(date(1935, 6, 1), date(2025, 5, 31)) == "89"
    assert age_group(date(1935, 6, 1), date(2025, 6, 1)) == "90+"
