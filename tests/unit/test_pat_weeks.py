"""Week windows from one-minute recordings, the per-minute scaler, and Depresjon as weeks."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import numpy as np
import pytest
from sklearn.preprocessing import StandardScaler

from clarity.actigraphy.readers import SharedDataMissing, depresjon_dir
from clarity.actigraphy.series import EpochSeries, InsufficientData, local_to_utc, zone
from clarity.ml.pat.depresjon import depresjon_weeks, label_of
from clarity.ml.pat.weeks import MinuteScaler, weeks_from_series

OSLO = "Europe/Oslo"


def recording(start_local: str, minutes: int, epoch: int = 60, tz: str = OSLO) -> EpochSeries:
    first = np.array([np.datetime64(start_local, "s").astype(np.int64)])
    utc = local_to_utc(first, zone(tz))[0] + np.arange(minutes) * epoch
    counts = np.arange(minutes, dtype=np.float64) % 997
    return EpochSeries.from_utc_seconds(utc, counts, epoch_seconds=epoch, timezone=tz)


def local_clock(series: EpochSeries, at: np.datetime64) -> dt.datetime:
    instant = dt.datetime.fromtimestamp(int(at.astype(np.int64)), tz=dt.UTC)
    return instant.astimezone(zone(series.timezone))


def test_windows_start_at_local_midnights_and_slide_by_days() -> None:
    series = recording("2003-05-07T12:00:00", 10 * 1440)
    weeks = weeks_from_series(series)
    # midnights at minutes 720, 2160, 3600, ...; whole weeks end by minute 14,400
    assert len(weeks) == 3
    for i, week in enumerate(weeks):
        assert local_clock(series, week.start).time() == dt.time(0, 0)
        start = 720 + 1440 * i
        np.testing.assert_array_equal(week.counts, series.counts[start : start + 10080])
    assert len(weeks_from_series(series, step_days=2)) == 2


def test_week_is_10080_consecutive_minutes_across_a_clock_change() -> None:
    series = recording("2003-03-25T00:00:00", 9 * 1440)  # clocks went forward 30 March
    week = weeks_from_series(series)[0]
    np.testing.assert_array_equal(week.counts, series.counts[:10080])


def test_short_recordings_are_padded_or_dropped() -> None:
    five_days = recording("2003-05-07T00:00:00", 5 * 1440)
    (week,) = weeks_from_series(five_days)
    assert week.observed_minutes == 5 * 1440
    assert np.isnan(week.counts[5 * 1440 :]).all()
    three_days = recording("2003-05-07T00:00:00", 3 * 1440)
    assert weeks_from_series(three_days) == []
    assert len(weeks_from_series(three_days, min_observed_days=2.5)) == 1


def test_gaps_stay_missing_and_caps_pick_evenly() -> None:
    series = recording("2003-05-07T00:00:00", 30 * 1440)
    holed = series.masked(np.arange(len(series)) % 1440 < 60)
    week = weeks_from_series(holed)[0]
    assert week.observed_minutes == 10080 - 7 * 60
    all_weeks = weeks_from_series(series)
    capped = weeks_from_series(series, max_weeks=3)
    assert [w.start for w in capped] == [all_weeks[i].start for i in (0, 12, 23)]
    assert len(all_weeks) == 24


def test_only_one_minute_epochs() -> None:
    with pytest.raises(InsufficientData, match="one-minute"):
        weeks_from_series(recording("2003-05-07T00:00:00", 8 * 2880, epoch=30))


def test_scaler_equals_standard_scaler_and_handles_missing() -> None:
    rng = np.random.default_rng(0)
    data = rng.gamma(0.6, 150.0, (12, 10080))
    data[:, 17] = 5.0  # constant column: scale 1, as StandardScaler does
    ours = MinuteScaler.fit(data)
    reference = StandardScaler().fit(data)
    np.testing.assert_allclose(ours.mean, reference.mean_, rtol=1e-12)
    np.testing.assert_allclose(ours.scale, reference.scale_, rtol=1e-10)
    standard, observed = ours.transform(data)
    np.testing.assert_allclose(standard, reference.transform(data), atol=1e-5)
    assert observed.all()

    holed = data.copy()
    holed[0, :100] = np.nan
    fitted = MinuteScaler.fit(holed)
    np.testing.assert_allclose(fitted.mean[:100], data[1:, :100].mean(axis=0))
    standard, observed = fitted.transform(holed)
    assert not observed[0, :100].any()
    assert (standard[0, :100] == 0).all()
    with pytest.raises(ValueError, match="rows of 10080"):
        fitted.transform(np.zeros((2, 5)))


def test_scaler_round_trip(tmp_path: Path) -> None:
    scaler = MinuteScaler.fit(np.random.default_rng(1).gamma(1.0, 10.0, (3, 10080)))
    scaler.save(tmp_path / "s.npz")
    again = MinuteScaler.load(tmp_path / "s.npz")
    assert again.digest() == scaler.digest()
    with pytest.raises(ValueError, match="positive"):
        MinuteScaler(np.zeros(10080), np.zeros(10080))


def test_labels_come_from_the_file_group() -> None:
    assert label_of(Path("condition_3.csv")) == 1
    assert label_of(Path("control_12.csv")) == 0
    with pytest.raises(ValueError, match="neither"):
        label_of(Path("scores.csv"))


def test_depresjon_weeks_on_a_few_real_files(tmp_path: Path) -> None:
    try:
        source = depresjon_dir()
    except SharedDataMissing as exc:
        pytest.skip(f"Depresjon data not available: {exc}")
    for group, numbers in (("condition", (1, 8)), ("control", (1, 5))):
        (tmp_path / group).mkdir()
        for n in numbers:
            name = f"{group}_{n}.csv"
            (tmp_path / group / name).symlink_to(source / group / name)
    data = depresjon_weeks(tmp_path, max_weeks_per_subject=7)
    assert sorted(data.subject_labels().items()) == [
        ("condition_1", 1),
        ("condition_8", 1),
        ("control_1", 0),
        ("control_5", 0),
    ]
    per_subject = {s: int((data.subjects == s).sum()) for s in data.subject_ids.tolist()}
    assert per_subject["condition_8"] == 6  # 12.8 days after the first midnight
    assert max(per_subject.values()) == 7  # control_1 has 29 whole weeks, capped
    assert not np.isnan(data.counts).any()
    assert data.counts.shape == (sum(per_subject.values()), 10080)
