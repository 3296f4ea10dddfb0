"""Stored activity samples -> JSON-ready actigraphy results (pure: no web, no database).

Runs in a worker thread. One :func:`clarity.actigraphy.features.analyse` run yields both the
summary and the nights, so one cache entry serves both endpoints. Outcomes that are refusals
(too little data, an unusable series) are results too, so that they are cached like numbers.
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Sequence
from dataclasses import asdict
from typing import Any, Final

import numpy as np

from clarity.actigraphy.features import (
    FEATURE_NAMES,
    Analysis,
    FeatureSettings,
    Missing,
    analyse,
)
from clarity.actigraphy.nights import Night
from clarity.actigraphy.series import EpochSeries, InsufficientData

#: Metrics the summary must give; in this order the first one missing names the 422.
HEADLINE: Final[tuple[str, ...]] = (
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
    "mean_time_in_bed_minutes",
    "mean_total_sleep_minutes",
    "mean_sleep_efficiency",
    "mean_sleep_onset_latency_minutes",
    "mean_waso_minutes",
    "mean_awakenings",
    "mean_sleep_midpoint_hours",
)
_SLEEP_MEANS: Final = HEADLINE[13:]


def settings_payload(settings: FeatureSettings) -> dict[str, Any]:
    keys = (
        "sleep_algorithm",
        "webster_rescoring",
        "nonwear_algorithm",
        "convention",
        "min_wear_hours",
        "min_valid_days",
        "min_scored_nights",
        "sedentary_below_cpm",
        "active_from_cpm",
    )
    values = asdict(settings)
    return {k: values[k] for k in keys}


def _finite(value: float) -> float | None:
    return value if math.isfinite(value) else None


def _iso(value: dt.datetime | None) -> str | None:
    return None if value is None else value.isoformat()


def _failure(metric: str, missing: Missing) -> dict[str, Any]:
    failure: dict[str, Any] = {"metric": metric, "reason": missing.reason}
    if missing.basis is not None:
        failure[missing.basis] = missing.have
        failure["required"] = missing.required
    return failure


def insufficient(
    settings: FeatureSettings, valid_days: int, reason: str | None = None
) -> dict[str, Any]:
    """The 422 body of a summary whose range holds too few valid days."""
    why = Missing(
        reason or f"{valid_days} valid days; {settings.min_valid_days} needed",
        "valid_days",
        valid_days,
        settings.min_valid_days,
    )
    failure = _failure(HEADLINE[0], why)
    return {**failure, "failures": [failure]}


def _summary(analysis: Analysis) -> tuple[dict[str, Any] | None, dict[str, Any] | None]:
    """(summary, None) or (None, the 422 body naming the first metric that is missing)."""
    features = analysis.features
    failures = [_failure(m, features.missing[m]) for m in HEADLINE if m in features.missing]
    if failures:
        return None, {**failures[0], "failures": failures}
    v = features.values
    fit, frag = analysis.cosinor, analysis.fragmentation
    # present: were either missing, its features would be in HEADLINE's failures
    assert fit is not None
    assert frag is not None
    summary = {
        "days": len(features.days),
        "valid_days": int(v["valid_days"]),
        "scored_nights": int(v["scored_nights"]),
        "wear_fraction": v["wear_fraction"],
        "interdaily_stability": v["interdaily_stability"],
        "intradaily_variability": v["intradaily_variability"],
        "relative_amplitude": v["relative_amplitude"],
        "l5": {"value": v["l5"], "onset_hours": v["l5_onset_hours"]},
        "m10": {"value": v["m10"], "onset_hours": v["m10_onset_hours"]},
        "cosinor": {
            "mesor": fit.mesor,
            "mesor_ci": list(fit.mesor_ci),
            "amplitude": fit.amplitude,
            "amplitude_ci": list(fit.amplitude_ci),
            "acrophase_hours": fit.acrophase_hours,
            "acrophase_ci_hours": list(fit.acrophase_ci_hours),
            "r_squared": fit.r_squared,
            "p_value": fit.p_value,
            "n": fit.n,
        },
        "fragmentation": {"k_ra": frag.k_ra, "k_ar": frag.k_ar},
        "sleep_regularity_index": v["sleep_regularity_index"],
        "sleep": {name.removeprefix("mean_"): v[name] for name in _SLEEP_MEANS},
        "features": {name: _finite(v[name]) for name in FEATURE_NAMES},
        "features_missing": {name: m.reason for name, m in features.missing.items()},
    }
    return summary, None


def _night(night: Night) -> dict[str, Any]:
    out: dict[str, Any] = {
        "night_of": night.night_of.isoformat(),
        "window_start": night.window_start.isoformat(),
        "window_end": night.window_end.isoformat(),
        "wear_fraction": night.valid_fraction,
        "scored": not night.insufficient,
        "reason": night.reason,
    }
    m = night.metrics
    if m is None:
        return out
    out.update(
        rest_start=_iso(night.rest_start),
        rest_end=_iso(night.rest_end),
        time_in_bed_minutes=m.time_in_bed,
        total_sleep_minutes=m.total_sleep_time,
        sleep_onset_latency_minutes=m.sleep_onset_latency,
        waso_minutes=m.waso,
        sleep_efficiency=m.sleep_efficiency,
        awakenings=m.awakenings,
        sleep_onset=_iso(night.sleep_onset),
        sleep_end=_iso(night.sleep_end),
        sleep_midpoint=_iso(night.sleep_midpoint),
        sleep_midpoint_hours=night.sleep_midpoint_hours,
    )
    return out


def compute(
    stamps: Sequence[dt.datetime],
    values: Sequence[float],
    sources: int,
    timezone: str,
    settings: FeatureSettings,
) -> dict[str, Any]:
    """Everything both endpoints answer, for samples ordered by time (one source).

    Keys: ``first_sample``, ``last_sample``, ``samples``; then either ``error`` (the whole
    request is refused: ``code`` and ``detail``), or ``nights`` and one of ``summary`` /
    ``summary_error`` (the 422 body).
    """
    base: dict[str, Any] = {
        "first_sample": _iso(stamps[0]) if stamps else None,
        "last_sample": _iso(stamps[-1]) if stamps else None,
        "samples": len(stamps),
    }
    if sources > 1:
        return {
            **base,
            "error": {
                "code": "multiple_sources",
                "detail": f"The range holds activity counts from {sources} devices; "
                "choose one with the source parameter.",
            },
        }
    if len(stamps) < 2:
        return {**base, "nights": [], "summary_error": insufficient(settings, 0)}
    seconds = np.fromiter((int(t.timestamp()) for t in stamps), dtype=np.int64, count=len(stamps))
    try:
        series = EpochSeries.from_utc_seconds(
            seconds, np.asarray(values, dtype=np.float64), timezone=timezone
        )
        analysis = analyse(series, settings)
    except InsufficientData as exc:
        return {**base, "nights": [], "summary_error": insufficient(settings, 0, exc.reason)}
    except ValueError as exc:  # an epoch that does not divide a minute, two samples per epoch
        return {**base, "error": {"code": "unusable_series", "detail": str(exc)}}
    summary, refusal = _summary(analysis)
    result = {**base, "nights": [_night(n) for n in analysis.nights]}
    if summary is not None:
        result["summary"] = summary
    else:
        result["summary_error"] = refusal
    return result
