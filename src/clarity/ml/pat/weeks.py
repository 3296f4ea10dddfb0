"""One-week windows of minute counts and their standardisation, as PAT consumes them.

PAT reads one week of minute-level activity (10,080 values). The published pipeline
standardised each minute position across participants with scikit-learn's
``StandardScaler`` (one mean and one standard deviation per column of the
participants x 10,080 matrix; Ruan et al., arXiv:2411.15240, notebooks). Here the scaler is
fitted on training windows only (never on the held-out subjects) and kept with the model.

Windows start at local midnight, so a column always means the same time of day, and slide
by ``step_days`` days. Numpy only: serving uses this module without torch.

Missing minutes: a gap inside a recording is ``NaN`` (see :class:`EpochSeries`), never zero.
A recording with no complete week after its first local midnight yields one window padded
with ``NaN`` to 10,080 minutes, kept when at least ``min_observed_days`` days of minutes were
observed. After standardisation a missing minute becomes 0 (the training mean of that
minute) and is flagged unobserved, so pretraining leaves it out of its loss.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from numpy.typing import ArrayLike, NDArray

from clarity.actigraphy.series import SECONDS_PER_DAY, EpochSeries, InsufficientData
from clarity.ml.pat.config import WEEK_MINUTES

FloatArray = NDArray[np.float64]
Float32Array = NDArray[np.float32]
BoolArray = NDArray[np.bool_]
MINUTES_PER_DAY = 1440


@dataclass(frozen=True)
class Week:
    """One window: UTC start (a local midnight) and 10,080 counts, ``NaN`` where missing."""

    start: np.datetime64
    counts: FloatArray

    @property
    def observed_minutes(self) -> int:
        return int(np.count_nonzero(~np.isnan(self.counts)))


def weeks_from_series(
    series: EpochSeries,
    *,
    step_days: int = 1,
    min_observed_days: float = 4.0,
    max_weeks: int | None = None,
) -> list[Week]:
    """Week windows starting at local midnights, ``step_days`` apart.

    Only windows that lie wholly inside the recording are cut; when none does, one window
    from the first local midnight is padded with ``NaN``. Windows with fewer than
    ``min_observed_days`` x 1440 observed minutes are dropped. ``max_weeks`` keeps that many
    windows, evenly spaced from first to last (so long recordings do not dominate training).
    """
    if series.epoch_seconds != 60:
        raise InsufficientData("PAT needs one-minute epochs")
    if step_days < 1:
        raise ValueError("step_days must be at least 1")
    if not 0 < min_observed_days <= WEEK_MINUTES / MINUTES_PER_DAY:
        raise ValueError("min_observed_days must be in (0, 7]")
    if max_weeks is not None and max_weeks < 1:
        raise ValueError("max_weeks must be at least 1")
    regular = series.regularize()
    if len(regular) == 0:
        return []
    midnights = np.flatnonzero(regular.local_seconds % SECONDS_PER_DAY == 0)
    if midnights.size == 0:
        return []
    starts = midnights[::step_days]
    whole = starts[starts + WEEK_MINUTES <= len(regular)]
    if whole.size == 0:
        whole = starts[:1]
    weeks: list[Week] = []
    for start in whole.tolist():
        counts = np.full(WEEK_MINUTES, np.nan)
        piece = regular.counts[start : start + WEEK_MINUTES]
        counts[: piece.size] = piece
        week = Week(regular.timestamps[start], counts)
        if week.observed_minutes >= min_observed_days * MINUTES_PER_DAY:
            weeks.append(week)
    if max_weeks is not None and len(weeks) > max_weeks:
        picks = np.unique(np.round(np.linspace(0, len(weeks) - 1, max_weeks)).astype(int))
        weeks = [weeks[i] for i in picks.tolist()]
    return weeks


@dataclass(frozen=True)
class MinuteScaler:
    """Per-minute-of-week mean and scale, as scikit-learn's ``StandardScaler`` would fit.

    Population standard deviation (ddof 0); a column with zero or undefined spread gets
    scale 1 and a column never observed gets mean 0, as ``StandardScaler`` does for zero
    variance. ``NaN`` (missing) minutes are left out of the fit.
    """

    mean: FloatArray
    scale: FloatArray

    def __post_init__(self) -> None:
        mean = np.asarray(self.mean, dtype=np.float64)
        scale = np.asarray(self.scale, dtype=np.float64)
        if mean.shape != (WEEK_MINUTES,) or scale.shape != (WEEK_MINUTES,):
            raise ValueError(f"mean and scale must hold {WEEK_MINUTES} values each")
        if not (np.all(np.isfinite(mean)) and np.all(np.isfinite(scale)) and np.all(scale > 0)):
            raise ValueError("mean must be finite and scale finite and positive")
        object.__setattr__(self, "mean", mean)
        object.__setattr__(self, "scale", scale)

    @classmethod
    def fit(cls, counts: ArrayLike) -> MinuteScaler:
        data = _windows(counts)
        observed = ~np.isnan(data)
        n = observed.sum(axis=0)
        filled = np.where(observed, data, 0.0)
        mean = np.divide(filled.sum(axis=0), n, out=np.zeros(WEEK_MINUTES), where=n > 0)
        squares = np.where(observed, (data - mean) ** 2, 0.0).sum(axis=0)
        variance = np.divide(squares, n, out=np.zeros(WEEK_MINUTES), where=n > 0)
        std = np.sqrt(variance)
        scale = np.where(std > 1e-12, std, 1.0)
        return cls(mean, scale)

    def transform(self, counts: ArrayLike) -> tuple[Float32Array, BoolArray]:
        """Standardised windows (``float32``, missing minutes as 0) and the observed flags."""
        data = _windows(counts)
        observed = ~np.isnan(data)
        standard = np.where(observed, (data - self.mean) / self.scale, 0.0)
        return standard.astype(np.float32), observed

    def save(self, path: str | Path) -> None:
        with Path(path).open("wb") as handle:
            np.savez(handle, mean=self.mean, scale=self.scale)

    @classmethod
    def load(cls, path: str | Path) -> MinuteScaler:
        with np.load(Path(path), allow_pickle=False) as data:
            return cls(np.array(data["mean"]), np.array(data["scale"]))

    def digest(self) -> str:
        """SHA-256 of the fitted values, for audit of what a fold was fitted on."""
        return hashlib.sha256(self.mean.tobytes() + self.scale.tobytes()).hexdigest()


def _windows(counts: ArrayLike) -> FloatArray:
    data = np.asarray(counts, dtype=np.float64)
    if data.ndim == 1:
        data = data.reshape(1, -1)
    if data.ndim != 2 or data.shape[1] != WEEK_MINUTES:
        raise ValueError(f"windows must be rows of {WEEK_MINUTES} minutes")
    if np.any(np.isinf(data)):
        raise ValueError("minute values must be finite (NaN = missing)")
    return data
