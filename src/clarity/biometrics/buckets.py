"""Time arithmetic for bucketing biometric samples: bucket widths, UTC-offset spans, local
days and epoch grids (pure: no web or database imports).

Sub-day buckets (1 min, 5 min, 1 h) are fixed widths aligned on multiples of the width since
the Unix epoch, in UTC. Day buckets and daily coverage follow the patient's local calendar:
an instant belongs to the local date of ``UTC time + UTC offset at that instant`` (the IANA
time zone database, through :mod:`zoneinfo`), so the day on which daylight saving time
starts has 23 hours and the day it ends 25.

The offset is piecewise constant, so a range is cut into :class:`OffsetSpan` s of constant
offset; SQL then finds an instant's local day as ``floor((epoch + offset) / 86400)`` with the
offset chosen by a ``CASE`` over the span boundaries, the same integer arithmetic on every
backend. Instants are integer microseconds since the epoch ("us") so range ends are exact.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from enum import StrEnum
from zoneinfo import ZoneInfo

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
US = 1_000_000
DAY_SECONDS = 86_400
DAY_US = DAY_SECONDS * US
_EPOCH_ORDINAL = date(1970, 1, 1).toordinal()
# Offsets are probed this often; the tz database has no two transitions this close.
_PROBE_SECONDS = 3600


class Bucket(StrEnum):
    minute = "1min"
    five_minutes = "5min"
    hour = "1h"
    day = "1day"


BUCKET_SECONDS: dict[Bucket, int] = {
    Bucket.minute: 60,
    Bucket.five_minutes: 300,
    Bucket.hour: 3600,
    Bucket.day: DAY_SECONDS,
}


def to_us(moment: datetime) -> int:
    """An aware datetime as integer microseconds since the Unix epoch."""
    return (moment - EPOCH) // timedelta(microseconds=1)


def from_us(us: int) -> datetime:
    return EPOCH + timedelta(microseconds=us)


def ceil_div(a: int, b: int) -> int:
    return -(-a // b)


def local_date(day_number: int) -> date:
    """The date ``day_number`` days after 1970-01-01."""
    return date.fromordinal(_EPOCH_ORDINAL + day_number)


def day_number(day: date) -> int:
    return day.toordinal() - _EPOCH_ORDINAL


@dataclass(frozen=True)
class OffsetSpan:
    """Instants ``[start_us, end_us)`` during which the zone's UTC offset is ``offset_s``."""

    start_us: int
    end_us: int
    offset_s: int


def _offset_at(zone: ZoneInfo, second: int) -> int:
    offset = datetime.fromtimestamp(second, zone).utcoffset()
    return 0 if offset is None else int(offset.total_seconds())


def _transition(zone: ZoneInfo, low: int, high: int) -> int:
    """The first whole second in ``(low, high]`` whose offset differs from ``low``'s."""
    before = _offset_at(zone, low)
    while high - low > 1:
        middle = (low + high) // 2
        if _offset_at(zone, middle) == before:
            low = middle
        else:
            high = middle
    return high


def offset_spans(zone: ZoneInfo, start_us: int, end_us: int) -> list[OffsetSpan]:
    """Cut ``[start_us, end_us)`` where the zone's UTC offset changes (transitions fall on
    whole seconds; each is found by bisection between hourly probes)."""
    if end_us <= start_us:
        return []
    first = start_us // US
    last = ceil_div(end_us, US)
    spans: list[OffsetSpan] = []
    span_start = start_us
    current = _offset_at(zone, first)
    probe = first
    while probe < last:
        following = min(probe + _PROBE_SECONDS, last)
        offset = _offset_at(zone, following)
        if offset != current:
            change = _transition(zone, probe, following)
            if start_us < change * US < end_us:
                spans.append(OffsetSpan(span_start, change * US, current))
                span_start = change * US
            current = _offset_at(zone, change)
            probe = change
        else:
            probe = following
    spans.append(OffsetSpan(span_start, end_us, current))
    return spans


@dataclass(frozen=True)
class LocalDay:
    """The instants of one local date inside a range: usually one piece, ``[start_us,
    end_us)``; ``seconds`` is their total length (86,400 for a whole ordinary day)."""

    day: date
    pieces: tuple[tuple[int, int], ...]

    @property
    def start_us(self) -> int:
        return self.pieces[0][0]

    @property
    def end_us(self) -> int:
        return self.pieces[-1][1]

    @property
    def seconds(self) -> float:
        return sum(end - start for start, end in self.pieces) / US


def local_days(zone: ZoneInfo, start_us: int, end_us: int) -> list[LocalDay]:
    """The local days that ``[start_us, end_us)`` touches, each clipped to the range.

    A day is the set of instants whose local date is that day, so where a zone turns its
    clocks back across midnight the repeated hour belongs to the earlier date."""
    pieces: dict[int, list[tuple[int, int]]] = {}
    for span in offset_spans(zone, start_us, end_us):
        offset_us = span.offset_s * US
        first = (span.start_us + offset_us) // DAY_US
        last = (span.end_us - 1 + offset_us) // DAY_US
        for number in range(first, last + 1):
            piece_start = max(span.start_us, number * DAY_US - offset_us)
            piece_end = min(span.end_us, (number + 1) * DAY_US - offset_us)
            if piece_start < piece_end:
                pieces.setdefault(number, []).append((piece_start, piece_end))
    return [
        LocalDay(local_date(number), tuple(_merged(pieces[number]))) for number in sorted(pieces)
    ]


def _merged(pieces: list[tuple[int, int]]) -> list[tuple[int, int]]:
    merged: list[tuple[int, int]] = []
    for start, end in sorted(pieces):
        if merged and merged[-1][1] == start:
            merged[-1] = (merged[-1][0], end)
        else:
            merged.append((start, end))
    return merged


def day_bounds(zone: ZoneInfo, day: date) -> tuple[datetime, datetime]:
    """Local midnight to the next local midnight, in UTC (23 or 25 hours on DST days). A
    midnight that does not exist (clocks jump forward at 00:00) resolves, with ``fold=0``,
    to the first instant of the day (PEP 495)."""

    def midnight(of: date) -> datetime:
        return datetime.combine(of, time(0), tzinfo=zone).astimezone(UTC)

    return midnight(day), midnight(day + timedelta(days=1))


def epochs_between(start_us: int, end_us: int, epoch_seconds: int) -> int:
    """How many epochs ``k`` (``k * epoch_seconds`` since the Unix epoch) start inside
    ``[start_us, end_us)``."""
    step = epoch_seconds * US
    return max(0, ceil_div(end_us, step) - ceil_div(start_us, step))


def expected_epochs(day: LocalDay, epoch_seconds: int) -> int:
    return sum(epochs_between(start, end, epoch_seconds) for start, end in day.pieces)


def clip(interval: tuple[int, int], day: LocalDay) -> list[tuple[int, int]]:
    """The parts of ``[start_us, end_us)`` that fall inside the day's pieces."""
    start, end = interval
    parts = []
    for piece_start, piece_end in day.pieces:
        low, high = max(start, piece_start), min(end, piece_end)
        if low < high:
            parts.append((low, high))
    return parts


def span_case(spans: list[OffsetSpan]) -> tuple[list[int], list[int]]:
    """For a SQL ``CASE``: the boundaries (epoch microseconds where each span but the last
    ends) and the offsets in seconds, one more than the boundaries."""
    return [span.end_us for span in spans[:-1]], [span.offset_s for span in spans] or [0]
