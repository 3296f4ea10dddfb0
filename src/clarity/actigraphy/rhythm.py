"""Rest-activity rhythm metrics, nonparametric and parametric.

Every function takes an :class:`~clarity.actigraphy.series.EpochSeries` in which missing
epochs are ``NaN``; missing epochs are left out of every sum and mean, never read as zero.
A function that is given too little data raises :class:`InsufficientData` with the reason.
Time of day is local wall-clock time in the series' time zone.
"""

from __future__ import annotations

import datetime as dt
import math
from dataclasses import dataclass
from typing import Literal

import numpy as np
from scipy import special  # type: ignore[import-untyped]

from clarity.actigraphy.series import (
    SECONDS_PER_DAY,
    BoolArray,
    EpochSeries,
    FloatArray,
    InsufficientData,
    IntArray,
)

VarianceConvention = Literal["original", "pyactigraphy"]

__all__ = [
    "CosinorFit",
    "DailySummary",
    "Fragmentation",
    "InsufficientData",
    "RestActivityProfile",
    "cosinor",
    "daily_summaries",
    "fragmentation",
    "interdaily_stability",
    "intradaily_variability",
    "l5_m10",
]


def _binned(
    series: EpochSeries, period_seconds: int, min_coverage: float
) -> tuple[FloatArray, IntArray]:
    """Mean count per original epoch in bins of ``period_seconds``, and each bin's slot of day."""
    if period_seconds <= 0 or SECONDS_PER_DAY % period_seconds:
        raise ValueError("period_seconds must divide 24 hours")
    binned = series.resample(period_seconds, how="mean", min_coverage=min_coverage)
    slots = (binned.local_seconds % SECONDS_PER_DAY) // period_seconds
    return binned.counts, np.asarray(slots, dtype=np.int64)


def _check_variance(values: FloatArray) -> float:
    total = float(np.sum((values - values.mean()) ** 2))
    if total <= 0.0:
        raise InsufficientData("activity does not vary over the recording (zero variance)")
    return total


def interdaily_stability(
    series: EpochSeries,
    *,
    period_seconds: int = 3600,
    min_coverage: float = 1.0,
    convention: VarianceConvention = "original",
) -> float:
    r"""Interdaily stability (IS): how closely each day repeats the average 24-h profile.

    Witting W, Kwa IH, Eikelenboom P, Mirmiran M, Swaab DF. "Alterations in the circadian
    rest-activity rhythm in aging and Alzheimer's disease." Biol Psychiatry 1990;27:563-572;
    van Someren EJW, Swaab DF, Colenda CC, et al. "Bright light therapy: improved sensitivity
    to its effects on rest-activity rhythms in Alzheimer patients by application of
    nonparametric methods." Chronobiol Int 1999;16(4):505-518.

    The series is reduced to ``period_seconds`` bins (hourly by default) holding the mean
    count per epoch of the bin; a bin with less than ``min_coverage`` of its epochs observed
    is missing and left out. With ``N`` observed bins, ``p`` slots per day with data, slot
    means :math:`\bar x_h` and grand mean :math:`\bar x`:

    - ``convention="original"`` (Witting 1990, default):
      :math:`IS = \frac{N\sum_h(\bar x_h-\bar x)^2}{p\sum_i(x_i-\bar x)^2}` - the population
      variance of the 24-h profile over the population variance of the data.
    - ``convention="pyactigraphy"``: pyActigraphy (``metrics._interdaily_stability``) divides
      pandas ``var()`` of the profile by pandas ``var()`` of the data; ``var`` is the sample
      variance (``ddof=1``), so IS is :math:`\frac{\sum_h(\bar x_h-m)^2/(p-1)}
      {\sum_i(x_i-\bar x)^2/(N-1)}` with :math:`m` the mean of the profile. It is the
      original value times :math:`p(N-1)/(N(p-1))` (about 24/23 for hourly data) and can
      exceed 1. (pyActigraphy also defaults to hourly *sums* of binarised data, counts > 4;
      this function uses the counts themselves - IS is unchanged by the sum/mean choice
      when bins are complete.)

    With missing bins the original formula is applied as the one-way ANOVA ratio it is:
    :math:`\sum_h n_h(\bar x_h-\bar x)^2 / \sum_i(x_i-\bar x)^2`, where :math:`n_h` is the
    number of observed bins in slot ``h``; this equals the formula above when all days are
    complete (:math:`n_h = N/p`) and keeps IS in [0, 1] when they are not.

    IS lies in [0, 1] under the original convention; 1 for a perfectly repeated profile.
    """
    values, slots = _binned(series, period_seconds, min_coverage)
    keep = ~np.isnan(values)
    x, slot = values[keep], slots[keep]
    slots_per_day = SECONDS_PER_DAY // period_seconds
    if x.size < 2 * slots_per_day:
        raise InsufficientData(
            f"interdaily stability needs at least two days of observed bins; got {x.size} of "
            f"{period_seconds} s ({2 * slots_per_day} needed)"
        )
    total = _check_variance(x)
    n_slot = np.bincount(slot, minlength=slots_per_day)
    slot_sum = np.bincount(slot, weights=x, minlength=slots_per_day)
    present = n_slot > 0
    profile = slot_sum[present] / n_slot[present]
    p, n = int(profile.size), int(x.size)
    if convention == "original":
        # between-slot sum of squares, each slot weighted by its observed bins: equal to
        # N * sum((xh - x)^2) / p when every day is complete, and within [0, 1] when not
        between = np.sum(n_slot[present] * (profile - x.mean()) ** 2)
        return float(min(between / total, 1.0))
    if convention == "pyactigraphy":
        if p < 2:
            raise InsufficientData("the 24-h profile has fewer than two slots with data")
        return float(np.var(profile, ddof=1) / (total / (n - 1)))
    raise ValueError(f"unknown convention {convention!r}")


def intradaily_variability(
    series: EpochSeries,
    *,
    period_seconds: int = 3600,
    min_coverage: float = 1.0,
    convention: VarianceConvention = "original",
) -> float:
    r"""Intradaily variability (IV): how fragmented the rhythm is from bin to bin.

    Witting W, et al. Biol Psychiatry 1990;27:563-572; van Someren EJW, et al. Chronobiol Int
    1999;16(4):505-518. Bins as for :func:`interdaily_stability` (hourly means by default).

    - ``convention="original"`` (default):
      :math:`IV = \frac{N\sum_{i=2}^N(x_i-x_{i-1})^2}{(N-1)\sum_{i=1}^N(x_i-\bar x)^2}` -
      the mean squared successive difference over the population variance.
    - ``convention="pyactigraphy"``: pyActigraphy (``metrics._intradaily_variability``)
      divides the mean squared successive difference by pandas ``var()`` (``ddof=1``):
      :math:`\sum(x_i-x_{i-1})^2 / \sum(x_i-\bar x)^2`, the original times ``(N-1)/N``.

    With missing bins, only successive pairs whose two bins were both observed enter the
    numerator (its mean is over those pairs); a missing bin is never bridged or zero-filled.
    IV is about 0 for a smooth rhythm and about 2 for white noise.
    """
    values, _ = _binned(series, period_seconds, min_coverage)
    keep = ~np.isnan(values)
    pairs = keep[1:] & keep[:-1]
    if int(pairs.sum()) < 2:
        raise InsufficientData("intradaily variability needs at least two pairs of adjacent bins")
    x = values[keep]
    total = _check_variance(x)
    diffs = np.diff(values)[pairs]
    mean_sq_diff = float(np.mean(diffs**2))
    n = int(x.size)
    if convention == "original":
        return mean_sq_diff / (total / n)
    if convention == "pyactigraphy":
        return mean_sq_diff / (total / (n - 1))
    raise ValueError(f"unknown convention {convention!r}")


@dataclass(frozen=True)
class RestActivityProfile:
    """L5, M10 and relative amplitude of the average 24-h profile."""

    l5: float
    l5_onset_hours: float
    m10: float
    m10_onset_hours: float

    @property
    def relative_amplitude(self) -> float:
        """RA = (M10 - L5) / (M10 + L5), in [0, 1]."""
        return (self.m10 - self.l5) / (self.m10 + self.l5)


def average_day_profile(series: EpochSeries) -> FloatArray:
    """Mean count per epoch slot of the local day over all days (``NaN`` for unseen slots)."""
    epoch = series.epoch_seconds
    if SECONDS_PER_DAY % epoch:
        raise ValueError("the epoch must divide 24 hours")
    per_day = SECONDS_PER_DAY // epoch
    observed = series.observed
    slots = (series.local_seconds[observed] % SECONDS_PER_DAY) // epoch
    n = np.bincount(slots, minlength=per_day)
    total = np.bincount(slots, weights=series.counts[observed], minlength=per_day)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.asarray(np.where(n > 0, total / np.maximum(n, 1), np.nan), dtype=np.float64)


def l5_m10(
    series: EpochSeries, *, low_hours: float = 5.0, high_hours: float = 10.0
) -> RestActivityProfile:
    """L5 and M10 with their onsets, and relative amplitude, from the average 24-h profile.

    van Someren EJW, Lijzenga C, Mirmiran M, Swaab DF. "Long-term fitness training improves
    the circadian rest-activity rhythm in healthy elderly males." J Biol Rhythms
    1997;12(2):146-156; van Someren EJW, et al. Chronobiol Int 1999;16(4):505-518.

    The average day is the mean count of each epoch slot of the local day over all days
    (observed epochs only). L5 is the lowest mean over any ``low_hours`` window of that
    profile, M10 the highest over any ``high_hours`` window; windows wrap around midnight.
    Onsets are the window starts in hours after local midnight (the earliest on ties).
    Values are in counts per epoch. Every slot of the day must have been observed at least
    once, else :class:`InsufficientData`.
    """
    profile = average_day_profile(series)
    missing = int(np.isnan(profile).sum())
    if missing:
        raise InsufficientData(
            f"{missing} of {profile.size} epochs of the 24-h profile were never observed"
        )
    epoch_hours = series.epoch_seconds / 3600.0
    results: list[tuple[float, float]] = []
    for hours, lowest in ((low_hours, True), (high_hours, False)):
        width = round(hours / epoch_hours)
        if width < 1 or width > profile.size or not math.isclose(width * epoch_hours, hours):
            raise ValueError(f"a {hours}-h window is not a whole number of epochs within a day")
        cyclic = np.concatenate((profile, profile[: width - 1]))
        sums = np.concatenate(([0.0], np.cumsum(cyclic)))
        means = (sums[width:] - sums[:-width])[: profile.size] / width
        start = int(np.argmin(means) if lowest else np.argmax(means))
        results.append((float(means[start]), start * epoch_hours))
    (l5, l5_onset), (m10, m10_onset) = results
    if l5 + m10 <= 0.0:
        raise InsufficientData("no activity at all: relative amplitude is undefined")
    return RestActivityProfile(l5, l5_onset, m10, m10_onset)


@dataclass(frozen=True)
class Fragmentation:
    """Rest/activity state transition probabilities (per epoch)."""

    k_ra: float
    k_ar: float
    rest_bouts: int
    active_bouts: int
    p_ra: FloatArray
    p_ar: FloatArray


def _runs(states: IntArray) -> tuple[IntArray, IntArray, IntArray]:
    """Start, length and state of each run of equal values."""
    change = np.flatnonzero(np.diff(states)) + 1
    starts = np.concatenate(([0], change)).astype(np.int64)
    lengths = np.diff(np.concatenate((starts, [states.size]))).astype(np.int64)
    return starts, lengths, states[starts]


def _hazard(
    lengths: IntArray, complete: BoolArray, right_censored: BoolArray
) -> tuple[FloatArray, IntArray, IntArray]:
    """Per-length hazard p(t) = ends at t / at risk at t, t = 1..max length (index t-1)."""
    longest = int(lengths.max())
    ends = np.bincount(lengths[complete], minlength=longest + 1)[1:]
    complete_at_least = np.cumsum(ends[::-1])[::-1]
    # a right-censored bout seen for L epochs is known not to have ended at t = 1..L-1
    censored = np.bincount(lengths[right_censored], minlength=longest + 2)[1:]
    censored_beyond = np.cumsum(censored[::-1])[::-1][1:]
    at_risk = complete_at_least + censored_beyond[:longest]
    with np.errstate(invalid="ignore", divide="ignore"):
        p = np.where(at_risk > 0, ends / np.maximum(at_risk, 1), np.nan)
    return np.asarray(p, dtype=np.float64), ends.astype(np.int64), at_risk.astype(np.int64)


def fragmentation(
    series: EpochSeries,
    *,
    threshold: float,
    min_length: int = 1,
    max_length: int | None = None,
) -> Fragmentation:
    """Activity fragmentation: rest->activity (kRA) and activity->rest (kAR) probabilities.

    Lim ASP, Yu L, Costa MD, Buchman AS, Bennett DA, Leurgans SE, Saper CB. "Quantification of
    the fragmentation of rest-activity patterns in elderly individuals using a state
    transition analysis." Sleep 2011;34(11):1569-1581.

    Epochs with counts ``> threshold`` are active, the others rest (pyActigraphy's binarising
    rule). Bouts are runs of one state. ``p_ra[t-1]`` is the probability that a rest bout
    that has lasted ``t`` epochs ends at ``t`` (the number of rest bouts of length exactly
    ``t`` over those of length at least ``t``); ``p_ar`` likewise for active bouts.

    Estimator: kRA (kAR) is the constant transition probability fitted by maximum likelihood
    to bout lengths ``min_length..max_length``: bouts ending in that range over the
    epochs at risk in it. Over all lengths this is the reciprocal of the mean bout length.
    Lim et al. average p(t) over the range where it is roughly constant; pyActigraphy picks
    that range automatically with a LOWESS fit and averages p(t) weighted by the square root
    of the bouts at risk, so its values can differ from these.

    Missing epochs end a bout without a transition: a bout that touches a gap or either end
    of the recording has an unobserved start or end. Bouts with an unobserved start are left
    out; bouts with an observed start but unobserved end count as at risk for the lengths
    they were seen to survive, with no transition. Requires a regular series.
    """
    if not series.is_regular:
        raise ValueError("fragmentation needs a regular series: call regularize() first")
    if min_length < 1 or (max_length is not None and max_length < min_length):
        raise ValueError("need 1 <= min_length <= max_length")
    counts = series.counts
    states = np.where(np.isnan(counts), -1, (counts > threshold).astype(np.int64))
    states = np.asarray(states, dtype=np.int64)
    if states.size == 0:
        raise InsufficientData("the series is empty")
    _, lengths, values = _runs(states)
    before = np.concatenate(([-1], values[:-1]))
    after = np.concatenate((values[1:], [-1]))
    start_seen = before != -1
    end_seen = after != -1
    estimates: list[tuple[float, int, FloatArray]] = []
    for state, name in ((0, "rest"), (1, "active")):
        of_state = (values == state) & start_seen
        complete = of_state & end_seen
        right_censored = of_state & ~end_seen
        if not complete.any():
            raise InsufficientData(f"no complete {name} bout (both ends observed) in the series")
        p, n_end, at_risk = _hazard(lengths, complete, right_censored)
        upper = p.size if max_length is None else min(max_length, p.size)
        window = slice(min_length - 1, upper)
        risk = int(at_risk[window].sum())
        if risk == 0:
            raise InsufficientData(
                f"no {name} bout reaches the lengths {min_length}..{max_length or 'max'}"
            )
        estimates.append((float(n_end[window].sum()) / risk, int(complete.sum()), p))
    (k_ra, n_rest, p_ra), (k_ar, n_active, p_ar) = estimates
    return Fragmentation(k_ra, k_ar, n_rest, n_active, p_ra, p_ar)


@dataclass(frozen=True)
class CosinorFit:
    """Single-component cosinor: y = MESOR + amplitude * cos(2*pi*(t - acrophase)/period)."""

    mesor: float
    amplitude: float
    acrophase_hours: float
    mesor_ci: tuple[float, float]
    amplitude_ci: tuple[float, float]
    acrophase_ci_hours: tuple[float, float]
    r_squared: float
    f_statistic: float
    p_value: float
    n: int
    period_hours: float


def _dot(a: FloatArray, b: FloatArray) -> float:
    return float(np.sum(a * b))


def _cos_sin(
    local_seconds: IntArray, period_hours: float, epoch_seconds: int
) -> tuple[FloatArray, FloatArray]:
    """Cosine and sine of the phase of each time (seconds) in the cycle.

    Epoch data repeat a few phases many times (1440 per day at 1-min epochs): when the
    period is a whole number of seconds and every phase lies on one grid of
    ``gcd(period, epoch)`` seconds, the trigonometry is done once per grid point.
    """
    omega = 2.0 * math.pi / period_hours
    period_seconds = period_hours * 3600.0
    whole = round(period_seconds)
    if whole == period_seconds and whole > 0 and local_seconds.size:
        step = math.gcd(whole, epoch_seconds)
        phase = local_seconds % whole
        rest = int(phase[0]) % step
        if whole // step <= local_seconds.size and bool(np.all(phase % step == rest)):
            angle = omega * (np.arange(rest, whole, step) / 3600.0)
            slot = phase // step
            return np.cos(angle)[slot], np.sin(angle)[slot]
    angle = omega * np.mod(local_seconds / 3600.0, period_hours)
    return np.cos(angle), np.sin(angle)


def cosinor(series: EpochSeries, *, period_hours: float = 24.0, alpha: float = 0.05) -> CosinorFit:
    r"""Least-squares single-component cosinor with the standard confidence intervals.

    Cornelissen G. "Cosinor-based rhythmometry." Theor Biol Med Model 2014;11:16
    (doi:10.1186/1742-4682-11-16), after Bingham C, Arbogast B, Cornelissen G, Lee JK,
    Halberg F. "Inferential statistical methods for estimating and comparing cosinor
    parameters." Chronobiologia 1982;9(4):397-439.

    Fits :math:`y = M + \beta\cos\omega t + \gamma\sin\omega t` to the observed epochs, with
    :math:`t` the local wall-clock time and :math:`\omega = 2\pi/\text{period}`. Amplitude
    :math:`A=\sqrt{\beta^2+\gamma^2}`; ``acrophase_hours`` is the time of the fitted peak in
    hours after local midnight (for a 24-h period), i.e. :math:`-\phi/\omega` with
    Cornelissen's acrophase :math:`\phi=\operatorname{atan2}(-\gamma,\beta)`.

    Confidence intervals at level ``1 - alpha`` are estimate :math:`\pm t_{1-\alpha/2,N-3}`
    times the standard errors of Cornelissen 2014 (eqs. for SE(M), SE(A), SE(phi)); those of
    A and phi are delta-method approximations, and the acrophase interval is meaningful
    only when the zero-amplitude test rejects. ``p_value`` is that test:
    :math:`F = \frac{(TSS-RSS)/2}{RSS/(N-3)}` on (2, N-3) degrees of freedom.
    ``r_squared`` is :math:`1-RSS/TSS`. The formulas assume independent residuals; epoch
    data are autocorrelated, so the intervals are optimistic at fine epochs.
    """
    if not 0.0 < alpha < 1.0:
        raise ValueError("alpha must be in (0, 1)")
    if period_hours <= 0:
        raise ValueError("period_hours must be positive")
    observed = series.observed
    y = series.counts[observed]
    n = int(y.size)
    if n < 4:
        raise InsufficientData(f"cosinor needs at least 4 observed epochs; got {n}")
    omega = 2.0 * math.pi / period_hours
    cos_t, sin_t = _cos_sin(series.local_seconds[observed], period_hours, series.epoch_seconds)
    # normal equations of the design [1, cos, sin]; sums of products rather than BLAS
    # products, whose threads contend with each other on busy machines
    sum_c, sum_s, cs = float(cos_t.sum()), float(sin_t.sum()), _dot(cos_t, sin_t)
    gram = np.array(
        [[n, sum_c, sum_s], [sum_c, _dot(cos_t, cos_t), cs], [sum_s, cs, _dot(sin_t, sin_t)]]
    )
    if np.linalg.matrix_rank(gram) < 3:
        raise InsufficientData("the observed times do not cover enough of the cycle to fit it")
    coef = np.linalg.solve(gram, np.array([float(y.sum()), _dot(cos_t, y), _dot(sin_t, y)]))
    mesor, beta, gamma = (float(v) for v in coef)
    residual = y - (mesor + beta * cos_t + gamma * sin_t)
    rss = _dot(residual, residual)
    tss = float(np.sum((y - y.mean()) ** 2))
    if tss <= 0.0:
        raise InsufficientData("activity does not vary (zero variance): nothing to fit")
    dof = n - 3
    sigma2 = rss / dof
    cov = sigma2 * np.linalg.inv(gram)
    amplitude = math.hypot(beta, gamma)
    phi = math.atan2(-gamma, beta)
    cos_phi, sin_phi = math.cos(phi), math.sin(phi)
    se_mesor = math.sqrt(max(float(cov[0, 0]), 0.0))
    var_amp = cos_phi**2 * cov[1, 1] - 2 * cos_phi * sin_phi * cov[1, 2] + sin_phi**2 * cov[2, 2]
    se_amp = math.sqrt(max(float(var_amp), 0.0))
    if amplitude > 0:
        var_phi = (
            sin_phi**2 * cov[1, 1] + 2 * sin_phi * cos_phi * cov[1, 2] + cos_phi**2 * cov[2, 2]
        ) / amplitude**2
        se_phi = math.sqrt(max(float(var_phi), 0.0))
    else:
        se_phi = math.pi
    # scipy.stats' t.ppf and f.sf evaluate these same special functions, without overhead
    t_crit = float(special.stdtrit(dof, 1.0 - alpha / 2.0))
    peak = (-phi / omega) % period_hours
    se_peak = se_phi / omega
    if rss > 0:
        f_stat = ((tss - rss) / 2.0) / (rss / dof)
        p_value = float(special.fdtrc(2, dof, f_stat)) if f_stat > 0 else 1.0
    else:
        f_stat, p_value = math.inf, 0.0
    return CosinorFit(
        mesor=mesor,
        amplitude=amplitude,
        acrophase_hours=peak,
        mesor_ci=(mesor - t_crit * se_mesor, mesor + t_crit * se_mesor),
        amplitude_ci=(amplitude - t_crit * se_amp, amplitude + t_crit * se_amp),
        acrophase_ci_hours=(peak - t_crit * se_peak, peak + t_crit * se_peak),
        r_squared=1.0 - rss / tss,
        f_statistic=float(f_stat),
        p_value=p_value,
        n=n,
        period_hours=period_hours,
    )


@dataclass(frozen=True)
class DailySummary:
    """Activity totals for one local calendar day (observed epochs only)."""

    date: dt.date
    expected_epochs: int
    observed_epochs: int
    total_counts: float
    sedentary_minutes: float
    active_minutes: float

    @property
    def coverage(self) -> float:
        return self.observed_epochs / self.expected_epochs if self.expected_epochs else 0.0


def daily_summaries(
    series: EpochSeries,
    *,
    sedentary_below_cpm: float,
    active_from_cpm: float,
    valid: BoolArray | None = None,
) -> list[DailySummary]:
    """Per local day: total counts, sedentary and active minutes, coverage.

    Thresholds are in counts per minute (an epoch's counts are scaled to a per-minute rate
    before comparison) and are device-specific: for ActiGraph counts, for example,
    sedentary is < 100 cpm and moderate-to-vigorous >= 2020 cpm (Troiano RP, et al. Med Sci
    Sports Exerc 2008;40(1):181-188). An epoch is sedentary when its rate is below
    ``sedentary_below_cpm`` and active when it is at least ``active_from_cpm``.
    Only observed epochs (not ``NaN`` and, if given, ``valid``) are counted; totals are of
    what was observed, so read them with ``coverage``.
    """
    if active_from_cpm < sedentary_below_cpm:
        raise ValueError("active_from_cpm must not be below sedentary_below_cpm")
    coverage = series.coverage_by_day(valid)
    if not coverage:
        return []
    counted = series.observed
    if valid is not None:
        counted = counted & np.asarray(valid, dtype=np.bool_)
    days = series.local_day_numbers()[counted]
    first = int(series.local_day_numbers()[0])
    index = days - first
    counts = series.counts[counted]
    rate = counts * (60.0 / series.epoch_seconds)
    minutes_per_epoch = series.epoch_seconds / 60.0
    n_days = len(coverage)
    totals = np.bincount(index, weights=counts, minlength=n_days)
    sedentary = np.bincount(index[rate < sedentary_below_cpm], minlength=n_days)
    active = np.bincount(index[rate >= active_from_cpm], minlength=n_days)
    return [
        DailySummary(
            date=day.date,
            expected_epochs=day.expected_epochs,
            observed_epochs=day.observed_epochs,
            total_counts=float(totals[i]),
            sedentary_minutes=float(sedentary[i]) * minutes_per_epoch,
            active_minutes=float(active[i]) * minutes_per_epoch,
        )
        for i, day in enumerate(coverage)
    ]
