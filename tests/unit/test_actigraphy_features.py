"""Feature vectors on a hand-made week: every day-level number is computed here by hand.

The constructed day (local wall clock): 23:00-07:00 asleep (0 counts, 2 counts every tenth
minute, so no 90-minute zero run and no non-wear), 07:00-12:00 active (500 counts/min),
12:00-23:00 sedentary-ish (100 counts/min).
"""

from __future__ import annotations

import datetime as dt
import math

import numpy as np
import pytest

from clarity.actigraphy.features import (
    DAY_FEATURE_DOCS,
    DAY_FEATURE_NAMES,
    FEATURE_DOCS,
    FEATURE_NAMES,
    FeatureSettings,
    analyse,
    circular_hours,
    day_features,
    recording_features,
)
from clarity.actigraphy.series import EpochSeries, InsufficientData

START = dt.datetime(2024, 1, 8, tzinfo=dt.UTC)  # a Monday, far from any clock change


def one_day() -> np.ndarray:
    minute = np.arange(1440)
    counts = np.where(minute % 10 == 0, 2.0, 0.0)  # night
    counts[7 * 60 : 12 * 60] = 500.0
    counts[12 * 60 : 23 * 60] = 100.0
    return counts


# by hand, per full day
DAY_TOTAL = 42 * 2 + 300 * 500 + 660 * 100 + 6 * 2  # 216,096
DAY_ZEROS = 480 - 48


def week(days: int = 9, *, timezone: str = "UTC", offset_hours: int = 0) -> EpochSeries:
    counts = np.tile(one_day(), days)
    start = int(START.timestamp()) - offset_hours * 3600
    seconds = start + 60 * np.arange(counts.size)
    return EpochSeries.from_utc_seconds(seconds, counts, epoch_seconds=60, timezone=timezone)


def test_names_are_ordered_unique_and_documented() -> None:
    assert len(set(FEATURE_NAMES)) == len(FEATURE_NAMES)
    assert len(set(DAY_FEATURE_NAMES)) == len(DAY_FEATURE_NAMES)
    assert DAY_FEATURE_NAMES[:3] == ("wear_hours", "total_counts", "mean_counts")
    assert FEATURE_NAMES[:4] == (
        "valid_days",
        "scored_nights",
        "wear_fraction",
        "interdaily_stability",
    )
    for name in DAY_FEATURE_NAMES:
        assert f"mean_{name}" in FEATURE_NAMES
        assert f"sd_{name}" in FEATURE_NAMES
    for docs in (FEATURE_DOCS, DAY_FEATURE_DOCS):
        for doc in docs.values():
            assert doc.label
            assert doc.unit
            assert doc.source
    assert "how alike" in FEATURE_DOCS["interdaily_stability"].label


def test_day_features_match_the_hand_computation() -> None:
    days = day_features(week())
    assert [d.date for d in days] == [START.date() + dt.timedelta(days=i) for i in range(9)]
    day = days[3]
    assert day.valid
    v = day.values
    assert list(v) == list(DAY_FEATURE_NAMES)
    assert v["wear_hours"] == 24.0
    assert v["total_counts"] == DAY_TOTAL
    assert v["mean_counts"] == pytest.approx(DAY_TOTAL / 1440)
    assert v["sd_counts"] == pytest.approx(float(np.std(one_day(), ddof=1)))
    assert v["zero_epochs_percent"] == pytest.approx(100 * DAY_ZEROS / 1440)
    assert v["sedentary_minutes"] == 480 + 660  # < 256 counts/min
    assert v["active_minutes"] == 300  # >= 418 counts/min
    assert v["l5"] == pytest.approx(0.2)  # 2 counts every tenth minute
    assert v["l5_onset_hours"] == 0.0  # ties across the night: the earliest start
    assert v["m10"] == pytest.approx((300 * 500 + 300 * 100) / 600)
    assert v["m10_onset_hours"] == 7.0
    assert v["relative_amplitude"] == pytest.approx((300 - 0.2) / (300 + 0.2))
    # the night starting that evening: 23:00-07:00, all of it scored asleep by Oakley
    assert abs(v["time_in_bed_minutes"] - 480) <= 5
    assert v["total_sleep_minutes"] <= v["time_in_bed_minutes"]
    assert v["sleep_efficiency"] > 0.95
    assert v["sleep_midpoint_hours"] == pytest.approx(3.0, abs=0.1)
    assert day.missing == {}
    assert np.all(np.isfinite(day.vector()))


def test_recording_features_of_identical_days() -> None:
    rec = recording_features(week())
    v = rec.values
    assert list(v) == list(FEATURE_NAMES)
    assert rec.missing == {}
    assert np.all(np.isfinite(rec.vector()))
    assert v["valid_days"] == 9
    assert v["scored_nights"] == 8  # the night after the last day runs past the end
    assert v["wear_fraction"] == 1.0
    assert v["interdaily_stability"] == pytest.approx(1.0)
    assert v["sleep_regularity_index"] == pytest.approx(100.0)
    assert v["mean_total_counts"] == DAY_TOTAL
    assert v["sd_total_counts"] == 0.0
    assert v["l5"] == pytest.approx(0.2)
    assert v["m10_onset_hours"] == 7.0
    assert v["mean_l5_onset_hours"] == pytest.approx(0.0, abs=1e-9)
    assert v["sd_l5_onset_hours"] == pytest.approx(0.0, abs=1e-6)
    assert 0.0 < v["k_ra"] <= 1.0
    assert 0.0 < v["k_ar"] <= 1.0
    assert v["cosinor_amplitude"] > 0
    assert 0 <= v["cosinor_acrophase_hours"] < 24


def test_too_few_days_are_explicit_nans_not_errors() -> None:
    rec = recording_features(week(3))
    assert rec.values["valid_days"] == 3
    for name in ("interdaily_stability", "cosinor_mesor", "k_ra", "sleep_regularity_index"):
        assert math.isnan(rec.values[name])
        why = rec.missing[name]
        assert (why.basis, why.have, why.required) == ("valid_days", 3, 7)
    why = rec.missing["mean_total_sleep_minutes"]
    assert (why.basis, why.have, why.required) == ("scored_nights", 2, 5)
    # every NaN has a reason, and nothing else has one
    nans = {n for n, x in rec.values.items() if math.isnan(x)}
    assert nans == set(rec.missing)


def test_non_wear_is_missing_and_decides_validity() -> None:
    counts = np.tile(one_day(), 9)
    counts[4 * 1440 + 13 * 60 : 4 * 1440 + 16 * 60] = 0  # 3 h of zeros: non-wear (Choi)
    counts[6 * 1440 + 8 * 60 : 6 * 1440 + 18 * 60] = 0  # 10 h: the day is no longer valid
    seconds = int(START.timestamp()) + 60 * np.arange(counts.size)
    analysis = analyse(EpochSeries.from_utc_seconds(seconds, counts, epoch_seconds=60))
    days = analysis.days
    assert int(analysis.nonwear.sum()) == 180 + 600
    assert days[4].valid
    assert days[4].values["wear_hours"] == 21.0
    assert days[4].values["total_counts"] == DAY_TOTAL - 180 * 100  # worn minutes only
    assert math.isnan(days[4].values["l5"])
    assert "not every minute" in days[4].missing["l5"].reason
    assert not days[6].valid
    assert math.isnan(days[6].values["total_counts"])
    assert "14.0 h worn, 16 h needed" in days[6].missing["total_counts"].reason
    assert not math.isnan(days[6].values["wear_hours"])
    rec = analysis.features
    assert rec.values["valid_days"] == 8
    assert rec.values["wear_fraction"] == pytest.approx(1 - 780 / (9 * 1440))
    assert rec.values["mean_l5"] == pytest.approx(0.2)  # the 7 complete valid days


def test_wear_threshold_is_a_setting() -> None:
    lenient = FeatureSettings(min_wear_hours=12)
    counts = np.tile(one_day(), 9)
    counts[6 * 1440 + 8 * 60 : 6 * 1440 + 18 * 60] = 0
    seconds = int(START.timestamp()) + 60 * np.arange(counts.size)
    series = EpochSeries.from_utc_seconds(seconds, counts, epoch_seconds=60)
    assert recording_features(series, lenient).values["valid_days"] == 9
    with pytest.raises(ValueError, match="sleep algorithm"):
        FeatureSettings(sleep_algorithm="guess")  # type: ignore[arg-type]


def test_local_days_follow_the_wearers_zone() -> None:
    utc = day_features(week())
    # the same wall-clock pattern worn in New York (UTC-5 in January)
    new_york = day_features(week(timezone="America/New_York", offset_hours=-5))
    assert [d.date for d in new_york] == [d.date for d in utc]
    for a, b in zip(utc, new_york, strict=True):
        np.testing.assert_array_equal(a.vector(), b.vector())


def test_sub_minute_epochs_are_summed_to_minutes() -> None:
    minute = week()
    halves = np.repeat(minute.counts / 2, 2)
    seconds = int(START.timestamp()) + 30 * np.arange(halves.size)
    thirty = EpochSeries.from_utc_seconds(seconds, halves, epoch_seconds=30)
    np.testing.assert_array_equal(
        recording_features(thirty).vector(), recording_features(minute).vector()
    )


def test_deterministic() -> None:
    first = recording_features(week()).vector()
    second = recording_features(week()).vector()
    np.testing.assert_array_equal(first, second)


def test_bad_series_are_refused() -> None:
    empty = EpochSeries.from_utc_seconds([], [], epoch_seconds=60)
    with pytest.raises(InsufficientData, match="no epochs"):
        analyse(empty)
    odd = EpochSeries.from_utc_seconds([0, 45, 90], [1.0, 2.0, 3.0], epoch_seconds=45)
    with pytest.raises(ValueError, match="divide a minute"):
        analyse(odd)


def test_circular_mean_of_clock_times() -> None:
    mean, sd = circular_hours(np.array([23.5, 0.5]))
    assert min(mean, 24 - mean) == pytest.approx(0.0, abs=1e-9)
    assert sd == pytest.approx(
        math.sqrt(-2 * math.log(math.cos(math.pi / 24))) * 24 / (2 * math.pi)
    )
    assert math.isnan(circular_hours(np.array([0.0, 12.0]))[0])
