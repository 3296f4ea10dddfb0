"""Diagnoses and medication statements of a patient, and the medication catalogue (thin).

Patient-scoped routes declare ``patient_scope``: a refusal, or a record id that belongs to
another patient, is a 404.
"""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Query, status

from clarity.auth.dependencies import Principal, SessionDep, require
from clarity.auth.permissions import Permission
from clarity.clinical import service
from clarity.clinical.schemas import (
    CatalogueSearchOut,
    DiagnosisCreate,
    DiagnosisOut,
    DiagnosisStatus,
    DiagnosisUpdate,
    MedicationStatementCreate,
    MedicationStatementOut,
    MedicationStatementUpdate,
)
from clarity.patients.access import PatientContext, patient_scope

router = APIRouter(prefix="/patients", tags=["clinical"])
catalogue_router = APIRouter(prefix="/medications", tags=["clinical"])

Reader = Annotated[PatientContext, patient_scope(Permission.patients_read)]
Writer = Annotated[PatientContext, patient_scope(Permission.patients_write)]


@router.get("/{patient_id}/diagnoses", response_model=list[DiagnosisOut])
async def list_diagnoses(
    ctx: Reader, session: SessionDep, status: DiagnosisStatus | None = None
) -> list[DiagnosisOut]:
    """The patient's diagnoses, oldest recorded first, optionally of one status."""
    rows = await service.list_diagnoses(session, ctx, status=status)
    return [service.diagnosis_out(d) for d in rows]


@router.post(
    "/{patient_id}/diagnoses", response_model=DiagnosisOut, status_code=status.HTTP_201_CREATED
)
async def create_diagnosis(body: DiagnosisCreate, ctx: Writer, session: SessionDep) -> DiagnosisOut:
    """Record an ICD-10-CM diagnosis; the code is checked for form and stored normalised
    (``f329`` becomes ``F32.9``). A second, unresolved diagnosis with the same code is a 409."""
    return service.diagnosis_out(await service.create_diagnosis(session, ctx, body))


@router.patch("/{patient_id}/diagnoses/{diagnosis_id}", response_model=DiagnosisOut)
async def update_diagnosis(
    diagnosis_id: uuid.UUID, body: DiagnosisUpdate, ctx: Writer, session: SessionDep
) -> DiagnosisOut:
    """Change the status (active, remission, resolved), the onset or the date it resolved."""
    diagnosis = await service.update_diagnosis(session, ctx, diagnosis_id, body)
    return service.diagnosis_out(diagnosis)


@router.get("/{patient_id}/medications", response_model=list[MedicationStatementOut])
async def list_medications(
    ctx: Reader,
    session: SessionDep,
    active: Annotated[
        bool | None,
        Query(
            description="true: taken today (started, no stop date or one in the future); "
            "false: the others. Today is the patient's, in their time zone."
        ),
    ] = None,
) -> list[MedicationStatementOut]:
    """The patient's medication statements, latest start first."""
    rows, today = await service.list_statements(session, ctx, active=active)
    return [service.statement_out(s, today) for s in rows]


@router.post(
    "/{patient_id}/medications",
    response_model=MedicationStatementOut,
    status_code=status.HTTP_201_CREATED,
)
async def create_medication(
    body: MedicationStatementCreate, ctx: Writer, session: SessionDep
) -> MedicationStatementOut:
    """Record a medication the patient takes. The drug is named by generic, synonym or brand
    name and stored as the catalogue's generic name with its class and RxCUI; an unknown
    name, unit or frequency is a 422 with suggestions."""
    statement = await service.create_statement(session, ctx, body)
    return service.statement_out(statement, service.patient_today(ctx.patient))


@router.patch("/{patient_id}/medications/{statement_id}", response_model=MedicationStatementOut)
async def update_medication(
    statement_id: uuid.UUID, body: MedicationStatementUpdate, ctx: Writer, session: SessionDep
) -> MedicationStatementOut:
    """Change the stop date (``null`` takes it back), the dose or the frequency."""
    statement = await service.update_statement(session, ctx, statement_id, body)
    return service.statement_out(statement, service.patient_today(ctx.patient))


@catalogue_router.get("/catalog", response_model=CatalogueSearchOut)
async def search_catalogue(
    _: Annotated[Principal, require(Permission.own_account)],
    q: Annotated[str, Query(max_length=100, description="Part of a name; empty lists all.")] = "",
    limit: Annotated[int, Query(ge=1, le=service.MAX_SEARCH_RESULTS)] = 10,
) -> CatalogueSearchOut:
    """Search the medication catalogue by generic, synonym or brand name (autocomplete),
    with the dose units and frequencies a medication statement accepts."""
    return service.search_catalogue(q, limit)
