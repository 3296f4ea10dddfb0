"""Request and response bodies of the file import API."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated

from pydantic import AfterValidator, BaseModel, ConfigDict, Field

from clarity.biometrics.streams import stream_types

MAX_LISTED_ERRORS = 1000


def _known_stream(value: str) -> str:
    if value not in stream_types():
        raise ValueError(f"must be a stream type: {', '.join(sorted(stream_types()))}")
    return value


StreamName = Annotated[str, AfterValidator(_known_stream)]
ColumnName = Annotated[str, Field(min_length=1, max_length=128)]


class MappingIn(BaseModel):
    """How a generic CSV maps onto streams (``format=generic_csv`` only)."""

    model_config = ConfigDict(extra="forbid")

    timestamp: ColumnName = Field(description="The column holding each row's time.")
    columns: dict[ColumnName, StreamName] = Field(
        min_length=1, max_length=64, description="Value column -> stream type."
    )
    time_format: str = Field(
        default="iso",
        min_length=1,
        max_length=64,
        description="iso, epoch_s, epoch_ms or a strptime pattern such as %d/%m/%Y %H:%M.",
    )
    units: dict[StreamName, Annotated[str, Field(min_length=1, max_length=32)]] = Field(
        default_factory=dict, max_length=64, description="Stream -> unit of its values."
    )
    delimiter: str = Field(default=",", min_length=1, max_length=1)


class RejectedRecord(BaseModel):
    """One rejected record: where it is and why; never its content."""

    record: int = Field(description="The record's position in the file, counting from 1.")
    reason: str = Field(
        description="bad_format, missing_field, unknown_stream, unknown_unit, out_of_range "
        "or future_time."
    )
    field: str | None


class ImportJobSummary(BaseModel):
    id: uuid.UUID
    patient_id: uuid.UUID
    format: str
    status: str = Field(description="queued, running, succeeded, failed or cancelled.")
    rows_read: int
    rows_accepted: int = Field(description="Samples stored by this import.")
    rows_duplicate: int = Field(description="Valid samples that were already stored.")
    rows_rejected: int
    rows_per_second: float = Field(description="Records read per second of running time.")
    progress: float = Field(description="Fraction of the file read, from 0 to 1.")
    file_bytes: int
    created_at: datetime
    started_at: datetime | None
    finished_at: datetime | None


class ImportJobOut(ImportJobSummary):
    options: dict[str, object] = Field(description="timezone, source and mapping as given.")
    file_sha256: str
    bytes_read: int
    chunks_done: int
    seconds_running: float
    heartbeat_at: datetime | None
    cancel_requested: bool
    resumable: bool = Field(description="Whether POST .../resume would continue this job.")
    failure_code: str | None = Field(
        description="Why it failed: format_error, file_unavailable, consent_withdrawn or "
        "interrupted (resumable)."
    )
    failure: str | None = Field(description="What went wrong; never quotes the file.")
    errors: list[RejectedRecord] = Field(
        description=f"The first {MAX_LISTED_ERRORS} rejected records."
    )
    errors_truncated: bool
    skipped: dict[str, int] = Field(
        description="What the file held that maps to no stream, counted by kind (e.g. "
        "Apple Health workouts, FHIR resources of other codes); filled in once the whole "
        "file has been read."
    )
