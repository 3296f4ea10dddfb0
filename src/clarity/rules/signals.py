"""What the rule engine reads about one patient: plain dataclasses over numpy arrays.

The alert service builds a :class:`PatientSignals` from the database; tests build them by
hand. Times are UTC epoch seconds (``float64``) so that the engine can search and compare
whole arrays at once. Every array is sorted by time; constructors check that, because an
unsorted series would silently give wrong holds and gaps.

* :class:`Stream`: one biometric stream's readings ``(ts, value)``.
* :class:`DailySeries`: one value per local calendar day (``NaN`` when there is none) and
  ``final_at``, when that day's value became final (for a night: the next morning). A day's
  value counts from its ``final_at`` on, never earlier.
* :class:`AssessmentHistory`: an instrument's responses: time, total and the answer to each
  item (``NaN`` for an item left unanswered).
* ``last_seen``: the latest sample time per stream, which may predate the loaded window
  (it tells a data-gap rule when data stopped even if no reading was loaded).
"""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Final

import numpy as np
import numpy.typing as npt

FloatArray = npt.NDArray[np.float64]
DAY_SECONDS: Final = 86400.0

#: Daily metrics a baseline rule may use: the per-day actigraphy features of
#: :mod:`clarity.actigraphy.features` (``DAY_FEATURE_NAMES``; a unit test keeps the two
#: equal), listed here so that validating a rule does not import scipy.
DAILY_SIGNALS: Final = frozenset(
    {
        "wear_hours",
        "total_counts",
        "mean_counts",
        "sd_counts",
        "zero_epochs_percent",
        "sedentary_minutes",
        "active_minutes",
        "l5",
        "l5_onset_hours",
        "m10",
        "m10_onset_hours",
        "relative_amplitude",
        "time_in_bed_minutes",
        "total_sleep_minutes",
        "sleep_efficiency",
        "sleep_onset_latency_minutes",
        "waso_minutes",
        "awakenings",
        "sleep_midpoint_hours",
    }
)


def epoch(moment: dt.datetime) -> float:
    """UTC epoch seconds of an aware datetime; a naive one is refused (its zone is unknown)."""
    if moment.tzinfo is None:
        raise ValueError("datetimes given to the rule engine must carry a time zone")
    return moment.timestamp()


def from_epoch(seconds: float) -> dt.datetime:
    return dt.datetime.fromtimestamp(seconds, tz=dt.UTC)


def _times(values: Iterable[float] | FloatArray, what: str) -> FloatArray:
    array = np.ascontiguousarray(values, dtype=np.float64)
    if array.ndim != 1:
        raise ValueError(f"{what}: times must be one-dimensional")
    if array.size and not np.isfinite(array).all():
        raise ValueError(f"{what}: times must be finite")
    if array.size > 1 and bool((np.diff(array) < 0).any()):
        raise ValueError(f"{what}: times must be sorted ascending")
    return array


def _values(values: Iterable[float] | FloatArray, size: int, what: str) -> FloatArray:
    array = np.ascontiguousarray(values, dtype=np.float64)
    if array.shape != (size,):
        raise ValueError(f"{what}: one value per time is required")
    return array


@dataclass(frozen=True, eq=False)
class Stream:
    ts: FloatArray
    values: FloatArray

    def __post_init__(self) -> None:
        object.__setattr__(self, "ts", _times(self.ts, "stream"))
        object.__setattr__(self, "values", _values(self.values, self.ts.size, "stream"))

    @classmethod
    def of(cls, readings: Iterable[tuple[dt.datetime, float]]) -> Stream:
        pairs = sorted((epoch(t), float(v)) for t, v in readings)
        return cls(np.array([p[0] for p in pairs]), np.array([p[1] for p in pairs]))

    def upto(self, now: float) -> Stream:
        """The readings taken at or before ``now`` (views, no copy)."""
        end = int(np.searchsorted(self.ts, now, side="right"))
        return self if end == self.ts.size else Stream(self.ts[:end], self.values[:end])


@dataclass(frozen=True, eq=False)
class DailySeries:
    """Consecutive calendar days from ``first_day``; use :meth:`of` for sparse input."""

    first_day: dt.date
    values: FloatArray
    final_at: FloatArray

    def __post_init__(self) -> None:
        object.__setattr__(self, "final_at", _times(self.final_at, "daily series"))
        size = self.final_at.size
        object.__setattr__(self, "values", _values(self.values, size, "daily series"))

    @classmethod
    def of(
        cls,
        values: Mapping[dt.date, float],
        final_at: Callable[[dt.date], dt.datetime],
    ) -> DailySeries:
        """Fill the calendar from the first to the last day (a day without a value is
        ``NaN``); ``final_at(day)`` says when each day's value became final."""
        if not values:
            return cls(dt.date(1970, 1, 1), np.empty(0), np.empty(0))
        first = min(values)
        count = (max(values) - first).days + 1
        out = np.full(count, np.nan)
        for day, value in values.items():
            out[(day - first).days] = float(value)
        days = (first + dt.timedelta(days=n) for n in range(count))
        return cls(first, out, np.array([epoch(final_at(day)) for day in days]))

    def day(self, index: int) -> dt.date:
        return self.first_day + dt.timedelta(days=index)


def final_at_local(zone: dt.tzinfo, hours: float) -> Callable[[dt.date], dt.datetime]:
    """``final_at`` for :meth:`DailySeries.of`: ``hours`` after local midnight starting the
    day, in ``zone`` (24 for a day's activity, 36 for the night starting that evening)."""

    def final(day: dt.date) -> dt.datetime:
        start = dt.datetime.combine(day, dt.time(0), tzinfo=zone)
        return start + dt.timedelta(hours=hours)

    return final


@dataclass(frozen=True, eq=False)
class AssessmentHistory:
    submitted_at: FloatArray
    totals: FloatArray
    items: Mapping[str, FloatArray] = field(default_factory=dict)

    def __post_init__(self) -> None:
        object.__setattr__(self, "submitted_at", _times(self.submitted_at, "assessments"))
        size = self.submitted_at.size
        object.__setattr__(self, "totals", _values(self.totals, size, "assessments"))
        items = {k: _values(v, size, f"assessments item {k}") for k, v in self.items.items()}
        object.__setattr__(self, "items", items)

    @classmethod
    def of(
        cls, responses: Sequence[tuple[dt.datetime, float, Mapping[str, int]]]
    ) -> AssessmentHistory:
        """From ``(administered_at, total, answers)`` rows, in any order."""
        rows = sorted(responses, key=lambda r: epoch(r[0]))
        item_ids = sorted({k for _, _, answers in rows for k in answers})
        return cls(
            np.array([epoch(r[0]) for r in rows]),
            np.array([float(r[1]) for r in rows]),
            {k: np.array([float(r[2].get(k, np.nan)) for r in rows]) for k in item_ids},
        )


@dataclass(frozen=True, eq=False)
class PatientSignals:
    patient_id: uuid.UUID
    organization_id: uuid.UUID | None = None
    streams: Mapping[str, Stream] = field(default_factory=dict)
    daily: Mapping[str, DailySeries] = field(default_factory=dict)
    assessments: Mapping[str, AssessmentHistory] = field(default_factory=dict)
    last_seen: Mapping[str, float] = field(default_factory=dict)
