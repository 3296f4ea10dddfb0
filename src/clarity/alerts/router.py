"""Alert endpoints (thin): list and counts over the patients the caller reaches, one
patient's alerts, one alert, and its acknowledgement and resolution."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Query

from clarity.alerts import service
from clarity.alerts.schemas import (
    AlertCounts,
    AlertOut,
    AlertPage,
    AlertStatus,
    Severity,
    TransitionIn,
)
from clarity.alerts.service import Filters
from clarity.auth.dependencies import Principal, RuntimeDep, SessionDep, require
from clarity.auth.permissions import Permission
from clarity.patients.access import PatientContext, patient_scope

router = APIRouter(prefix="/alerts", tags=["alerts"])
patient_router = APIRouter(prefix="/patients/{patient_id}/alerts", tags=["alerts"])

Reader = Annotated[Principal, require(Permission.alerts_read)]
Manager = Annotated[Principal, require(Permission.alerts_manage)]
PatientReader = Annotated[PatientContext, patient_scope(Permission.alerts_read)]
StatusQuery = Annotated[AlertStatus | None, Query()]
SeverityQuery = Annotated[Severity | None, Query()]
SinceQuery = Annotated[
    datetime | None, Query(description="Alerts fired at or after this time (with a zone).")
]
Limit = Annotated[int, Query(ge=1, le=200)]
Offset = Annotated[int, Query(ge=0)]


@router.get("", response_model=AlertPage)
async def list_alerts(
    principal: Reader,
    session: SessionDep,
    status: StatusQuery = None,
    severity: SeverityQuery = None,
    patient_id: uuid.UUID | None = None,
    since: SinceQuery = None,
    limit: Limit = 50,
    offset: Offset = 0,
) -> AlertPage:
    """Alerts of the patients on the caller's care team (all of the clinic's for admins;
    break-the-glass grants included while active), newest first."""
    filters = Filters(status, severity, patient_id, since)
    rows, total = await service.list_alerts(session, principal, filters, limit, offset)
    return AlertPage(
        items=[service.to_out(a) for a in rows], total=total, limit=limit, offset=offset
    )


@router.get("/counts", response_model=AlertCounts)
async def alert_counts(
    principal: Reader,
    session: SessionDep,
    status: StatusQuery = None,
    severity: SeverityQuery = None,
    since: SinceQuery = None,
) -> AlertCounts:
    """Per reachable patient: how many alerts, by status and by severity."""
    items = await service.counts(session, principal, Filters(status, severity, None, since))
    return AlertCounts(items=items)


@router.get("/{alert_id}", response_model=AlertOut)
async def read_alert(alert_id: uuid.UUID, principal: Reader, session: SessionDep) -> AlertOut:
    return service.to_out(await service.read_alert(session, principal, alert_id))


@router.post("/{alert_id}/acknowledge", response_model=AlertOut)
async def acknowledge_alert(
    alert_id: uuid.UUID,
    principal: Manager,
    session: SessionDep,
    runtime: RuntimeDep,
    body: TransitionIn | None = None,
) -> AlertOut:
    """open → acknowledged (409 ``alert_already_acknowledged`` / ``alert_already_resolved``)."""
    note = None if body is None else body.note
    alert = await service.transition(
        runtime.outbox, session, principal, alert_id, "acknowledged", note
    )
    return service.to_out(alert)


@router.post("/{alert_id}/resolve", response_model=AlertOut)
async def resolve_alert(
    alert_id: uuid.UUID,
    principal: Manager,
    session: SessionDep,
    runtime: RuntimeDep,
    body: TransitionIn | None = None,
) -> AlertOut:
    """open or acknowledged → resolved (409 ``alert_already_resolved``)."""
    note = None if body is None else body.note
    alert = await service.transition(runtime.outbox, session, principal, alert_id, "resolved", note)
    return service.to_out(alert)


@patient_router.get("", response_model=AlertPage)
async def patient_alerts(
    ctx: PatientReader,
    session: SessionDep,
    status: StatusQuery = None,
    severity: SeverityQuery = None,
    since: SinceQuery = None,
    limit: Limit = 50,
    offset: Offset = 0,
) -> AlertPage:
    """One patient's alerts, newest first."""
    filters = Filters(status, severity, None, since)
    rows, total = await service.patient_alerts(session, ctx, filters, limit, offset)
    return AlertPage(
        items=[service.to_out(a) for a in rows], total=total, limit=limit, offset=offset
    )
