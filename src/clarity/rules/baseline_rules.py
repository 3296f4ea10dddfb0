"""Episodes of ``baseline_deviation``: a daily metric far from the patient's own baseline.

For each day D (once D's value is final) the test window is the ``of_last`` days ending at
D and the baseline is the ``baseline_days`` days just before that window, so that the days
being judged never dilute their own reference. With ``mu`` and ``s`` the mean and sample
standard deviation (ddof 1) of the baseline's available values, a window day is a *hit*
when its value is below ``mu - sd * s`` (or above ``mu + sd * s``); a missing day is never
a hit. The condition holds on day D when there are at least ``hits`` hits and the baseline
is usable: at least ``min_baseline_days`` values and ``s > 0``. With too little history
nothing fires; the engine does not guess a baseline.

Personal-baseline deviation is a statistical process control idea (a Shewhart chart on the
patient's own series: Shewhart WA, Economic Control of Quality of Manufactured Product,
1931), with "k of the last n" runs rules instead of a single point to ride out one bad
night (Western Electric Statistical Quality Control Handbook, 1956).

A day's result holds from its ``final_at`` until the next day's ``final_at``; consecutive
days on which the condition holds are one episode. Days after the last one in the series
count as missing, so a stopped device cannot keep an old deviation alive.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

from clarity.rules.conditions import BaselineDeviation
from clarity.rules.episodes import Episodes, empty
from clarity.rules.evidence import Evidence, Observation
from clarity.rules.signals import DAY_SECONDS, DailySeries, FloatArray, PatientSignals, from_epoch


def _final_days(
    series: DailySeries, until: float, pad_limit: int
) -> tuple[FloatArray, FloatArray, float]:
    """Values and final times of the days final by ``until``, the calendar extended with
    missing days up to ``until`` (at most ``pad_limit``), and when the next day becomes
    final."""
    count = int(np.searchsorted(series.final_at, until, side="right"))
    values, final = series.values[:count], series.final_at[:count]
    if count < series.final_at.size:
        return values, final, float(series.final_at[count])
    extra = min(pad_limit, int((until - final[-1]) // DAY_SECONDS)) if count else 0
    if extra > 0:
        values = np.concatenate([values, np.full(extra, np.nan)])
        final = np.concatenate([final, final[-1] + DAY_SECONDS * np.arange(1, extra + 1)])
    return values, final, float(final[-1] + DAY_SECONDS)


def _baselines(values: FloatArray, cond: BaselineDeviation) -> tuple[FloatArray, ...]:
    """Per day: baseline count, mean, standard deviation and hit count of its window."""
    n, window, base = values.size, cond.of_last, cond.baseline_days
    padded = np.concatenate([np.full(window + base, np.nan), values])
    rows = sliding_window_view(padded, base)[1 : n + 1]
    valid = ~np.isnan(rows)
    count = valid.sum(axis=1).astype(np.float64)
    with np.errstate(invalid="ignore", divide="ignore"):
        mean = np.where(valid, rows, 0.0).sum(axis=1) / count
        dev = np.where(valid, rows - mean[:, None], 0.0)
        sd = np.sqrt((dev * dev).sum(axis=1) / (count - 1))
    shift = cond.sd * sd
    limit = mean - shift if cond.direction == "below" else mean + shift
    recent = sliding_window_view(np.concatenate([np.full(window - 1, np.nan), values]), window)
    hit = recent < limit[:, None] if cond.direction == "below" else recent > limit[:, None]
    return count, mean, sd, limit, hit.sum(axis=1).astype(np.float64)


@dataclass(frozen=True)
class _DayStats:
    count: int
    mean: float
    sd: float
    limit: float
    hits: int

    def holds(self, cond: BaselineDeviation) -> bool:
        usable = self.count >= cond.min_baseline_days and self.sd > 0
        return usable and self.hits >= cond.hits


def _stats_at(values: FloatArray, day: int, cond: BaselineDeviation) -> _DayStats:
    """The same numbers as :func:`_baselines` for one day, from slices (for "now")."""
    window_start = max(0, day - cond.of_last + 1)
    base = values[max(0, window_start - cond.baseline_days) : window_start]
    base = base[~np.isnan(base)]
    count = int(base.size)
    if count < 2:
        return _DayStats(count, float("nan"), float("nan"), float("nan"), 0)
    mean = float(base.sum()) / count
    dev = base - mean
    sd = math.sqrt(float(dev @ dev) / (count - 1))
    limit = mean - cond.sd * sd if cond.direction == "below" else mean + cond.sd * sd
    recent = values[window_start : day + 1]
    hits = recent < limit if cond.direction == "below" else recent > limit
    return _DayStats(count, mean, sd, limit, int(np.count_nonzero(hits)))


def baseline_episodes(cond: BaselineDeviation, signals: PatientSignals, until: float) -> Episodes:
    series = signals.daily.get(cond.signal)
    if series is None or series.final_at.size == 0:
        return empty()
    values, final, next_final = _final_days(series, until, cond.of_last)
    if values.size == 0:
        return empty()
    count, mean, sd, limit, hits = _baselines(values, cond)
    usable = (count >= cond.min_baseline_days) & (sd > 0)
    holds = usable & (hits >= cond.hits)
    if not holds.any():
        return empty()
    edges = np.diff(np.concatenate([[False], holds, [False]]).astype(np.int8))
    first_days, stop_days = np.flatnonzero(edges == 1), np.flatnonzero(edges == -1)
    following = np.append(final[1:], next_final)

    def explain(k: int, at: float) -> Evidence:
        day = int(np.searchsorted(final, at, side="right")) - 1
        day = min(max(day, int(first_days[k])), int(stop_days[k]) - 1)
        stats = _DayStats(
            int(count[day]), float(mean[day]), float(sd[day]), float(limit[day]), int(hits[day])
        )
        return _evidence(cond, series, values, final, day, stats)

    return Episodes(final[first_days], following[stop_days - 1], explain)


def baseline_now(
    cond: BaselineDeviation, signals: PatientSignals, now: float
) -> tuple[float, Evidence] | None:
    """The episode holding at ``now``: the latest final day, then back day by day only
    while the condition keeps holding (to find when the episode began)."""
    series = signals.daily.get(cond.signal)
    if series is None or series.final_at.size == 0:
        return None
    values, final, _ = _final_days(series, now, cond.of_last)
    day = values.size - 1
    if day < 0:
        return None
    stats = _stats_at(values, day, cond)
    if not stats.holds(cond):
        return None
    first = day
    while first > 0 and _stats_at(values, first - 1, cond).holds(cond):
        first -= 1
    return float(final[first]), _evidence(cond, series, values, final, day, stats)


def _evidence(
    cond: BaselineDeviation,
    series: DailySeries,
    values: FloatArray,
    final: FloatArray,
    day: int,
    stats: _DayStats,
) -> Evidence:
    days = range(max(0, day - cond.of_last + 1), day + 1)
    side = "below" if cond.direction == "below" else "above"
    sign = "-" if cond.direction == "below" else "+"
    return Evidence(
        kind=cond.kind,
        summary=(
            f"{cond.signal} {side} baseline {sign} {cond.sd:g} SD on {stats.hits} of the "
            f"last {cond.of_last} days (baseline mean {stats.mean:.1f}, SD {stats.sd:.1f} over "
            f"{stats.count} days; limit {stats.limit:.1f})"
        ),
        facts={
            "baseline_mean": stats.mean,
            "baseline_sd": stats.sd,
            "baseline_days_used": stats.count,
            "limit": stats.limit,
            "hits": stats.hits,
            "of_last": cond.of_last,
            "day": series.day(day).isoformat(),
        },
        observations=tuple(
            Observation(
                series.day(d).isoformat(),
                from_epoch(float(final[d])),
                None if np.isnan(values[d]) else float(values[d]),
            )
            for d in days
        ),
    )
