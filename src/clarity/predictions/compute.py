"""Minute counts -> the latest week -> a scored prediction (pure: no web, no database).

Runs in a worker thread. The week is found and its features built by
:func:`clarity.ml.dataset.latest_week`, the code that builds the training rows, so a served
prediction reads exactly the vector the model was trained on for that window. The endpoint
and ``bench/predict.py`` both call :func:`prepare` then :func:`score`.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Final

import numpy as np
import orjson

from clarity.actigraphy.features import DEFAULT_SETTINGS
from clarity.actigraphy.series import EpochSeries, InsufficientData
from clarity.ml.boosted import BoostedModel, Explanation
from clarity.ml.dataset import (
    MODEL_FEATURES,
    WINDOW_VALID_DAYS,
    LatestWeek,
    WeekWindow,
    latest_week,
)

#: Contributions listed with each prediction.
TOP_FEATURES: Final = 5


@dataclass(frozen=True)
class Scored:
    """One prediction: calibrated probability, its interval, and why (TreeSHAP)."""

    window: WeekWindow
    fingerprint: str
    probability: float
    interval: tuple[float, float]
    explanation: Explanation


def series_of(
    seconds: Sequence[int] | np.ndarray, counts: Sequence[float], timezone: str
) -> EpochSeries:
    """An :class:`EpochSeries` of samples ordered by time (UTC seconds), in the patient's zone."""
    return EpochSeries.from_utc_seconds(
        np.asarray(seconds, dtype=np.int64), np.asarray(counts, dtype=np.float64), timezone=timezone
    )


def prepare(series: EpochSeries) -> LatestWeek:
    """The latest window of 7 valid days (``window`` None when there is none); ``ValueError``
    for a series the engine cannot read (epochs that do not divide a minute)."""
    try:
        return latest_week(series, DEFAULT_SETTINGS)
    except InsufficientData:
        return LatestWeek((), None)


def input_fingerprint(window: WeekWindow) -> str:
    """SHA-256 of the model's input: feature names and values (NaN as null) and the window.

    The same stored data always gives the same fingerprint, so a repeated prediction can be
    recognised as one on identical input.
    """
    values = [None if not math.isfinite(v) else float(v) for v in window.features.tolist()]
    canonical = {
        "features": list(zip(MODEL_FEATURES, values, strict=True)),
        "window": [window.start.isoformat(), window.end.isoformat()],
        "window_valid_days": WINDOW_VALID_DAYS,
    }
    return hashlib.sha256(orjson.dumps(canonical)).hexdigest()


def unservable(model: BoostedModel) -> str | None:
    """Why this model cannot answer the endpoint (None when it can): it must be a calibrated
    classifier over the features this server computes, with an interval ensemble."""
    if model.config.task != "classification":
        return "it is not a classifier"
    if tuple(model.feature_names) != MODEL_FEATURES:
        return "it was trained on another feature set than this server computes"
    if not model.ensemble:
        return "it has no bootstrap ensemble, so it cannot give an interval"
    return None


def score(model: BoostedModel, window: WeekWindow, top: int = TOP_FEATURES) -> Scored:
    """Calibrated probability, ensemble interval and the top contributions for one window."""
    row = window.features.reshape(1, -1)
    return Scored(
        window=window,
        fingerprint=input_fingerprint(window),
        probability=model.predict_subject(row),
        interval=model.interval(row),
        explanation=model.explain(row, top),
    )
