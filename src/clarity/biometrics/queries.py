"""Reading the sample store: raw pages, aggregates per bucket, latest values, coverage.

Every query is "one patient, one stream, a time range", the leading columns of the primary
key ``(patient_id, stream, ts, source)``, so each is one index range scan (on PostgreSQL in
the month partitions the range touches), and the arithmetic runs in the database:

- raw samples: keyset pagination on ``(ts, source)``, the rest of the key;
- aggregates: count, sum, min and max per bucket (the mean is sum / count); PostgreSQL bins
  with ``date_bin``, SQLite with integer arithmetic on ``strftime('%s', ts)`` (it stores ts
  as ``YYYY-MM-DD HH:MM:SS.ffffff`` text in UTC); local days shift by the UTC offset first,
  chosen by a ``CASE`` over the offset spans of :mod:`clarity.biometrics.buckets`;
- latest: one ``ORDER BY ts DESC LIMIT 1`` index probe per catalogue stream, in one query
  (PostgreSQL: a LATERAL join, so the probe over all month partitions is planned once);
- coverage: distinct epochs per local day, and gaps between consecutive epochs found with
  ``LAG`` (with sentinel epochs at both ends of the range for leading and trailing gaps).

The ORM entity is queried (not the bare table) so the session's tenancy scope applies.
"""

from __future__ import annotations

import base64
import binascii
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import datetime
from typing import Any, NamedTuple
from zoneinfo import ZoneInfo

import orjson
from sqlalchemy import (
    BigInteger,
    ColumnElement,
    Float,
    Integer,
    Select,
    String,
    case,
    cast,
    column,
    func,
    literal,
    literal_column,
    select,
    true,
    tuple_,
    union_all,
    values,
)
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.types import DateTime

from clarity.biometrics.buckets import (
    BUCKET_SECONDS,
    DAY_SECONDS,
    US,
    Bucket,
    LocalDay,
    OffsetSpan,
    ceil_div,
    clip,
    day_bounds,
    day_number,
    expected_epochs,
    from_us,
    local_date,
    local_days,
    offset_spans,
    span_case,
    to_us,
)
from clarity.biometrics.models import BiometricSample as S
from clarity.biometrics.streams import stream_types
from clarity.database import Database

_PG_ORIGIN = "TIMESTAMPTZ '1970-01-01 00:00:00+00'"


@dataclass(frozen=True)
class Window:
    """One patient's stream over ``[start, end)``."""

    patient_id: uuid.UUID
    stream: str
    start: datetime
    end: datetime

    def where(self) -> tuple[ColumnElement[bool], ...]:
        return (
            S.patient_id == self.patient_id,
            S.stream == self.stream,
            S.ts >= self.start,
            S.ts < self.end,
        )


def _is_postgres(session: AsyncSession) -> bool:
    return session.get_bind().dialect.name == "postgresql"


def _int(value: int) -> ColumnElement[int]:
    return literal(value, BigInteger)


def _floor_div(x: ColumnElement[Any], n: int) -> ColumnElement[Any]:
    """``floor(x / n)`` for integers of either sign (SQL's ``/`` and ``%`` truncate)."""
    return (x - ((x % _int(n)) + _int(n)) % _int(n)) // _int(n)


def _sqlite_epoch(ts: Any) -> ColumnElement[int]:
    return cast(func.strftime("%s", ts), Integer)


# --- raw samples --------------------------------------------------------------------------


@dataclass(frozen=True)
class Position:
    """A place in the ``(ts, source)`` order of one stream: the last row already read."""

    ts: datetime
    source: str


def encode_cursor(position: Position) -> str:
    raw = orjson.dumps([to_us(position.ts), position.source])
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def decode_cursor(cursor: str) -> Position | None:
    """The position a cursor names, or None when it is not one of ours."""
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        micros, source = orjson.loads(raw)
    except (binascii.Error, ValueError, TypeError):
        return None
    if not isinstance(micros, int) or not isinstance(source, str):
        return None
    try:
        return Position(from_us(micros), source)
    except OverflowError:
        return None


class SampleRow(NamedTuple):
    ts: datetime
    source: str
    value: float


async def sample_page(
    session: AsyncSession, window: Window, after: Position | None, limit: int
) -> list[SampleRow]:
    """Up to ``limit`` samples after ``after`` in ``(ts, source)`` order."""
    query = select(S.ts, S.source, S.value).where(*window.where())
    if after is not None:
        query = query.where(S.ts >= after.ts, tuple_(S.ts, S.source) > (after.ts, after.source))
    query = query.order_by(S.ts, S.source).limit(limit)
    result = await session.execute(query)
    return [SampleRow(ts, source, value) for ts, source, value in result]


async def sample_pages(
    db: Database,
    organization_id: uuid.UUID,
    window: Window,
    size: int,
    after: Position | None = None,
) -> AsyncIterator[list[SampleRow]]:
    """The window's samples in pages of ``size``, each read in its own short session (so no
    connection is held while the caller sends a page on)."""
    while True:
        async with db.session(organization_id) as session:
            rows = await sample_page(session, window, after, size)
        if rows:
            yield rows
        if len(rows) < size:
            return
        after = Position(rows[-1].ts, rows[-1].source)


# --- aggregates ---------------------------------------------------------------------------


@dataclass(frozen=True)
class BucketRow:
    start: datetime
    end: datetime
    count: int
    sum: float
    min: float
    max: float

    @property
    def mean(self) -> float:
        return self.sum / self.count


def _offset_case(compared: Any, spans: list[OffsetSpan], bound: Any) -> ColumnElement[Any]:
    """The UTC offset (seconds) in force at ``compared``: a CASE over the span ends."""
    ends, offsets = span_case(spans)
    if not ends:
        return _int(offsets[0])
    whens = [
        (compared < bound(end), _int(offset))
        for end, offset in zip(ends, offsets[:-1], strict=True)
    ]
    return case(*whens, else_=_int(offsets[-1]))


def _bucket_key(postgres: bool, width: int, spans: list[OffsetSpan] | None) -> ColumnElement[Any]:
    """The bucket of each sample: on PostgreSQL its start as a timestamp (local days: the
    local midnight written as UTC), on SQLite the same in epoch seconds."""
    if postgres:
        shifted: Any = S.ts
        if spans is not None:
            offset = _offset_case(S.ts, spans, lambda end: literal(from_us(end), S.ts.type))
            shifted = S.ts + offset * literal_column("INTERVAL '1 second'")
        return func.date_bin(
            literal_column(f"INTERVAL '{int(width)} seconds'"),
            shifted,
            literal_column(_PG_ORIGIN),
            type_=DateTime(timezone=True),
        )
    seconds = _sqlite_epoch(S.ts)
    if spans is not None:
        offset = _offset_case(S.ts, spans, lambda end: literal(from_us(end), S.ts.type))
        seconds = seconds + offset
    return _floor_div(seconds, width) * _int(width)


def _key_seconds(key: datetime | int) -> int:
    return int(key.timestamp()) if isinstance(key, datetime) else int(key)


async def aggregates(
    session: AsyncSession, window: Window, bucket: Bucket, zone: ZoneInfo
) -> list[BucketRow]:
    """Count, sum, min and max per bucket, oldest first; buckets without samples are not
    returned. Day buckets run from local midnight to local midnight."""
    width = BUCKET_SECONDS[bucket]
    spans = (
        offset_spans(zone, to_us(window.start), to_us(window.end)) if bucket is Bucket.day else None
    )
    key = _bucket_key(_is_postgres(session), width, spans)
    inner = select(key.label("bucket"), S.value).where(*window.where()).subquery()
    query = select(
        inner.c.bucket,
        func.count(),
        func.sum(inner.c.value),
        func.min(inner.c.value),
        func.max(inner.c.value),
    ).group_by(inner.c.bucket)
    # Sorted here, not in SQL: an ORDER BY would make PostgreSQL sort every sample before
    # grouping instead of sorting the few groups.
    result = await session.execute(query)
    rows = sorted((_key_seconds(k), n, total, low, high) for k, n, total, low, high in result)
    out = []
    for seconds, n, total, low, high in rows:
        if spans is None:
            start, end = from_us(seconds * US), from_us((seconds + width) * US)
        else:
            start, end = day_bounds(zone, local_date(seconds // DAY_SECONDS))
        out.append(BucketRow(start, end, int(n), float(total), float(low), float(high)))
    return out


# --- latest -------------------------------------------------------------------------------


@dataclass(frozen=True)
class LatestRow:
    stream: str
    ts: datetime
    value: float
    source: str


def _newest(patient_id: uuid.UUID, stream: Any) -> Select[datetime, float, str]:
    return (
        select(S.ts, S.value, S.source)
        .where(S.patient_id == patient_id, S.stream == stream)
        .order_by(S.ts.desc(), S.source.desc())
        .limit(1)
    )


async def latest(session: AsyncSession, patient_id: uuid.UUID) -> list[LatestRow]:
    """The newest sample of each catalogue stream that has any (ties on time: the last
    source in sort order): one backward index probe per stream, in one round trip.

    PostgreSQL joins the stream names LATERAL to the probe, so the probe over the month
    partitions is planned once, not once per stream; SQLite has no LATERAL and gets a
    UNION ALL of the probes."""
    names = list(stream_types())
    if _is_postgres(session):
        wanted = values(column("stream", String(32)), name="wanted").data([(n,) for n in names])
        newest = _newest(patient_id, wanted.c.stream).lateral("newest")
        query: Any = select(
            wanted.c.stream, newest.c.ts, newest.c.value, newest.c.source
        ).join_from(wanted, newest, true())
    else:
        query = union_all(
            *(
                select(literal(name, String(32)), newest.c.ts, newest.c.value, newest.c.source)
                for name in names
                for newest in [_newest(patient_id, name).subquery()]
            )
        )
    result = await session.execute(query)
    rows = [LatestRow(stream, ts, value, source) for stream, ts, value, source in result]
    return sorted(rows, key=lambda row: row.stream)


# --- coverage -----------------------------------------------------------------------------


@dataclass(frozen=True)
class Gap:
    start: datetime
    end: datetime

    @property
    def minutes(self) -> float:
        return (self.end - self.start).total_seconds() / 60


@dataclass(frozen=True)
class CoverageDay:
    day: LocalDay
    expected: int
    present: int
    gaps: list[Gap]


def _epoch_index(postgres: bool, epoch_seconds: int) -> ColumnElement[Any]:
    if postgres:
        seconds = func.date_part("epoch", S.ts, type_=Float)
        return cast(func.floor(seconds / literal(float(epoch_seconds), Float)), BigInteger)
    return _floor_div(_sqlite_epoch(S.ts), epoch_seconds)


async def coverage(
    session: AsyncSession,
    window: Window,
    zone: ZoneInfo,
    epoch_seconds: int,
    gap_minutes: int,
) -> list[CoverageDay]:
    """Per local day: expected epochs, epochs with a sample, and the runs of missing epochs
    longer than ``gap_minutes`` (found over the whole range, then cut at each day's ends).

    Epoch ``k`` is ``[k * epoch_seconds, (k + 1) * epoch_seconds)`` since the Unix epoch;
    the range counts the epochs that start inside it."""
    start_us, end_us = to_us(window.start), to_us(window.end)
    step_us = epoch_seconds * US
    first, stop = ceil_div(start_us, step_us), ceil_div(end_us, step_us)
    spans = offset_spans(zone, start_us, end_us)
    days = local_days(zone, start_us, end_us)

    present = (
        select(_epoch_index(_is_postgres(session), epoch_seconds).label("k"))
        .where(
            S.patient_id == window.patient_id,
            S.stream == window.stream,
            S.ts >= from_us(first * step_us),
            S.ts < window.end,
        )
        .distinct()
    )
    # Sentinels just outside the range turn a leading or trailing run into a gap too.
    epochs = union_all(
        present, select(_int(first - 1).label("k")), select(_int(stop).label("k"))
    ).cte("epochs")
    moment = epochs.c.k * _int(epoch_seconds)
    offset = _offset_case(moment, spans, lambda end: _int(end // US))
    per_day = (
        select(_floor_div(moment + offset, DAY_SECONDS).label("day"))
        .where(epochs.c.k >= _int(first), epochs.c.k < _int(stop))
        .subquery()
    )
    lagged = select(
        epochs.c.k, func.lag(epochs.c.k).over(order_by=epochs.c.k).label("previous")
    ).subquery()
    missing = lagged.c.k - lagged.c.previous - _int(1)
    query = union_all(
        select(_int(0), per_day.c.day, func.count()).group_by(per_day.c.day),
        select(_int(1), lagged.c.previous, lagged.c.k).where(
            missing * _int(epoch_seconds) > _int(gap_minutes * 60)
        ),
    )
    counts: dict[int, int] = {}
    runs: list[tuple[int, int]] = []
    for kind, a, b in await session.execute(query):
        if kind == 0:
            counts[int(a)] = int(b)
        else:
            low = start_us if a == first - 1 else (int(a) + 1) * step_us
            high = end_us if b == stop else int(b) * step_us
            runs.append((low, high))
    runs.sort()
    out = []
    for day in days:
        gaps = [Gap(from_us(low), from_us(high)) for run in runs for low, high in clip(run, day)]
        number = day_number(day.day)
        out.append(
            CoverageDay(day, expected_epochs(day, epoch_seconds), counts.get(number, 0), gaps)
        )
    return out
