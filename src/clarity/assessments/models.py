"""Stored assessment responses: answers as given, scored server-side at submission."""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import JSON, Boolean, Float, ForeignKey, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from clarity.database import Base, TenantScoped, UUIDPrimaryKey, utcnow


class AssessmentResponse(UUIDPrimaryKey, TenantScoped, Base):
    __tablename__ = "assessment_responses"

    patient_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("patients.id", ondelete="CASCADE"), index=True
    )
    instrument_id: Mapped[str] = mapped_column(String(32), index=True)
    instrument_version: Mapped[str] = mapped_column(String(32))
    answers: Mapped[dict[str, int]] = mapped_column(JSON)
    total: Mapped[int] = mapped_column(Integer)
    # A derived score where the instrument defines one (e.g. WHO-5 percentage).
    derived_score: Mapped[float | None] = mapped_column(Float, default=None)
    severity: Mapped[str | None] = mapped_column(String(64), default=None)
    safety_signal: Mapped[bool] = mapped_column(Boolean, default=False)
    administered_at: Mapped[datetime] = mapped_column(index=True)
    recorded_by: Mapped[uuid.UUID | None] = mapped_column(default=None)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
