"""Request and response bodies of the alert and alert-rule APIs."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field

AlertStatus = Literal["open", "acknowledged", "resolved"]
Severity = Literal["info", "warning", "high", "critical"]
RuleOrigin = Literal["pack", "override", "custom"]


class AlertOut(BaseModel):
    id: uuid.UUID
    patient_id: uuid.UUID
    rule_id: str
    rule_version: int
    rule_name: str
    severity: str
    status: str
    dedup_key: str
    fired_at: datetime
    episode_start: datetime
    summary: str
    evidence: dict[str, Any]
    source_event_id: uuid.UUID | None
    created_at: datetime
    acknowledged_by: uuid.UUID | None
    acknowledged_at: datetime | None
    acknowledge_note: str | None
    resolved_by: uuid.UUID | None
    resolved_at: datetime | None
    resolve_note: str | None
    escalation_level: int
    escalated_at: datetime | None


class AlertPage(BaseModel):
    items: list[AlertOut]
    total: int
    limit: int
    offset: int


class TransitionIn(BaseModel):
    """What the clinician says when acknowledging or resolving (stored encrypted)."""

    model_config = ConfigDict(extra="forbid")

    note: Annotated[str, Field(min_length=1, max_length=2000)] | None = None


class PatientAlertCounts(BaseModel):
    patient_id: uuid.UUID
    total: int
    by_status: dict[str, int]
    by_severity: dict[str, int]


class AlertCounts(BaseModel):
    items: list[PatientAlertCounts]


class FieldErrorOut(BaseModel):
    field: str
    code: str
    message: str


class RuleOut(BaseModel):
    """A rule the clinic has: in force (``valid``) or a stored one that no longer validates
    (then ``errors`` says why and ``definition`` is what was stored)."""

    id: str
    origin: RuleOrigin
    valid: bool
    enabled: bool
    definition: dict[str, Any]
    pack_definition: dict[str, Any] | None = None
    errors: list[FieldErrorOut] = []
    version: int
    created_at: datetime | None = None
    created_by: uuid.UUID | None = None
    updated_at: datetime | None = None
    updated_by: uuid.UUID | None = None


class RuleList(BaseModel):
    items: list[RuleOut]


class DryRunIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    rule: dict[str, Any] | None = None
    rule_id: Annotated[str, Field(max_length=64)] | None = None
    patient_id: uuid.UUID
    days: Annotated[int, Field(ge=1, le=365)] = 30


class DryRunFiring(BaseModel):
    rule_id: str
    severity: str
    dedup_key: str
    fired_at: datetime
    episode_start: datetime
    summary: str
    evidence: dict[str, Any]


class DryRunOut(BaseModel):
    rule_id: str
    patient_id: uuid.UUID
    start: datetime
    end: datetime
    applies: bool
    firings: list[DryRunFiring]
