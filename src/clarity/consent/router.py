"""Consent of one patient (thin): record a decision, read the state in force and history.

Who records: admins, clinicians on the care team, and the patient themself through a
linked account (``consent:record``). Who reads: whoever may read the patient record
(``patients:read``), the patient included. Everyone else gets 404. Records are append-only:
a withdrawal is a new record with ``granted: false``.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, status

from clarity.auth.dependencies import SessionDep
from clarity.auth.permissions import Permission
from clarity.consent import service
from clarity.consent.schemas import ConsentCreate, ConsentOverview, ConsentRecordOut
from clarity.patients.access import PatientContext, patient_scope

router = APIRouter(prefix="/patients/{patient_id}/consents", tags=["consent"])

Reader = Annotated[PatientContext, patient_scope(Permission.patients_read)]
Recorder = Annotated[PatientContext, patient_scope(Permission.consent_record)]


@router.post("", response_model=ConsentRecordOut, status_code=status.HTTP_201_CREATED)
async def record_consent(
    body: ConsentCreate, ctx: Recorder, session: SessionDep
) -> ConsentRecordOut:
    """Append a consent decision for one category, recorded by the caller, now."""
    return ConsentRecordOut.model_validate(await service.record_consent(session, ctx, body))


@router.get("", response_model=ConsentOverview)
async def read_consents(ctx: Reader, session: SessionDep) -> ConsentOverview:
    """The decision in force per category (never recorded: not granted) and the history."""
    return await service.consent_overview(session, ctx)
