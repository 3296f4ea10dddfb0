"""Invariants of the actigraphy metrics, checked on generated series (hypothesis).

IS/IV: Witting et al. 1990, van Someren et al. 1999; L5/M10/RA: van Someren et al. 1997;
Cole-Kripke 1992, Sadeh 1994, Oakley 1997, Webster 1982; SRI: Phillips et al. 2017;
non-wear: Troiano et al. 2008, Choi et al. 2011 (full references in the modules).
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Callable
from functools import cache
from random import Random
from typing import TypeVar
from zoneinfo import ZoneInfo

import numpy as np
import pytest
from hypothesis import given, reject, settings
from hypothesis import strategies as st

from clarity.actigraphy.nights import sleep_regularity_index
from clarity.actigraphy.nonwear import choi_nonwear, troiano_nonwear
from clarity.actigraphy.rhythm import (
    RestActivityProfile,
    average_day_profile,
    fragmentation,
    interdaily_stability,
    intradaily_variability,
    l5_m10,
)
from clarity.actigraphy.series import EpochSeries, InsufficientData, local_to_utc, utc_offsets
from clarity.actigraphy.sleep import cole_kripke, oakley, sadeh, webster_rescore

PROPERTIES = settings(max_examples=30, deadline=None)
START = int(dt.datetime(2024, 1, 1, tzinfo=dt.UTC).timestamp())
DAY = 86_400
FIXED_ZONES = ["UTC", "Etc/GMT-2", "Asia/Kolkata"]  # no daylight saving

T = TypeVar("T")


def series_from(
    counts: np.ndarray, *, epoch: int = 3600, start: int = START, tz: str = "UTC"
) -> EpochSeries:
    stamps = start + epoch * np.arange(counts.size, dtype=np.int64)
    return EpochSeries.from_utc_seconds(stamps, counts, epoch_seconds=epoch, timezone=tz)


def computed(metric: Callable[[], T]) -> T:
    """The metric, or the example rejected when the data cannot support it (e.g. constant)."""
    try:
        return metric()
    except InsufficientData:
        reject()


@st.composite
def hourly_days(draw: st.DrawFn, *, holes: bool = True) -> np.ndarray:
    """2-6 days of hourly counts (whole numbers up to 1000), some hours missing."""
    days = draw(st.integers(2, 6))
    values = draw(st.lists(st.integers(0, 1000), min_size=24 * days, max_size=24 * days))
    counts = np.array(values, dtype=np.float64)
    if holes:
        missing = draw(st.lists(st.integers(0, counts.size - 1), max_size=2 * days))
        counts[missing] = np.nan
    return counts


@st.composite
def minute_counts(draw: st.DrawFn, *, max_size: int = 400) -> np.ndarray:
    """Minute counts with runs of zeros, small and large counts, and missing epochs."""
    runs = draw(
        st.lists(
            st.tuples(
                st.sampled_from([0.0, 0.0, 3.0, 30.0, 60.0, 150.0, 800.0]), st.integers(1, 40)
            ),
            min_size=1,
            max_size=25,
        )
    )
    counts = np.concatenate([np.full(n, value) for value, n in runs])[:max_size]
    noise = draw(st.lists(st.integers(0, 20), min_size=counts.size, max_size=counts.size))
    counts = counts + np.where(counts > 0, noise, 0)
    missing = draw(st.lists(st.integers(0, counts.size - 1), max_size=5))
    counts[missing] = np.nan
    return counts


def window_mean(profile: np.ndarray, onset_hours: float, hours: float, epoch: int) -> float:
    """Mean of the profile over the (wrapping) window starting at ``onset_hours``."""
    per_hour = 3600 // epoch
    start = round(onset_hours * per_hour)
    return float(
        np.take(profile, np.arange(start, start + round(hours * per_hour)), mode="wrap").mean()
    )


def rest_activity(series: EpochSeries) -> RestActivityProfile:
    return computed(lambda: l5_m10(series))


# ---------------------------------------------------------------- IS / IV / RA bounds
@PROPERTIES
@given(hourly_days())
def test_is_lies_in_zero_one(counts: np.ndarray) -> None:
    is_ = computed(lambda: interdaily_stability(series_from(counts)))
    assert 0.0 <= is_ <= 1.0


@PROPERTIES
@given(hourly_days())
def test_iv_is_non_negative_and_bounded(counts: np.ndarray) -> None:
    series = series_from(counts)
    iv = computed(lambda: intradaily_variability(series))
    assert iv >= 0.0
    # each observed bin enters at most two pairs, so sum d^2 <= 4 SS: IV <= 4 N / pairs
    observed = ~np.isnan(counts)
    n, pairs = int(observed.sum()), int((observed[1:] & observed[:-1]).sum())
    assert iv <= 4.0 * n / pairs + 1e-9


def test_iv_bound_is_reached_by_an_alternating_series() -> None:
    # a, b, a, b, ...: every squared step is (a - b)^2 and SS = N (a - b)^2 / 4, so IV = 4
    series = series_from(np.tile([10.0, 30.0], 48))
    assert intradaily_variability(series) == pytest.approx(4.0)


@PROPERTIES
@given(hourly_days())
def test_ra_lies_in_zero_one_and_l5_below_m10(counts: np.ndarray) -> None:
    result = rest_activity(series_from(counts))
    assert 0.0 <= result.l5 <= result.m10
    assert 0.0 <= result.relative_amplitude <= 1.0


# ---------------------------------------------------------------- invariances
@PROPERTIES
@given(hourly_days(), st.integers(-30, 30), st.sampled_from(FIXED_ZONES))
def test_shifting_by_whole_days_changes_nothing(counts: np.ndarray, days: int, tz: str) -> None:
    here = series_from(counts, tz=tz)
    there = series_from(counts, start=START + days * DAY, tz=tz)
    is_ = computed(lambda: interdaily_stability(here))
    assert interdaily_stability(there) == pytest.approx(is_, rel=1e-12)
    iv = computed(lambda: intradaily_variability(here))
    assert intradaily_variability(there) == pytest.approx(iv, rel=1e-12)
    a, b = rest_activity(here), l5_m10(there)
    assert (b.l5, b.m10, b.relative_amplitude) == pytest.approx(
        (a.l5, a.m10, a.relative_amplitude), rel=1e-12
    )
    assert (b.l5_onset_hours, b.m10_onset_hours) == (a.l5_onset_hours, a.m10_onset_hours)


@PROPERTIES
@given(hourly_days(), st.integers(1, 23))
def test_shifting_by_whole_hours_shifts_the_onsets(counts: np.ndarray, hours: int) -> None:
    here = series_from(counts)
    there = series_from(counts, start=START + hours * 3600)
    is_ = computed(lambda: interdaily_stability(here))
    assert interdaily_stability(there) == pytest.approx(is_, rel=1e-9)
    iv = computed(lambda: intradaily_variability(here))
    assert intradaily_variability(there) == pytest.approx(iv, rel=1e-9)
    a, b = rest_activity(here), l5_m10(there)
    assert (b.l5, b.m10) == pytest.approx((a.l5, a.m10), rel=1e-9, abs=1e-9)
    # the window found before, moved by the shift, is a lowest (highest) one after it; on
    # ties the earliest is reported, which may be another of the tied windows
    profile = average_day_profile(there)
    moved_l5 = (a.l5_onset_hours + hours) % 24
    moved_m10 = (a.m10_onset_hours + hours) % 24
    assert window_mean(profile, moved_l5, 5, 3600) == pytest.approx(b.l5, rel=1e-9, abs=1e-9)
    assert window_mean(profile, moved_m10, 10, 3600) == pytest.approx(b.m10, rel=1e-9, abs=1e-9)


@PROPERTIES
@given(hourly_days(), st.floats(0.01, 100.0))
def test_scaling_counts_keeps_is_iv_ra_and_scales_l5_m10(counts: np.ndarray, c: float) -> None:
    here, scaled = series_from(counts), series_from(counts * c)
    is_ = computed(lambda: interdaily_stability(here))
    assert interdaily_stability(scaled) == pytest.approx(is_, rel=1e-9)
    iv = computed(lambda: intradaily_variability(here))
    assert intradaily_variability(scaled) == pytest.approx(iv, rel=1e-9)
    a, b = rest_activity(here), l5_m10(scaled)
    assert b.relative_amplitude == pytest.approx(a.relative_amplitude, rel=1e-9, abs=1e-12)
    assert (b.l5, b.m10) == pytest.approx((c * a.l5, c * a.m10), rel=1e-9, abs=1e-9)


@PROPERTIES
@given(hourly_days(), st.randoms(use_true_random=False))
def test_permuting_days_keeps_is(counts: np.ndarray, rnd: Random) -> None:
    days = counts.reshape(-1, 24)
    order = list(range(days.shape[0]))
    rnd.shuffle(order)
    is_ = computed(lambda: interdaily_stability(series_from(counts)))
    permuted = series_from(days[order].ravel())
    assert interdaily_stability(permuted) == pytest.approx(is_, rel=1e-9, abs=1e-12)


@PROPERTIES
@given(hourly_days(holes=False))
def test_pyactigraphy_convention_is_the_documented_rescaling(counts: np.ndarray) -> None:
    series = series_from(counts)
    n, p = counts.size, 24
    is_ = computed(lambda: interdaily_stability(series))
    py = interdaily_stability(series, convention="pyactigraphy")
    assert py == pytest.approx(is_ * p * (n - 1) / (n * (p - 1)), rel=1e-9, abs=1e-12)
    iv = intradaily_variability(series)
    py_iv = intradaily_variability(series, convention="pyactigraphy")
    assert py_iv == pytest.approx(iv * (n - 1) / n, rel=1e-9)


# ---------------------------------------------------------------- fragmentation
@PROPERTIES
@given(minute_counts(max_size=600))
def test_transition_probabilities_are_probabilities(counts: np.ndarray) -> None:
    result = computed(lambda: fragmentation(series_from(counts, epoch=60), threshold=4))
    assert 0.0 < result.k_ra <= 1.0
    assert 0.0 < result.k_ar <= 1.0
    for hazard in (result.p_ra, result.p_ar):
        known = hazard[~np.isnan(hazard)]
        assert np.all((known >= 0) & (known <= 1))


# ---------------------------------------------------------------- sleep/wake scoring
SCORERS: dict[str, Callable[[np.ndarray, str], np.ndarray]] = {
    "cole_kripke": lambda x, edge: cole_kripke(x, edge=edge),  # type: ignore[arg-type]
    "cole_kripke_mean30": lambda x, edge: cole_kripke(x, divisor=30, edge=edge),  # type: ignore[arg-type]
    "sadeh": lambda x, edge: sadeh(x, edge=edge),  # type: ignore[arg-type]
    "oakley": lambda x, edge: oakley(x, edge=edge),  # type: ignore[arg-type]
}


@pytest.mark.parametrize("name", SCORERS)
@PROPERTIES
@given(st.integers(1, 300))
def test_no_activity_is_sleep(name: str, n: int) -> None:
    zeros = np.zeros(n)
    padded = SCORERS[name](zeros, "zero")
    assert np.all(padded == 1.0)
    unpadded = SCORERS[name](zeros, "nan")
    # only epochs whose window runs past either end are unknown; the rest are sleep
    known = unpadded[~np.isnan(unpadded)]
    assert np.all(known == 1.0)
    assert np.all(webster_rescore(padded) == 1.0)


@pytest.mark.parametrize("name", SCORERS)
@PROPERTIES
@given(minute_counts())
def test_missing_epochs_are_never_sleep(name: str, counts: np.ndarray) -> None:
    for edge in ("nan", "zero"):
        states = SCORERS[name](counts, edge)
        assert states.shape == counts.shape
        assert np.all(np.isnan(states[np.isnan(counts)]))
        assert np.all(np.isin(states[~np.isnan(states)], (0.0, 1.0)))
        rescored = webster_rescore(states)
        assert np.array_equal(np.isnan(rescored), np.isnan(states))
        assert not np.any(rescored > states)  # rescoring only turns sleep into wake


@pytest.mark.parametrize("name", ["cole_kripke", "oakley"])
@PROPERTIES
@given(minute_counts(), st.data())
def test_more_activity_never_makes_more_sleep(
    name: str, counts: np.ndarray, data: st.DataObject
) -> None:
    # both scores are non-negative weighted sums of counts compared with a threshold
    extra = np.array(
        data.draw(st.lists(st.integers(0, 200), min_size=counts.size, max_size=counts.size))
    )
    quiet, busy = SCORERS[name](counts, "zero"), SCORERS[name](counts + extra, "zero")
    known = ~np.isnan(quiet)
    assert np.all(busy[known] <= quiet[known])


# ---------------------------------------------------------------- SRI
@st.composite
def states_by_day(draw: st.DrawFn) -> tuple[np.ndarray, int]:
    per_day = draw(st.integers(2, 48))
    days = draw(st.integers(2, 5))
    values = draw(
        st.lists(
            st.sampled_from([0.0, 1.0, math.nan]), min_size=per_day * days, max_size=per_day * days
        )
    )
    return np.array(values), per_day


@PROPERTIES
@given(states_by_day())
def test_sri_is_bounded_and_symmetric_in_sleep_and_wake(case: tuple[np.ndarray, int]) -> None:
    states, per_day = case
    try:
        sri = sleep_regularity_index(states, epochs_per_day=per_day, min_pairs=1)
    except ValueError:  # InsufficientDataError: no pair 24 h apart with both states known
        reject()
    assert -100.0 <= sri <= 100.0
    flipped = np.where(np.isnan(states), np.nan, 1.0 - states)
    assert sleep_regularity_index(flipped, epochs_per_day=per_day, min_pairs=1) == sri


@PROPERTIES
@given(st.lists(st.sampled_from([0.0, 1.0]), min_size=2, max_size=48), st.integers(2, 6))
def test_sri_of_identical_days_is_100(day: list[float], days: int) -> None:
    assert sleep_regularity_index(np.tile(day, days), epochs_per_day=len(day)) == 100.0


# ---------------------------------------------------------------- non-wear and coverage
@PROPERTIES
@given(minute_counts(max_size=600))
def test_nonwear_flags_only_long_runs_of_observed_low_counts(counts: np.ndarray) -> None:
    series = series_from(counts, epoch=60)
    for mask, longest_allowed_count, min_minutes in (
        (troiano_nonwear(series, min_minutes=30), 100.0, 30),
        (choi_nonwear(series, min_minutes=45, window_minutes=10), math.inf, 45),
    ):
        assert not np.any(mask & np.isnan(counts))
        assert np.all(counts[mask] <= longest_allowed_count)
        edges = np.diff(np.concatenate(([0], mask.astype(np.int8), [0])))
        lengths = np.flatnonzero(edges == -1) - np.flatnonzero(edges == 1)
        assert np.all(lengths >= min_minutes)
        if mask.any():  # a flagged span starts and ends with a zero minute
            starts, ends = np.flatnonzero(edges == 1), np.flatnonzero(edges == -1) - 1
            assert np.all(counts[starts] == 0)
            assert np.all(counts[ends] == 0)
    # a stricter length rule flags a subset
    assert not np.any(
        troiano_nonwear(series, min_minutes=60) & ~troiano_nonwear(series, min_minutes=30)
    )


@PROPERTIES
@given(minute_counts(max_size=3000), st.integers(0, 1439), st.sampled_from(["UTC", "Europe/Oslo"]))
def test_coverage_counts_every_observed_epoch_once(
    counts: np.ndarray, offset: int, tz: str
) -> None:
    series = series_from(counts, epoch=60, start=START + 60 * offset, tz=tz)
    days = series.coverage_by_day()
    assert sum(d.observed_epochs for d in days) == int(np.sum(~np.isnan(counts)))
    assert all(0.0 <= d.fraction <= 1.0 for d in days)
    hourly = series.resample(3600, min_coverage=1 / 60)
    assert np.nansum(hourly.counts) == pytest.approx(np.nansum(counts))


# ---------------------------------------------------------------- local time
ZONES = ["Europe/Oslo", "America/New_York", "Australia/Lord_Howe", "America/St_Johns"]


def offset_at(second: int, zone: ZoneInfo) -> int:
    offset = dt.datetime.fromtimestamp(second, dt.UTC).astimezone(zone).utcoffset()
    assert offset is not None
    return int(offset.total_seconds())


@cache
def clock_changes(tz: str, year: int) -> list[int]:
    """UTC instants (to the second) at which the zone's offset changes during ``year``."""
    zone = ZoneInfo(tz)
    first = int(dt.datetime(year, 1, 1, tzinfo=dt.UTC).timestamp())
    changes = []
    for hour in range(366 * 24):
        low, high = first + hour * 3600, first + (hour + 1) * 3600
        if offset_at(low, zone) != offset_at(high, zone):
            while high - low > 1:  # bisect to the second
                middle = (low + high) // 2
                low, high = (
                    (middle, high)
                    if offset_at(middle, zone) == offset_at(low, zone)
                    else (low, middle)
                )
            changes.append(high)
    return changes


@st.composite
def near_a_clock_change(draw: st.DrawFn) -> tuple[str, int]:
    """A zone and an instant within two days of one of its clock changes (1970-2030)."""
    tz = draw(st.sampled_from(ZONES))
    changes = clock_changes(tz, draw(st.integers(1970, 2030)))
    if not changes:
        reject()
    return tz, draw(st.sampled_from(changes)) + draw(st.integers(-2 * DAY, 2 * DAY))


@PROPERTIES
@given(near_a_clock_change(), st.lists(st.integers(-3 * 3600, 3 * 3600), min_size=1, max_size=60))
def test_utc_offsets_match_the_zone_database_instant_by_instant(
    case: tuple[str, int], around: list[int]
) -> None:
    # the zone is read once per hour (memoised); instants within hours of a clock change,
    # in any order, each checked against the zone database directly
    tz, instant = case
    zone = ZoneInfo(tz)
    seconds = [instant + s for s in around]
    got = utc_offsets(np.array(seconds, dtype=np.int64), zone).tolist()
    assert got == [offset_at(s, zone) for s in seconds]


@PROPERTIES
@given(near_a_clock_change(), st.sampled_from([60, 300, 900]))
def test_local_clock_of_a_regular_grid_converts_back_to_it(
    case: tuple[str, int], epoch: int
) -> None:
    # three days of epochs around a clock change: the wall clock skips or repeats a stretch.
    # A repeated time is read as the second occurrence when the first was seen, so epochs
    # must be no longer than the shortest repeated stretch (30 min, Lord Howe)
    tz, instant = case
    start = (instant - 36 * 3600) // epoch * epoch
    utc = start + epoch * np.arange(3 * DAY // epoch, dtype=np.int64)
    zone = ZoneInfo(tz)
    local = utc + utc_offsets(utc, zone)
    assert np.array_equal(local_to_utc(local, zone), utc)
