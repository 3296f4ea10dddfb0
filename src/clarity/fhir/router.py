"""FHIR R4 exchange endpoints (thin): export a patient's record, import one as a Bundle."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Body, Response, status

from clarity.auth.dependencies import Principal, RuntimeDep, SessionDep, require
from clarity.auth.permissions import Permission
from clarity.fhir import service
from clarity.fhir.mapping import FHIR_JSON
from clarity.patients.access import PatientContext, patient_scope

router = APIRouter(tags=["fhir"])

Reader = Annotated[PatientContext, patient_scope(Permission.patients_read)]


@router.get(
    "/patients/{patient_id}/fhir",
    response_class=Response,
    responses={
        200: {
            "description": "A FHIR R4 Bundle (type collection).",
            "content": {FHIR_JSON: {"schema": {"type": "object"}}},
        }
    },
)
async def export_patient(ctx: Reader, session: SessionDep) -> Response:
    """The patient's record as a FHIR R4 ``collection`` Bundle: Patient, a Condition per
    diagnosis, a MedicationStatement per statement, and per assessment a
    QuestionnaireResponse with its score Observation. Every resource is validated."""
    bundle = await service.export_patient(session, ctx)
    return Response(content=bundle.model_dump_json(), media_type=FHIR_JSON)


@router.post(
    "/fhir/import",
    response_model=service.ImportReport,
    status_code=status.HTTP_201_CREATED,
)
async def import_bundle(
    bundle: Annotated[
        dict[str, Any],
        Body(
            description="A FHIR R4 Bundle (collection or transaction) holding one Patient "
            "and their Conditions, MedicationStatements, QuestionnaireResponses and score "
            "Observations. Send as application/json or application/fhir+json."
        ),
    ],
    principal: Annotated[Principal, require(Permission.patients_write)],
    runtime: RuntimeDep,
    session: SessionDep,
) -> service.ImportReport:
    """Create a new patient with their record from a Bundle, in one transaction: all of it
    or nothing. The MRN must be new to the organization (409 otherwise); assessment
    answers are re-scored here; a clinician who imports joins the care team."""
    return await service.import_bundle(runtime, session, principal, bundle)
