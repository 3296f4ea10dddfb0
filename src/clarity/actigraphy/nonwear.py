"""Non-wear detection from runs of zero counts, and the valid-day rule.

Both detectors work on minute counts (60-s epochs; :meth:`EpochSeries.resample` first if
needed) of a regular series, and return a boolean mask, true where the device was judged not
worn. Missing epochs (``NaN``) break a run and are never flagged: they are missing already.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike

from clarity.actigraphy.series import BoolArray, EpochSeries, IntArray

__all__ = ["WearDay", "choi_nonwear", "troiano_nonwear", "valid_days"]


def _minute_counts(series: EpochSeries) -> None:
    if series.epoch_seconds != 60:
        raise ValueError(
            f"non-wear rules are defined on 60-s epochs; this series has {series.epoch_seconds}-s"
            " epochs (resample it to 60 s first)"
        )
    if not series.is_regular:
        raise ValueError("non-wear detection needs a regular series: call regularize() first")


def _zero_runs(counts: ArrayLike) -> tuple[IntArray, IntArray]:
    """Start (inclusive) and end (exclusive) of each run of exact zeros."""
    zero = np.asarray(counts) == 0
    edges = np.diff(np.concatenate(([0], zero.astype(np.int8), [0])))
    return np.flatnonzero(edges == 1).astype(np.int64), np.flatnonzero(edges == -1).astype(np.int64)


def _merged_mask(
    size: int,
    starts: IntArray,
    ends: IntArray,
    bridgeable: BoolArray,
    min_length: int,
) -> BoolArray:
    """Join zero runs across the bridgeable gaps; flag joined spans of ``min_length`` or more."""
    mask = np.zeros(size, dtype=np.bool_)
    if starts.size == 0:
        return mask
    group = np.concatenate(([0], np.cumsum(~bridgeable))).astype(np.int64)
    first = np.flatnonzero(np.diff(np.concatenate(([-1], group))))
    span_start = starts[first]
    span_end = np.maximum.reduceat(ends, first)
    long_enough = (span_end - span_start) >= min_length
    delta = np.bincount(span_start[long_enough], minlength=size + 1) - np.bincount(
        span_end[long_enough], minlength=size + 1
    )
    mask[:] = np.cumsum(delta[:size]) > 0
    return mask


def troiano_nonwear(
    series: EpochSeries,
    *,
    min_minutes: int = 60,
    spike_minutes: int = 2,
    spike_max_count: float = 100.0,
) -> BoolArray:
    """Non-wear after Troiano et al. 2008 (NHANES 2003-2004).

    Troiano RP, Berrigan D, Dodd KW, Masse LC, Tilert T, McDowell M. "Physical activity in
    the United States measured by accelerometer." Med Sci Sports Exerc 2008;40(1):181-188.

    Non-wear is an interval of at least ``min_minutes`` consecutive minutes of zero counts,
    allowing interruptions of at most ``spike_minutes`` consecutive minutes with counts
    between 1 and ``spike_max_count``. An interval begins and ends with a zero minute (the
    interruption minutes inside it count towards its length); a count above
    ``spike_max_count``, a longer interruption or a missing minute ends it.
    """
    _minute_counts(series)
    counts = series.counts
    starts, ends = _zero_runs(counts)
    if starts.size == 0:
        return np.zeros(counts.size, dtype=np.bool_)
    gap_start, gap_end = ends[:-1], starts[1:]
    gap_length = gap_end - gap_start
    # a gap between zero runs is bridgeable when short and made only of small counts
    disallowed = np.isnan(counts) | (counts > spike_max_count)
    bad_before = np.concatenate(([0], np.cumsum(disallowed))).astype(np.int64)
    bad_in_gap = bad_before[gap_end] - bad_before[gap_start]
    bridgeable = (gap_length <= spike_minutes) & (bad_in_gap == 0)
    return _merged_mask(counts.size, starts, ends, bridgeable, min_minutes)


def choi_nonwear(
    series: EpochSeries,
    *,
    min_minutes: int = 90,
    spike_minutes: int = 2,
    window_minutes: int = 30,
) -> BoolArray:
    """Non-wear after Choi et al. 2011.

    Choi L, Liu Z, Matthews CE, Buchowski MS. "Validation of accelerometer wear and nonwear
    time classification algorithm." Med Sci Sports Exerc 2011;43(2):357-364.

    Non-wear is an interval of at least ``min_minutes`` consecutive minutes of zero counts,
    allowing an interruption of at most ``spike_minutes`` consecutive minutes of non-zero
    counts (of any size) when the ``window_minutes`` immediately before and after the
    interruption are all zero. A missing minute ends the interval.
    """
    _minute_counts(series)
    counts = series.counts
    starts, ends = _zero_runs(counts)
    if starts.size == 0:
        return np.zeros(counts.size, dtype=np.bool_)
    lengths = ends - starts
    gap_start, gap_end = ends[:-1], starts[1:]
    missing = np.isnan(counts)
    missing_before = np.concatenate(([0], np.cumsum(missing))).astype(np.int64)
    missing_in_gap = missing_before[gap_end] - missing_before[gap_start]
    bridgeable = (
        (gap_end - gap_start <= spike_minutes)
        & (missing_in_gap == 0)
        & (lengths[:-1] >= window_minutes)
        & (lengths[1:] >= window_minutes)
    )
    return _merged_mask(counts.size, starts, ends, bridgeable, min_minutes)


@dataclass(frozen=True)
class WearDay:
    """Wear time of one local calendar day and whether it counts as a valid day."""

    date: dt.date
    wear_hours: float
    valid: bool


def valid_days(
    series: EpochSeries, nonwear: ArrayLike, *, min_wear_hours: float = 10.0
) -> list[WearDay]:
    """Each local day with its wear time; valid when worn at least ``min_wear_hours``.

    Wear time is the observed (not ``NaN``) epochs not flagged in ``nonwear``. Ten hours is
    the usual rule for waking-hour accelerometry (Troiano et al. 2008); 24-h wrist
    protocols often ask for more (e.g. 16 h), hence the parameter.
    """
    flags = np.asarray(nonwear, dtype=np.bool_)
    if flags.shape != series.counts.shape:
        raise ValueError("nonwear must have one value per epoch")
    if min_wear_hours < 0:
        raise ValueError("min_wear_hours must not be negative")
    return [
        WearDay(day.date, day.observed_hours, day.observed_hours >= min_wear_hours)
        for day in series.coverage_by_day(~flags)
    ]
