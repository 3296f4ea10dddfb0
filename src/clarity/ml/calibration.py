"""Probability calibration fitted on out-of-fold scores: Platt scaling and isotonic regression.

A boosted model's raw probabilities on 50 subjects are over-confident; a calibrator maps
its margin to a probability that matches observed frequencies. It must be fitted on scores
the model produced for rows it did not train on (inner out-of-fold predictions), never on
the held-out subject. Both calibrators are plain numbers, so they save as JSON.

- Platt JC. "Probabilistic outputs for support vector machines and comparisons to
  regularized likelihood methods." Advances in Large Margin Classifiers, 1999, with the
  smoothed targets and Newton's method of Lin HT, Lin CJ, Weng RC. Machine Learning 68(3),
  2007, doi:10.1007/s10994-007-5018-6.
- Zadrozny B, Elkan C. "Transforming classifier scores into accurate multiclass probability
  estimates." KDD 2002, doi:10.1145/775047.775151 (isotonic, via scikit-learn's PAVA).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np
from numpy.typing import ArrayLike

from clarity.ml.evaluation import FloatArray, JsonValue

CalibrationMethod = Literal["platt", "isotonic", "none"]


def sigmoid(margin: ArrayLike) -> FloatArray:
    """Logistic function, computed without overflow."""
    m = np.asarray(margin, dtype=np.float64)
    result: FloatArray = np.exp(-np.logaddexp(0.0, -m))
    return result


@dataclass(frozen=True)
class Calibrator:
    """Maps a model margin (log-odds) to a calibrated probability."""

    method: CalibrationMethod
    slope: float = 1.0
    intercept: float = 0.0
    knots_x: tuple[float, ...] = ()
    knots_y: tuple[float, ...] = ()

    def __call__(self, margin: ArrayLike) -> FloatArray:
        m = np.asarray(margin, dtype=np.float64)
        if self.method == "isotonic":
            mapped: FloatArray = np.interp(m, self.knots_x, self.knots_y)
            return mapped
        return sigmoid(self.slope * m + self.intercept)

    def as_dict(self) -> dict[str, JsonValue]:
        return {
            "method": self.method,
            "slope": self.slope,
            "intercept": self.intercept,
            "knots_x": list(self.knots_x),
            "knots_y": list(self.knots_y),
        }

    @classmethod
    def from_dict(cls, data: dict[str, JsonValue]) -> Calibrator:
        methods: dict[object, CalibrationMethod] = {
            "platt": "platt",
            "isotonic": "isotonic",
            "none": "none",
        }
        method = methods.get(data.get("method"))
        if method is None:
            raise ValueError("calibration method must be platt, isotonic or none")
        slope, intercept = data.get("slope"), data.get("intercept")
        xs, ys = data.get("knots_x"), data.get("knots_y")
        if not isinstance(slope, int | float) or not isinstance(intercept, int | float):
            raise ValueError("calibration slope and intercept must be numbers")
        if not isinstance(xs, list) or not isinstance(ys, list) or len(xs) != len(ys):
            raise ValueError("calibration knots must be two lists of equal length")
        if method == "isotonic" and not xs:
            raise ValueError("isotonic calibration needs knots")
        return cls(
            method,
            float(slope),
            float(intercept),
            tuple(float(v) for v in xs if isinstance(v, int | float)),
            tuple(float(v) for v in ys if isinstance(v, int | float)),
        )


def _platt(margin: FloatArray, y: FloatArray, weight: FloatArray) -> tuple[float, float]:
    """Weighted Platt scaling by damped Newton steps on the smoothed log loss."""
    positives = float(np.sum(weight * y))
    negatives = float(np.sum(weight * (1 - y)))
    # Platt's targets: (N+ + 1)/(N+ + 2) and 1/(N- + 2) instead of 1 and 0
    target = np.where(y == 1, (positives + 1) / (positives + 2), 1 / (negatives + 2))
    design = np.column_stack([margin, np.ones_like(margin)])

    def loss(theta: FloatArray) -> float:
        z = design @ theta
        return float(np.sum(weight * (np.logaddexp(0.0, z) - target * z)))

    theta = np.array([0.0, float(np.log((positives + 1) / (negatives + 1)))])
    current = loss(theta)
    for _ in range(100):
        p = sigmoid(design @ theta)
        gradient = design.T @ (weight * (p - target))
        hessian = (design * (weight * p * (1 - p))[:, None]).T @ design + 1e-12 * np.eye(2)
        step = np.linalg.solve(hessian, gradient)
        size = 1.0
        while size > 1e-10:
            candidate = theta - size * step
            value = loss(candidate)
            if value < current - 1e-4 * size * float(gradient @ step):
                break
            size /= 2
        else:
            break
        theta, current = candidate, value
        if float(np.max(np.abs(size * step))) < 1e-10:
            break
    return float(theta[0]), float(theta[1])


def fit_calibrator(
    margin: ArrayLike,
    labels: ArrayLike,
    weights: ArrayLike | None = None,
    *,
    method: CalibrationMethod = "platt",
) -> Calibrator:
    """Fit a calibrator on out-of-fold margins and their 0/1 labels (optionally weighted)."""
    m = np.asarray(margin, dtype=np.float64)
    y = np.asarray(labels, dtype=np.float64)
    w = np.ones_like(m) if weights is None else np.asarray(weights, dtype=np.float64)
    if not (m.shape == y.shape == w.shape) or m.ndim != 1 or m.size == 0:
        raise ValueError("need one margin, label and weight per row")
    if not np.all((y == 0) | (y == 1)) or y.min() == y.max():
        raise ValueError("calibration needs both classes, labelled 0 and 1")
    if method == "none":
        return Calibrator("none")
    if method == "platt":
        slope, intercept = _platt(m, y, w)
        return Calibrator("platt", slope, intercept)
    from sklearn.isotonic import IsotonicRegression  # type: ignore[import-untyped]

    iso = IsotonicRegression(y_min=0.0, y_max=1.0, out_of_bounds="clip")
    iso.fit(m, y, sample_weight=w)
    return Calibrator(
        "isotonic",
        knots_x=tuple(float(v) for v in iso.X_thresholds_),
        knots_y=tuple(float(v) for v in iso.y_thresholds_),
    )
