"""Rest-activity rhythm metrics on synthetic signals whose answers are known analytically."""

from __future__ import annotations

import datetime as dt
import math
from zoneinfo import ZoneInfo

import numpy as np
import pytest
from scipy import stats  # type: ignore[import-untyped]

from clarity.actigraphy.rhythm import (
    cosinor,
    daily_summaries,
    fragmentation,
    interdaily_stability,
    intradaily_variability,
    l5_m10,
)
from clarity.actigraphy.series import EpochSeries, InsufficientData

START = int(dt.datetime(2024, 1, 1, tzinfo=dt.UTC).timestamp())


def series_from(
    counts: np.ndarray, *, epoch: int = 60, start: int = START, tz: str = "UTC"
) -> EpochSeries:
    stamps = start + epoch * np.arange(counts.size, dtype=np.int64)
    return EpochSeries.from_utc_seconds(stamps, counts, epoch_seconds=epoch, timezone=tz)


def cosine_days(
    days: int, *, mesor: float = 100.0, amplitude: float = 50.0, peak: float = 15.0
) -> EpochSeries:
    hours = np.arange(days * 1440) / 60.0
    return series_from(mesor + amplitude * np.cos(2 * np.pi * (hours - peak) / 24.0))


# ---------------------------------------------------------------- IS / IV
def test_pure_24h_cosine_is_perfectly_stable() -> None:
    assert interdaily_stability(cosine_days(7)) == pytest.approx(1.0, abs=1e-12)


def test_missing_hours_are_left_out_not_zero_filled() -> None:
    series = cosine_days(7)
    counts = series.counts.copy()
    rng = np.random.default_rng(3)
    for hour in rng.choice(7 * 24, size=20, replace=False):
        counts[hour * 60 : hour * 60 + 60] = np.nan
    gappy = series.with_counts(counts)
    assert interdaily_stability(gappy) == pytest.approx(1.0, abs=1e-12)
    zero_filled = series.with_counts(np.nan_to_num(counts, nan=0.0))
    assert interdaily_stability(zero_filled) < 0.9


# Two days of 6-hour bins, by hand: day 1 = 1 2 3 6, day 2 = 3 2 1 6 (N = 8, p = 4).
# Grand mean 24 / 8 = 3; slot means 2 2 2 6; sum of squares about the mean
# (4 + 1 + 0 + 9) + (0 + 1 + 4 + 9) = 28; successive differences 1 1 3 -3 -1 -1 5,
# whose squares sum to 47 over 7 pairs.
SIX_HOURLY = np.array([1.0, 2.0, 3.0, 6.0, 3.0, 2.0, 1.0, 6.0])


def test_is_by_hand() -> None:
    series = series_from(SIX_HOURLY, epoch=21600)
    # original: N * sum_h (slot mean - mean)^2 / (p * SS) = 8 * (1 + 1 + 1 + 9) / (4 * 28)
    assert interdaily_stability(series, period_seconds=21600) == pytest.approx(96 / 112)
    # pyActigraphy: var(slot means, ddof=1) / var(x, ddof=1) = (12 / 3) / (28 / 7) = 1
    assert interdaily_stability(
        series, period_seconds=21600, convention="pyactigraphy"
    ) == pytest.approx(1.0)


def test_iv_by_hand() -> None:
    series = series_from(SIX_HOURLY, epoch=21600)
    # original: N * sum d^2 / ((N - 1) * SS) = 8 * 47 / (7 * 28)
    assert intradaily_variability(series, period_seconds=21600) == pytest.approx(376 / 196)
    # pyActigraphy: sum d^2 / SS = 47 / 28
    assert intradaily_variability(
        series, period_seconds=21600, convention="pyactigraphy"
    ) == pytest.approx(47 / 28)


def test_is_iv_of_hourly_means_of_minute_counts_by_hand() -> None:
    # the same two days as minute counts: each 6-hour bin is 360 equal minutes, so the bin
    # means are the values above and IS, IV are the same (mean of a bin, not its sum)
    series = series_from(np.repeat(SIX_HOURLY, 360))
    assert interdaily_stability(series, period_seconds=21600) == pytest.approx(96 / 112)
    assert intradaily_variability(series, period_seconds=21600) == pytest.approx(376 / 196)


def test_white_noise_has_low_is_and_iv_near_two() -> None:
    rng = np.random.default_rng(7)
    hourly = rng.normal(100.0, 10.0, size=60 * 24)
    series = series_from(hourly, epoch=3600)
    assert intradaily_variability(series) == pytest.approx(2.0, abs=0.15)
    assert interdaily_stability(series) < 0.1


def test_smooth_rhythm_has_low_iv() -> None:
    # hourly samples of a sinusoid: mean squared step / variance = 2 (1 - cos(2 pi / 24))
    iv = intradaily_variability(cosine_days(14))
    assert iv == pytest.approx(2 * (1 - math.cos(2 * math.pi / 24)), rel=0.02)


def test_pyactigraphy_convention_differs_by_the_documented_factor() -> None:
    rng = np.random.default_rng(11)
    hours = np.arange(10 * 24)
    values = 50 + 20 * np.cos(2 * np.pi * hours / 24) + rng.normal(0, 8, hours.size)
    series = series_from(values, epoch=3600)
    n, p = hours.size, 24
    is_orig = interdaily_stability(series)
    is_py = interdaily_stability(series, convention="pyactigraphy")
    assert is_py == pytest.approx(is_orig * p * (n - 1) / (n * (p - 1)))
    iv_orig = intradaily_variability(series)
    iv_py = intradaily_variability(series, convention="pyactigraphy")
    assert iv_py == pytest.approx(iv_orig * (n - 1) / n)
    # pyActigraphy's IV numerator over variance with ddof=1 equals sum(d^2) / sum((x-m)^2)
    expected = np.sum(np.diff(values) ** 2) / np.sum((values - values.mean()) ** 2)
    assert iv_py == pytest.approx(expected)


def test_iv_does_not_bridge_a_missing_hour() -> None:
    values = np.tile([1.0, 3.0], 48)
    values[10] = np.nan
    series = series_from(values, epoch=3600)
    kept = values[~np.isnan(values)]
    valid_pairs = np.diff(values)[~np.isnan(np.diff(values))]
    expected = np.mean(valid_pairs**2) / np.var(kept)
    assert intradaily_variability(series) == pytest.approx(expected)


def test_is_needs_two_days_and_variance() -> None:
    with pytest.raises(InsufficientData, match="two days"):
        interdaily_stability(cosine_days(1))
    with pytest.raises(InsufficientData, match="variance"):
        interdaily_stability(series_from(np.full(3 * 1440, 5.0)))
    with pytest.raises(InsufficientData, match="pairs"):
        intradaily_variability(series_from(np.array([1.0, np.nan, 2.0]), epoch=3600))


# ---------------------------------------------------------------- L5 / M10 / RA
def profile_days(days: int, tz: str = "UTC") -> EpochSeries:
    """Rest 2 counts 23:00-04:00, active 100 counts 08:00-18:00, 20 otherwise (local time)."""
    minute_of_day = np.arange(1440)
    day = np.full(1440, 20.0)
    day[(minute_of_day >= 23 * 60) | (minute_of_day < 4 * 60)] = 2.0
    day[(minute_of_day >= 8 * 60) & (minute_of_day < 18 * 60)] = 100.0
    zone = ZoneInfo(tz)
    midnight = dt.datetime(2024, 1, 10, tzinfo=zone)
    return series_from(np.tile(day, days), start=int(midnight.timestamp()), tz=tz)


@pytest.mark.parametrize("tz", ["UTC", "America/New_York"])
def test_l5_m10_placement_and_relative_amplitude(tz: str) -> None:
    result = l5_m10(profile_days(5, tz))
    assert result.l5 == pytest.approx(2.0)
    assert result.l5_onset_hours == pytest.approx(23.0)  # wraps around midnight
    assert result.m10 == pytest.approx(100.0)
    assert result.m10_onset_hours == pytest.approx(8.0)
    assert result.relative_amplitude == pytest.approx(98.0 / 102.0)


def test_l5_m10_by_hand_on_an_averaged_hourly_profile() -> None:
    # Hourly epochs, two days from midnight UTC. Day A: 6 4 2 0 2 4 6 at 00-06 h, 20 at
    # 07-16 h, 10 at 17-23 h; day B the same but 2 at 03 h and 30 at 12 h. Average day:
    # 6 4 2 1 2 4 6 | 20 x 5, 25, 20 x 4 | 10 x 7.
    day_a = np.array([6, 4, 2, 0, 2, 4, 6] + [20] * 10 + [10] * 7, dtype=float)
    day_b = day_a.copy()
    day_b[3], day_b[12] = 2.0, 30.0
    result = l5_m10(series_from(np.concatenate((day_a, day_b)), epoch=3600))
    # 5-h windows: from 01 h 4+2+1+2+4 = 13 (from 00 h and 02 h: 15) -> L5 = 13 / 5
    assert result.l5 == pytest.approx(2.6)
    assert result.l5_onset_hours == 1.0
    # 10-h windows: 07-16 h 9 x 20 + 25 = 205 (from 06 h: 191, from 08 h: 195)
    assert result.m10 == pytest.approx(20.5)
    assert result.m10_onset_hours == 7.0
    assert result.relative_amplitude == pytest.approx((20.5 - 2.6) / (20.5 + 2.6))


def test_l5_ignores_missing_epochs() -> None:
    series = profile_days(3)
    counts = series.counts.copy()
    counts[1440 + 60 : 1440 + 120] = np.nan  # one night hour missing on day 2 only
    assert l5_m10(series.with_counts(counts)).l5 == pytest.approx(2.0)


def test_l5_needs_a_full_profile() -> None:
    series = profile_days(2)
    counts = series.counts.copy()
    counts[600:660] = np.nan
    counts[1440 + 600 : 1440 + 660] = np.nan
    with pytest.raises(InsufficientData, match="never observed"):
        l5_m10(series.with_counts(counts))


# ---------------------------------------------------------------- fragmentation
def test_fragmentation_on_constructed_bouts() -> None:
    # [active 2, rest 4] x 100, then active 2; counts 0 = rest, 50 = active (threshold 4)
    pattern = np.array([50, 50, 0, 0, 0, 0], dtype=float)
    counts = np.concatenate((np.tile(pattern, 100), [50.0, 50.0]))
    result = fragmentation(series_from(counts), threshold=4)
    # every rest bout lasts exactly 4 epochs: hazard 0, 0, 0, 1; k = 1 / 4
    assert result.rest_bouts == 100
    assert result.k_ra == pytest.approx(0.25)
    np.testing.assert_allclose(result.p_ra, [0, 0, 0, 1])
    # the first active bout has no observed start (left out); the last one no observed end:
    # 99 complete bouts of 2 epochs, plus 1 epoch at risk from the censored one
    assert result.active_bouts == 99
    assert result.k_ar == pytest.approx(99 / 199)


def test_fragmentation_gap_ends_a_bout_without_a_transition() -> None:
    counts = np.array([50, 0, 0, np.nan, 0, 0, 50, 0, 0, 0, 50], dtype=float)
    result = fragmentation(series_from(counts), threshold=4)
    # rest bouts: [0 0] censored at 2 (at risk t=1), [0 0] after the gap left out, [0 0 0]
    assert result.rest_bouts == 1
    assert result.k_ra == pytest.approx(1 / (3 + 1))


def test_fragmentation_recovers_markov_probabilities() -> None:
    rng = np.random.default_rng(5)
    rest = rng.geometric(0.1, size=4000)
    active = rng.geometric(0.3, size=4000)
    lengths = np.column_stack((rest, active)).ravel()
    states = np.tile([0.0, 80.0], 4000)
    counts = np.repeat(states, lengths)
    result = fragmentation(series_from(counts), threshold=4)
    assert result.k_ra == pytest.approx(0.1, rel=0.05)
    assert result.k_ar == pytest.approx(0.3, rel=0.05)


def test_fragmentation_needs_complete_bouts_and_regular_series() -> None:
    with pytest.raises(InsufficientData, match="no complete rest bout"):
        fragmentation(series_from(np.zeros(100)), threshold=4)
    irregular = EpochSeries.from_utc_seconds([0, 60, 600], [0, 50, 0], epoch_seconds=60)
    with pytest.raises(ValueError, match="regularize"):
        fragmentation(irregular, threshold=4)


# ---------------------------------------------------------------- cosinor
def test_cosinor_recovers_a_pure_cosine_exactly() -> None:
    fit = cosinor(cosine_days(3, mesor=120.0, amplitude=40.0, peak=15.5))
    assert fit.mesor == pytest.approx(120.0, abs=1e-9)
    assert fit.amplitude == pytest.approx(40.0, abs=1e-9)
    assert fit.acrophase_hours == pytest.approx(15.5, abs=1e-9)
    assert fit.r_squared == pytest.approx(1.0)
    assert fit.p_value < 1e-12
    assert fit.n == 3 * 1440


def test_cosinor_by_hand_on_four_points() -> None:
    # 6-hourly at 00, 06, 12, 18 h: cos = 1 0 -1 0, sin = 0 1 0 -1, so the design is
    # orthogonal (Gram matrix diag(4, 2, 2)) and M = mean(y), beta = (y0 - y2) / 2,
    # gamma = (y1 - y3) / 2. y = 5 4 1 3: M = 3.25, beta = 2, gamma = 0.5.
    fit = cosinor(series_from(np.array([5.0, 4.0, 1.0, 3.0]), epoch=21600))
    assert fit.mesor == pytest.approx(3.25)
    assert fit.amplitude == pytest.approx(math.sqrt(2**2 + 0.5**2))
    # peak of 2 cos(wt) + 0.5 sin(wt) at wt = atan2(0.5, 2), w = 2 pi / 24 h
    assert fit.acrophase_hours == pytest.approx(math.atan2(0.5, 2) * 24 / (2 * math.pi))
    # fitted 5.25 3.75 1.25 2.75: residuals -+0.25, RSS = 0.25; TSS = sum (y - 3.25)^2 = 8.75
    assert fit.r_squared == pytest.approx(1 - 0.25 / 8.75)
    # F = ((TSS - RSS) / 2) / (RSS / (N - 3)) = 4.25 / 0.25
    assert fit.f_statistic == pytest.approx(17.0)
    # SE(M) = sqrt(RSS / (N - 3) / 4) = 0.25; t(0.975, 1 df) = 12.7062047...
    half = 12.706204736174694 * 0.25
    assert fit.mesor_ci == pytest.approx((3.25 - half, 3.25 + half))
    assert fit.n == 4


def test_cosinor_acrophase_is_in_local_time() -> None:
    zone = ZoneInfo("Asia/Tokyo")
    midnight = int(dt.datetime(2024, 3, 1, tzinfo=zone).timestamp())
    hours = np.arange(2 * 1440) / 60.0
    counts = 60 + 30 * np.cos(2 * np.pi * (hours - 3.0) / 24)
    fit = cosinor(series_from(counts, start=midnight, tz="Asia/Tokyo"))
    assert fit.acrophase_hours == pytest.approx(3.0, abs=1e-9)


def test_cosinor_ci_and_f_test_match_the_standard_formulas() -> None:
    rng = np.random.default_rng(2)
    t = np.arange(96.0)  # hourly, 4 days
    y = 20 + 4 * np.cos(2 * np.pi * (t - 7) / 24) + rng.normal(0, 2, t.size)
    fit = cosinor(series_from(y, epoch=3600))
    # F from R^2 with (2, N-3) degrees of freedom
    n = t.size
    f_from_r2 = (fit.r_squared / 2) / ((1 - fit.r_squared) / (n - 3))
    assert fit.f_statistic == pytest.approx(f_from_r2)
    assert fit.p_value < 0.05
    # the mesor interval is M +/- t * sigma / sqrt(N) for equally spaced whole cycles
    x = np.column_stack((np.ones(n), np.cos(2 * np.pi * t / 24), np.sin(2 * np.pi * t / 24)))
    rss = np.sum((y - x @ np.linalg.lstsq(x, y, rcond=None)[0]) ** 2)
    half = stats.t.ppf(0.975, n - 3) * math.sqrt(rss / (n - 3)) / math.sqrt(n)
    assert fit.mesor_ci[1] - fit.mesor == pytest.approx(half, rel=1e-5)
    for low, high, truth in (
        (*fit.mesor_ci, 20.0),
        (*fit.amplitude_ci, 4.0),
        (*fit.acrophase_ci_hours, 7.0),
    ):
        assert low < truth < high


def test_cosinor_intervals_cover_at_the_nominal_rate() -> None:
    rng = np.random.default_rng(17)
    t = np.arange(72.0)
    covered = np.zeros(3)
    trials = 400
    for _ in range(trials):
        y = 15 + 3 * np.cos(2 * np.pi * (t - 20) / 24) + rng.normal(0, 1.5, t.size)
        fit = cosinor(series_from(y, epoch=3600))
        covered += [
            fit.mesor_ci[0] < 15 < fit.mesor_ci[1],
            fit.amplitude_ci[0] < 3 < fit.amplitude_ci[1],
            fit.acrophase_ci_hours[0] < 20 < fit.acrophase_ci_hours[1],
        ]
    rates = covered / trials
    assert np.all(rates > 0.91)
    assert np.all(rates < 0.99)


def test_cosinor_on_noise_is_not_significant_and_needs_data() -> None:
    rng = np.random.default_rng(23)
    fit = cosinor(series_from(rng.normal(10, 1, 200), epoch=3600))
    assert fit.p_value > 0.01
    with pytest.raises(InsufficientData, match="at least 4"):
        cosinor(series_from(np.array([1.0, 2.0, np.nan, 3.0])))


# ---------------------------------------------------------------- daily summaries
def test_daily_summaries_count_observed_minutes_only() -> None:
    day = np.concatenate((np.zeros(600), np.full(300, 50.0), np.full(540, 3000.0)))
    counts = np.tile(day, 2)
    counts[1440 : 1440 + 60] = np.nan
    first, second = daily_summaries(
        series_from(counts), sedentary_below_cpm=100, active_from_cpm=2020
    )
    assert first.total_counts == pytest.approx(300 * 50 + 540 * 3000)
    assert (first.sedentary_minutes, first.active_minutes) == (900.0, 540.0)
    assert second.sedentary_minutes == 840.0
    assert second.observed_epochs == 1380
    assert second.coverage == pytest.approx(1380 / 1440)


def test_daily_summary_thresholds_are_per_minute() -> None:
    # 30-s epochs of 1500 counts are 3000 counts per minute: active
    counts = np.full(2880, 1500.0)
    (summary,) = daily_summaries(
        series_from(counts, epoch=30), sedentary_below_cpm=100, active_from_cpm=2020
    )
    assert summary.active_minutes == 1440.0
    assert summary.sedentary_minutes == 0.0
