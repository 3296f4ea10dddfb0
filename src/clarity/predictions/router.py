"""Depression prediction endpoints (thin): predict from stored actigraphy, list past ones."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Body, Query, status

from clarity.auth.dependencies import RuntimeDep, SessionDep
from clarity.auth.permissions import Permission
from clarity.patients.access import PatientContext, patient_scope
from clarity.predictions import service
from clarity.predictions.schemas import (
    DepressionPredictionOut,
    DepressionPredictionPage,
    PredictionRequest,
)

router = APIRouter(prefix="/patients/{patient_id}/predictions", tags=["predictions"])

# Asking for a prediction stores one: a clinical write (staff on the care team).
Predictor = Annotated[PatientContext, patient_scope(Permission.patients_write)]
Reader = Annotated[PatientContext, patient_scope(Permission.predictions_read)]

_REFUSALS: dict[int | str, dict[str, Any]] = {
    422: {
        "description": "insufficient_actigraphy (fewer than 7 valid days; the body gives "
        '"valid_days", "required" and each day\'s wear), multiple_sources or unusable_series.'
    },
    503: {
        "description": "no_promoted_model (no depression model has been promoted) or "
        "model_unavailable (the promoted version cannot be served; the detail says why)."
    },
}


@router.post(
    "/depression",
    response_model=DepressionPredictionOut,
    status_code=status.HTTP_201_CREATED,
    responses=_REFUSALS,
)
async def predict_depression(
    ctx: Predictor,
    runtime: RuntimeDep,
    session: SessionDep,
    body: Annotated[PredictionRequest | None, Body()] = None,
) -> DepressionPredictionOut:
    """Score the patient's latest 7 valid days of stored actigraphy with the promoted
    depression classifier: calibrated probability with an interval, the model version and
    card, and the features that moved it most. Stored, audited and announced as a
    ``prediction.created`` event. Not a diagnostic device."""
    return await service.create(runtime, session, ctx, body or PredictionRequest())


@router.get("/depression", response_model=DepressionPredictionPage)
async def list_depression_predictions(
    ctx: Reader,
    session: SessionDep,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
    offset: Annotated[int, Query(ge=0)] = 0,
) -> DepressionPredictionPage:
    """The patient's stored depression predictions, newest first."""
    items, total = await service.history(session, ctx, limit=limit, offset=offset)
    return DepressionPredictionPage(items=items, total=total, limit=limit, offset=offset)
