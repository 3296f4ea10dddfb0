"""The events the alert service emits, through the outbox, in the transaction of the change.

``alert.raised``, ``alert.acknowledged``, ``alert.resolved`` and ``alert.escalated`` carry
ids, the rule, severity, status and times; ``alert.raised`` also the one-line summary that
the rule engine built from the rule's parameters and the decisive values (what a receiver
shows). Never names, notes or other identifying data. They are keyed by patient, so that one
patient's events reach consumers in order.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any, Final

from sqlalchemy.ext.asyncio import AsyncSession

from clarity.alerts.models import Alert
from clarity.outbox.service import enqueue

RAISED: Final = "alert.raised"
ACKNOWLEDGED: Final = "alert.acknowledged"
RESOLVED: Final = "alert.resolved"
ESCALATED: Final = "alert.escalated"


def _iso(value: datetime | None) -> str | None:
    return None if value is None else value.isoformat()


def alert_payload(alert: Alert) -> dict[str, Any]:
    return {
        "organization_id": str(alert.organization_id),
        "patient_id": str(alert.patient_id),
        "alert_id": str(alert.id),
        "rule_id": alert.rule_id,
        "rule_version": alert.rule_version,
        "severity": alert.severity,
        "status": alert.status,
        "fired_at": _iso(alert.fired_at),
        "escalation_level": alert.escalation_level,
    }


def emit(
    session: AsyncSession, topic: str, alert: Alert, extra: dict[str, Any] | None = None
) -> uuid.UUID:
    """Add the event to ``session``'s transaction (published only if it commits)."""
    payload = {**alert_payload(alert), **(extra or {})}
    return enqueue(session, topic, payload, key=str(alert.patient_id))


def emit_raised(session: AsyncSession, alert: Alert) -> uuid.UUID:
    return emit(
        session,
        RAISED,
        alert,
        {"episode_start": _iso(alert.episode_start), "summary": alert.summary},
    )


def emit_transition(session: AsyncSession, topic: str, alert: Alert) -> uuid.UUID:
    """``alert.acknowledged`` / ``alert.resolved``: who and when, never the note."""
    if topic == ACKNOWLEDGED:
        extra = {"by": str(alert.acknowledged_by), "at": _iso(alert.acknowledged_at)}
    else:
        extra = {"by": str(alert.resolved_by), "at": _iso(alert.resolved_at)}
    return emit(session, topic, alert, extra)
