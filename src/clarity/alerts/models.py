"""Alert rules stored by a clinic, the alerts they raise, and webhook deliveries.

* :class:`StoredRule`: a clinic's rule (the JSON of :class:`clarity.rules.Rule`). A stored
  rule whose id matches one of the default pack's replaces it for that clinic (that is how
  a clinic tunes or disables a pack rule).
* :class:`Alert`: one firing, with its lifecycle open → acknowledged → resolved (who, when,
  note; notes are encrypted) and escalation. ``(dedup_key, fired_at)`` is unique: the same
  firing computed twice (a redelivered event) is stored once.
* :class:`ProcessedEvent`: which consumer has handled which event, written in the same
  transaction as the consumer's effects, so a redelivered event changes nothing.
* :class:`WebhookEndpoint` / :class:`WebhookDelivery`: a clinic's receivers (secret
  encrypted at rest) and each attempt series: pending → delivered, or dead after the last
  retry (dead letters stay visible).
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import JSON, Boolean, ForeignKey, Index, Integer, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from clarity.crypto.types import EncryptedText
from clarity.database import Base, TenantScoped, UUIDPrimaryKey, utcnow


class StoredRule(UUIDPrimaryKey, TenantScoped, Base):
    __tablename__ = "alert_rules"
    __table_args__ = (UniqueConstraint("organization_id", "rule_id"),)

    rule_id: Mapped[str] = mapped_column(String(64))
    definition: Mapped[dict[str, Any]] = mapped_column(JSON)
    version: Mapped[int] = mapped_column(Integer, default=1)
    created_by: Mapped[uuid.UUID | None] = mapped_column(default=None)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_by: Mapped[uuid.UUID | None] = mapped_column(default=None)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)


class Alert(UUIDPrimaryKey, TenantScoped, Base):
    __tablename__ = "alerts"
    __table_args__ = (
        UniqueConstraint("dedup_key", "fired_at"),
        Index("ix_alerts_patient_status", "patient_id", "status"),
        Index("ix_alerts_status_fired_at", "status", "fired_at"),
    )

    patient_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("patients.id", ondelete="CASCADE"))
    rule_id: Mapped[str] = mapped_column(String(64))
    rule_version: Mapped[int] = mapped_column(Integer)
    rule_name: Mapped[str] = mapped_column(String(200))
    severity: Mapped[str] = mapped_column(String(16))
    dedup_key: Mapped[str] = mapped_column(String(300), index=True)
    status: Mapped[str] = mapped_column(String(16), default="open")
    fired_at: Mapped[datetime] = mapped_column()
    episode_start: Mapped[datetime] = mapped_column()
    summary: Mapped[str] = mapped_column(String(500))
    evidence: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    source_event_id: Mapped[uuid.UUID | None] = mapped_column(default=None)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    acknowledged_by: Mapped[uuid.UUID | None] = mapped_column(default=None)
    acknowledged_at: Mapped[datetime | None] = mapped_column(default=None)
    acknowledge_note: Mapped[str | None] = mapped_column(
        EncryptedText("alerts.acknowledge_note"), default=None
    )
    resolved_by: Mapped[uuid.UUID | None] = mapped_column(default=None)
    resolved_at: Mapped[datetime | None] = mapped_column(default=None)
    resolve_note: Mapped[str | None] = mapped_column(
        EncryptedText("alerts.resolve_note"), default=None
    )
    escalation_level: Mapped[int] = mapped_column(Integer, default=0)
    escalated_at: Mapped[datetime | None] = mapped_column(default=None)


class ProcessedEvent(Base):
    __tablename__ = "processed_events"

    consumer: Mapped[str] = mapped_column(String(64), primary_key=True)
    event_id: Mapped[uuid.UUID] = mapped_column(primary_key=True)
    processed_at: Mapped[datetime] = mapped_column(default=utcnow)


class WebhookEndpoint(UUIDPrimaryKey, TenantScoped, Base):
    __tablename__ = "webhook_endpoints"

    url: Mapped[str] = mapped_column(String(2000))
    secret: Mapped[str] = mapped_column(EncryptedText("webhook_endpoints.secret"))
    description: Mapped[str] = mapped_column(String(200), default="")
    min_severity: Mapped[str] = mapped_column(String(16), default="info")
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    created_by: Mapped[uuid.UUID | None] = mapped_column(default=None)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class WebhookDelivery(UUIDPrimaryKey, TenantScoped, Base):
    __tablename__ = "webhook_deliveries"
    __table_args__ = (
        UniqueConstraint("endpoint_id", "event_id"),
        Index("ix_webhook_deliveries_due", "status", "next_attempt_at"),
    )

    endpoint_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("webhook_endpoints.id", ondelete="CASCADE")
    )
    alert_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("alerts.id", ondelete="CASCADE"))
    event_id: Mapped[uuid.UUID] = mapped_column()
    event_type: Mapped[str] = mapped_column(String(64))
    status: Mapped[str] = mapped_column(String(16), default="pending")  # pending|delivered|dead
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[datetime] = mapped_column(default=utcnow)
    last_status_code: Mapped[int | None] = mapped_column(Integer, default=None)
    last_error: Mapped[str | None] = mapped_column(String(200), default=None)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    delivered_at: Mapped[datetime | None] = mapped_column(default=None)
