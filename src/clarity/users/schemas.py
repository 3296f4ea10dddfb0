"""Bodies of the admin user-management API."""

from __future__ import annotations

from pydantic import BaseModel, EmailStr, Field

from clarity.auth.models import Role
from clarity.auth.schemas import UserOut


class UserCreate(BaseModel):
    email: EmailStr
    password: str = Field(min_length=1, max_length=1024)
    role: Role


class UserUpdate(BaseModel):
    role: Role | None = None
    is_active: bool | None = None


class UserPage(BaseModel):
    items: list[UserOut]
    total: int
    limit: int
    offset: int
