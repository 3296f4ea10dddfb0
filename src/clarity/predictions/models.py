"""Stored depression predictions: every answer the endpoint gave, with what it was given.

A row names the exact model version (foreign key to the registry, which therefore cannot
delete a version that has answered), the SHA-256 of the input vector and window, the output
and its explanation, so any prediction can be traced and reproduced. Like other structured
clinical values (assessment scores, biometric samples) the numbers are stored in clear and
the rows are scoped to the organization.
"""

from __future__ import annotations

import uuid
from datetime import date, datetime
from typing import Any

from sqlalchemy import JSON, Date, Float, ForeignKey, Index, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from clarity.database import Base, TenantScoped, UUIDPrimaryKey, utcnow


class DepressionPrediction(UUIDPrimaryKey, TenantScoped, Base):
    __tablename__ = "depression_predictions"
    __table_args__ = (
        Index("ix_depression_predictions_patient_created", "patient_id", "created_at"),
    )

    patient_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("patients.id", ondelete="CASCADE"))
    model_version_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("ml_model_versions.id", ondelete="RESTRICT"), index=True
    )
    model_name: Mapped[str] = mapped_column(String(100))
    model_version: Mapped[int] = mapped_column(Integer)
    input_fingerprint: Mapped[str] = mapped_column(String(64))
    window_start: Mapped[date] = mapped_column(Date)
    window_end: Mapped[date] = mapped_column(Date)
    timezone: Mapped[str] = mapped_column(String(64))  # the zone the window's days are local to
    valid_days: Mapped[int] = mapped_column(Integer)
    probability: Mapped[float] = mapped_column(Float)
    interval_low: Mapped[float] = mapped_column(Float)
    interval_high: Mapped[float] = mapped_column(Float)
    interval_level: Mapped[float] = mapped_column(Float)
    threshold: Mapped[float | None] = mapped_column(Float, default=None)
    # TreeSHAP: units, baseline, margin and the top contributions (feature, label, value).
    explanation: Mapped[dict[str, Any]] = mapped_column(JSON)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    created_by: Mapped[uuid.UUID | None] = mapped_column(default=None)
