"""Non-wear masks on constructed runs of zeros, and the valid-day rule."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pytest

from clarity.actigraphy.nonwear import choi_nonwear, troiano_nonwear, valid_days
from clarity.actigraphy.series import EpochSeries

START = int(dt.datetime(2024, 1, 1, tzinfo=dt.UTC).timestamp())


def series_from(*parts: tuple[float, int], epoch: int = 60) -> EpochSeries:
    counts = np.concatenate([np.full(n, value, dtype=float) for value, n in parts])
    stamps = START + epoch * np.arange(counts.size, dtype=np.int64)
    return EpochSeries.from_utc_seconds(stamps, counts, epoch_seconds=epoch)


def flagged(mask: np.ndarray) -> list[tuple[int, int]]:
    """(start, end) of each run of True."""
    edges = np.diff(np.concatenate(([0], mask.astype(int), [0])))
    return list(
        zip(np.flatnonzero(edges == 1).tolist(), np.flatnonzero(edges == -1).tolist(), strict=True)
    )


# ---------------------------------------------------------------- Troiano 2008
def test_troiano_flags_sixty_zero_minutes_but_not_fifty_nine() -> None:
    assert flagged(troiano_nonwear(series_from((300, 30), (0, 60), (300, 30)))) == [(30, 90)]
    assert not troiano_nonwear(series_from((300, 30), (0, 59), (300, 30))).any()


def test_troiano_tolerates_two_minutes_of_small_counts() -> None:
    series = series_from((300, 30), (0, 35), (80, 2), (0, 35), (300, 30))
    assert flagged(troiano_nonwear(series)) == [(30, 102)]


@pytest.mark.parametrize(
    "spike",
    [
        ((80, 3),),  # three minutes: too long
        ((150, 1),),  # above 100 counts
        ((50, 1), (101, 1)),  # one of the two too large
    ],
)
def test_troiano_spikes_that_end_the_interval(spike: tuple[tuple[float, int], ...]) -> None:
    series = series_from((300, 30), (0, 35), *spike, (0, 35), (300, 30))
    assert not troiano_nonwear(series).any()


def test_troiano_interval_does_not_end_on_a_spike() -> None:
    series = series_from((300, 10), (0, 60), (40, 2), (300, 10))
    assert flagged(troiano_nonwear(series)) == [(10, 70)]


def test_missing_minutes_break_runs_and_are_not_flagged() -> None:
    series = series_from((300, 10), (0, 40), (np.nan, 5), (0, 40), (300, 10))
    assert not troiano_nonwear(series).any()
    assert not choi_nonwear(series, min_minutes=60).any()
    whole = series_from((0, 70), (np.nan, 5), (0, 10))
    mask = troiano_nonwear(whole)
    assert flagged(mask) == [(0, 70)]
    assert not mask[70:75].any()


# ---------------------------------------------------------------- Choi 2011
def test_choi_needs_ninety_minutes() -> None:
    assert flagged(choi_nonwear(series_from((500, 20), (0, 90), (500, 20)))) == [(20, 110)]
    assert not choi_nonwear(series_from((500, 20), (0, 89), (500, 20))).any()


def test_choi_allows_a_two_minute_spike_inside_thirty_zero_minutes_each_side() -> None:
    series = series_from((500, 20), (0, 45), (900, 2), (0, 45), (500, 20))
    assert flagged(choi_nonwear(series)) == [(20, 112)]


def test_choi_spike_without_zero_window_upstream_splits_the_interval() -> None:
    series = series_from((500, 20), (0, 29), (900, 2), (0, 61), (500, 20))
    assert not choi_nonwear(series).any()
    series = series_from((500, 20), (0, 29), (900, 2), (0, 95), (500, 20))
    assert flagged(choi_nonwear(series)) == [(51, 146)]


def test_choi_three_minute_spike_is_not_tolerated() -> None:
    series = series_from((500, 20), (0, 45), (900, 3), (0, 45), (500, 20))
    assert not choi_nonwear(series).any()


def test_choi_chains_several_spikes() -> None:
    series = series_from((0, 30), (5, 1), (0, 30), (5, 2), (0, 30), (500, 5))
    assert flagged(choi_nonwear(series)) == [(0, 93)]


def test_detectors_need_minute_epochs_and_a_regular_series() -> None:
    with pytest.raises(ValueError, match="60-s epochs"):
        troiano_nonwear(series_from((0, 200), epoch=30))
    irregular = EpochSeries.from_utc_seconds([0, 60, 600], [0, 0, 0], epoch_seconds=60)
    with pytest.raises(ValueError, match="regularize"):
        choi_nonwear(irregular)


# ---------------------------------------------------------------- valid days
def test_valid_days_use_wear_time() -> None:
    day_one = [(300, 1440)]
    day_two = [(300, 9 * 60), (0, 15 * 60)]
    series = series_from(*day_one, *day_two)
    mask = troiano_nonwear(series)
    days = valid_days(series, mask, min_wear_hours=10)
    assert [(d.wear_hours, d.valid) for d in days] == [(24.0, True), (9.0, False)]
    assert valid_days(series, mask, min_wear_hours=8)[1].valid


def test_valid_days_do_not_count_missing_epochs_as_wear() -> None:
    series = series_from((300, 600), (np.nan, 840))
    (day,) = valid_days(series, np.zeros(1440, dtype=bool), min_wear_hours=10)
    assert day.wear_hours == 10.0
    assert day.valid
