"""FHIR R4 exchange through the real app: export validates, import is all-or-nothing, a
round trip through another organization gives an equivalent Bundle, and access rules hold."""

from __future__ import annotations

import uuid
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any

import pytest
from fhir.resources.R4B import get_fhir_model_class
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from clarity.assessments.catalog import get_instrument
from clarity.assessments.models import AssessmentResponse
from clarity.assessments.scoring import score
from clarity.audit.models import AuditEvent
from clarity.auth.models import Role
from clarity.clinical.models import Diagnosis, MedicationStatement
from clarity.patients.models import CareTeamMember, Patient
from tests.api.test_patients import CANARY, create
from tests.conftest import Harness, bearer

PHQ9 = {f"phq9_{i}": (3 if i in (1, 2) else 1) for i in range(1, 10)}
GAD7 = {f"gad7_{i}": 2 for i in range(1, 8)}
WHO5 = {f"who5_{i}": 4 for i in range(1, 6)}
CLINIC_B = "Clinic B"


async def record_patient(h: Harness, token: str, **overrides: Any) -> dict[str, Any]:
    """A patient with diagnoses, medications and scored assessment responses, the rows
    written directly (as the clinical and assessment services would store them)."""
    patient = await create(h, token, **overrides)
    patient_id = uuid.UUID(patient["id"])
    org_id = await h.org()
    async with h.runtime.db.session(org_id) as session:
        session.add_all(
            [
                Diagnosis(patient_id=patient_id, code="F32.1", onset=date(2023, 2, 1)),
                Diagnosis(
                    patient_id=patient_id,
                    code="F41.1",
                    status="resolved",
                    onset=date(2019, 5, 1),
                    resolved_on=date(2021, 9, 30),
                ),
                Diagnosis(patient_id=patient_id, code="F31.81", status="remission"),
                MedicationStatement(
                    patient_id=patient_id,
                    drug="sertraline",
                    drug_class="SSRI",
                    rxcui="36437",
                    dose=Decimal("50"),
                    unit="mg",
                    frequency="daily",
                    start=date(2024, 1, 10),
                    prescriber="Dr. Ingrid Hald",
                ),
                MedicationStatement(
                    patient_id=patient_id,
                    drug="lorazepam",
                    drug_class="benzodiazepine",
                    rxcui="6470",
                    dose=Decimal("0.5"),
                    unit="tablet",
                    frequency="PRN",
                    start=date(2024, 1, 10),
                    stop=date(2024, 3, 1),
                ),
            ]
        )
        for n, (instrument_id, answers) in enumerate(
            (("phq9", PHQ9), ("gad7", GAD7), ("who5", WHO5))
        ):
            instrument = get_instrument(instrument_id)
            result = score(instrument, answers)
            session.add(
                AssessmentResponse(
                    patient_id=patient_id,
                    instrument_id=instrument_id,
                    instrument_version=instrument.version,
                    answers=answers,
                    total=result.total,
                    derived_score=(
                        None
                        if result.transformed_total is None
                        else float(result.transformed_total)
                    ),
                    severity=result.severity_code,
                    safety_signal=result.safety_signal,
                    administered_at=datetime(2025, 3, 1 + n, 9, 30, 15, 250000, tzinfo=UTC),
                )
            )
        await session.commit()
    return patient


async def export(h: Harness, token: str, patient_id: str) -> dict[str, Any]:
    response = await h.client.get(f"/api/v1/patients/{patient_id}/fhir", headers=bearer(token))
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("application/fhir+json")
    body: dict[str, Any] = response.json()
    return body


def comparable(bundle: dict[str, Any]) -> dict[str, Any]:
    """Without ids, meta and timestamp; fullUrls (and references to them) by position."""
    names = {e["fullUrl"]: f"entry-{n}" for n, e in enumerate(bundle["entry"])}

    def walk(value: Any) -> Any:
        if isinstance(value, dict):
            return {k: walk(v) for k, v in value.items() if k not in {"id", "meta", "timestamp"}}
        if isinstance(value, list):
            return [walk(v) for v in value]
        if isinstance(value, str):
            return names.get(value, value)
        return value

    result: dict[str, Any] = walk(bundle)
    return result


COUNTED = (Patient, Diagnosis, MedicationStatement, AssessmentResponse, CareTeamMember)


async def row_counts(h: Harness) -> dict[str, int]:
    counts: dict[str, int] = {}
    async with h.runtime.db.session(system=True) as session:
        for model in COUNTED:
            table = model.__table__
            counts[table.name] = (
                await session.scalar(select(func.count()).select_from(table))
            ) or 0
    return counts


async def actions(h: Harness, resource_id: str) -> list[str]:
    async with h.runtime.db.session(system=True) as session:
        rows = await session.scalars(
            select(AuditEvent.action).where(AuditEvent.resource_id == resource_id)
        )
        return list(rows.all())


async def test_export_validates_and_round_trips_through_another_organization(h: Harness) -> None:
    clinician = await h.token_for(Role.clinician)
    patient = await record_patient(h, clinician, mrn="MRN-FHIR-RT")
    bundle = await export(h, clinician, patient["id"])

    assert bundle["type"] == "collection"
    kinds = [e["resource"]["resourceType"] for e in bundle["entry"]]
    assert kinds.count("Patient") == 1
    assert kinds.count("Condition") == 3
    assert kinds.count("MedicationStatement") == 2
    assert kinds.count("QuestionnaireResponse") == 3
    assert kinds.count("Observation") == 3
    for entry in bundle["entry"]:
        get_fhir_model_class(entry["resource"]["resourceType"]).model_validate(entry["resource"])
    get_fhir_model_class("Bundle").model_validate(bundle)
    (fhir_patient,) = [
        e["resource"] for e in bundle["entry"] if e["resource"]["id"] == patient["id"]
    ]
    assert fhir_patient["identifier"][0]["value"] == "MRN-FHIR-RT"
    assert fhir_patient["name"][0]["given"] == [CANARY["given_name"]]
    assert "patient.fhir_export" in await actions(h, patient["id"])

    # Into an organization that holds nothing yet.
    other_admin = await h.token_for(Role.admin, org=CLINIC_B)
    imported = await h.client.post(
        "/api/v1/fhir/import",
        content=(
            await h.client.get(f"/api/v1/patients/{patient['id']}/fhir", headers=bearer(clinician))
        ).content,
        headers={**bearer(other_admin), "Content-Type": "application/fhir+json"},
    )
    assert imported.status_code == 201, imported.text
    report = imported.json()
    assert report["created"] == {
        "Patient": 1,
        "Condition": 3,
        "MedicationStatement": 2,
        "QuestionnaireResponse": 3,
    }
    assert report["verified"] == {"Observation": 3}
    assert report["skipped"] == {}
    assert report["patient_id"] != patient["id"]
    assert "patient.fhir_import" in await actions(h, report["patient_id"])

    again = await export(h, other_admin, report["patient_id"])
    assert comparable(again) == comparable(bundle)

    # The original organization cannot see the copy, nor the copy's organization the original.
    assert (
        await h.client.get(
            f"/api/v1/patients/{report['patient_id']}/fhir", headers=bearer(clinician)
        )
    ).status_code == 404
    assert (
        await h.client.get(f"/api/v1/patients/{patient['id']}/fhir", headers=bearer(other_admin))
    ).status_code == 404


async def test_import_rescoring_is_stored_and_a_clinician_importer_joins_the_care_team(
    h: Harness,
) -> None:
    source = await h.token_for(Role.clinician)
    patient = await record_patient(h, source)
    bundle = await export(h, source, patient["id"])

    importer_email, importer_id = await h.user(Role.clinician, org=CLINIC_B)
    importer = (await h.login(importer_email))["access_token"]
    response = await h.client.post("/api/v1/fhir/import", json=bundle, headers=bearer(importer))
    assert response.status_code == 201, response.text
    new_id = response.json()["patient_id"]

    team = await h.client.get(f"/api/v1/patients/{new_id}/care-team", headers=bearer(importer))
    assert [m["user_id"] for m in team.json()] == [str(importer_id)]
    outsider = await h.token_for(Role.clinician, org=CLINIC_B)
    assert (
        await h.client.get(f"/api/v1/patients/{new_id}/fhir", headers=bearer(outsider))
    ).status_code == 404

    async with h.runtime.db.session(system=True) as session:
        rows = (
            await session.scalars(
                select(AssessmentResponse).where(AssessmentResponse.patient_id == uuid.UUID(new_id))
            )
        ).all()
    by_instrument = {r.instrument_id: r for r in rows}
    assert by_instrument["phq9"].total == sum(PHQ9.values())
    assert by_instrument["phq9"].severity == score(get_instrument("phq9"), PHQ9).severity_code
    assert by_instrument["who5"].derived_score == 80.0
    assert all(r.recorded_by == importer_id for r in rows)


async def test_an_existing_mrn_is_a_409_and_nothing_is_written(h: Harness) -> None:
    admin = await h.token_for(Role.admin)
    patient = await record_patient(h, admin, mrn="  mrn-fhir-dup ")
    bundle = await export(h, admin, patient["id"])
    bundle["entry"][0]["resource"]["identifier"][0]["value"] = "MRN-FHIR-DUP"
    before = await row_counts(h)
    response = await h.client.post("/api/v1/fhir/import", json=bundle, headers=bearer(admin))
    assert response.status_code == 409
    assert response.json()["code"] == "mrn_taken"
    assert await row_counts(h) == before


async def test_an_invalid_bundle_is_a_422_naming_entries_and_nothing_is_written(
    h: Harness,
) -> None:
    clinician = await h.token_for(Role.clinician)
    patient = await record_patient(h, clinician, mrn="MRN-FHIR-BAD")
    bundle = await export(h, clinician, patient["id"])
    bundle["entry"][0]["resource"]["identifier"][0]["value"] = "MRN-FHIR-NEW"
    last_condition = max(
        n for n, e in enumerate(bundle["entry"]) if e["resource"]["resourceType"] == "Condition"
    )
    bundle["entry"][last_condition]["resource"]["code"]["coding"][0]["code"] = "ZZ-CANARY"
    before = await row_counts(h)

    response = await h.client.post("/api/v1/fhir/import", json=bundle, headers=bearer(clinician))
    assert response.status_code == 422
    body = response.json()
    assert body["code"] == "invalid_fhir_bundle"
    assert response.headers["content-type"].startswith("application/problem+json")
    assert [e["field"] for e in body["errors"]] == [
        f"entry[{last_condition}].resource.code.coding[0].code"
    ]
    assert "CANARY" not in response.text
    assert await row_counts(h) == before

    # Structurally invalid FHIR: the field is named, the value is not repeated.
    bundle = await export(h, clinician, patient["id"])
    bundle["entry"][0]["resource"]["birthDate"] = "14.07.1961-CANARY"
    bundle["entry"][0]["resource"]["name"][0]["family"] = ["Vexmarrow"]
    response = await h.client.post("/api/v1/fhir/import", json=bundle, headers=bearer(clinician))
    assert response.status_code == 422
    fields = {e["field"] for e in response.json()["errors"]}
    assert fields == {"entry[0].resource.birthDate", "entry[0].resource.name[0].family"}
    assert "CANARY" not in response.text
    assert "Vexmarrow" not in response.text
    assert await row_counts(h) == before


@pytest.mark.parametrize(
    "body",
    [[1, 2], {"resourceType": "Bundle", "type": "collection"}, {"resourceType": "Patient"}],
)
async def test_things_that_are_not_importable_bundles_are_422(h: Harness, body: Any) -> None:
    admin = await h.token_for(Role.admin)
    before = await row_counts(h)
    response = await h.client.post("/api/v1/fhir/import", json=body, headers=bearer(admin))
    assert response.status_code == 422
    assert await row_counts(h) == before


async def test_a_failure_after_rows_are_flushed_rolls_everything_back(
    h: Harness, monkeypatch: pytest.MonkeyPatch
) -> None:
    """All or nothing: a failure late in the transaction leaves no patient, no care-team
    row, no diagnosis, medication or response behind."""
    clinician = await h.token_for(Role.clinician)
    patient = await record_patient(h, clinician)
    bundle = await export(h, clinician, patient["id"])
    bundle["entry"][0]["resource"]["identifier"][0]["value"] = "MRN-FHIR-LATE"
    before = await row_counts(h)
    inside: dict[str, int] = {}

    async def count_then_fail(self: AsyncSession) -> None:
        for model in COUNTED:
            table = model.__table__
            inside[table.name] = (await self.scalar(select(func.count()).select_from(table))) or 0
        raise RuntimeError("simulated failure at commit")

    monkeypatch.setattr(AsyncSession, "commit", count_then_fail)
    response = await h.client.post("/api/v1/fhir/import", json=bundle, headers=bearer(clinician))
    monkeypatch.undo()
    assert response.status_code == 500
    # The rows really were sent inside the transaction...
    assert inside["patients"] == before["patients"] + 1
    assert inside["diagnoses"] == before["diagnoses"] + 3
    assert inside["medication_statements"] == before["medication_statements"] + 2
    assert inside["assessment_responses"] == before["assessment_responses"] + 3
    assert inside["care_team_members"] == before["care_team_members"] + 1
    # ...and none of them survived it.
    assert await row_counts(h) == before


async def test_access_to_export_and_import(h: Harness) -> None:
    owner = await h.token_for(Role.clinician)
    admin = await h.token_for(Role.admin)
    patient = await record_patient(h, owner)
    other = await create(h, owner)
    email, user_id = await h.user(Role.patient)
    linked = await h.client.post(
        f"/api/v1/patients/{other['id']}/account",
        json={"user_id": str(user_id)},
        headers=bearer(admin),
    )
    assert linked.status_code == 204
    other_patient = (await h.login(email))["access_token"]
    outsider = await h.token_for(Role.clinician)
    researcher = await h.token_for(Role.researcher)
    url = f"/api/v1/patients/{patient['id']}/fhir"

    for token in (outsider, researcher, other_patient):
        response = await h.client.get(url, headers=bearer(token))
        assert response.status_code == 404
        assert CANARY["family_name"] not in response.text
    assert (await h.client.get(url, headers=bearer(admin))).status_code == 200
    own = await h.client.get(f"/api/v1/patients/{other['id']}/fhir", headers=bearer(other_patient))
    assert own.status_code == 200

    bundle = await export(h, owner, patient["id"])
    bundle["entry"][0]["resource"]["identifier"][0]["value"] = "MRN-FHIR-ACCESS"
    before = await row_counts(h)
    for token in (researcher, other_patient):
        response = await h.client.post("/api/v1/fhir/import", json=bundle, headers=bearer(token))
        assert response.status_code == 403
    assert (await h.client.post("/api/v1/fhir/import", json=bundle)).status_code == 401
    assert await row_counts(h) == before
