"""Request and response bodies of the identity API."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, EmailStr, Field

from clarity.auth.models import Role

Password = Field(min_length=1, max_length=1024)


class LoginRequest(BaseModel):
    email: EmailStr
    password: str = Password
    totp_code: str | None = Field(default=None, pattern=r"^\d{6}$")
    recovery_code: str | None = Field(default=None, max_length=32)


class TokenPair(BaseModel):
    access_token: str
    refresh_token: str
    token_type: Literal["bearer"] = "bearer"  # noqa: S105 - the OAuth2 token type name
    expires_in: int = Field(description="Seconds until the access token expires.")
    mfa_enrolment_required: bool = False


class RefreshRequest(BaseModel):
    refresh_token: str = Field(min_length=1, max_length=4096)


class RegisterRequest(BaseModel):
    email: EmailStr
    password: str = Password


class UserOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: uuid.UUID
    organization_id: uuid.UUID
    email: str
    role: Role
    is_active: bool
    mfa_enabled: bool
    patient_id: uuid.UUID | None
    created_at: datetime
    last_login_at: datetime | None


class SessionOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: uuid.UUID
    created_at: datetime
    last_used_at: datetime
    expires_at: datetime
    client_address: str | None
    user_agent: str | None
    current: bool = False


class ChangePasswordRequest(BaseModel):
    current_password: str = Password
    new_password: str = Password


class MfaEnrolment(BaseModel):
    secret: str
    provisioning_uri: str


class MfaCode(BaseModel):
    code: str = Field(pattern=r"^\d{6}$")


class MfaDisableRequest(BaseModel):
    password: str = Password
    code: str = Field(pattern=r"^\d{6}$")


class RecoveryCodes(BaseModel):
    recovery_codes: list[str] = Field(description="Shown once; each works once.")


class Message(BaseModel):
    detail: str
