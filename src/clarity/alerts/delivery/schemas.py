"""What leaves Clarity about an alert (SSE ``data:`` and webhook bodies), and the webhook API.

:func:`alert_message` keeps only whitelisted fields of an outbox event: ids, rule, severity,
status, times and the rule's one-line summary. Whatever a producer may add later, names,
notes and other identifying data never reach a stream or a receiver.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any, Final, Literal

from pydantic import BaseModel, ConfigDict, Field

Severity = Literal["info", "warning", "high", "critical"]
DeliveryStatus = Literal["pending", "delivered", "dead"]

MESSAGE_FIELDS: Final = (
    "event_id",
    "event_type",
    "occurred_at",
    "organization_id",
    "patient_id",
    "alert_id",
    "rule_id",
    "rule_version",
    "severity",
    "status",
    "fired_at",
    "episode_start",
    "escalation_level",
    "summary",
    "by",
    "at",
)


def alert_message(payload: dict[str, Any]) -> dict[str, Any]:
    """The public form of an ``alert.*`` event payload (whitelisted fields only)."""
    return {name: payload[name] for name in MESSAGE_FIELDS if name in payload}


class WebhookCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    url: str = Field(min_length=1, max_length=2000, description="http(s) URL of the receiver")
    description: str = Field(default="", max_length=200)
    min_severity: Severity = Field(
        default="info", description="Only alerts of this severity or higher are sent."
    )


class WebhookOut(BaseModel):
    id: uuid.UUID
    url: str = Field(description="Scheme, host, port and path; the query string is not shown.")
    description: str
    min_severity: str
    active: bool
    created_at: datetime


class WebhookCreated(WebhookOut):
    secret: str = Field(
        description="The signing secret. Shown only in this response: store it now."
    )


class DeliveryOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: uuid.UUID
    endpoint_id: uuid.UUID
    alert_id: uuid.UUID
    event_id: uuid.UUID
    event_type: str
    status: str
    attempts: int
    next_attempt_at: datetime
    last_status_code: int | None
    last_error: str | None
    created_at: datetime
    delivered_at: datetime | None


class DeliveryPage(BaseModel):
    items: list[DeliveryOut]
    total: int
    limit: int
    offset: int
