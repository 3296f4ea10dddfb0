"""Assessment endpoints (thin): the instrument catalogue, and a patient's responses."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Query, status

from clarity.assessments import service
from clarity.assessments.catalog import Instrument, UnknownInstrumentError, get_instrument
from clarity.assessments.catalog import list_instruments as catalogue
from clarity.assessments.schemas import (
    AssessmentPage,
    AssessmentSubmit,
    AssessmentSubmitted,
    TrendOut,
)
from clarity.auth.dependencies import Principal, RuntimeDep, SessionDep, require
from clarity.auth.permissions import Permission
from clarity.errors import not_found
from clarity.patients.access import PatientContext, patient_scope

instruments_router = APIRouter(prefix="/instruments", tags=["assessments"])
router = APIRouter(prefix="/patients/{patient_id}/assessments", tags=["assessments"])

Reader = Annotated[PatientContext, patient_scope(Permission.patients_read)]
Submitter = Annotated[PatientContext, patient_scope(Permission.assessments_submit)]
SignedIn = Annotated[Principal, require(Permission.own_account)]
InstrumentQuery = Query(max_length=32, pattern=r"^[a-z0-9]+$", description="e.g. phq9")


@instruments_router.get("", response_model=list[Instrument])
async def list_instruments(_: SignedIn) -> list[Instrument]:
    """Every instrument in the catalogue: items, answer options, severity bands, LOINC
    codes, reliable-change thresholds, safety rules and sources."""
    return catalogue()


@instruments_router.get("/{instrument_id}", response_model=Instrument)
async def read_instrument(
    instrument_id: Annotated[str, Path(max_length=32)], _: SignedIn
) -> Instrument:
    try:
        return get_instrument(instrument_id)
    except UnknownInstrumentError:
        raise not_found("instrument") from None


@router.post("", response_model=AssessmentSubmitted, status_code=status.HTTP_201_CREATED)
async def submit_assessment(
    body: AssessmentSubmit, ctx: Submitter, runtime: RuntimeDep, session: SessionDep
) -> AssessmentSubmitted:
    """Submit a completed instrument; it is scored here. Patients submit their own
    self-report instruments; clinician-rated ones (MADRS) only clinicians and admins."""
    return await service.submit(runtime.outbox, session, ctx, body)


@router.get("", response_model=AssessmentPage)
async def list_assessments(
    ctx: Reader,
    session: SessionDep,
    instrument_id: Annotated[str | None, InstrumentQuery] = None,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
    offset: Annotated[int, Query(ge=0)] = 0,
) -> AssessmentPage:
    """The patient's responses, newest first."""
    rows, total = await service.history(
        session, ctx, instrument_id=instrument_id, limit=limit, offset=offset
    )
    return AssessmentPage(
        items=[service.to_out(r) for r in rows], total=total, limit=limit, offset=offset
    )


@router.get("/trend", response_model=TrendOut)
async def assessment_trend(
    ctx: Reader, session: SessionDep, instrument_id: Annotated[str, InstrumentQuery]
) -> TrendOut:
    """One instrument's totals over time with change from the previous response and from
    baseline, and whether each change is reliable (beyond measurement noise)."""
    return await service.trend(session, ctx, instrument_id)
