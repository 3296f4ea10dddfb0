"""Identity tables: users, login sessions (refresh-token families) and refresh tokens."""

from __future__ import annotations

import uuid
from datetime import datetime
from enum import StrEnum

from sqlalchemy import JSON, Boolean, ForeignKey, String
from sqlalchemy.orm import Mapped, mapped_column

from clarity.crypto.types import EncryptedText
from clarity.database import Base, TenantScoped, Timestamped, UUIDPrimaryKey, utcnow


class Role(StrEnum):
    admin = "admin"
    clinician = "clinician"
    researcher = "researcher"
    patient = "patient"


class User(UUIDPrimaryKey, Timestamped, TenantScoped, Base):
    __tablename__ = "users"

    email: Mapped[str] = mapped_column(String(320), unique=True)
    password_hash: Mapped[str] = mapped_column(String(255))
    role: Mapped[str] = mapped_column(String(20))
    is_active: Mapped[bool] = mapped_column(Boolean, default=True)
    password_changed_at: Mapped[datetime] = mapped_column(default=utcnow)
    last_login_at: Mapped[datetime | None] = mapped_column(default=None)
    # Link from a patient account to its patient record (the record itself comes later).
    patient_id: Mapped[uuid.UUID | None] = mapped_column(default=None, index=True)
    # The TOTP seed is a credential: encrypted at rest like PHI.
    mfa_secret: Mapped[str | None] = mapped_column(EncryptedText("users.mfa_secret"), default=None)
    mfa_enabled: Mapped[bool] = mapped_column(Boolean, default=False)
    mfa_recovery_hashes: Mapped[list[str]] = mapped_column(JSON, default=list)


class AuthSession(UUIDPrimaryKey, TenantScoped, Base):
    """One login: the family of refresh tokens that rotate from it."""

    __tablename__ = "auth_sessions"

    user_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("users.id", ondelete="CASCADE"), index=True
    )
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    last_used_at: Mapped[datetime] = mapped_column(default=utcnow)
    expires_at: Mapped[datetime]
    revoked_at: Mapped[datetime | None] = mapped_column(default=None)
    revoked_reason: Mapped[str | None] = mapped_column(String(40), default=None)
    client_address: Mapped[str | None] = mapped_column(String(64), default=None)
    user_agent: Mapped[str | None] = mapped_column(String(256), default=None)


class RefreshToken(Base):
    """Each refresh token works once; a second use reveals theft and revokes its family."""

    __tablename__ = "refresh_tokens"

    jti: Mapped[uuid.UUID] = mapped_column(primary_key=True)
    session_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("auth_sessions.id", ondelete="CASCADE"), index=True
    )
    issued_at: Mapped[datetime] = mapped_column(default=utcnow)
    expires_at: Mapped[datetime]
    used_at: Mapped[datetime | None] = mapped_column(default=None)
