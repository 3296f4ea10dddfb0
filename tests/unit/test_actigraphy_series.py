"""EpochSeries (regularising, resampling, local days) and the Depresjon reader."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from zoneinfo import ZoneInfo

import numpy as np
import pytest

from clarity.actigraphy.readers import (
    SHARED_DATA_ENV,
    ActigraphyFileError,
    SharedDataMissing,
    depresjon_dir,
    read_depresjon_csv,
)
from clarity.actigraphy.series import EpochSeries, local_to_utc, utc_offsets

UTC = dt.UTC
START = int(dt.datetime(2024, 1, 1, tzinfo=UTC).timestamp())


def minutes(counts: list[float] | np.ndarray, start: int = START, tz: str = "UTC") -> EpochSeries:
    values = np.asarray(counts, dtype=np.float64)
    stamps = start + 60 * np.arange(values.size, dtype=np.int64)
    return EpochSeries.from_utc_seconds(stamps, values, epoch_seconds=60, timezone=tz)


# ---------------------------------------------------------------- construction
def test_from_aware_datetimes_converts_to_utc() -> None:
    oslo = ZoneInfo("Europe/Oslo")
    stamps = [dt.datetime(2024, 6, 1, 12, m, tzinfo=oslo) for m in range(3)]
    series = EpochSeries.from_datetimes(stamps, [1, 2, 3], timezone="Europe/Oslo")
    assert series.epoch_seconds == 60
    assert str(series.timestamps[0]) == "2024-06-01T10:00:00"
    assert series.counts.dtype == np.float64


def test_naive_datetimes_are_refused() -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        EpochSeries.from_datetimes([dt.datetime(2024, 1, 1), dt.datetime(2024, 1, 2)], [1, 2])


@pytest.mark.parametrize(
    ("stamps", "counts", "message"),
    [
        ([0, 60, 60], [1, 2, 3], "strictly increasing"),
        ([0, 60], [1, 2, 3], "equal in number"),
        ([0, 60], [1, -2], "negative"),
        ([0, 60], [1, np.inf], "finite"),
    ],
)
def test_invalid_series_are_refused(stamps: list[int], counts: list[float], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        EpochSeries.from_utc_seconds(stamps, counts, epoch_seconds=60)


def test_unknown_timezone_is_refused() -> None:
    with pytest.raises(ValueError, match="IANA"):
        minutes([1, 2], tz="Mars/Olympus")


# ---------------------------------------------------------------- regularize / resample
def test_regularize_fills_gaps_with_nan_not_zero() -> None:
    stamps = START + 60 * np.array([0, 1, 4, 5])
    series = EpochSeries.from_utc_seconds(stamps, [1, 2, 3, 4], epoch_seconds=60)
    assert not series.is_regular
    regular = series.regularize()
    assert regular.is_regular
    np.testing.assert_array_equal(regular.counts, [1, 2, np.nan, np.nan, 3, 4])


def test_regularize_refuses_two_samples_in_one_epoch() -> None:
    series = EpochSeries.from_utc_seconds([START, START + 30], [1, 2], epoch_seconds=60)
    with pytest.raises(ValueError, match="same 60-s epoch"):
        series.regularize()


def test_resample_sums_and_marks_incomplete_bins_missing() -> None:
    counts = np.arange(180, dtype=float)
    counts[70] = np.nan
    hourly = minutes(counts).resample(3600)
    assert hourly.epoch_seconds == 3600
    assert hourly.counts[0] == pytest.approx(np.arange(60).sum())
    assert np.isnan(hourly.counts[1])  # one minute missing: not summed as if it were zero
    assert hourly.counts[2] == pytest.approx(np.arange(120, 180).sum())
    relaxed = minutes(counts).resample(3600, how="mean", min_coverage=0.5)
    expected = np.delete(np.arange(60, 120), 10).mean()
    assert relaxed.counts[1] == pytest.approx(expected)


def test_resample_refuses_non_multiple_epoch() -> None:
    with pytest.raises(ValueError, match="multiple"):
        minutes([1.0] * 10).resample(90)


def test_resample_bins_follow_the_local_clock() -> None:
    # India is UTC+05:30: hourly bins must start on the local hour, i.e. at :30 UTC
    start = int(dt.datetime(2024, 1, 1, 0, 0, tzinfo=UTC).timestamp())
    series = minutes(np.ones(240), start=start, tz="Asia/Kolkata")
    hourly = series.resample(3600, min_coverage=0.01)
    assert str(hourly.timestamps[0]) == "2023-12-31T23:30:00"
    assert hourly.counts[0] == 30  # 00:00-00:30 UTC is the second half of 05:00 local
    assert hourly.counts[1] == 60


# ---------------------------------------------------------------- local days and DST
def test_days_follow_local_midnight_and_real_day_length() -> None:
    # 2003-03-30 (spring) is 23 h long in Oslo; 2003-10-26 (autumn) is 25 h long
    for day, hours in ((dt.date(2003, 3, 30), 23), (dt.date(2003, 10, 26), 25)):
        midnight = dt.datetime.combine(day, dt.time(), tzinfo=ZoneInfo("Europe/Oslo"))
        start = int(midnight.timestamp()) - 3600
        series = minutes(np.ones((hours + 2) * 60), start=start, tz="Europe/Oslo")
        coverage = {c.date: c for c in series.coverage_by_day()}
        assert coverage[day].expected_epochs == hours * 60
        assert coverage[day].observed_epochs == hours * 60
        assert coverage[day].fraction == 1.0
        days = {d.date: len(d.series) for d in series.split_days()}
        assert days[day] == hours * 60
        assert sum(days.values()) == len(series)


def test_coverage_counts_only_observed_and_valid_epochs() -> None:
    counts = np.ones(2 * 1440)
    counts[:120] = np.nan
    series = minutes(counts)
    valid = np.ones(counts.size, dtype=bool)
    valid[1440 : 1440 + 360] = False
    first, second = series.coverage_by_day(valid)
    assert (first.observed_epochs, second.observed_epochs) == (1320, 1080)
    assert second.observed_hours == pytest.approx(18.0)
    assert first.fraction == pytest.approx(1320 / 1440)


def test_masked_sets_nan() -> None:
    series = minutes([1.0, 2.0, 3.0]).masked([False, True, False])
    np.testing.assert_array_equal(series.counts, [1.0, np.nan, 3.0])


def test_local_to_utc_resolves_the_repeated_autumn_hour_by_order() -> None:
    tz = ZoneInfo("Europe/Oslo")
    # wall clock 01:58 .. 02:59, 02:00 .. 03:01 on 2003-10-26 (02:00-03:00 happens twice)
    base = int(dt.datetime(2003, 10, 26, tzinfo=UTC).timestamp())
    first = base + 60 * np.arange(118, 180)
    second = base + 60 * np.arange(120, 182)
    local = np.concatenate((first, second)).astype(np.int64)
    utc = local_to_utc(local, tz)
    assert np.all(np.diff(utc) == 60)
    np.testing.assert_array_equal(utc + utc_offsets(utc, tz), local)


@pytest.mark.parametrize("day", [dt.date(2005, 4, 3), dt.date(2005, 10, 30)])
def test_local_to_utc_handles_clock_changes_inside_an_hour(day: dt.date) -> None:
    # St John's changed its clocks at 00:01 local until 2011: in spring 00:01 became 01:01
    # (a skipped hour from 00:01), in autumn 00:01 went back to 23:01 (23:01-00:00 twice)
    tz = ZoneInfo("America/St_Johns")
    start = int(dt.datetime.combine(day, dt.time(), tzinfo=UTC).timestamp())
    utc = start + 60 * np.arange(2 * 1440, dtype=np.int64)  # minutes around the change
    offsets = utc_offsets(utc, tz)
    assert len(set(offsets.tolist())) == 2
    assert np.array_equal(local_to_utc(utc + offsets, tz), utc)


# ---------------------------------------------------------------- Depresjon reader
def write(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def test_reads_iso_style(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        "condition_1.csv",
        "timestamp,date,activity\n"
        "2003-05-07 12:00:00,2003-05-07,0\n"
        "2003-05-07 12:01:00,7/5/2003,143\n"
        "2003-05-07 12:02:00,2003-05-07,7\n",
    )
    series = read_depresjon_csv(path)
    np.testing.assert_array_equal(series.counts, [0, 143, 7])
    assert series.timezone == "Europe/Oslo"
    assert str(series.timestamps[0]) == "2003-05-07T10:00:00"  # CEST is UTC+2
    assert series.is_regular


def test_reads_day_first_style_with_empty_trailing_columns(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        "control_1.csv",
        "timestamp,date,activity,,\n"
        "18/3/2003 15:00,18/3/2003,60,,289.6553167\n"
        "18/3/2003 15:01,18/3/2003,0,,\n"
        "18/3/2003 15:02,18/3/2003,5,,\n",
    )
    series = read_depresjon_csv(path)
    np.testing.assert_array_equal(series.counts, [60, 0, 5])
    assert str(series.timestamps[0]) == "2003-03-18T14:00:00"  # CET is UTC+1


def test_spring_clock_change_is_gap_free_in_utc(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        "control_2.csv",
        "timestamp,date,activity\n"
        "30/3/2003 1:58,30/3/2003,1\n"
        "30/3/2003 1:59,30/3/2003,2\n"
        "30/3/2003 3:00,30/3/2003,3\n",
    )
    series = read_depresjon_csv(path)
    assert series.is_regular
    assert series.epoch_seconds == 60


@pytest.mark.parametrize(
    ("row", "reason"),
    [
        ("2003-05-07 12:02,2003-05-07,seven", "activity"),
        ("07.05.2003 12:02,2003-05-07,7", "timestamp is not"),
        ("2003-02-30 12:02:00,2003-02-30,7", "real date"),
        ("2003-05-07 12:00:00,2003-05-07,7", "does not come after"),
        ("2003-05-07 12:02:00", "fields"),
        ("2003-05-07 12:02:00,2003-05-07,-4", "activity"),
    ],
)
def test_bad_rows_name_file_and_line(tmp_path: Path, row: str, reason: str) -> None:
    path = write(
        tmp_path,
        "condition_9.csv",
        "timestamp,date,activity\n"
        "2003-05-07 12:00:00,2003-05-07,0\n"
        "2003-05-07 12:01:00,2003-05-07,1\n"
        f"{row}\n",
    )
    with pytest.raises(ActigraphyFileError, match=reason) as info:
        read_depresjon_csv(path)
    assert info.value.line == 4
    assert "condition_9.csv, line 4" in str(info.value)


def test_missing_activity_column(tmp_path: Path) -> None:
    path = write(tmp_path, "x.csv", "timestamp,date\n2003-05-07 12:00:00,2003-05-07\n")
    with pytest.raises(ActigraphyFileError, match="'activity' column"):
        read_depresjon_csv(path)


def test_depresjon_dir_from_environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "depresjon" / "condition").mkdir(parents=True)
    (tmp_path / "depresjon" / "control").mkdir()
    monkeypatch.setenv(SHARED_DATA_ENV, str(tmp_path))
    assert depresjon_dir() == tmp_path / "depresjon"


def test_depresjon_dir_missing_says_what_to_set(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(SHARED_DATA_ENV, str(tmp_path / "nowhere"))
    with pytest.raises(SharedDataMissing, match=SHARED_DATA_ENV):
        depresjon_dir()
