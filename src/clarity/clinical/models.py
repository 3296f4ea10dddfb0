"""Diagnoses and medication statements of a patient."""

from __future__ import annotations

import uuid
from datetime import date
from decimal import Decimal

from sqlalchemy import Date, ForeignKey, Numeric, String
from sqlalchemy.orm import Mapped, mapped_column

from clarity.database import Base, TenantScoped, Timestamped, UUIDPrimaryKey


class Diagnosis(UUIDPrimaryKey, Timestamped, TenantScoped, Base):
    __tablename__ = "diagnoses"

    patient_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("patients.id", ondelete="CASCADE"), index=True
    )
    code: Mapped[str] = mapped_column(String(8))  # ICD-10-CM, normalized (F32.9)
    onset: Mapped[date | None] = mapped_column(Date, default=None)
    status: Mapped[str] = mapped_column(String(16), default="active")  # active|remission|resolved
    resolved_on: Mapped[date | None] = mapped_column(Date, default=None)
    recorded_by: Mapped[uuid.UUID | None] = mapped_column(default=None)


class MedicationStatement(UUIDPrimaryKey, Timestamped, TenantScoped, Base):
    __tablename__ = "medication_statements"

    patient_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("patients.id", ondelete="CASCADE"), index=True
    )
    drug: Mapped[str] = mapped_column(String(100))  # generic name from the catalogue
    drug_class: Mapped[str] = mapped_column(String(64))
    rxcui: Mapped[str | None] = mapped_column(String(16), default=None)
    dose: Mapped[Decimal] = mapped_column(Numeric(12, 4))
    unit: Mapped[str] = mapped_column(String(16))
    frequency: Mapped[str] = mapped_column(String(16))
    start: Mapped[date] = mapped_column(Date)
    stop: Mapped[date | None] = mapped_column(Date, default=None)
    prescriber: Mapped[str | None] = mapped_column(String(200), default=None)
    recorded_by: Mapped[uuid.UUID | None] = mapped_column(default=None)
