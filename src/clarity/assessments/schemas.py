"""Request and response bodies of the assessments API.

The instrument catalogue is served with the catalogue's own models
(:class:`clarity.assessments.catalog.Instrument`), so what a client reads is exactly what
scoring uses: items, answer options, severity bands, LOINC codes and sources.
"""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta
from typing import Annotated, Literal

from pydantic import AfterValidator, AwareDatetime, BaseModel, ConfigDict, Field, StrictInt

from clarity.database import utcnow

# Clocks of clients and server differ a little; a time further ahead than this is refused.
CLOCK_SKEW = timedelta(minutes=5)

Direction = Literal["improved", "worsened", "unchanged"]


def _not_in_future(value: datetime) -> datetime:
    if value > utcnow() + CLOCK_SKEW:
        raise ValueError("must not be in the future")
    if value.year < 1900:
        raise ValueError("must be a time after 1900")
    return value


AdministeredAt = Annotated[AwareDatetime, AfterValidator(_not_in_future)]
InstrumentId = Annotated[str, Field(min_length=1, max_length=32, pattern=r"^[a-z0-9]+$")]
ItemKey = Annotated[str, Field(min_length=1, max_length=64)]


class AssessmentSubmit(BaseModel):
    model_config = ConfigDict(extra="forbid")

    instrument_id: InstrumentId = Field(description="Catalogue id, e.g. phq9 (GET /instruments).")
    answers: dict[ItemKey, StrictInt] = Field(
        max_length=200,
        description='Answer value per item id, e.g. {"phq9_1": 2, ...}; values from the '
        "item's answer options.",
    )
    administered_at: AdministeredAt | None = Field(
        default=None,
        description="When the instrument was completed (timezone-aware, not in the future); "
        "defaults to now.",
    )


class SafetyFlagOut(BaseModel):
    code: str
    item_id: str
    message: str


class AssessmentOut(BaseModel):
    id: uuid.UUID
    patient_id: uuid.UUID
    instrument_id: str
    instrument_version: str
    answers: dict[str, int]
    total: int
    derived_score: float | None = Field(
        description="The instrument's published rescaling of the total (WHO-5: percentage)."
    )
    severity: str | None = Field(description="Severity band code, e.g. moderate.")
    severity_label: str | None
    safety_signal: bool
    administered_at: datetime
    recorded_by: uuid.UUID | None
    created_at: datetime


class AssessmentSubmitted(AssessmentOut):
    """A stored response with the scoring detail worked out at submission."""

    safety_flags: list[SafetyFlagOut]
    answered: int
    prorated: bool


class AssessmentPage(BaseModel):
    items: list[AssessmentOut]
    total: int
    limit: int
    offset: int


class TrendPointOut(BaseModel):
    response_id: uuid.UUID
    administered_at: datetime
    total: int
    derived_score: float | None
    severity: str | None
    change_from_previous: int | None
    change_from_baseline: int | None
    direction_from_previous: Direction | None
    direction_from_baseline: Direction | None
    reliable_from_previous: bool | None = Field(
        description="Whether the change reaches the instrument's reliable-change threshold; "
        "null where the instrument publishes none."
    )
    reliable_from_baseline: bool | None


class TrendOut(BaseModel):
    patient_id: uuid.UUID
    instrument_id: str
    higher_is_worse: bool
    reliable_change_threshold: float | None
    reliable_change_scale: Literal["total", "transformed"] | None
    points: list[TrendPointOut] = Field(description="Oldest first; the first is the baseline.")
