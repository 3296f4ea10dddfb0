"""Build one patient's :class:`~clarity.rules.PatientSignals` from the database.

Reading and computing are split so that the (single, on SQLite) connection is not held
during the computation: :func:`load` runs the queries the rules need (see
:class:`clarity.alerts.needs.Needs`) and answers a :class:`Loaded` of plain rows, whose
:meth:`Loaded.signals` computes the daily metrics and is meant for a worker thread.

* streams: ``(ts, value)`` from the time each needs on, up to ``now`` (the newest
  :data:`MAX_STREAM_ROWS` when there are more);
* daily metrics: activity counts from local midnight of the first day needed, through
  :func:`clarity.analytics.service.load_activity` (the actigraphy API's loader); with
  several devices, the one that recorded most in the window;
* assessments: the instrument's latest :data:`MAX_RESPONSES` responses;
* ``last_seen``: ``max(ts)`` per stream, one query per stream so that each is answered from
  the primary key index (patient, stream, ts, ...).
"""

from __future__ import annotations

import datetime as dt
import uuid
from dataclasses import dataclass, field
from typing import Final
from zoneinfo import ZoneInfo

import numpy as np
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from clarity.alerts.daily import daily_series
from clarity.alerts.needs import DAILY_SOURCE_STREAM, Needs
from clarity.analytics.service import load_activity
from clarity.assessments.models import AssessmentResponse
from clarity.biometrics.models import BiometricSample
from clarity.biometrics.streams import stream_types
from clarity.errors import AppError
from clarity.logging import get_logger
from clarity.rules.signals import AssessmentHistory, PatientSignals, Stream, epoch, from_epoch

log = get_logger(__name__)

MAX_STREAM_ROWS: Final = 500_000
MAX_RESPONSES: Final = 1000


@dataclass
class Loaded:
    """Rows read for one patient; :meth:`signals` turns them into engine input."""

    patient_id: uuid.UUID
    organization_id: uuid.UUID | None
    timezone: str
    streams: dict[str, Stream] = field(default_factory=dict)
    activity: tuple[list[dt.datetime], list[float]] = ([], [])
    daily_names: frozenset[str] = frozenset()
    assessments: dict[str, AssessmentHistory] = field(default_factory=dict)
    last_seen: dict[str, float] = field(default_factory=dict)

    def signals(self) -> PatientSignals:
        """CPU work (the daily features): run it in a worker thread."""
        stamps, values = self.activity
        daily = daily_series(stamps, values, self.timezone, self.daily_names)
        return PatientSignals(
            patient_id=self.patient_id,
            organization_id=self.organization_id,
            streams=self.streams,
            daily=daily,
            assessments=self.assessments,
            last_seen=self.last_seen,
        )


def _midnight_before(moment: float, timezone: str) -> dt.datetime:
    local = from_epoch(moment).astimezone(ZoneInfo(timezone))
    return dt.datetime.combine(local.date(), dt.time(0), tzinfo=local.tzinfo)


async def _stream(
    session: AsyncSession, patient_id: uuid.UUID, name: str, since: float, now: dt.datetime
) -> Stream:
    s = BiometricSample
    rows = list(
        await session.execute(
            select(s.ts, s.value)
            .where(
                s.patient_id == patient_id,
                s.stream == name,
                s.ts >= from_epoch(since),
                s.ts <= now,
            )
            .order_by(s.ts.desc(), s.source)
            .limit(MAX_STREAM_ROWS)
        )
    )
    rows.reverse()
    return Stream(
        np.array([epoch(r.ts) for r in rows], dtype=np.float64),
        np.array([r.value for r in rows], dtype=np.float64),
    )


async def _main_source(
    session: AsyncSession, patient_id: uuid.UUID, start: dt.datetime, end: dt.datetime
) -> str | None:
    s = BiometricSample
    counted = func.count()
    row = (
        await session.execute(
            select(s.source, counted)
            .where(
                s.patient_id == patient_id,
                s.stream == DAILY_SOURCE_STREAM,
                s.ts >= start,
                s.ts < end,
            )
            .group_by(s.source)
            .order_by(counted.desc(), s.source)
            .limit(1)
        )
    ).first()
    return None if row is None else str(row[0])


async def _activity(
    session: AsyncSession, patient_id: uuid.UUID, start: dt.datetime, end: dt.datetime
) -> tuple[list[dt.datetime], list[float]]:
    try:
        stamps, values, sources = await load_activity(session, patient_id, start, end)
        if sources > 1:
            source = await _main_source(session, patient_id, start, end)
            stamps, values, _ = await load_activity(session, patient_id, start, end, source)
    except AppError as exc:  # more samples than one analysis takes: no daily metrics
        log.warning("alerts.activity_not_loaded", code=exc.code)
        return [], []
    return stamps, values


async def _assessments(
    session: AsyncSession, patient_id: uuid.UUID, instrument_id: str, now: dt.datetime
) -> AssessmentHistory:
    r = AssessmentResponse
    rows = (
        await session.execute(
            select(r.administered_at, r.total, r.answers)
            .where(
                r.patient_id == patient_id,
                r.instrument_id == instrument_id,
                r.administered_at <= now,
            )
            .order_by(r.administered_at.desc(), r.created_at.desc())
            .limit(MAX_RESPONSES)
        )
    ).all()
    # One response per time (two at one time: the one recorded last stands, as in trends).
    by_time: dict[dt.datetime, tuple[dt.datetime, float, dict[str, int]]] = {}
    for row in rows:
        by_time.setdefault(row.administered_at, (row.administered_at, row.total, row.answers))
    return AssessmentHistory.of(list(by_time.values()))


async def last_seen(
    session: AsyncSession, patient_id: uuid.UUID, streams: set[str] | None, now: dt.datetime
) -> dict[str, float]:
    """Latest sample time per stream (``None``: every known stream), up to ``now``."""
    names = sorted(stream_types()) if streams is None else sorted(streams)
    s = BiometricSample
    seen: dict[str, float] = {}
    for name in names:
        latest = await session.scalar(
            select(func.max(s.ts)).where(s.patient_id == patient_id, s.stream == name, s.ts <= now)
        )
        if latest is not None:
            seen[name] = epoch(latest)
    return seen


async def load(
    session: AsyncSession,
    *,
    patient_id: uuid.UUID,
    organization_id: uuid.UUID | None,
    timezone: str,
    needs: Needs,
    now: dt.datetime,
) -> Loaded:
    """Read what ``needs`` asks for, as of ``now`` (nothing later is read)."""
    loaded = Loaded(patient_id, organization_id, timezone)
    for name, since in needs.streams.items():
        loaded.streams[name] = await _stream(session, patient_id, name, since, now)
    if needs.daily and needs.daily_from is not None:
        start = _midnight_before(needs.daily_from, timezone)
        loaded.activity = await _activity(session, patient_id, start, now)
        loaded.daily_names = frozenset(needs.daily)
    for instrument_id in sorted(needs.instruments):
        loaded.assessments[instrument_id] = await _assessments(
            session, patient_id, instrument_id, now
        )
    if needs.last_seen_any or needs.last_seen:
        wanted = None if needs.last_seen_any else set(needs.last_seen)
        loaded.last_seen = await last_seen(session, patient_id, wanted, now)
    return loaded
