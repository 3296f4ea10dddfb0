"""Daily metrics for baseline rules, from stored activity counts (pure: no web, no DB).

The metrics are the per-day actigraphy features of
:func:`clarity.actigraphy.features.analyse` (the rules' ``DAILY_SIGNALS`` are their names),
computed in the patient's time zone so that a "day" is the patient's local calendar day.
A day's activity value becomes final at the end of that day (24 h after its local
midnight); a night's sleep value, which belongs to the day whose evening it starts, at
noon the next day (36 h): the sleep window ends at local noon.
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Collection, Sequence
from typing import Final
from zoneinfo import ZoneInfo

import numpy as np

from clarity.actigraphy.features import DAY_FEATURE_NAMES, analyse
from clarity.actigraphy.series import EpochSeries, InsufficientData
from clarity.rules.signals import DailySeries, final_at_local

#: Per-day features that describe the night starting that evening.
NIGHT_FEATURES: Final = frozenset(
    DAY_FEATURE_NAMES[DAY_FEATURE_NAMES.index("time_in_bed_minutes") :]
)
DAY_FINAL_HOURS: Final = 24.0
NIGHT_FINAL_HOURS: Final = 36.0


def daily_series(
    stamps: Sequence[dt.datetime],
    values: Sequence[float],
    timezone: str,
    names: Collection[str],
) -> dict[str, DailySeries]:
    """One :class:`DailySeries` per requested metric; empty when the samples cannot be
    analysed (too few, or epochs that do not divide a minute)."""
    if len(stamps) < 2 or not names:
        return {}
    seconds = np.fromiter((int(t.timestamp()) for t in stamps), dtype=np.int64, count=len(stamps))
    try:
        series = EpochSeries.from_utc_seconds(
            seconds, np.asarray(values, dtype=np.float64), timezone=timezone
        )
        analysis = analyse(series)
    except (InsufficientData, ValueError):
        return {}
    zone = ZoneInfo(timezone)
    out: dict[str, DailySeries] = {}
    for name in names:
        per_day = {
            day.date: day.values[name]
            for day in analysis.days
            if name in day.values and math.isfinite(day.values[name])
        }
        hours = NIGHT_FINAL_HOURS if name in NIGHT_FEATURES else DAY_FINAL_HOURS
        out[name] = DailySeries.of(per_day, final_at_local(zone, hours))
    return out
