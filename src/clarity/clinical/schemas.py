"""Request and response bodies of the diagnoses and medication-statement API.

Field-level checks live here, so that a bad value is a 422 naming ``body.<field>``. Checks
that need the catalogue's suggestions or the stored record (a PATCH against what is
already there) are made by :mod:`clarity.clinical.service` with the same error shape.

Error messages never contain a date: the request error handler masks ISO dates (they may
be dates of birth), which would make a message that quotes one unreadable.
"""

from __future__ import annotations

import uuid
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from enum import StrEnum
from typing import Annotated

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    PlainSerializer,
    ValidationInfo,
    field_validator,
)

from clarity.clinical import icd10

EARLIEST_DATE = date(1900, 1, 1)
# Kiribati (UTC+14) is the first place where a new day begins: a date that is "today"
# anywhere on Earth is at most this far ahead of UTC.
_FURTHEST_AHEAD = timedelta(hours=14)
# A medication statement may record a planned start, but not one further ahead than this.
MAX_START_AHEAD_DAYS = 90


def latest_today() -> date:
    """The latest calendar date that is today somewhere (UTC+14)."""
    return (datetime.now(UTC) + _FURTHEST_AHEAD).date()


def _icd10_code(value: str) -> str:
    try:
        return icd10.normalize(value)
    except icd10.InvalidICD10CodeError as exc:
        raise ValueError(exc.reason) from None


def _not_future(value: date) -> date:
    if value < EARLIEST_DATE or value > latest_today():
        raise ValueError("must be a date between 1900 and today")
    return value


def _plausible_start(value: date) -> date:
    if value < EARLIEST_DATE:
        raise ValueError("must not be before 1900")
    if value > latest_today() + timedelta(days=MAX_START_AHEAD_DAYS):
        raise ValueError(f"must not be more than {MAX_START_AHEAD_DAYS} days in the future")
    return value


def _plausible_stop(value: date) -> date:
    if value < EARLIEST_DATE:
        raise ValueError("must not be before 1900")
    return value


def _json_number(value: Decimal) -> int | float:
    """A dose as a JSON number: 50 rather than "50.0000"."""
    return int(value) if value == value.to_integral_value() else float(value)


ICD10Code = Annotated[
    str,
    Field(min_length=1, max_length=16, description="ICD-10-CM code; stored normalised (F32.9)."),
    AfterValidator(_icd10_code),
]
PastDate = Annotated[date, AfterValidator(_not_future)]
StartDate = Annotated[date, AfterValidator(_plausible_start)]
StopDate = Annotated[date, AfterValidator(_plausible_stop)]
Dose = Annotated[
    Decimal,
    # The column is NUMERIC(12, 4): at most 8 digits before the point, 4 after.
    Field(
        gt=0,
        lt=Decimal(10**8),
        max_digits=12,
        decimal_places=4,
        description="Amount per dose, in `unit`.",
    ),
]
DoseOut = Annotated[Decimal, PlainSerializer(_json_number, return_type=int | float)]
CatalogueTerm = Annotated[str, Field(min_length=1, max_length=100)]


class DiagnosisStatus(StrEnum):
    active = "active"
    remission = "remission"
    resolved = "resolved"


def diagnosis_dates_problem(
    status: DiagnosisStatus, onset: date | None, resolved_on: date | None
) -> tuple[str, str] | None:
    """(field, reason) when the dates of a diagnosis contradict each other or its status."""
    if resolved_on is not None and status is not DiagnosisStatus.resolved:
        return "resolved_on", "is only set on a diagnosis whose status is resolved"
    if resolved_on is not None and onset is not None and resolved_on < onset:
        return "resolved_on", "must not be before the onset"
    return None


def medication_dates_problem(start: date, stop: date | None) -> tuple[str, str] | None:
    """(field, reason) when a medication statement stops before it starts."""
    if stop is not None and stop < start:
        return "stop", "must not be before the start"
    return None


class DiagnosisCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    code: ICD10Code
    onset: PastDate | None = None
    status: DiagnosisStatus = DiagnosisStatus.active
    resolved_on: PastDate | None = Field(
        default=None, description="Only with status resolved; not before the onset."
    )

    @field_validator("resolved_on")
    @classmethod
    def _consistent_dates(cls, value: date | None, info: ValidationInfo) -> date | None:
        status = info.data.get("status")
        if status is None:
            return value  # the status itself is invalid and reported
        found = diagnosis_dates_problem(status, info.data.get("onset"), value)
        if found is not None:
            raise ValueError(found[1])
        return value


class DiagnosisUpdate(BaseModel):
    """Only the fields sent change. Leaving ``resolved`` clears ``resolved_on`` unless it is
    sent as well (which is then refused)."""

    model_config = ConfigDict(extra="forbid")

    status: DiagnosisStatus | None = None
    onset: PastDate | None = None
    resolved_on: PastDate | None = None

    @field_validator("status")
    @classmethod
    def _status_not_null(cls, value: DiagnosisStatus | None) -> DiagnosisStatus:
        if value is None:
            raise ValueError("may be changed but not removed")
        return value


class DiagnosisOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: uuid.UUID
    patient_id: uuid.UUID
    code: str
    mental_behavioural: bool = Field(
        description="ICD-10-CM chapter 5 (F01-F99); psychiatry also uses codes outside it."
    )
    onset: date | None
    status: DiagnosisStatus
    resolved_on: date | None
    recorded_by: uuid.UUID | None
    created_at: datetime
    updated_at: datetime


class MedicationStatementCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    drug: CatalogueTerm = Field(description="Generic, synonym or brand name from the catalogue.")
    dose: Dose
    unit: CatalogueTerm = Field(description="A catalogue dose unit (mg, mcg, mL, tablet...).")
    frequency: CatalogueTerm = Field(description="A catalogue frequency (daily, BID, QHS...).")
    start: StartDate
    stop: StopDate | None = Field(default=None, description="Not before the start.")
    prescriber: str | None = Field(default=None, min_length=1, max_length=200)

    @field_validator("stop")
    @classmethod
    def _stop_after_start(cls, value: date | None, info: ValidationInfo) -> date | None:
        start = info.data.get("start")
        if start is not None:
            found = medication_dates_problem(start, value)
            if found is not None:
                raise ValueError(found[1])
        return value


class MedicationStatementUpdate(BaseModel):
    """Only the fields sent change; ``"stop": null`` takes a stop date back."""

    model_config = ConfigDict(extra="forbid")

    stop: StopDate | None = None
    dose: Dose | None = None
    frequency: CatalogueTerm | None = None

    @field_validator("dose", "frequency")
    @classmethod
    def _not_null(cls, value: object) -> object:
        if value is None:
            raise ValueError("may be changed but not removed")
        return value


class MedicationStatementOut(BaseModel):
    id: uuid.UUID
    patient_id: uuid.UUID
    drug: str = Field(description="Generic name from the catalogue.")
    drug_class: str
    rxcui: str | None = Field(description="RxNorm ingredient RxCUI; null where not verified.")
    dose: DoseOut
    unit: str
    frequency: str
    frequency_display: str
    start: date
    stop: date | None
    active: bool = Field(description="Started and not stopped, as of today in the patient's zone.")
    prescriber: str | None
    recorded_by: uuid.UUID | None
    created_at: datetime
    updated_at: datetime


class CatalogueMedicationOut(BaseModel):
    generic_name: str
    drug_class: str
    rxcui: str | None
    brands: list[str]
    synonyms: list[str]
    matched: str = Field(description="The name that matched the query.")


class CatalogueTermOut(BaseModel):
    code: str = Field(description="What a statement stores and may send.")
    display: str


class CatalogueSearchOut(BaseModel):
    """Matching medications, with the units and frequencies a statement may use."""

    items: list[CatalogueMedicationOut]
    units: list[CatalogueTermOut]
    frequencies: list[CatalogueTermOut]
