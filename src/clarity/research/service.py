"""The de-identified research export: consenting patients of the caller's organization."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from datetime import date
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from clarity.assessments.models import AssessmentResponse
from clarity.clinical.models import Diagnosis, MedicationStatement
from clarity.consent.schemas import ConsentCategory
from clarity.consent.service import consenting_patients
from clarity.patients.models import Patient
from clarity.research.deidentify import age_group, date_shift, pseudonym, shift


async def _rows(session: AsyncSession, model: Any, patient_id: uuid.UUID) -> list[Any]:
    return list((await session.scalars(select(model).where(model.patient_id == patient_id))).all())


async def export_records(
    session: AsyncSession, key: bytes, today: date | None = None
) -> AsyncIterator[dict[str, Any]]:
    """One de-identified record per consenting patient. Only coded, non-identifying fields
    are copied: no names, MRN, contact, timezone (a city), free-text flags or notes."""
    today = today or date.today()
    patients = await session.scalars(
        select(Patient)
        .where(Patient.id.in_(consenting_patients(ConsentCategory.research_use)))
        .order_by(Patient.id)
    )
    for patient in patients.all():
        offset = date_shift(key, patient.id)
        diagnoses = await _rows(session, Diagnosis, patient.id)
        medications = await _rows(session, MedicationStatement, patient.id)
        responses = await _rows(session, AssessmentResponse, patient.id)
        yield {
            "subject": pseudonym(key, patient.id),
            "age": age_group(patient.birth_date, today),
            "sex_at_birth": patient.sex_at_birth,
            "status": patient.status,
            "diagnoses": [
                {"code": d.code, "status": d.status, "onset": shift(d.onset, offset)}
                for d in diagnoses
            ],
            "medications": [
                {
                    "drug": m.drug,
                    "class": m.drug_class,
                    "rxcui": m.rxcui,
                    "dose": str(m.dose),
                    "unit": m.unit,
                    "frequency": m.frequency,
                    "start": shift(m.start, offset),
                    "stop": shift(m.stop, offset),
                }
                for m in medications
            ],
            "assessments": [
                {
                    "instrument": r.instrument_id,
                    "version": r.instrument_version,
                    "answers": r.answers,
                    "total": r.total,
                    "severity": r.severity,
                    "date": shift(r.administered_at, offset),
                }
                for r in sorted(responses, key=lambda r: r.administered_at)
            ],
        }
