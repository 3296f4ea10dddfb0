"""Alerts for clinicians: list, read, counts, and the lifecycle open → acknowledged →
resolved (who, when, an encrypted note). Every read is audited; every transition is
audited and emits its event in the same transaction.

A transition is one conditional UPDATE (``WHERE status = <the status read>``), so two
clinicians acting at once cannot both succeed: the second gets 409 ``alert_changed``.
Illegal transitions are 409 too, with a code naming the alert's state.
"""

from __future__ import annotations

import uuid
from collections import defaultdict
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Final, TypeVarTuple

from sqlalchemy import Select, func, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from clarity.alerts.access import reach
from clarity.alerts.events import ACKNOWLEDGED, RESOLVED, emit_transition
from clarity.alerts.models import Alert
from clarity.alerts.schemas import AlertOut, PatientAlertCounts
from clarity.audit.service import record
from clarity.auth.dependencies import Principal
from clarity.database import utcnow
from clarity.errors import AppError
from clarity.outbox.relay import OutboxRelay
from clarity.patients.access import PatientContext, patient_context, refuse
from clarity.patients.service import audit_patient

STATUSES: Final = ("open", "acknowledged", "resolved")
SEVERITIES: Final = ("info", "warning", "high", "critical")
_Row = TypeVarTuple("_Row")


@dataclass(frozen=True)
class Filters:
    status: str | None = None
    severity: str | None = None
    patient_id: uuid.UUID | None = None
    since: datetime | None = None

    def apply(self, statement: Select[*_Row]) -> Select[*_Row]:
        if self.status is not None:
            statement = statement.where(Alert.status == self.status)
        if self.severity is not None:
            statement = statement.where(Alert.severity == self.severity)
        if self.patient_id is not None:
            statement = statement.where(Alert.patient_id == self.patient_id)
        if self.since is not None:
            statement = statement.where(Alert.fired_at >= self.since)
        return statement

    def details(self) -> dict[str, object]:
        return {
            "status": self.status,
            "severity": self.severity,
            "patient_id": None if self.patient_id is None else str(self.patient_id),
            "since": None if self.since is None else self.since.isoformat(),
        }


def check_since(since: datetime | None) -> None:
    if since is not None and since.utcoffset() is None:
        raise AppError(422, "timezone_required", "since must carry a time zone, e.g. ...Z.")


def to_out(alert: Alert) -> AlertOut:
    return AlertOut.model_validate(alert, from_attributes=True)


async def _page(
    session: AsyncSession, statement: Select[Any], limit: int, offset: int
) -> tuple[list[Alert], int]:
    total = await session.scalar(select(func.count()).select_from(statement.subquery())) or 0
    rows = await session.scalars(
        statement.order_by(Alert.fired_at.desc(), Alert.id).limit(limit).offset(offset)
    )
    return list(rows.all()), int(total)


async def list_alerts(
    session: AsyncSession, principal: Principal, filters: Filters, limit: int, offset: int
) -> tuple[list[Alert], int]:
    """Alerts of the patients the caller reaches (one audit record for the read)."""
    check_since(filters.since)
    scope = await reach(session, principal)
    statement = filters.apply(select(Alert).where(scope.clause(Alert.patient_id, principal)))
    rows, total = await _page(session, statement, limit, offset)
    patients = sorted({str(a.patient_id) for a in rows})
    via_grant = any(a.patient_id in scope.grants for a in rows)
    details: dict[str, object] = {
        **filters.details(),
        "count": len(rows),
        "patient_ids": patients,
    }
    if via_grant:
        details["break_glass"] = True
    record(
        session,
        "alert.list",
        resource_type="alerts",
        severity="high" if via_grant else "info",
        details=details,
    )
    await session.commit()
    return rows, total


async def patient_alerts(
    session: AsyncSession, ctx: PatientContext, filters: Filters, limit: int, offset: int
) -> tuple[list[Alert], int]:
    check_since(filters.since)
    statement = filters.apply(select(Alert).where(Alert.patient_id == ctx.patient.id))
    rows, total = await _page(session, statement, limit, offset)
    audit_patient(session, ctx, "alert.list", {**filters.details(), "count": len(rows)})
    await session.commit()
    return rows, total


async def _reachable(
    session: AsyncSession, principal: Principal, alert_id: uuid.UUID
) -> tuple[Alert, PatientContext]:
    alert = await session.get(Alert, alert_id)
    if alert is None:
        raise await refuse(session, None, "alert_not_found", "alert")
    ctx = await patient_context(session, principal, alert.patient_id, resource="alert")
    return alert, ctx


async def read_alert(session: AsyncSession, principal: Principal, alert_id: uuid.UUID) -> Alert:
    alert, ctx = await _reachable(session, principal, alert_id)
    audit_patient(session, ctx, "alert.read", {"alert_id": str(alert.id)})
    await session.commit()
    return alert


_ALLOWED: Final = {"acknowledged": ("open",), "resolved": ("open", "acknowledged")}


async def transition(
    outbox: OutboxRelay,
    session: AsyncSession,
    principal: Principal,
    alert_id: uuid.UUID,
    target: str,
    note: str | None,
) -> Alert:
    """Acknowledge or resolve; 409 ``alert_already_<status>`` when the alert is past it."""
    alert, ctx = await _reachable(session, principal, alert_id)
    current = alert.status
    if current not in _ALLOWED[target]:
        raise AppError(
            409,
            f"alert_already_{current}",
            f"The alert is {current}; it cannot be {target} now.",
            extra={"status": current},
        )
    now = utcnow()
    prefix = "acknowledge" if target == "acknowledged" else "resolve"
    values: dict[str, Any] = {"status": target}
    if target == "acknowledged":
        values.update(acknowledged_by=principal.user_id, acknowledged_at=now, acknowledge_note=note)
    else:
        values.update(resolved_by=principal.user_id, resolved_at=now, resolve_note=note)
    result = await session.execute(
        update(Alert)
        .where(Alert.id == alert.id, Alert.status == current)
        .values(**values)
        .execution_options(synchronize_session=False)
    )
    if result.rowcount != 1:  # type: ignore[attr-defined]
        await session.rollback()
        raise AppError(409, "alert_changed", "The alert changed meanwhile; read it again.")
    await session.refresh(alert)
    emit_transition(session, ACKNOWLEDGED if target == "acknowledged" else RESOLVED, alert)
    audit_patient(
        session,
        ctx,
        f"alert.{prefix}",
        {"alert_id": str(alert.id), "from": current, "note": note is not None},
    )
    await session.commit()
    outbox.notify()
    return alert


async def counts(
    session: AsyncSession, principal: Principal, filters: Filters
) -> list[PatientAlertCounts]:
    """Per patient the caller reaches: alerts by status and by severity."""
    check_since(filters.since)
    scope = await reach(session, principal)
    statement = filters.apply(
        select(Alert.patient_id, Alert.status, Alert.severity, func.count())
        .where(scope.clause(Alert.patient_id, principal))
        .group_by(Alert.patient_id, Alert.status, Alert.severity)
    )
    by_status: dict[uuid.UUID, dict[str, int]] = defaultdict(lambda: dict.fromkeys(STATUSES, 0))
    by_severity: dict[uuid.UUID, dict[str, int]] = defaultdict(lambda: dict.fromkeys(SEVERITIES, 0))
    for patient_id, status, severity, n in (await session.execute(statement)).all():
        by_status[patient_id][status] = by_status[patient_id].get(status, 0) + int(n)
        by_severity[patient_id][severity] = by_severity[patient_id].get(severity, 0) + int(n)
    items = [
        PatientAlertCounts(
            patient_id=patient_id,
            total=sum(by_status[patient_id].values()),
            by_status=by_status[patient_id],
            by_severity=by_severity[patient_id],
        )
        for patient_id in sorted(by_status, key=str)
    ]
    via_grant = any(i.patient_id in scope.grants for i in items)
    record(
        session,
        "alert.counts",
        resource_type="alerts",
        severity="high" if via_grant else "info",
        details={**filters.details(), "patient_ids": [str(i.patient_id) for i in items]},
    )
    await session.commit()
    return items
