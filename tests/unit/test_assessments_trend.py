"""Trends: change from previous and from baseline, and reliable change where defined.

Thresholds come from the instrument files: PHQ-9 5 points (Löwe et al. 2004, Med Care
42:1194-1201: individual change of 2 standard errors of measurement); GAD-7 6 points
(Bischoff et al. 2020 reliable change index); WHO-5 10 percentage points (WHO-5 scoring
sheet: 'A 10% difference indicates a significant change'). A change reaching the threshold
exactly counts as reliable.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from clarity.assessments.catalog import get_instrument
from clarity.assessments.scoring import is_reliable_change, trend

T0 = datetime(2025, 1, 6, 9, 0, tzinfo=UTC)


def week(n: int) -> datetime:
    return T0 + timedelta(weeks=n)


def test_phq9_trend_sorts_by_time_and_measures_change() -> None:
    phq9 = get_instrument("phq9")
    points = trend(phq9, [(week(2), 14), (week(0), 18), (week(6), 20), (week(4), 12)])
    assert [p.at for p in points] == [week(0), week(2), week(4), week(6)]
    assert [p.total for p in points] == [18, 14, 12, 20]
    assert [p.change_from_previous for p in points] == [None, -4, -2, 8]
    assert [p.change_from_baseline for p in points] == [None, -4, -6, 2]
    assert [p.direction_from_baseline for p in points] == [
        None,
        "improved",
        "improved",
        "worsened",
    ]
    assert [p.reliable_from_previous for p in points] == [None, False, False, True]
    assert [p.reliable_from_baseline for p in points] == [None, False, True, False]


def test_phq9_change_of_exactly_five_is_reliable_and_four_is_not() -> None:
    phq9 = get_instrument("phq9")
    assert is_reliable_change(phq9, -5) is True
    assert is_reliable_change(phq9, 5) is True
    assert is_reliable_change(phq9, -4) is False


def test_gad7_reliable_change_is_six_points() -> None:
    gad7 = get_instrument("gad7")
    points = trend(gad7, [(week(0), 15), (week(4), 10), (week(8), 9)])
    assert [p.reliable_from_baseline for p in points] == [None, False, True]


def test_who5_reliable_change_is_ten_percentage_points_and_higher_is_better() -> None:
    """Raw +2 is 8 percentage points (not reliable); raw +3 is 12 (reliable)."""
    who5 = get_instrument("who5")
    points = trend(who5, [(week(0), 10), (week(2), 12), (week(4), 13)])
    assert [p.transformed_total for p in points] == [40, 48, 52]
    assert [p.change_from_baseline for p in points] == [None, 2, 3]
    assert [p.reliable_from_baseline for p in points] == [None, False, True]
    assert [p.direction_from_baseline for p in points] == [None, "improved", "improved"]
    assert is_reliable_change(who5, -3) is True


def test_no_threshold_means_reliability_is_unknown_not_false() -> None:
    phq2 = get_instrument("phq2")
    points = trend(phq2, [(week(0), 6), (week(1), 0)])
    assert points[1].change_from_baseline == -6
    assert points[1].reliable_from_baseline is None
    assert is_reliable_change(phq2, 6) is None


def test_single_and_empty_series() -> None:
    phq9 = get_instrument("phq9")
    assert trend(phq9, []) == []
    (only,) = trend(phq9, [(week(0), 7)])
    assert only.change_from_baseline is None
    assert only.direction_from_previous is None
    assert only.reliable_from_previous is None


def test_unchanged_total_has_direction_unchanged() -> None:
    points = trend(get_instrument("gad7"), [(week(0), 8), (week(1), 8)])
    assert points[1].direction_from_previous == "unchanged"
    assert points[1].reliable_from_previous is False


@pytest.mark.parametrize("bad_total", [28, -1])
def test_totals_outside_the_score_range_are_rejected(bad_total: int) -> None:
    with pytest.raises(ValueError, match=r"observation 1 total .*0-27"):
        trend(get_instrument("phq9"), [(week(0), 10), (week(1), bad_total)])


def test_two_observations_at_one_time_are_rejected() -> None:
    with pytest.raises(ValueError, match="share one time"):
        trend(get_instrument("phq9"), [(week(0), 10), (week(0), 12)])


def test_naive_and_aware_times_are_not_mixed() -> None:
    naive = datetime(2025, 1, 1, 9, 0)
    with pytest.raises(ValueError, match="naive and timezone-aware"):
        trend(get_instrument("phq9"), [(naive, 10), (week(1), 12)])
