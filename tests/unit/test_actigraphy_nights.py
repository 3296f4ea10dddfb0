"""Nights: rest interval, per-night metrics on a constructed night, and the SRI.

Rest interval: block/gap logic of HDCZA (van Hees et al. 2018, Sci Rep 8:12975) on the
Actiware immobility level. SRI: Phillips et al. 2017, Sci Rep 7:3216 (100 for identical
days, about 0 for random states).
"""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta, timezone
from zoneinfo import ZoneInfo

import numpy as np
import pytest

from clarity.actigraphy.nights import (
    InsufficientDataError,
    detect_rest_interval,
    night_metrics,
    sleep_regularity_index,
    summarize_nights,
)
from clarity.actigraphy.sleep import oakley

from .test_actigraphy_sleep import DEPRESJON_FILES, depresjon

REST = (600, 1080)  # 22:00-06:00 when the recording starts at 12:00


def constructed_day(n: int = 2160) -> tuple[np.ndarray, np.ndarray]:
    """Active day (200 counts/min), still 22:00-06:00; in bed: 15 min awake first,
    awakenings of 5, 1 and 3 minutes, awake for the last 10 minutes."""
    counts = np.full(n, 200.0)
    counts[REST[0] : REST[1]] = 0.0
    states = np.zeros(n)
    states[615:1070] = 1.0
    states[700:705] = 0.0
    states[800] = 0.0
    states[900:903] = 0.0
    return counts, states


def test_night_metrics_on_constructed_night() -> None:
    _, states = constructed_day()
    m = night_metrics(states, REST)
    assert m.time_in_bed == 480
    assert m.sleep_onset == 615
    assert m.sleep_onset_latency == 15
    assert m.sleep_end == 1070
    assert m.waso == 5 + 1 + 3
    assert m.total_sleep_time == (1070 - 615) - 9 == 446
    assert m.sleep_efficiency == pytest.approx(446 / 480)
    assert m.awakenings == 3
    assert night_metrics(states, REST, min_awakening=3).awakenings == 2
    assert night_metrics(states, REST, min_awakening=6).awakenings == 0
    assert m.midpoint == (615 + 1070) / 2
    assert m.missing == 0


def test_night_metrics_without_sleep_and_bad_intervals() -> None:
    m = night_metrics(np.zeros(100), (10, 50))
    assert m.total_sleep_time == 0
    assert m.sleep_efficiency == 0.0
    assert m.sleep_onset is None
    assert m.waso is None
    assert m.midpoint is None
    with pytest.raises(ValueError, match="outside"):
        night_metrics(np.zeros(100), (50, 50))
    with pytest.raises(ValueError, match="outside"):
        night_metrics(np.zeros(100), (10, 101))


def test_night_metrics_refuses_mostly_missing_interval() -> None:
    _, states = constructed_day()
    states[700:760] = np.nan  # 60 of 480 minutes = 12.5%
    with pytest.raises(InsufficientDataError, match="60 of 480"):
        night_metrics(states, REST)
    m = night_metrics(states, REST, max_missing_fraction=0.2)
    assert m.missing == 60
    assert m.sleep_efficiency == pytest.approx(m.total_sleep_time / 420)


def test_detect_rest_interval_finds_the_still_block() -> None:
    counts, _ = constructed_day()
    assert detect_rest_interval(counts) == REST


def test_detect_rest_interval_merges_short_gaps_only() -> None:
    counts = np.full(1440, 200.0)
    counts[100:200] = 0
    counts[240:400] = 0  # 40-minute gap (< 60): merged with the first block
    counts[500:540] = 0  # 100-minute gap: separate, and shorter
    counts[900:920] = 0  # 20 minutes: too short to be a block
    assert detect_rest_interval(counts) == (100, 400)
    counts[400:700] = 200
    counts[240:260] = 200  # first block now 100..200 and 260..400 -> gap 60: not merged
    assert detect_rest_interval(counts) == (260, 400)
    assert detect_rest_interval(np.full(500, 100.0)) is None


def test_summarize_nights_constructed() -> None:
    counts, states = constructed_day()
    nights = summarize_nights(counts, states, datetime(2024, 1, 1, 12, 0))
    assert [n.night_of.isoformat() for n in nights] == ["2024-01-01", "2024-01-02"]
    first, second = nights
    assert not first.insufficient
    assert first.reason is None
    assert first.valid_fraction == 1.0
    assert first.rest_start == datetime(2024, 1, 1, 22, 0, tzinfo=UTC)
    assert first.rest_end == datetime(2024, 1, 2, 6, 0, tzinfo=UTC)
    assert first.sleep_onset == datetime(2024, 1, 1, 22, 15, tzinfo=UTC)
    assert first.sleep_end == datetime(2024, 1, 2, 5, 50, tzinfo=UTC)
    assert first.sleep_midpoint == datetime(2024, 1, 2, 2, 2, 30, tzinfo=UTC)
    assert first.sleep_midpoint_hours == pytest.approx(2 + 2.5 / 60)
    assert first.metrics is not None
    assert first.metrics.waso == 9
    assert second.insufficient
    assert second.metrics is None
    assert second.reason is not None
    assert "50%" in second.reason


def test_summarize_nights_local_time_zone() -> None:
    counts, states = constructed_day()
    plus2 = timezone(timedelta(hours=2))
    # 10:00 UTC is 12:00 at UTC+2: the same local night as above
    nights = summarize_nights(counts, states, datetime(2024, 1, 1, 10, 0, tzinfo=UTC), tz=plus2)
    first = nights[0]
    assert first.window_start == datetime(2024, 1, 1, 12, 0, tzinfo=plus2)
    assert first.sleep_midpoint == datetime(2024, 1, 2, 2, 2, 30, tzinfo=plus2)
    assert first.sleep_midpoint_hours == pytest.approx(2 + 2.5 / 60)


def test_summarize_nights_across_daylight_saving_change() -> None:
    oslo = ZoneInfo("Europe/Oslo")  # 2024-03-31 02:00 CET -> 03:00 CEST: a 23-hour night
    start = datetime(2024, 3, 30, 12, 0, tzinfo=oslo)
    counts = np.full(1380 + 1440, 200.0)
    counts[660:1080] = 0  # 23:00 CET .. 07:00 CEST = 7 real hours
    states = np.where(counts == 0, 1.0, 0.0)
    first = summarize_nights(counts, states, start, tz=oslo)[0]
    assert first.valid_fraction == 1.0
    assert not first.insufficient
    assert first.rest_end == datetime(2024, 3, 31, 7, 0, tzinfo=oslo)
    assert first.metrics is not None
    assert first.metrics.time_in_bed == 420
    assert first.sleep_midpoint_hours == pytest.approx(3.5)  # 01:30 UTC = 03:30 CEST


def test_summarize_nights_flags_missing_rest_and_non_wear() -> None:
    counts, states = constructed_day()
    states[700:755] = np.nan  # 55 minutes unscored inside the rest interval
    night = summarize_nights(counts, states, datetime(2024, 1, 1, 12))[0]
    assert night.insufficient
    assert night.reason is not None
    assert "missing" in night.reason
    flat = np.full(2880, 200.0)
    flat[100:1300] = 0  # 20 hours still
    night = summarize_nights(flat, np.ones(2880), datetime(2024, 1, 1, 12))[0]
    assert night.insufficient
    assert night.reason is not None
    assert "non-wear" in night.reason
    busy = np.full(2880, 500.0)
    night = summarize_nights(busy, np.zeros(2880), datetime(2024, 1, 1, 12))[0]
    assert night.insufficient
    assert night.reason == "no rest interval found"
    edge = np.full(2880, 200.0)
    edge[1380:1500] = 0  # 11:00-13:00: rest cut by the noon boundary
    night = summarize_nights(edge, np.zeros(2880), datetime(2024, 1, 1, 12))[0]
    assert night.insufficient
    assert night.reason is not None
    assert "edge" in night.reason
    with pytest.raises(ValueError, match="same length"):
        summarize_nights(busy, np.zeros(10), datetime(2024, 1, 1, 12))


# --------------------------------------------------------------------------- SRI


def test_sri_hand_example() -> None:
    # 4 epochs per day: pairs (1,1) (1,0) (0,0) (0,0) -> 3 of 4 the same -> 200*0.75-100
    assert sleep_regularity_index([1, 1, 0, 0, 1, 0, 0, 0], epochs_per_day=4) == 50.0


def test_sri_identical_days_is_100_and_inverted_days_is_minus_100() -> None:
    day = np.zeros(1440)
    day[:420] = 1.0
    assert sleep_regularity_index(np.tile(day, 7)) == 100.0
    assert sleep_regularity_index(np.concatenate([day, 1 - day, day])) == -100.0


def test_sri_random_is_about_zero() -> None:
    rng = np.random.default_rng(20170612)
    states = rng.integers(0, 2, size=14 * 1440).astype(float)
    assert abs(sleep_regularity_index(states)) < 5


def test_sri_ignores_missing_pairs_and_refuses_too_few() -> None:
    day = np.zeros(1440)
    day[:420] = 1.0
    states = np.tile(day, 3)
    states[100:700] = np.nan
    assert sleep_regularity_index(states) == 100.0
    with pytest.raises(InsufficientDataError, match="pairs"):
        sleep_regularity_index(day)
    mostly_missing = np.tile(day, 2)
    mostly_missing[:1000] = np.nan
    with pytest.raises(InsufficientDataError, match="440 epoch pairs"):
        sleep_regularity_index(mostly_missing)


# --------------------------------------------------------------------------- Depresjon


@pytest.mark.parametrize("name", DEPRESJON_FILES)
def test_depresjon_nights_are_plausible(name: str) -> None:
    t0, counts = depresjon(name)
    states = oakley(counts)
    nights = summarize_nights(counts, states, t0)
    good = [n for n in nights if not n.insufficient]
    assert len(good) >= 10
    tst = np.array([n.metrics.total_sleep_time for n in good if n.metrics is not None])
    assert 240 <= float(np.median(tst)) <= 720, tst
    midpoints = [n.sleep_midpoint_hours for n in good if n.sleep_midpoint_hours is not None]
    # sleep midpoints fall in the night (between 22:00 and 10:00)
    in_night = [h for h in midpoints if h >= 22 or h < 10]
    assert len(in_night) >= 0.8 * len(midpoints)
    sri = sleep_regularity_index(states)
    assert not math.isnan(sri)
    assert 0 < sri <= 100
