"""The patient record: identity (encrypted per field), care team and break-the-glass grants."""

from __future__ import annotations

import uuid
from datetime import date, datetime

from sqlalchemy import ForeignKey, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from clarity.crypto.types import EncryptedDate, EncryptedText
from clarity.database import Base, TenantScoped, Timestamped, UUIDPrimaryKey, utcnow


class Patient(UUIDPrimaryKey, Timestamped, TenantScoped, Base):
    """Direct identifiers, contact details and date of birth are stored encrypted; the MRN
    is found through a keyed blind index, never by its plaintext."""

    __tablename__ = "patients"
    __table_args__ = (UniqueConstraint("organization_id", "mrn_index"),)

    mrn: Mapped[str] = mapped_column(EncryptedText("patients.mrn"))
    mrn_index: Mapped[str] = mapped_column(String(80), index=True)
    given_name: Mapped[str] = mapped_column(EncryptedText("patients.given_name"))
    family_name: Mapped[str] = mapped_column(EncryptedText("patients.family_name"))
    birth_date: Mapped[date] = mapped_column(EncryptedDate("patients.birth_date"))
    sex_at_birth: Mapped[str] = mapped_column(String(16))
    gender_identity: Mapped[str | None] = mapped_column(
        EncryptedText("patients.gender_identity"), default=None
    )
    timezone: Mapped[str] = mapped_column(String(64), default="UTC")
    # JSON documents (contact, emergency contact, free-text flags), encrypted as a whole.
    contact: Mapped[str] = mapped_column(EncryptedText("patients.contact"))
    emergency_contact: Mapped[str | None] = mapped_column(
        EncryptedText("patients.emergency_contact"), default=None
    )
    flags: Mapped[str] = mapped_column(EncryptedText("patients.flags"))
    status: Mapped[str] = mapped_column(String(16), default="active", index=True)
    discharged_at: Mapped[datetime | None] = mapped_column(default=None)


class CareTeamMember(TenantScoped, Base):
    """A clinician assigned to a patient: the only clinicians who see the record."""

    __tablename__ = "care_team_members"

    patient_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("patients.id", ondelete="CASCADE"), primary_key=True
    )
    user_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("users.id", ondelete="CASCADE"), primary_key=True, index=True
    )
    role: Mapped[str] = mapped_column(String(16), default="member")
    added_at: Mapped[datetime] = mapped_column(default=utcnow)
    added_by: Mapped[uuid.UUID | None] = mapped_column(default=None)


class BreakGlassGrant(UUIDPrimaryKey, TenantScoped, Base):
    """Time-limited emergency access of a clinician outside the care team, with a reason."""

    __tablename__ = "break_glass_grants"

    patient_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("patients.id", ondelete="CASCADE"), index=True
    )
    user_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    reason: Mapped[str] = mapped_column(EncryptedText("break_glass_grants.reason"))
    granted_at: Mapped[datetime] = mapped_column(default=utcnow)
    expires_at: Mapped[datetime] = mapped_column(index=True)
