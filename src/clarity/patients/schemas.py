"""Request and response bodies of the patient record API."""

from __future__ import annotations

import uuid
from datetime import date, datetime
from enum import StrEnum
from typing import Annotated
from zoneinfo import available_timezones

from pydantic import AfterValidator, BaseModel, ConfigDict, EmailStr, Field

_TIMEZONES = frozenset(available_timezones())


def _known_zone(value: str) -> str:
    if value not in _TIMEZONES:
        raise ValueError("must be an IANA time zone such as Europe/Oslo")
    return value


def _plausible_birth(value: date) -> date:
    if value > date.today() or value.year < 1900:
        raise ValueError("must be a date between 1900 and today")
    return value


Timezone = Annotated[str, AfterValidator(_known_zone)]
BirthDate = Annotated[date, AfterValidator(_plausible_birth)]
Name = Annotated[str, Field(min_length=1, max_length=200)]


class SexAtBirth(StrEnum):
    female = "female"
    male = "male"
    intersex = "intersex"
    unknown = "unknown"


class PatientStatus(StrEnum):
    active = "active"
    discharged = "discharged"


class CareTeamRole(StrEnum):
    primary = "primary"
    member = "member"


class Contact(BaseModel):
    model_config = ConfigDict(extra="forbid")

    phone: str | None = Field(default=None, max_length=40)
    email: EmailStr | None = None
    address: str | None = Field(default=None, max_length=500)


class EmergencyContact(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1, max_length=200)
    relationship: str | None = Field(default=None, max_length=100)
    phone: str | None = Field(default=None, max_length=40)


class PatientFields(BaseModel):
    """Fields shared by create and read; every one is optional on update."""

    model_config = ConfigDict(extra="forbid")

    given_name: Name
    family_name: Name
    birth_date: BirthDate
    sex_at_birth: SexAtBirth = SexAtBirth.unknown
    gender_identity: str | None = Field(default=None, max_length=100)
    timezone: Timezone = Field(default="UTC", description="IANA zone; sets day boundaries.")
    contact: Contact = Field(default_factory=Contact)
    emergency_contact: EmergencyContact | None = None
    flags: list[Annotated[str, Field(max_length=200)]] = Field(default_factory=list, max_length=50)


class PatientCreate(PatientFields):
    mrn: str = Field(min_length=1, max_length=64, description="External id / MRN.")


class PatientUpdate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    given_name: Name | None = None
    family_name: Name | None = None
    birth_date: BirthDate | None = None
    sex_at_birth: SexAtBirth | None = None
    gender_identity: str | None = Field(default=None, max_length=100)
    timezone: Timezone | None = None
    contact: Contact | None = None
    emergency_contact: EmergencyContact | None = None
    flags: list[Annotated[str, Field(max_length=200)]] | None = Field(default=None, max_length=50)


class PatientOut(PatientFields):
    id: uuid.UUID
    mrn: str
    status: PatientStatus
    discharged_at: datetime | None
    created_at: datetime
    updated_at: datetime


class PatientPage(BaseModel):
    items: list[PatientOut]
    total: int
    limit: int
    offset: int


class DischargeRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    reason: str | None = Field(default=None, max_length=500)


class CareTeamAdd(BaseModel):
    model_config = ConfigDict(extra="forbid")

    user_id: uuid.UUID
    role: CareTeamRole = CareTeamRole.member


class CareTeamMemberOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    user_id: uuid.UUID
    role: CareTeamRole
    added_at: datetime
    added_by: uuid.UUID | None


class BreakGlassRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    reason: str = Field(min_length=10, max_length=1000, description="Why access is needed now.")


class BreakGlassOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: uuid.UUID
    patient_id: uuid.UUID
    user_id: uuid.UUID
    granted_at: datetime
    expires_at: datetime


class LinkAccount(BaseModel):
    model_config = ConfigDict(extra="forbid")

    user_id: uuid.UUID
