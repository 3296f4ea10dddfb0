"""Consent decisions, append-only: the latest record per category is the one in force."""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import Boolean, ForeignKey, String
from sqlalchemy.orm import Mapped, mapped_column

from clarity.database import Base, TenantScoped, UUIDPrimaryKey, utcnow


class ConsentRecord(UUIDPrimaryKey, TenantScoped, Base):
    __tablename__ = "consent_records"

    patient_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("patients.id", ondelete="CASCADE"), index=True
    )
    category: Mapped[str] = mapped_column(String(32))  # wearable_data|note_analysis|research_use
    granted: Mapped[bool] = mapped_column(Boolean)
    recorded_by: Mapped[uuid.UUID | None] = mapped_column(default=None)
    recorded_at: Mapped[datetime] = mapped_column(default=utcnow, index=True)
