"""Request and response bodies of the consent API."""

from __future__ import annotations

import uuid
from datetime import datetime
from enum import StrEnum

from pydantic import BaseModel, ConfigDict, Field


class ConsentCategory(StrEnum):
    wearable_data = "wearable_data"
    note_analysis = "note_analysis"
    research_use = "research_use"


class ConsentCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    category: ConsentCategory
    granted: bool = Field(description="true grants consent, false withdraws (or refuses) it.")


class ConsentRecordOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: uuid.UUID
    category: ConsentCategory
    granted: bool
    recorded_by: uuid.UUID | None
    recorded_at: datetime


class ConsentState(BaseModel):
    """The decision in force for one category: its latest record, or none (not granted)."""

    category: ConsentCategory
    granted: bool
    recorded_by: uuid.UUID | None = None
    recorded_at: datetime | None = Field(default=None, description="Absent: never recorded.")


class ConsentOverview(BaseModel):
    patient_id: uuid.UUID
    current: list[ConsentState] = Field(description="One entry per category.")
    history: list[ConsentRecordOut] = Field(description="Every record, newest first.")
