"""Request and response bodies of the biometric ingestion API."""

from __future__ import annotations

import uuid

from pydantic import BaseModel, Field

MAX_SAMPLES = 100_000
MAX_LISTED_REJECTIONS = 1000


class SampleIn(BaseModel):
    """One sample. ``ts``: ISO 8601 with a zone. ``sleep_stage`` values may be labels
    (wake, light, deep, rem) or their codes (0, 1, 2, 3)."""

    stream: str = Field(description="A stream type, e.g. heart_rate, steps, sleep_stage.")
    ts: str = Field(description="ISO 8601 timestamp with a zone, e.g. 2026-01-05T09:30:00Z.")
    value: float | str
    unit: str | None = Field(default=None, description="UCUM unit or an accepted alias.")
    source: str = Field(max_length=128, description="Device or app that measured it.")


class BatchIn(BaseModel):
    """A JSON batch. NDJSON (``application/x-ndjson``) carries the same: a first line
    ``{"client_batch_id": ...}``, then one sample per line."""

    client_batch_id: str = Field(min_length=1, max_length=128)
    samples: list[SampleIn] = Field(max_length=MAX_SAMPLES)


class RejectionOut(BaseModel):
    index: int = Field(
        description="The sample's position in the batch, from 0 (NDJSON: the line after the "
        "header line is 0)."
    )
    reason: str = Field(
        description="bad_format, missing_field, unknown_stream, unknown_unit, "
        "out_of_range or future_time."
    )
    field: str | None


class Receipt(BaseModel):
    batch_id: uuid.UUID
    client_batch_id: str
    received: int
    accepted: int = Field(description="Samples stored by this batch.")
    duplicate: int = Field(description="Valid samples already stored (same stream, ts, source).")
    rejected: int
    rejections: list[RejectionOut] = Field(
        description=f"The first {MAX_LISTED_REJECTIONS} rejected rows."
    )
    rejections_truncated: bool = False
    replayed: bool = Field(
        default=False, description="True when this batch id was already received: nothing new."
    )
