"""Nights: main rest interval, per-night sleep metrics and the Sleep Regularity Index.

Inputs are plain numpy arrays of 1-minute epochs: activity counts (``NaN`` missing) and
a sleep/wake series from :mod:`clarity.actigraphy.sleep` (1 sleep, 0 wake, ``NaN``
unknown), plus the UTC instant of the first epoch. Epoch ``i`` covers
``[start + i min, start + (i + 1) min)``.

Main rest interval (one per night, searched in the local noon-to-noon window) follows
the block-and-gap logic of the HDCZA heuristic, van Hees VT, Sabia S, Jones SE, et al.
"Estimating sleep parameters using an accelerometer without sleep diary." Sci Rep
2018;8:12975, doi:10.1038/s41598-018-31266-z: take a 5-minute rolling median of the
signal, mark epochs below a threshold, keep blocks of at least 30 minutes, merge blocks
separated by gaps of less than 60 minutes, and take the longest merged block. HDCZA
thresholds the change in arm z-angle of raw accelerometry; we have only counts, so we
threshold the rolling median of counts at the Actiware "mobile" level (an epoch is
mobile when its count is at least the number of 15-s intervals in it, 4 per minute;
Actiwatch Communication and Sleep Analysis Software manual, as quoted in pyActigraphy).
This is an adaptation, not a validated replica of HDCZA; a diary interval can be passed
to :func:`night_metrics` instead.

Sleep Regularity Index: Phillips AJK, Clerx WM, O'Brien CS, et al. "Irregular sleep/wake
patterns are associated with poorer academic performance and delayed circadian and
sleep/wake timing." Sci Rep 2017;7:3216, doi:10.1038/s41598-017-03171-4.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta, tzinfo
from typing import Final

import numpy as np
import numpy.typing as npt
from numpy.lib.stride_tricks import sliding_window_view

from clarity.actigraphy.sleep import FloatArray, as_counts, as_states, runs_of

EPOCH: Final = timedelta(minutes=1)
MINUTES_PER_DAY: Final = 1440


class InsufficientDataError(ValueError):
    """Too much of the data needed for a metric is missing; the message says what."""


# --------------------------------------------------------------------------- rest interval


def _rolling_nanmedian(padded: FloatArray, width: int) -> FloatArray:
    """``numpy.nanmedian`` of every window ``padded[t : t + width]`` (``NaN`` if all missing).

    Each window is sorted (``NaN`` sorts last); the median of its ``k`` known values is the
    middle one, or the mean of the two middle ones when ``k`` is even.
    """
    ordered = np.sort(sliding_window_view(padded, width), axis=1)
    missing_so_far = np.concatenate(([0], np.cumsum(np.isnan(padded), dtype=np.int64)))
    known = width - (missing_so_far[width:] - missing_so_far[:-width])
    rows = np.arange(ordered.shape[0])
    low = ordered[rows, np.maximum((known - 1) // 2, 0)]
    high = ordered[rows, known // 2]
    return np.where(known > 0, (low + high) / 2, np.nan)


def detect_rest_interval(
    counts: npt.ArrayLike,
    *,
    immobile_below: float = 4.0,
    median_minutes: int = 5,
    min_block_minutes: int = 30,
    max_gap_minutes: int = 60,
) -> tuple[int, int] | None:
    """Longest rest block ``(start, end)`` (end exclusive) in ``counts``, or ``None``.

    HDCZA-like (van Hees et al. 2018, module docstring): rolling ``median_minutes``
    median of counts (centred; missing epochs ignored, all-missing windows are not
    rest) below ``immobile_below``; blocks of at least ``min_block_minutes``; blocks
    whose gap is shorter than ``max_gap_minutes`` merged; the longest block returned
    (the earliest on a tie). Gaps may contain missing epochs; callers check how much.
    """
    x = as_counts(counts)
    if median_minutes < 1 or median_minutes % 2 == 0:
        raise ValueError("median_minutes must be a positive odd number")
    if x.size == 0:
        return None
    half = median_minutes // 2
    padded = np.concatenate([np.full(half, np.nan), x, np.full(half, np.nan)])
    median = _rolling_nanmedian(padded, median_minutes)
    with np.errstate(invalid="ignore"):
        rest = np.where(median < immobile_below, 1.0, 0.0)
    r = runs_of(rest)
    keep = (r.value == 1) & (r.length >= min_block_minutes)
    if not keep.any():
        return None
    starts = r.start[keep]
    ends = starts + r.length[keep]
    gaps = starts[1:] - ends[:-1]
    new_group = np.concatenate([[True], gaps >= max_gap_minutes])
    first = np.flatnonzero(new_group)
    group_start = starts[first]
    group_end = np.maximum.reduceat(ends, first)
    best = int(np.argmax(group_end - group_start))
    return int(group_start[best]), int(group_end[best])


# --------------------------------------------------------------------------- metrics


@dataclass(frozen=True, slots=True)
class SleepPeriodMetrics:
    """Sleep metrics of one rest interval, in minutes (1-minute epochs).

    ``sleep_onset``/``sleep_end`` are epoch indices (``sleep_end`` exclusive: the epoch
    after the last sleep epoch); ``None`` when the interval holds no sleep, and then
    latency, WASO, awakenings and midpoint are ``None`` too.
    """

    rest_start: int
    rest_end: int
    time_in_bed: int
    missing: int
    total_sleep_time: int
    sleep_efficiency: float
    sleep_onset: int | None
    sleep_end: int | None
    sleep_onset_latency: int | None
    waso: int | None
    awakenings: int | None
    midpoint: float | None


def night_metrics(
    states: npt.ArrayLike,
    rest_interval: tuple[int, int],
    *,
    min_awakening: int = 1,
    max_missing_fraction: float = 0.1,
) -> SleepPeriodMetrics:
    """Sleep metrics of ``states[start:end]``, the rest (time-in-bed) interval.

    * time in bed: ``end - start`` minutes;
    * total sleep time: sleep epochs in the interval;
    * sleep onset: first sleep epoch in the interval; sleep end: the epoch after the
      last sleep epoch (final awakening);
    * sleep onset latency: ``onset - start``;
    * WASO: wake epochs between sleep onset and sleep end;
    * awakenings: wake bouts (contiguous wake epochs; an unknown epoch splits a bout) of
      at least ``min_awakening`` epochs between sleep onset and sleep end;
    * sleep efficiency: total sleep time / known (non-missing) epochs in the interval;
    * midpoint: ``(onset + sleep end) / 2``, as a fractional epoch index.

    Raises :class:`InsufficientDataError` when more than ``max_missing_fraction`` of the
    interval is unknown, and ``ValueError`` for an empty or out-of-range interval.
    """
    s = as_states(states)
    start, end = rest_interval
    if not 0 <= start < end <= s.size:
        raise ValueError(f"rest interval {rest_interval} outside 0..{s.size} or empty")
    if min_awakening < 1:
        raise ValueError("min_awakening must be at least 1 epoch")
    seg = s[start:end]
    tib = end - start
    missing = int(np.isnan(seg).sum())
    if missing > max_missing_fraction * tib:
        raise InsufficientDataError(
            f"{missing} of {tib} minutes of the rest interval are missing "
            f"(more than {max_missing_fraction:.0%})"
        )
    sleep_idx = np.flatnonzero(seg == 1.0)
    tst = int(sleep_idx.size)
    efficiency = tst / (tib - missing)
    if tst == 0:
        return SleepPeriodMetrics(
            start, end, tib, missing, 0, efficiency, None, None, None, None, None, None
        )
    onset = int(sleep_idx[0])
    sleep_end = int(sleep_idx[-1]) + 1
    period = seg[onset:sleep_end]
    waso = int((period == 0.0).sum())
    r = runs_of(period)
    awakenings = int(((r.value == 0) & (r.length >= min_awakening)).sum())
    return SleepPeriodMetrics(
        rest_start=start,
        rest_end=end,
        time_in_bed=tib,
        missing=missing,
        total_sleep_time=tst,
        sleep_efficiency=efficiency,
        sleep_onset=start + onset,
        sleep_end=start + sleep_end,
        sleep_onset_latency=onset,
        waso=waso,
        awakenings=awakenings,
        midpoint=start + (onset + sleep_end) / 2,
    )


# --------------------------------------------------------------------------- nights


@dataclass(frozen=True, slots=True)
class Night:
    """One local noon-to-noon night. Times are aware datetimes in the local zone.

    When ``insufficient`` is true, ``reason`` says why and no metric is given.
    Durations are minutes; ``sleep_midpoint_hours`` is the local clock time of the
    sleep midpoint in hours after midnight, ``[0, 24)``.
    """

    night_of: date
    window_start: datetime
    window_end: datetime
    valid_fraction: float
    insufficient: bool
    reason: str | None = None
    rest_start: datetime | None = None
    rest_end: datetime | None = None
    metrics: SleepPeriodMetrics | None = None
    sleep_onset: datetime | None = None
    sleep_end: datetime | None = None
    sleep_midpoint: datetime | None = None
    sleep_midpoint_hours: float | None = None


def _utc(start: datetime) -> datetime:
    return start.replace(tzinfo=UTC) if start.tzinfo is None else start.astimezone(UTC)


def _index_at(instant: datetime, start_utc: datetime) -> int:
    """First epoch starting at or after ``instant``."""
    return math.ceil((instant - start_utc) / EPOCH)


def summarize_nights(
    counts: npt.ArrayLike,
    states: npt.ArrayLike,
    start: datetime,
    *,
    tz: tzinfo = UTC,
    min_valid_fraction: float = 0.75,
    max_missing_in_rest: float = 0.1,
    min_awakening: int = 1,
    immobile_below: float = 4.0,
    min_block_minutes: int = 30,
    max_gap_minutes: int = 60,
    max_rest_minutes: int = 16 * 60,
) -> list[Night]:
    """Per-night rest interval and sleep metrics over local noon-to-noon windows.

    ``start`` is the first epoch's instant (naive means UTC); ``tz`` gives local clock
    time (a ``ZoneInfo`` or a fixed ``timezone(timedelta(hours=...))``). For a
    recording whose timestamps are local clock times without a zone, pass them naive
    with the default ``tz=UTC``. A night is listed for every window the recording
    touches; it is flagged ``insufficient`` when under ``min_valid_fraction`` of its
    window has activity data (partial first/last days included), when no rest interval
    is found, or when more than ``max_missing_in_rest`` of the rest interval has no
    sleep/wake score, or when the rest interval is longer than ``max_rest_minutes``
    (a day of stillness is far more likely an unworn device than sleep: mark non-wear
    epochs as missing before calling this), or when the rest interval reaches the edge
    of the window (noon) or of the recording, where its true start or end is unseen.
    """
    x = as_counts(counts)
    s = as_states(states)
    if x.size != s.size:
        raise ValueError("counts and states must have the same length")
    if not 0 < min_valid_fraction <= 1:
        raise ValueError("min_valid_fraction must be in (0, 1]")
    n = x.size
    if n == 0:
        return []
    start_utc = _utc(start)
    first_local = start_utc.astimezone(tz)
    last_local = (start_utc + n * EPOCH).astimezone(tz)
    day = first_local.date() - timedelta(days=1)
    valid = ~np.isnan(x)
    nights: list[Night] = []
    while True:
        w0 = datetime.combine(day, time(12), tzinfo=tz)
        w1 = datetime.combine(day + timedelta(days=1), time(12), tzinfo=tz)
        if w1 <= first_local:
            day += timedelta(days=1)
            continue
        if w0 >= last_local:
            break
        i0, i1 = _index_at(w0, start_utc), _index_at(w1, start_utc)
        lo, hi = max(i0, 0), min(i1, n)
        fraction = float(valid[lo:hi].sum()) / (i1 - i0)
        nights.append(
            _one_night(
                x[lo:hi],
                s[lo:hi],
                lo,
                start_utc,
                tz,
                fraction,
                (day, w0, w1),
                min_valid_fraction=min_valid_fraction,
                max_missing_in_rest=max_missing_in_rest,
                min_awakening=min_awakening,
                immobile_below=immobile_below,
                min_block_minutes=min_block_minutes,
                max_gap_minutes=max_gap_minutes,
                max_rest_minutes=max_rest_minutes,
            )
        )
        day += timedelta(days=1)
    return nights


def _one_night(
    x: FloatArray,
    s: FloatArray,
    offset: int,
    start_utc: datetime,
    tz: tzinfo,
    fraction: float,
    window: tuple[date, datetime, datetime],
    *,
    min_valid_fraction: float,
    max_missing_in_rest: float,
    min_awakening: int,
    immobile_below: float,
    min_block_minutes: int,
    max_gap_minutes: int,
    max_rest_minutes: int,
) -> Night:
    night_of, w0, w1 = window

    def flag(reason: str) -> Night:
        return Night(night_of, w0, w1, fraction, True, reason)

    if fraction < min_valid_fraction:
        return flag(
            f"only {fraction:.0%} of the noon-to-noon window has data "
            f"(at least {min_valid_fraction:.0%} needed)"
        )
    rest = detect_rest_interval(
        x,
        immobile_below=immobile_below,
        min_block_minutes=min_block_minutes,
        max_gap_minutes=max_gap_minutes,
    )
    if rest is None:
        return flag("no rest interval found")
    if rest[0] == 0 or rest[1] == x.size:
        return flag("rest interval runs into the edge of the noon-to-noon window or recording")
    if rest[1] - rest[0] > max_rest_minutes:
        return flag(
            f"rest interval of {rest[1] - rest[0]} minutes is longer than {max_rest_minutes}: "
            "probably non-wear"
        )
    try:
        m = night_metrics(
            s, rest, min_awakening=min_awakening, max_missing_fraction=max_missing_in_rest
        )
    except InsufficientDataError as exc:
        return flag(str(exc))

    def at(index: float) -> datetime:
        return (start_utc + (offset + index) * EPOCH).astimezone(tz)

    midpoint = at(m.midpoint) if m.midpoint is not None else None
    hours = None
    if midpoint is not None:
        clock = midpoint.timetz()
        hours = clock.hour + clock.minute / 60 + (clock.second + clock.microsecond / 1e6) / 3600
    return Night(
        night_of=night_of,
        window_start=w0,
        window_end=w1,
        valid_fraction=fraction,
        insufficient=False,
        rest_start=at(m.rest_start),
        rest_end=at(m.rest_end),
        metrics=m,
        sleep_onset=at(m.sleep_onset) if m.sleep_onset is not None else None,
        sleep_end=at(m.sleep_end) if m.sleep_end is not None else None,
        sleep_midpoint=midpoint,
        sleep_midpoint_hours=hours,
    )


# --------------------------------------------------------------------------- SRI


def sleep_regularity_index(
    states: npt.ArrayLike,
    *,
    epochs_per_day: int = MINUTES_PER_DAY,
    min_pairs: int | None = None,
) -> float:
    """Sleep Regularity Index (Phillips et al. 2017), from -100 to 100.

    ``SRI = -100 + 200 / (M (N - 1)) * sum_j sum_i delta(s[i, j], s[i + 1, j])`` with
    ``delta = 1`` when the state (sleep/wake) at epoch ``j`` of day ``i`` equals the state
    24 h later: 100 for identical days, about 0 for random states, -100 when every
    epoch flips. Pairs where either epoch is unknown (``NaN``) are left out, so the sum
    runs over the valid pairs and is divided by their number.

    Raises :class:`InsufficientDataError` when fewer than ``min_pairs`` valid pairs
    exist (default: one day's worth, ``epochs_per_day``).
    """
    s = as_states(states)
    if epochs_per_day < 1:
        raise ValueError("epochs_per_day must be positive")
    needed = epochs_per_day if min_pairs is None else min_pairs
    today, tomorrow = s[:-epochs_per_day], s[epochs_per_day:]
    both = ~np.isnan(today) & ~np.isnan(tomorrow)
    pairs = int(both.sum())
    if pairs == 0 or pairs < needed:
        raise InsufficientDataError(
            f"{pairs} epoch pairs 24 h apart with both states known; {needed} needed"
        )
    same = float((today[both] == tomorrow[both]).mean())
    return 200.0 * same - 100.0
