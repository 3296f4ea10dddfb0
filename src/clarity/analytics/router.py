"""Actigraphy analytics endpoints (thin): a patient's rhythm summary and nights."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query

from clarity.analytics import service
from clarity.analytics.schemas import (
    ConventionParam,
    Nights,
    NonwearParam,
    SleepAlgorithmParam,
    Summary,
)
from clarity.auth.dependencies import RuntimeDep, SessionDep
from clarity.auth.permissions import Permission
from clarity.patients.access import PatientContext, patient_scope

router = APIRouter(prefix="/patients/{patient_id}/actigraphy", tags=["analytics"])

Reader = Annotated[PatientContext, patient_scope(Permission.patients_read)]

_INSUFFICIENT: dict[int | str, dict[str, Any]] = {
    422: {
        "description": "insufficient_data (the body names the metric, e.g. "
        '{"metric": "interdaily_stability", "valid_days": 3, "required": 7}), '
        "multiple_sources, unusable_series, range_too_long, invalid_range or "
        "timezone_required."
    }
}


def analysis_query(
    start: Annotated[
        datetime | None, Query(description="Range start, ISO 8601 with a zone (inclusive).")
    ] = None,
    end: Annotated[
        datetime | None, Query(description="Range end, ISO 8601 with a zone (exclusive).")
    ] = None,
    source: Annotated[
        str | None,
        Query(max_length=128, description="The device; needed when the range holds several."),
    ] = None,
    algorithm: Annotated[
        SleepAlgorithmParam, Query(description="Sleep/wake scoring algorithm.")
    ] = "oakley",
    webster: Annotated[bool, Query(description="Apply Webster (1982) rescoring.")] = False,
    nonwear: Annotated[NonwearParam, Query(description="Non-wear detection.")] = "choi",
    convention: Annotated[
        ConventionParam, Query(description="IS/IV formula (original: Witting 1990).")
    ] = "original",
) -> service.Query:
    return service.make_query(start, end, source, algorithm, webster, nonwear, convention)


AnalysisQuery = Annotated[service.Query, Depends(analysis_query)]


@router.get("/summary", response_model=Summary, responses=_INSUFFICIENT)
async def actigraphy_summary(
    ctx: Reader, query: AnalysisQuery, runtime: RuntimeDep, session: SessionDep
) -> Summary:
    """Rest-activity rhythm (IS, IV, RA, L5, M10, cosinor with 95% CIs, kRA/kAR), the Sleep
    Regularity Index, means of the nightly sleep metrics and the feature vector, from the
    patient's stored ``activity_counts`` in their own time zone. Needs 7 valid days (16 h
    worn) and 5 scored nights; otherwise 422 ``insufficient_data`` naming the metric."""
    return await service.summary(runtime, session, ctx, query)


@router.get("/nights", response_model=Nights, responses=_INSUFFICIENT)
async def actigraphy_nights(
    ctx: Reader, query: AnalysisQuery, runtime: RuntimeDep, session: SessionDep
) -> Nights:
    """Each local noon-to-noon night: rest interval, time in bed, total sleep time, sleep
    onset latency, WASO, sleep efficiency, awakenings and midpoint; a night without enough
    wear is listed unscored, with the reason."""
    return await service.nights(runtime, session, ctx, query)
