"""Biometric stream types and per-sample validation (pure: no web or database imports).

Each stream type (``streams.json``) has a UCUM unit, the unit spellings accepted for it,
and a plausible range. ``sleep_stage`` is coded: wake=0, light=1, deep=2, rem=3 (labels or
codes are accepted; the code is stored). ``generic`` takes any unit and has no range.

:func:`check_sample` turns one submitted row into a :class:`Sample` or a
:class:`Rejection` with a stable reason and the field at fault, never the value.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from functools import cache
from importlib import resources
from typing import Any

MAX_SOURCE_LENGTH = 128
# Device clocks drift: a sample up to this far ahead of the server's clock is accepted.
FUTURE_SKEW = timedelta(minutes=5)


class Reason(StrEnum):
    bad_format = "bad_format"
    missing_field = "missing_field"
    unknown_stream = "unknown_stream"
    unknown_unit = "unknown_unit"
    out_of_range = "out_of_range"
    future_time = "future_time"


@dataclass(frozen=True)
class StreamType:
    name: str
    unit: str | None  # UCUM; None: any unit (generic)
    aliases: frozenset[str]
    minimum: float | None
    maximum: float | None
    codes: dict[str, int]
    description: str

    def accepts_unit(self, unit: str) -> bool:
        return self.unit is None or unit == self.unit or unit in self.aliases

    def in_range(self, value: float) -> bool:
        if self.minimum is not None and value < self.minimum:
            return False
        return self.maximum is None or value <= self.maximum


@dataclass(frozen=True)
class Sample:
    stream: str
    ts: datetime
    value: float
    source: str


@dataclass(frozen=True)
class Rejection:
    index: int
    reason: Reason
    field: str | None


@cache
def stream_types() -> dict[str, StreamType]:
    raw = json.loads(resources.files("clarity.biometrics").joinpath("streams.json").read_text())
    return {
        name: StreamType(
            name=name,
            unit=spec["unit"],
            aliases=frozenset(spec["aliases"]),
            minimum=spec["min"],
            maximum=spec["max"],
            codes=dict(spec.get("codes", {})),
            description=spec["description"],
        )
        for name, spec in raw.items()
    }


def parse_time(value: object) -> datetime | None:
    """An ISO 8601 timestamp with a zone (``Z`` or an offset), or an aware datetime (from a
    file reader), as UTC; None otherwise."""
    if isinstance(value, datetime):
        return value.astimezone(UTC) if value.tzinfo is not None else None
    if not isinstance(value, str) or len(value) > 40:
        return None
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        return None
    if parsed.tzinfo is None:
        return None
    return parsed.astimezone(UTC)


def _value(stream: StreamType, raw: object) -> float | None:
    if isinstance(raw, str) and stream.codes:
        code = stream.codes.get(raw.strip().lower())
        return None if code is None else float(code)
    if isinstance(raw, bool) or not isinstance(raw, int | float):
        return None
    value = float(raw)
    if not math.isfinite(value):
        return None
    if stream.codes and value not in stream.codes.values():
        return math.nan  # a number that is no code: out of range
    return value


def check_sample(index: int, row: Any, now: datetime) -> Sample | Rejection:
    """Validate one submitted row ``{stream, ts, value, unit?, source}``."""
    if not isinstance(row, dict):
        return Rejection(index, Reason.bad_format, None)
    for field in ("stream", "ts", "value", "source"):
        if row.get(field) is None:
            return Rejection(index, Reason.missing_field, field)
    name = row["stream"]
    stream = stream_types().get(name) if isinstance(name, str) else None
    if stream is None:
        return Rejection(index, Reason.unknown_stream, "stream")
    ts = parse_time(row["ts"])
    if ts is None:
        return Rejection(index, Reason.bad_format, "ts")
    if ts > now + FUTURE_SKEW:
        return Rejection(index, Reason.future_time, "ts")
    source = row["source"]
    if not isinstance(source, str) or not source.strip() or len(source) > MAX_SOURCE_LENGTH:
        return Rejection(index, Reason.bad_format, "source")
    unit = row.get("unit")
    if unit is not None and (not isinstance(unit, str) or not stream.accepts_unit(unit)):
        return Rejection(index, Reason.unknown_unit, "unit")
    value = _value(stream, row["value"])
    if value is None:
        return Rejection(index, Reason.bad_format, "value")
    if math.isnan(value) or not stream.in_range(value):
        return Rejection(index, Reason.out_of_range, "value")
    return Sample(stream.name, ts, value, source)
