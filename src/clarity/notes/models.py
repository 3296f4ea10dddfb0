"""Clinical notes. Text is encrypted at rest; an amendment adds a version, never overwrites."""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import ForeignKey, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from clarity.crypto.types import EncryptedText
from clarity.database import Base, TenantScoped, UUIDPrimaryKey, utcnow


class Note(UUIDPrimaryKey, TenantScoped, Base):
    __tablename__ = "notes"

    patient_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("patients.id", ondelete="CASCADE"), index=True
    )
    kind: Mapped[str] = mapped_column(String(32))  # progress, intake, ...
    author_id: Mapped[uuid.UUID] = mapped_column()
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    current_version: Mapped[int] = mapped_column(Integer, default=1)


class NoteVersion(TenantScoped, Base):
    __tablename__ = "note_versions"

    note_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("notes.id", ondelete="CASCADE"), primary_key=True
    )
    version: Mapped[int] = mapped_column(Integer, primary_key=True)
    text: Mapped[str] = mapped_column(EncryptedText("note_versions.text"))
    amendment_reason: Mapped[str | None] = mapped_column(
        EncryptedText("note_versions.amendment_reason"), default=None
    )
    author_id: Mapped[uuid.UUID] = mapped_column()
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
