"""Request and response bodies of the clinical notes API.

Validation messages never quote the submitted text: note text is PHI.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from enum import StrEnum
from typing import Annotated

from pydantic import AfterValidator, BaseModel, ConfigDict, Field

MAX_NOTE_CHARS = 50_000
MAX_REASON_CHARS = 1_000


def _not_blank(value: str) -> str:
    if not value.strip():
        raise ValueError("must contain more than whitespace")
    return value


NoteText = Annotated[
    str,
    Field(min_length=1, max_length=MAX_NOTE_CHARS, description="The note, 1 to 50,000 chars."),
    AfterValidator(_not_blank),
]
AmendmentReason = Annotated[
    str,
    Field(min_length=1, max_length=MAX_REASON_CHARS, description="Why the note is amended."),
    AfterValidator(_not_blank),
]


class NoteKind(StrEnum):
    progress = "progress"
    intake = "intake"
    assessment = "assessment"
    discharge = "discharge"
    other = "other"


class NoteCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    kind: NoteKind
    text: NoteText


class NoteAmend(BaseModel):
    model_config = ConfigDict(extra="forbid")

    text: NoteText
    reason: AmendmentReason


class NoteOut(BaseModel):
    """A note as it stands: its current version's text."""

    id: uuid.UUID
    patient_id: uuid.UUID
    kind: NoteKind
    author_id: uuid.UUID = Field(description="Who wrote the first version.")
    created_at: datetime
    version: int = Field(description="The current version (1 until amended).")
    text: str
    version_author_id: uuid.UUID = Field(description="Who wrote the current version.")
    version_created_at: datetime


class NotePage(BaseModel):
    items: list[NoteOut]
    total: int
    limit: int
    offset: int


class NoteVersionOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    version: int
    text: str
    amendment_reason: str | None = Field(description="Absent on the first version.")
    author_id: uuid.UUID
    created_at: datetime
