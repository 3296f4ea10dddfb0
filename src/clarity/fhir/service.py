"""FHIR export and import of a patient's record; both leave an audit record.

Export reads the patient's rows and hands them to the pure :mod:`clarity.fhir.mapping`.
Import validates and plans the whole Bundle first (nothing touches the database until it
is known to be good), then writes the patient and everything else in the request's one
transaction and commits once: any failure rolls all of it back.

Imported assessment responses are stored as history; they do not publish the
"assessment submitted" event, so old answers do not raise new real-time alerts.
"""

from __future__ import annotations

import uuid
from typing import Any

import orjson
from fhir.resources.R4B.bundle import Bundle
from pydantic import BaseModel, Field
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from clarity.assessments.models import AssessmentResponse
from clarity.audit.service import record
from clarity.auth.dependencies import Principal
from clarity.clinical.models import Diagnosis, MedicationStatement
from clarity.database import utcnow
from clarity.errors import AppError
from clarity.fhir import mapping
from clarity.patients import service as patients
from clarity.patients.access import PatientContext
from clarity.patients.models import Patient
from clarity.patients.schemas import PatientStatus
from clarity.runtime import Runtime

MAX_REPORTED_PROBLEMS = 100


class ImportReport(BaseModel):
    """What an import created, by FHIR resource type."""

    patient_id: uuid.UUID
    created: dict[str, int] = Field(
        description="Rows created per resource type (Patient, Condition, ...)."
    )
    verified: dict[str, int] = Field(
        description="Score Observations checked against the server-side score (not stored: "
        "scores are derived from the answers)."
    )
    skipped: dict[str, int] = Field(
        description="Resources marked entered-in-error (or medications not-taken)."
    )


def patient_data(patient: Patient) -> mapping.PatientData:
    contact: dict[str, Any] = orjson.loads(patient.contact) if patient.contact else {}
    emergency = None
    if patient.emergency_contact:
        raw: dict[str, Any] = orjson.loads(patient.emergency_contact)
        emergency = mapping.EmergencyContactData(
            name=raw["name"], relationship=raw.get("relationship"), phone=raw.get("phone")
        )
    return mapping.PatientData(
        id=patient.id,
        mrn=patient.mrn,
        given_name=patient.given_name,
        family_name=patient.family_name,
        birth_date=patient.birth_date,
        sex_at_birth=patient.sex_at_birth,
        gender_identity=patient.gender_identity,
        timezone=patient.timezone,
        phone=contact.get("phone"),
        email=contact.get("email"),
        address=contact.get("address"),
        emergency_contact=emergency,
        active=patient.status == PatientStatus.active,
    )


def diagnosis_data(row: Diagnosis) -> mapping.DiagnosisData:
    return mapping.DiagnosisData(
        id=row.id, code=row.code, status=row.status, onset=row.onset, resolved_on=row.resolved_on
    )


def medication_data(row: MedicationStatement) -> mapping.MedicationData:
    return mapping.MedicationData(
        id=row.id,
        drug=row.drug,
        drug_class=row.drug_class,
        rxcui=row.rxcui,
        dose=row.dose,
        unit=row.unit,
        frequency=row.frequency,
        start=row.start,
        stop=row.stop,
        prescriber=row.prescriber,
    )


def assessment_data(row: AssessmentResponse) -> mapping.AssessmentData:
    return mapping.AssessmentData(
        id=row.id,
        instrument_id=row.instrument_id,
        instrument_version=row.instrument_version,
        answers=dict(row.answers),
        total=row.total,
        administered_at=row.administered_at,
        derived_score=row.derived_score,
        severity=row.severity,
        safety_signal=row.safety_signal,
    )


async def export_patient(session: AsyncSession, ctx: PatientContext) -> Bundle:
    """The patient's record as a FHIR Bundle; every resource validated on the way out."""
    patient_id = ctx.patient.id
    diagnoses = (
        await session.scalars(select(Diagnosis).where(Diagnosis.patient_id == patient_id))
    ).all()
    statements = (
        await session.scalars(
            select(MedicationStatement).where(MedicationStatement.patient_id == patient_id)
        )
    ).all()
    responses = (
        await session.scalars(
            select(AssessmentResponse).where(AssessmentResponse.patient_id == patient_id)
        )
    ).all()
    bundle = mapping.export_bundle(
        patient_data(ctx.patient),
        [diagnosis_data(d) for d in diagnoses],
        [medication_data(m) for m in statements],
        [assessment_data(a) for a in responses],
        now=utcnow(),
    )
    patients.audit_patient(
        session,
        ctx,
        "patient.fhir_export",
        {
            "counts": {
                "Condition": len(diagnoses),
                "MedicationStatement": len(statements),
                "QuestionnaireResponse": len(responses),
                "Observation": len(responses),
            }
        },
    )
    await session.commit()
    return bundle


def _invalid(error: mapping.FhirImportError) -> AppError:
    problems = error.problems[:MAX_REPORTED_PROBLEMS]
    fields = ", ".join(dict.fromkeys(p.field for p in problems[:10]))
    return AppError(
        422,
        "invalid_fhir_bundle",
        f"The FHIR Bundle cannot be imported: check {fields}. Nothing was written.",
        extra={
            "errors": [
                {"field": p.field, "message": p.message, "type": "fhir_import"} for p in problems
            ]
        },
    )


async def import_bundle(
    runtime: Runtime, session: AsyncSession, principal: Principal, data: object
) -> ImportReport:
    """Create a patient and their record from a Bundle: all of it, or nothing."""
    try:
        plan = mapping.parse_bundle(data, now=utcnow())
    except mapping.FhirImportError as exc:
        raise _invalid(exc) from None
    try:
        patient = await patients.add_patient(runtime, session, principal, plan.patient)
        if not plan.active:
            patient.status = PatientStatus.discharged.value  # the date is not in the Bundle
        for diagnosis in plan.diagnoses:
            session.add(
                Diagnosis(
                    patient_id=patient.id,
                    code=diagnosis.code,
                    onset=diagnosis.onset,
                    status=diagnosis.status,
                    resolved_on=diagnosis.resolved_on,
                    recorded_by=principal.user_id,
                )
            )
        for medication in plan.medications:
            session.add(
                MedicationStatement(
                    patient_id=patient.id,
                    drug=medication.drug,
                    drug_class=medication.drug_class,
                    rxcui=medication.rxcui,
                    dose=medication.dose,
                    unit=medication.unit,
                    frequency=medication.frequency,
                    start=medication.start,
                    stop=medication.stop,
                    prescriber=medication.prescriber,
                    recorded_by=principal.user_id,
                )
            )
        for assessment in plan.assessments:
            session.add(
                AssessmentResponse(
                    patient_id=patient.id,
                    instrument_id=assessment.instrument_id,
                    instrument_version=assessment.instrument_version,
                    answers=dict(assessment.answers),
                    total=assessment.total,
                    derived_score=assessment.derived_score,
                    severity=assessment.severity,
                    safety_signal=assessment.safety_signal,
                    administered_at=assessment.administered_at,
                    recorded_by=principal.user_id,
                    created_at=utcnow(),
                )
            )
        await session.flush()
        created = {
            "Patient": 1,
            "Condition": len(plan.diagnoses),
            "MedicationStatement": len(plan.medications),
            "QuestionnaireResponse": len(plan.assessments),
        }
        verified = {"Observation": plan.observations_checked}
        record(
            session,
            "patient.fhir_import",
            resource_type="patient",
            resource_id=patient.id,
            details={"created": created, "verified": verified, "skipped": dict(plan.skipped)},
        )
        await session.commit()
    except IntegrityError:
        # Another request registered the same MRN between our check and our insert.
        await session.rollback()
        raise AppError(409, "mrn_taken", "A patient with this MRN already exists here.") from None
    except BaseException:
        await session.rollback()
        raise
    return ImportReport(
        patient_id=patient.id, created=created, verified=verified, skipped=dict(plan.skipped)
    )
