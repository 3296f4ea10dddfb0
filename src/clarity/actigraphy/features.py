"""Documented feature vectors per local day and per recording, for models and their explanations.

One pipeline, run once by :func:`analyse`, gives everything the features, the API and the
models read, so that they always agree:

1. the series is made regular on 60-s epochs (sub-minute epochs are summed to minutes; a
   minute is missing unless all of its sub-epochs were observed);
2. non-wear (Choi et al. 2011 by default, Troiano et al. 2008 on request) is set to ``NaN``:
   from here on a non-wear minute is missing, never zero activity;
3. a local calendar day (midnight to midnight in the wearer's zone) is **valid** when at least
   ``min_wear_hours`` (16 h by default) of it were worn: the default of GGIR for 24-h wrist
   protocols (van Hees VT et al.; GGIR documentation, ``includedaycrit = 16``);
4. sleep/wake is scored on the worn minutes (Oakley 1997, the Actiwatch algorithm, by
   default: Depresjon and most clinical actigraphs are Actiwatch-family devices; Cole-Kripke
   1992 and Sadeh 1994 on request, optionally with Webster 1982 rescoring) and nights are
   summarised over local noon-to-noon windows (:func:`clarity.actigraphy.nights.summarize_nights`);
5. rhythm metrics (IS, IV, L5/M10/RA, cosinor, kRA/kAR) and the SRI are computed on the whole
   non-wear-masked series.

**The missing-value rule** (one rule for every feature): a feature is a finite float, or
``NaN`` *and* an entry in ``missing`` saying why (a :class:`Missing` with a reason and, where
the cause is too few days or nights, how many there were and how many are required). No
function here raises because data are short; :func:`analyse` raises ``InsufficientData`` only
for an empty series and ``ValueError`` for an invalid one (an epoch that does not divide a
minute). Models should drop or impute ``NaN`` explicitly; the reasons can be shown to users.

**Minimum data** (defaults of :class:`FeatureSettings`):

* day-level activity features need a valid day (16 h worn); per-day L5/M10/RA need every
  minute of the day worn (the 24-h profile of one day must be complete);
* night-level sleep features need a night the engine could score (at least 75 % of the
  noon-to-noon window worn, a rest interval inside it, at most 10 % of it unscored);
* recording-level rhythm and regularity metrics (IS, IV, RA, L5, M10, cosinor, kRA/kAR, SRI)
  and the means/SDs of daily activity features need **7 valid days**: IS needs more than a
  week for a reliable estimate (van Someren EJW. "Improving actigraphic sleep estimates in
  insomnia and dementia: how many nights?" J Sleep Res 2007;16:269-275,
  doi:10.1111/j.1365-2869.2007.00592.x), IS and the SD of sleep timing are biased below a week
  (Fischer D, Klerman EB, Phillips AJK. "Measuring sleep regularity: theoretical properties and
  practical usage of existing metrics." Sleep 2021;44(10):zsab103, doi:10.1093/sleep/zsab103),
  and habitual 24-h activity needs about 7 days (Jaeschke L, Steinbrecher A, Jeran S,
  Konigorski S, Pischon T. "Variability and reliability study of overall physical activity and
  activity intensity levels using 24 h-accelerometry-assessed data." BMC Public Health
  2018;18:530);
* means/SDs of nightly sleep features need **5 scored nights** (Acebo C, Sadeh A, Seifer R, et
  al. "Estimating sleep patterns with activity monitoring in children and adolescents: how many
  nights are necessary for reliable measures?" Sleep 1999;22(1):95-103).

Clock times (L5/M10 onsets, sleep midpoint, acrophase) are hours after local midnight in
[0, 24); their means and SDs across days are circular (mean direction and circular standard
deviation ``sqrt(-2 ln R)`` on the 24-h circle; Fisher NI. Statistical Analysis of Circular
Data. Cambridge University Press, 1993), so 23:30 and 00:30 average to midnight, not noon.

Pure computation: numpy, scipy (through the engine) and the standard library.
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from typing import Final, Literal, TypeVar
from zoneinfo import ZoneInfo

import numpy as np

from clarity.actigraphy.nights import (
    InsufficientDataError,
    Night,
    sleep_regularity_index,
    summarize_nights,
)
from clarity.actigraphy.nonwear import choi_nonwear, troiano_nonwear
from clarity.actigraphy.rhythm import (
    CosinorFit,
    Fragmentation,
    RestActivityProfile,
    VarianceConvention,
    cosinor,
    fragmentation,
    interdaily_stability,
    intradaily_variability,
    l5_m10,
)
from clarity.actigraphy.series import (
    BoolArray,
    DayCoverage,
    EpochSeries,
    FloatArray,
    InsufficientData,
)
from clarity.actigraphy.sleep import cole_kripke, oakley, sadeh, webster_rescore

__all__ = [
    "DAY_FEATURE_DOCS",
    "DAY_FEATURE_NAMES",
    "FEATURE_DOCS",
    "FEATURE_NAMES",
    "Analysis",
    "DayFeatures",
    "FeatureDoc",
    "FeatureSettings",
    "Missing",
    "RecordingFeatures",
    "analyse",
    "day_features",
    "recording_features",
]

SleepAlgorithm = Literal["oakley", "cole_kripke", "sadeh"]
NonwearAlgorithm = Literal["choi", "troiano"]

MINUTE: Final = 60
_T = TypeVar("_T")

# ----------------------------------------------------------------------------- documentation

_CHOI = "Choi L, et al. Med Sci Sports Exerc 2011;43(2):357-364 (non-wear)"
_GGIR = "van Hees VT et al., GGIR (valid day: 16 h worn)"
_WITTING = "Witting W, et al. Biol Psychiatry 1990;27:563-572"
_VANSOMEREN = "van Someren EJW, et al. Chronobiol Int 1999;16(4):505-518"
_CUTPOINTS = (
    "Actiwatch 2 cut points (sedentary < 256, moderate >= 418 counts/min): Physiol Meas "
    "2020;41(8):085001, doi:10.1088/1361-6579/aba80f"
)
_OAKLEY = "Oakley NR 1997 (Actiwatch scoring); rest interval after van Hees VT, et al. 2018"
_LIM = "Lim ASP, et al. Sleep 2011;34(11):1569-1581"
_CORNELISSEN = "Cornelissen G. Theor Biol Med Model 2014;11:16"
_PHILLIPS = "Phillips AJK, et al. Sci Rep 2017;7:3216"


@dataclass(frozen=True)
class FeatureDoc:
    """What a feature means, in plain words for explanations, its unit and its source."""

    label: str
    unit: str
    source: str
    clock_time: bool = False  # hours after local midnight: averaged on the 24-h circle


_DAY_DOCS: dict[str, FeatureDoc] = {
    "wear_hours": FeatureDoc("hours the device was worn that day", "h", f"{_CHOI}; {_GGIR}"),
    "total_counts": FeatureDoc(
        "total movement that day (sum of activity counts while worn)", "counts", "-"
    ),
    "mean_counts": FeatureDoc("average movement per worn minute", "counts/min", "-"),
    "sd_counts": FeatureDoc(
        "how much movement varied from minute to minute (standard deviation)", "counts/min", "-"
    ),
    "zero_epochs_percent": FeatureDoc("share of worn minutes with no movement at all", "%", "-"),
    "sedentary_minutes": FeatureDoc(
        "minutes of very little movement (below the sedentary cut point)", "min", _CUTPOINTS
    ),
    "active_minutes": FeatureDoc(
        "minutes of at least moderate movement (at or above the moderate cut point)",
        "min",
        _CUTPOINTS,
    ),
    "l5": FeatureDoc("movement in the quietest 5 hours of the day (L5)", "counts/min", _VANSOMEREN),
    "l5_onset_hours": FeatureDoc(
        "clock time when the quietest 5 hours began", "h after midnight", _VANSOMEREN, True
    ),
    "m10": FeatureDoc(
        "movement in the most active 10 hours of the day (M10)", "counts/min", _VANSOMEREN
    ),
    "m10_onset_hours": FeatureDoc(
        "clock time when the most active 10 hours began", "h after midnight", _VANSOMEREN, True
    ),
    "relative_amplitude": FeatureDoc(
        "contrast between active day and quiet night (relative amplitude, 0-1)",
        "ratio",
        _VANSOMEREN,
    ),
    "time_in_bed_minutes": FeatureDoc(
        "length of the main rest period of the night starting that evening", "min", _OAKLEY
    ),
    "total_sleep_minutes": FeatureDoc(
        "time asleep in the main rest period (total sleep time)", "min", _OAKLEY
    ),
    "sleep_efficiency": FeatureDoc(
        "share of the rest period spent asleep (sleep efficiency, 0-1)", "ratio", _OAKLEY
    ),
    "sleep_onset_latency_minutes": FeatureDoc(
        "time it took to fall asleep (sleep onset latency)", "min", _OAKLEY
    ),
    "waso_minutes": FeatureDoc("time awake after first falling asleep (WASO)", "min", _OAKLEY),
    "awakenings": FeatureDoc(
        "number of times awake between falling asleep and final waking", "count", _OAKLEY
    ),
    "sleep_midpoint_hours": FeatureDoc(
        "clock time halfway between falling asleep and final waking",
        "h after midnight",
        _OAKLEY,
        True,
    ),
}

#: Day-level feature names, in vector order.
DAY_FEATURE_NAMES: Final[tuple[str, ...]] = tuple(_DAY_DOCS)
DAY_FEATURE_DOCS: Final[Mapping[str, FeatureDoc]] = _DAY_DOCS

_ACTIVITY_DAY_FEATURES: Final = DAY_FEATURE_NAMES[:12]
_NIGHT_DAY_FEATURES: Final = DAY_FEATURE_NAMES[12:]

_RECORDING_DOCS: dict[str, FeatureDoc] = {
    "valid_days": FeatureDoc(
        "days with enough wear time to count (at least 16 h worn)", "days", _GGIR
    ),
    "scored_nights": FeatureDoc("nights with enough data to measure sleep", "nights", _OAKLEY),
    "wear_fraction": FeatureDoc(
        "share of the recording during which the device was worn", "ratio", _CHOI
    ),
    "interdaily_stability": FeatureDoc(
        "interdaily stability: how alike the days are (0-1, higher is more regular)",
        "ratio",
        _WITTING,
    ),
    "intradaily_variability": FeatureDoc(
        "intradaily variability: how fragmented activity is hour to hour (0 smooth, ~2 noise)",
        "ratio",
        _WITTING,
    ),
    "relative_amplitude": FeatureDoc(
        "relative amplitude of the average day: contrast between active day and quiet night (0-1)",
        "ratio",
        _VANSOMEREN,
    ),
    "l5": FeatureDoc(
        "movement in the quietest 5 hours of the average day (L5)", "counts/min", _VANSOMEREN
    ),
    "l5_onset_hours": FeatureDoc(
        "clock time when the quietest 5 hours of the average day began",
        "h after midnight",
        _VANSOMEREN,
        True,
    ),
    "m10": FeatureDoc(
        "movement in the most active 10 hours of the average day (M10)",
        "counts/min",
        _VANSOMEREN,
    ),
    "m10_onset_hours": FeatureDoc(
        "clock time when the most active 10 hours of the average day began",
        "h after midnight",
        _VANSOMEREN,
        True,
    ),
    "cosinor_mesor": FeatureDoc(
        "rhythm-adjusted average movement (cosinor MESOR)", "counts/min", _CORNELISSEN
    ),
    "cosinor_amplitude": FeatureDoc(
        "strength of the 24-h rhythm (cosinor amplitude)", "counts/min", _CORNELISSEN
    ),
    "cosinor_acrophase_hours": FeatureDoc(
        "clock time of peak activity in the fitted 24-h rhythm (acrophase)",
        "h after midnight",
        _CORNELISSEN,
        True,
    ),
    "k_ra": FeatureDoc(
        "chance per minute that rest turns into activity (kRA; higher is more broken rest)",
        "1/min",
        _LIM,
    ),
    "k_ar": FeatureDoc(
        "chance per minute that activity turns into rest (kAR; higher is more broken activity)",
        "1/min",
        _LIM,
    ),
    "sleep_regularity_index": FeatureDoc(
        "sleep regularity: chance of the same sleep/wake state 24 h apart (-100 to 100)",
        "index",
        _PHILLIPS,
    ),
}
for _name in DAY_FEATURE_NAMES:
    _doc = _DAY_DOCS[_name]
    _over = "scored nights" if _name in _NIGHT_DAY_FEATURES else "valid days"
    _RECORDING_DOCS[f"mean_{_name}"] = FeatureDoc(
        f"average over {_over} of: {_doc.label}", _doc.unit, _doc.source, _doc.clock_time
    )
    _RECORDING_DOCS[f"sd_{_name}"] = FeatureDoc(
        f"day-to-day spread (standard deviation) over {_over} of: {_doc.label}",
        "h" if _doc.clock_time else _doc.unit,
        _doc.source,
    )

#: Recording-level feature names, in vector order.
FEATURE_NAMES: Final[tuple[str, ...]] = tuple(_RECORDING_DOCS)
FEATURE_DOCS: Final[Mapping[str, FeatureDoc]] = _RECORDING_DOCS

# ----------------------------------------------------------------------------- settings


@dataclass(frozen=True)
class FeatureSettings:
    """Every choice the features depend on; the defaults are the documented ones."""

    sleep_algorithm: SleepAlgorithm = "oakley"
    webster_rescoring: bool = False
    nonwear_algorithm: NonwearAlgorithm = "choi"
    convention: VarianceConvention = "original"
    min_wear_hours: float = 16.0
    sedentary_below_cpm: float = 256.0
    active_from_cpm: float = 418.0
    fragmentation_threshold: float = 4.0  # Actiware "mobile": >= 4 counts per minute
    min_valid_days: int = 7
    min_scored_nights: int = 5

    def __post_init__(self) -> None:
        if self.sleep_algorithm not in ("oakley", "cole_kripke", "sadeh"):
            raise ValueError(f"unknown sleep algorithm {self.sleep_algorithm!r}")
        if self.nonwear_algorithm not in ("choi", "troiano"):
            raise ValueError(f"unknown non-wear algorithm {self.nonwear_algorithm!r}")
        if self.convention not in ("original", "pyactigraphy"):
            raise ValueError(f"unknown IS/IV convention {self.convention!r}")
        if not 0 <= self.min_wear_hours <= 24:
            raise ValueError("min_wear_hours must be within 0..24")
        if self.min_valid_days < 2 or self.min_scored_nights < 2:
            raise ValueError("at least two valid days and two scored nights are needed for SDs")
        if self.active_from_cpm < self.sedentary_below_cpm:
            raise ValueError("active_from_cpm must not be below sedentary_below_cpm")


DEFAULT_SETTINGS: Final = FeatureSettings()

# ----------------------------------------------------------------------------- results


@dataclass(frozen=True)
class Missing:
    """Why a feature is ``NaN``. ``basis`` is ``"valid_days"`` or ``"scored_nights"`` when the
    cause is too few of them (``have`` of ``required``); ``None`` for any other reason."""

    reason: str
    basis: str | None = None
    have: int | None = None
    required: int | None = None


@dataclass(frozen=True)
class DayFeatures:
    """The features of one local calendar day (the night is the one starting that evening)."""

    date: dt.date
    valid: bool
    values: Mapping[str, float]
    missing: Mapping[str, Missing]

    def vector(self) -> FloatArray:
        """The values in :data:`DAY_FEATURE_NAMES` order."""
        return np.array([self.values[n] for n in DAY_FEATURE_NAMES], dtype=np.float64)


@dataclass(frozen=True)
class RecordingFeatures:
    """The features of a whole recording, and the days they summarise."""

    values: Mapping[str, float]
    missing: Mapping[str, Missing]
    days: tuple[DayFeatures, ...]

    def vector(self) -> FloatArray:
        """The values in :data:`FEATURE_NAMES` order."""
        return np.array([self.values[n] for n in FEATURE_NAMES], dtype=np.float64)


@dataclass(frozen=True, eq=False)
class Analysis:
    """Everything computed once for a recording; features and the API read from it.

    ``series``: regular 60-s epochs with non-wear set to ``NaN``. ``nonwear``: the flags.
    ``states``: sleep (1) / wake (0) / unknown (``NaN``) per epoch. Rhythm results are
    ``None`` when they could not be computed; ``recording.missing`` says why.
    """

    settings: FeatureSettings
    series: EpochSeries
    nonwear: BoolArray
    coverage: tuple[DayCoverage, ...]
    states: FloatArray
    nights: tuple[Night, ...]
    profile: RestActivityProfile | None
    cosinor: CosinorFit | None
    fragmentation: Fragmentation | None
    reasons: Mapping[str, str]  # why profile / cosinor / fragmentation is None
    days: tuple[DayFeatures, ...] = ()
    recording: RecordingFeatures | None = None

    @property
    def features(self) -> RecordingFeatures:
        assert self.recording is not None, "built by analyse()"
        return self.recording

    @property
    def valid_days(self) -> int:
        return sum(d.valid for d in self.days)

    @property
    def scored_nights(self) -> int:
        return sum(not n.insufficient for n in self.nights)


# ----------------------------------------------------------------------------- pipeline


def _minute_series(series: EpochSeries) -> EpochSeries:
    if len(series) == 0:
        raise InsufficientData("the series has no epochs")
    if MINUTE % series.epoch_seconds:
        raise ValueError(
            f"features need minute epochs; {series.epoch_seconds}-s epochs do not divide a minute"
        )
    regular = series.regularize()
    if regular.epoch_seconds != MINUTE:
        regular = regular.resample(MINUTE, how="sum", min_coverage=1.0).regularize()
    return regular


def _nonwear(series: EpochSeries, algorithm: NonwearAlgorithm) -> BoolArray:
    return choi_nonwear(series) if algorithm == "choi" else troiano_nonwear(series)


def score_sleep(counts: FloatArray, settings: FeatureSettings) -> FloatArray:
    """Sleep/wake per minute with the chosen algorithm at its publication's defaults."""
    if settings.sleep_algorithm == "oakley":
        states = oakley(counts)  # Actiware "medium" threshold, 40 counts
    elif settings.sleep_algorithm == "cole_kripke":
        states = cole_kripke(counts)  # the paper's 1-minute "mean activity" equation
    else:
        states = sadeh(counts)
    return webster_rescore(states) if settings.webster_rescoring else states


def _attempt(compute: Callable[[], _T]) -> _T | str:
    """The result, or the engine's reason why the data cannot support it."""
    try:
        return compute()
    except (InsufficientData, InsufficientDataError) as exc:
        return str(exc)


def analyse(series: EpochSeries, settings: FeatureSettings = DEFAULT_SETTINGS) -> Analysis:
    """Run the whole pipeline once (see the module docstring) and build every feature."""
    regular = _minute_series(series)
    nonwear = _nonwear(regular, settings.nonwear_algorithm)
    worn = regular.masked(nonwear)
    counts = worn.counts
    states = score_sleep(counts, settings)
    tz = ZoneInfo(worn.timezone)
    start = dt.datetime.fromtimestamp(int(worn.utc_seconds[0]), tz=dt.UTC)
    profile = _attempt(lambda: l5_m10(worn))
    fit = _attempt(lambda: cosinor(worn))
    frag = _attempt(lambda: fragmentation(worn, threshold=settings.fragmentation_threshold))
    reasons = {
        name: result
        for name, result in (("profile", profile), ("cosinor", fit), ("fragmentation", frag))
        if isinstance(result, str)
    }
    analysis = Analysis(
        settings=settings,
        series=worn,
        nonwear=nonwear,
        coverage=tuple(worn.coverage_by_day()),
        states=states,
        nights=tuple(summarize_nights(counts, states, start, tz=tz)),
        profile=None if isinstance(profile, str) else profile,
        cosinor=None if isinstance(fit, str) else fit,
        fragmentation=None if isinstance(frag, str) else frag,
        reasons=reasons,
    )
    analysis = replace(analysis, days=tuple(_day_features(analysis)))
    return replace(analysis, recording=_recording_features(analysis))


def day_features(
    series: EpochSeries, settings: FeatureSettings = DEFAULT_SETTINGS
) -> list[DayFeatures]:
    """One :class:`DayFeatures` per local calendar day of the series, in date order."""
    return list(analyse(series, settings).days)


def recording_features(
    series: EpochSeries, settings: FeatureSettings = DEFAULT_SETTINGS
) -> RecordingFeatures:
    """The :class:`RecordingFeatures` of the whole series."""
    return analyse(series, settings).features


# ----------------------------------------------------------------------------- per day


def _day_activity(analysis: Analysis) -> dict[str, FloatArray]:
    """Per-day sums over worn minutes, vectorised over days (index: day - first day)."""
    worn = analysis.series
    settings = analysis.settings
    day_numbers = worn.local_day_numbers()
    first = int(day_numbers[0])
    n_days = len(analysis.coverage)
    seen = worn.observed
    index = day_numbers[seen] - first
    counts = worn.counts[seen]
    sums = np.bincount(index, weights=counts, minlength=n_days)
    n = np.bincount(index, minlength=n_days).astype(np.float64)
    with np.errstate(invalid="ignore", divide="ignore"):
        mean = sums / n
        deviations = np.bincount(index, weights=(counts - mean[index]) ** 2, minlength=n_days)
        variance = deviations / (n - 1)  # two passes: no cancellation on steady days
    return {
        "total_counts": sums,
        "mean_counts": mean,
        "sd_counts": np.sqrt(variance),
        "zero_epochs_percent": 100.0
        * np.bincount(index[counts == 0], minlength=n_days)
        / np.maximum(n, 1),
        "sedentary_minutes": np.bincount(
            index[counts < settings.sedentary_below_cpm], minlength=n_days
        ).astype(np.float64),
        "active_minutes": np.bincount(
            index[counts >= settings.active_from_cpm], minlength=n_days
        ).astype(np.float64),
    }


def _night_values(night: Night | None) -> tuple[dict[str, float], dict[str, Missing]]:
    values = {name: math.nan for name in _NIGHT_DAY_FEATURES}
    if night is None:
        why = Missing("the recording does not reach this night")
        return values, dict.fromkeys(_NIGHT_DAY_FEATURES, why)
    m = night.metrics
    if night.insufficient or m is None:
        why = Missing(f"night not scored: {night.reason}")
        return values, dict.fromkeys(_NIGHT_DAY_FEATURES, why)
    values["time_in_bed_minutes"] = float(m.time_in_bed)
    values["total_sleep_minutes"] = float(m.total_sleep_time)
    values["sleep_efficiency"] = float(m.sleep_efficiency)
    missing: dict[str, Missing] = {}
    if m.sleep_onset_latency is None or night.sleep_midpoint_hours is None:
        why = Missing("no sleep was scored in the rest interval")
        for name in ("sleep_onset_latency_minutes", "waso_minutes", "awakenings"):
            missing[name] = why
        missing["sleep_midpoint_hours"] = why
        return values, missing
    values["sleep_onset_latency_minutes"] = float(m.sleep_onset_latency)
    values["waso_minutes"] = float(m.waso if m.waso is not None else 0)
    values["awakenings"] = float(m.awakenings if m.awakenings is not None else 0)
    values["sleep_midpoint_hours"] = float(night.sleep_midpoint_hours)
    return values, missing


def _day_profile(day: EpochSeries) -> RestActivityProfile | str:
    if not bool(np.all(day.observed)):
        return "not every minute of the day was worn, so its 24-h profile is incomplete"
    try:
        return l5_m10(day)
    except InsufficientData as exc:
        return exc.reason


def _day_features(analysis: Analysis) -> list[DayFeatures]:
    settings = analysis.settings
    activity = _day_activity(analysis)
    series_of = {d.date: d.series for d in analysis.series.split_days()}
    night_of = {n.night_of: n for n in analysis.nights}
    result: list[DayFeatures] = []
    for i, cover in enumerate(analysis.coverage):
        hours = cover.observed_hours
        valid = hours >= settings.min_wear_hours
        values: dict[str, float] = {name: math.nan for name in DAY_FEATURE_NAMES}
        missing: dict[str, Missing] = {}
        values["wear_hours"] = hours
        if valid:
            for name, per_day in activity.items():
                values[name] = float(per_day[i])
            profile = _day_profile(series_of[cover.date])
            if isinstance(profile, RestActivityProfile):
                values["l5"] = profile.l5
                values["l5_onset_hours"] = profile.l5_onset_hours
                values["m10"] = profile.m10
                values["m10_onset_hours"] = profile.m10_onset_hours
                values["relative_amplitude"] = profile.relative_amplitude
            else:
                for name in ("l5", "l5_onset_hours", "m10", "m10_onset_hours"):
                    missing[name] = Missing(profile)
                missing["relative_amplitude"] = Missing(profile)
        else:
            why = Missing(
                f"day not valid: {hours:.1f} h worn, {settings.min_wear_hours:g} h needed"
            )
            for name in _ACTIVITY_DAY_FEATURES[1:]:
                missing[name] = why
        night_values, night_missing = _night_values(night_of.get(cover.date))
        values.update(night_values)
        missing.update(night_missing)
        ordered = {name: values[name] for name in DAY_FEATURE_NAMES}
        result.append(DayFeatures(cover.date, valid, ordered, missing))
    return result


# ----------------------------------------------------------------------------- per recording


def circular_hours(values: FloatArray) -> tuple[float, float]:
    """Circular mean (hours in [0, 24)) and circular SD (hours) of clock times.

    Mean direction and ``sqrt(-2 ln R)`` (Fisher 1993) on the 24-h circle. ``NaN`` for both
    when the times cancel out (``R`` = 0: no mean direction exists).
    """
    angles = np.asarray(values, dtype=np.float64) * (2 * math.pi / 24.0)
    c, s = float(np.mean(np.cos(angles))), float(np.mean(np.sin(angles)))
    r = math.hypot(c, s)
    if r < 1e-12:
        return math.nan, math.nan
    mean = (math.atan2(s, c) * 24.0 / (2 * math.pi)) % 24.0
    sd = math.sqrt(max(-2.0 * math.log(min(r, 1.0)), 0.0)) * 24.0 / (2 * math.pi)
    return mean, sd


def _summaries(analysis: Analysis, values: dict[str, float], missing: dict[str, Missing]) -> None:
    settings = analysis.settings
    valid_days = [d for d in analysis.days if d.valid]
    for name in DAY_FEATURE_NAMES:
        doc = DAY_FEATURE_DOCS[name]
        is_night = name in _NIGHT_DAY_FEATURES
        pool = analysis.days if is_night else valid_days
        column = np.array([d.values[name] for d in pool], dtype=np.float64)
        column = column[np.isfinite(column)]
        basis = "scored_nights" if is_night else "valid_days"
        need = settings.min_scored_nights if is_night else settings.min_valid_days
        if column.size < need:
            what = "scored nights" if is_night else "valid days"
            why = Missing(
                f"{column.size} {what} with this value; {need} needed",
                basis,
                int(column.size),
                need,
            )
            missing[f"mean_{name}"] = missing[f"sd_{name}"] = why
            continue
        if doc.clock_time:
            mean, sd = circular_hours(column)
            if math.isnan(mean):
                why = Missing("the clock times cancel out: no mean time exists")
                missing[f"mean_{name}"] = missing[f"sd_{name}"] = why
        else:
            mean, sd = float(column.mean()), float(column.std(ddof=1))
        values[f"mean_{name}"], values[f"sd_{name}"] = mean, sd


def _recording_features(analysis: Analysis) -> RecordingFeatures:
    settings = analysis.settings
    values: dict[str, float] = {name: math.nan for name in FEATURE_NAMES}
    missing: dict[str, Missing] = {}
    valid = analysis.valid_days
    total_epochs = sum(c.expected_epochs for c in analysis.coverage)
    worn_epochs = sum(c.observed_epochs for c in analysis.coverage)
    values["valid_days"] = float(valid)
    values["scored_nights"] = float(analysis.scored_nights)
    values["wear_fraction"] = worn_epochs / total_epochs if total_epochs else 0.0
    rhythm = (
        "interdaily_stability",
        "intradaily_variability",
        "relative_amplitude",
        "l5",
        "l5_onset_hours",
        "m10",
        "m10_onset_hours",
        "cosinor_mesor",
        "cosinor_amplitude",
        "cosinor_acrophase_hours",
        "k_ra",
        "k_ar",
        "sleep_regularity_index",
    )
    if valid < settings.min_valid_days:
        why = Missing(
            f"{valid} valid days; {settings.min_valid_days} needed",
            "valid_days",
            valid,
            settings.min_valid_days,
        )
        missing.update(dict.fromkeys(rhythm, why))
    else:
        _rhythm(analysis, values, missing)
    _summaries(analysis, values, missing)
    ordered = {name: values[name] for name in FEATURE_NAMES}
    return RecordingFeatures(ordered, missing, analysis.days)


def _rhythm(
    analysis: Analysis,
    values: dict[str, float],
    missing: dict[str, Missing],
) -> None:
    reasons = analysis.reasons
    worn = analysis.series
    convention = analysis.settings.convention
    computations: tuple[tuple[str, Callable[[], float]], ...] = (
        ("interdaily_stability", lambda: interdaily_stability(worn, convention=convention)),
        ("intradaily_variability", lambda: intradaily_variability(worn, convention=convention)),
        ("sleep_regularity_index", lambda: sleep_regularity_index(analysis.states)),
    )
    for name, compute in computations:
        result = _attempt(compute)
        if isinstance(result, str):
            missing[name] = Missing(result)
        else:
            values[name] = float(result)
    profile = analysis.profile
    profile_names = ("relative_amplitude", "l5", "l5_onset_hours", "m10", "m10_onset_hours")
    if profile is None:
        missing.update(dict.fromkeys(profile_names, Missing(reasons.get("profile", "-"))))
    else:
        values["relative_amplitude"] = profile.relative_amplitude
        values["l5"], values["l5_onset_hours"] = profile.l5, profile.l5_onset_hours
        values["m10"], values["m10_onset_hours"] = profile.m10, profile.m10_onset_hours
    fit = analysis.cosinor
    cosinor_names = ("cosinor_mesor", "cosinor_amplitude", "cosinor_acrophase_hours")
    if fit is None:
        missing.update(dict.fromkeys(cosinor_names, Missing(reasons.get("cosinor", "-"))))
    else:
        values["cosinor_mesor"], values["cosinor_amplitude"] = fit.mesor, fit.amplitude
        values["cosinor_acrophase_hours"] = fit.acrophase_hours
    frag = analysis.fragmentation
    if frag is None:
        why = Missing(reasons.get("fragmentation", "-"))
        missing["k_ra"] = missing["k_ar"] = why
    else:
        values["k_ra"], values["k_ar"] = frag.k_ra, frag.k_ar
