"""Request and response bodies of the biometric API: ingestion, and reading (raw samples,
aggregates, latest values, coverage), with the checks of the reading parameters."""

from __future__ import annotations

import uuid
from datetime import date, datetime, timedelta

from pydantic import BaseModel, Field

from clarity.biometrics.buckets import Bucket
from clarity.biometrics.streams import parse_time, stream_types
from clarity.errors import AppError

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


# --- reading: raw samples, aggregates, latest values, coverage --------------------------

MAX_RANGE_DAYS = 366
DEFAULT_PAGE = 1000
MAX_PAGE = 10_000
MAX_BUCKETS = 50_000
MAX_COVERAGE_EPOCHS = 2_000_000
DEFAULT_GAP_MINUTES = 60
# Epoch length assumed by coverage when the request names none: minute epochs for the
# minute-level streams of wearables and actigraphy, 30 s for sleep stages (the scoring
# epoch of the AASM manual). Other streams have no natural epoch: the request must say.
DEFAULT_EPOCH_SECONDS: dict[str, int] = {
    "activity_counts": 60,
    "steps": 60,
    "heart_rate": 60,
    "sleep_stage": 30,
}


def invalid(errors: list[dict[str, str]]) -> AppError:
    """A 422 shaped like FastAPI's request-validation problem (``errors`` name the field,
    never the value)."""
    fields = ", ".join(e["field"] for e in errors)
    return AppError(
        422,
        "validation_error",
        f"The request is invalid: check {fields}.",
        extra={"errors": errors},
    )


def field_error(field: str, message: str) -> dict[str, str]:
    return {"field": f"query.{field}", "message": message, "type": "value_error"}


def parse_range(start: str, end: str) -> tuple[datetime, datetime]:
    """``start`` and ``end``: ISO 8601 with a zone, ``end`` after ``start``, at most
    :data:`MAX_RANGE_DAYS` apart; a 422 naming every bad field otherwise."""
    errors: list[dict[str, str]] = []
    parsed: dict[str, datetime] = {}
    for name, raw in (("start", start), ("end", end)):
        value = parse_time(raw)
        if value is None:
            errors.append(field_error(name, "must be an ISO 8601 time with a zone"))
        else:
            parsed[name] = value
    if errors:
        raise invalid(errors)
    if parsed["end"] <= parsed["start"]:
        raise invalid([field_error("end", "must be after start")])
    if parsed["end"] - parsed["start"] > timedelta(days=MAX_RANGE_DAYS):
        raise invalid([field_error("end", f"at most {MAX_RANGE_DAYS} days after start")])
    return parsed["start"], parsed["end"]


def parse_stream(stream: str, field: str = "stream") -> str:
    if stream not in stream_types():
        raise invalid([field_error(field, "not a stream of the catalogue")])
    return stream


def parse_streams(streams: str | None) -> list[str]:
    """A comma-separated list of catalogue streams (each once, in the order given); all
    streams of the catalogue when absent."""
    if streams is None or not streams.strip():
        return list(stream_types())
    names = list(dict.fromkeys(part.strip() for part in streams.split(",") if part.strip()))
    for name in names:
        parse_stream(name, "streams")
    return names


def unit_of(stream: str) -> str | None:
    return stream_types()[stream].unit


class SampleOut(BaseModel):
    ts: datetime
    value: float
    source: str


class SamplePage(BaseModel):
    stream: str
    unit: str | None = Field(description="UCUM unit of every value (none for generic).")
    start: datetime
    end: datetime
    items: list[SampleOut] = Field(description="Ordered by time, then source.")
    next_cursor: str | None = Field(
        description="Pass as ``cursor`` for the next page; null on the last page."
    )


class BucketOut(BaseModel):
    start: datetime
    end: datetime = Field(description="Exclusive; a local day may last 23 or 25 hours.")
    count: int
    mean: float
    min: float
    max: float
    sum: float


class AggregatesOut(BaseModel):
    stream: str
    unit: str | None
    bucket: Bucket
    timezone: str = Field(description="The patient's zone: it sets the 1day boundaries.")
    start: datetime
    end: datetime
    buckets: list[BucketOut] = Field(
        description="Buckets holding at least one sample, oldest first; a bucket without "
        "data is absent (see /coverage for what is missing)."
    )


class LatestOut(BaseModel):
    stream: str
    ts: datetime
    value: float
    source: str
    unit: str | None


class GapOut(BaseModel):
    start: datetime
    end: datetime
    minutes: float


class CoverageDayOut(BaseModel):
    date: date
    start: datetime = Field(description="Start of the day, or of the range if later.")
    end: datetime = Field(description="End of the day, or of the range if earlier.")
    hours: float = Field(description="Length covered by this row (23 or 25 on DST days).")
    expected: int = Field(description="Epochs in the day (its length / epoch_seconds).")
    present: int = Field(description="Distinct epochs with at least one sample.")
    fraction: float
    gaps: list[GapOut] = Field(
        description="Runs of missing epochs longer than gap_minutes, cut at the day's ends "
        "(a run that spans midnight appears, in part, in both days)."
    )


class CoverageOut(BaseModel):
    stream: str
    timezone: str
    start: datetime
    end: datetime
    epoch_seconds: int
    gap_minutes: int
    expected: int
    present: int
    fraction: float
    days: list[CoverageDayOut]
