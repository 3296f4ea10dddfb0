"""Subject-level evaluation: subject splits, metrics, bootstrap intervals and a JSON report.

Why subject level: rows cut from one person's recording are strongly correlated, so a split
that puts one person's days on both sides measures memory of that person, not a diagnosis
(Saeb S, et al. "The need to think more carefully about the validation of machine learning
models in mHealth." GigaScience 6(5), 2017, doi:10.1093/gigascience/gix019). Every split here
is by subject, every fitted step must live inside the fold (``cross_validate`` hands a learner
only training rows), and every metric is computed over subjects, one score each.

Confidence intervals are percentile bootstrap intervals over subjects (Efron B, Tibshirani R.
"An Introduction to the Bootstrap", 1993, ch. 13): subjects are resampled with replacement,
never rows. Pure numpy; nothing here imports the web or database layers.
"""

from __future__ import annotations

import json
import math
import multiprocessing
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from typing import Protocol

import numpy as np
from numpy.typing import ArrayLike, NDArray

FloatArray = NDArray[np.float64]
IntArray = NDArray[np.int64]
StrArray = NDArray[np.str_]

JsonValue = None | bool | int | float | str | list["JsonValue"] | dict[str, "JsonValue"]


# ------------------------------------------------------------------------------- splits
@dataclass(frozen=True)
class Fold:
    """One split: row indices to fit on and to test on, and the subjects held out."""

    index: int
    held_out: tuple[str, ...]
    train: IntArray
    test: IntArray


def as_subjects(subjects: ArrayLike) -> StrArray:
    """Subject ids as a 1-D string array (one per row)."""
    array = np.asarray(subjects).astype(str)
    if array.ndim != 1:
        raise ValueError("subjects must be one id per row")
    return array


def leave_one_subject_out(subjects: ArrayLike) -> list[Fold]:
    """One fold per subject (sorted by id): that subject's rows are the test set."""
    ids = as_subjects(subjects)
    folds: list[Fold] = []
    for index, subject in enumerate(np.unique(ids)):
        held = ids == subject
        folds.append(
            Fold(
                index,
                (str(subject),),
                np.flatnonzero(~held).astype(np.int64),
                np.flatnonzero(held).astype(np.int64),
            )
        )
    return folds


def stratified_subject_folds(
    subjects: ArrayLike, strata: ArrayLike, n_splits: int, seed: int
) -> list[Fold]:
    """``n_splits`` folds of whole subjects, each stratum dealt evenly across folds.

    ``strata`` has one value per row and must be constant within a subject (a class label,
    or a target quantile bin). Subjects of each stratum are shuffled with ``seed`` and dealt
    round-robin, continuing where the previous stratum stopped, so fold sizes differ by at
    most one subject and class balance by at most one per class.
    """
    ids = as_subjects(subjects)
    labels = np.asarray(strata)
    if labels.shape != ids.shape:
        raise ValueError("strata must have one value per row")
    unique = np.unique(ids)
    if n_splits < 2 or n_splits > unique.size:
        raise ValueError(f"n_splits must be between 2 and the number of subjects ({unique.size})")
    stratum_of: dict[str, str] = {}
    for subject, stratum in zip(ids.tolist(), labels.astype(str).tolist(), strict=True):
        if stratum_of.setdefault(subject, stratum) != stratum:
            raise ValueError("strata must be constant within each subject")
    rng = np.random.default_rng(seed)
    fold_of: dict[str, int] = {}
    position = 0
    for stratum in sorted(set(stratum_of.values())):
        members = np.array(sorted(s for s, v in stratum_of.items() if v == stratum))
        for subject in members[rng.permutation(members.size)]:
            fold_of[str(subject)] = position % n_splits
            position += 1
    assignment = np.array([fold_of[s] for s in ids.tolist()], dtype=np.int64)
    folds: list[Fold] = []
    for k in range(n_splits):
        test = assignment == k
        folds.append(
            Fold(
                k,
                tuple(sorted(np.unique(ids[test]).tolist())),
                np.flatnonzero(~test).astype(np.int64),
                np.flatnonzero(test).astype(np.int64),
            )
        )
    return folds


def subject_means(values: ArrayLike, subjects: ArrayLike) -> tuple[StrArray, FloatArray]:
    """Sorted subject ids and the mean of ``values`` over each subject's rows."""
    ids = as_subjects(subjects)
    data = np.asarray(values, dtype=np.float64)
    if data.shape[0] != ids.size:
        raise ValueError("values must have one entry per row")
    unique, inverse = np.unique(ids, return_inverse=True)
    counts = np.bincount(inverse, minlength=unique.size).astype(np.float64)
    if data.ndim == 1:
        return unique, np.bincount(inverse, weights=data, minlength=unique.size) / counts
    sums = np.zeros((unique.size, *data.shape[1:]), dtype=np.float64)
    np.add.at(sums, inverse, data)
    return unique, sums / counts.reshape(-1, *([1] * (data.ndim - 1)))


def subject_weights(subjects: ArrayLike) -> FloatArray:
    """Row weights 1/(rows of that subject), so each subject weighs the same in a fit."""
    _, inverse, counts = np.unique(as_subjects(subjects), return_inverse=True, return_counts=True)
    return 1.0 / counts[inverse].astype(np.float64)


# ------------------------------------------------------------------------------ metrics
def _binary(y_true: ArrayLike) -> FloatArray:
    y = np.asarray(y_true, dtype=np.float64)
    if not np.all((y == 0) | (y == 1)):
        raise ValueError("labels must be 0 or 1")
    return y


def roc_auc(y_true: ArrayLike, score: ArrayLike) -> float:
    """Area under the ROC curve via the Mann-Whitney U statistic (ties count one half).

    Hanley JA, McNeil BJ. Radiology 143(1), 1982, doi:10.1148/radiology.143.1.7063747.
    NaN when only one class is present.
    """
    y = _binary(y_true)
    s = np.asarray(score, dtype=np.float64)
    positives = float(y.sum())
    negatives = float(y.size - positives)
    if positives == 0 or negatives == 0:
        return math.nan
    _, inverse, counts = np.unique(s, return_inverse=True, return_counts=True)
    ends = np.cumsum(counts).astype(np.float64)
    ranks = (ends - (counts - 1) / 2.0)[inverse]
    u = float(ranks[y == 1].sum()) - positives * (positives + 1) / 2.0
    return u / (positives * negatives)


def _confusion(y: FloatArray, predicted: FloatArray) -> tuple[float, float, float, float]:
    tp = float(np.sum((predicted == 1) & (y == 1)))
    tn = float(np.sum((predicted == 0) & (y == 0)))
    fp = float(np.sum((predicted == 1) & (y == 0)))
    fn = float(np.sum((predicted == 0) & (y == 1)))
    return tp, tn, fp, fn


def matthews_cc(tp: float, tn: float, fp: float, fn: float) -> float:
    """Matthews correlation coefficient; 0 when a margin of the table is empty.

    Matthews BW. Biochim Biophys Acta 405(2), 1975, doi:10.1016/0005-2795(75)90109-9.
    """
    denominator = (tp + fp) * (tp + fn) * (tn + fp) * (tn + fn)
    return 0.0 if denominator == 0 else (tp * tn - fp * fn) / math.sqrt(denominator)


def classification_metrics(
    y_true: ArrayLike, probability: ArrayLike, threshold: ArrayLike = 0.5
) -> dict[str, float]:
    """AUC, accuracy, F1, MCC, Brier score, sensitivity and specificity at ``threshold``.

    ``threshold`` is one cut, or one per subject (each fold's model may fit its own cut on
    its training subjects); a subject is called positive when its probability >= its cut.
    """
    y = _binary(y_true)
    p = np.asarray(probability, dtype=np.float64)
    cut = np.broadcast_to(np.asarray(threshold, dtype=np.float64), y.shape)
    if p.shape != y.shape or y.size == 0:
        raise ValueError("need one probability per label, and at least one")
    if np.any(~np.isfinite(p)) or np.any((p < 0) | (p > 1)):
        raise ValueError("probabilities must be finite and within [0, 1]")
    tp, tn, fp, fn = _confusion(y, (p >= cut).astype(np.float64))
    f1_denominator = 2 * tp + fp + fn
    return {
        "auc": roc_auc(y, p),
        "accuracy": (tp + tn) / y.size,
        "f1": 0.0 if f1_denominator == 0 else 2 * tp / f1_denominator,
        "mcc": matthews_cc(tp, tn, fp, fn),
        "brier": float(np.mean((p - y) ** 2)),
        "sensitivity": math.nan if tp + fn == 0 else tp / (tp + fn),
        "specificity": math.nan if tn + fp == 0 else tn / (tn + fp),
    }


def regression_metrics(y_true: ArrayLike, predicted: ArrayLike) -> dict[str, float]:
    """MAE, RMSE and Pearson r (NaN when either side is constant)."""
    y = np.asarray(y_true, dtype=np.float64)
    yhat = np.asarray(predicted, dtype=np.float64)
    if y.shape != yhat.shape or y.size == 0:
        raise ValueError("need one prediction per target, and at least one")
    error = yhat - y
    pearson = math.nan
    if y.size > 1 and np.std(y) > 0 and np.std(yhat) > 0:
        pearson = float(np.corrcoef(y, yhat)[0, 1])
    return {
        "mae": float(np.mean(np.abs(error))),
        "rmse": float(np.sqrt(np.mean(error**2))),
        "pearson_r": pearson,
    }


@dataclass(frozen=True)
class ReliabilityBin:
    """One bin of a reliability curve: probabilities in [low, high)."""

    low: float
    high: float
    count: int
    mean_predicted: float
    observed_rate: float


def reliability_curve(
    y_true: ArrayLike, probability: ArrayLike, n_bins: int = 5
) -> list[ReliabilityBin]:
    """Equal-width reliability diagram bins (empty bins left out; the last bin is closed).

    DeGroot MH, Fienberg SE. "The comparison and evaluation of forecasters." The
    Statistician 32, 1983, doi:10.2307/2987588.
    """
    y = _binary(y_true)
    p = np.asarray(probability, dtype=np.float64)
    edges = np.linspace(0.0, 1.0, n_bins + 1)
    which = np.clip(np.searchsorted(edges, p, side="right") - 1, 0, n_bins - 1)
    bins: list[ReliabilityBin] = []
    for b in range(n_bins):
        members = which == b
        if members.any():
            bins.append(
                ReliabilityBin(
                    float(edges[b]),
                    float(edges[b + 1]),
                    int(members.sum()),
                    float(p[members].mean()),
                    float(y[members].mean()),
                )
            )
    return bins


def expected_calibration_error(bins: Sequence[ReliabilityBin]) -> float:
    """Count-weighted mean |observed rate - mean predicted| over the reliability bins."""
    total = sum(b.count for b in bins)
    return sum(b.count * abs(b.observed_rate - b.mean_predicted) for b in bins) / total


# ---------------------------------------------------------------------------- bootstrap
@dataclass(frozen=True)
class Estimate:
    """A point estimate with a percentile bootstrap interval over subjects."""

    value: float
    low: float
    high: float
    resamples: int

    def as_dict(self) -> dict[str, JsonValue]:
        return {
            "value": _finite(self.value),
            "ci_low": _finite(self.low),
            "ci_high": _finite(self.high),
            "resamples": self.resamples,
        }


def _finite(value: float) -> float | None:
    return None if not math.isfinite(value) else round(float(value), 6)


def bootstrap_over_subjects(
    statistic: Callable[[IntArray], Mapping[str, float]],
    n_subjects: int,
    *,
    n_resamples: int,
    seed: int,
    level: float = 0.95,
) -> dict[str, Estimate]:
    """Percentile intervals of each named statistic over subject resamples.

    ``statistic`` receives subject indices (the identity first, for the point estimate, then
    ``n_resamples`` draws with replacement). A resample where a statistic is undefined (NaN,
    e.g. AUC with one class drawn) is left out of that statistic's interval; ``resamples``
    says how many counted.
    """
    if n_subjects < 1 or n_resamples < 1 or not 0 < level < 1:
        raise ValueError("need subjects, resamples and a level in (0, 1)")
    point = statistic(np.arange(n_subjects, dtype=np.int64))
    rng = np.random.default_rng(seed)
    draws = rng.integers(0, n_subjects, size=(n_resamples, n_subjects), dtype=np.int64)
    samples: dict[str, list[float]] = {name: [] for name in point}
    for indices in draws:
        for name, value in statistic(indices).items():
            samples[name].append(value)
    tail = (1.0 - level) / 2.0 * 100.0
    result: dict[str, Estimate] = {}
    for name, value in point.items():
        values = np.asarray(samples[name], dtype=np.float64)
        values = values[np.isfinite(values)]
        if values.size == 0:
            result[name] = Estimate(value, math.nan, math.nan, 0)
            continue
        low, high = np.percentile(values, [tail, 100.0 - tail])
        result[name] = Estimate(value, float(low), float(high), int(values.size))
    return result


# ------------------------------------------------------------------- cross-validation
class FittedModel(Protocol):
    """What a learner returns: row predictions, and its fitted statistics for audit."""

    def predict(self, features: FloatArray) -> FloatArray: ...

    def fitted_state(self) -> Mapping[str, JsonValue]: ...


class Learner(Protocol):
    """Fits every step (scaling, selection, search, calibration) on the rows it is given."""

    def fit(self, features: FloatArray, targets: FloatArray, subjects: StrArray) -> FittedModel: ...


@dataclass
class CrossValidation:
    """Out-of-fold predictions: per row, and per subject (mean over the subject's rows)."""

    subjects: StrArray
    row_predictions: FloatArray
    subject_ids: StrArray
    subject_predictions: FloatArray
    fold_states: list[Mapping[str, JsonValue]]
    models: list[FittedModel] = field(default_factory=list)


def _fit_fold(
    learner: Learner, train: tuple[FloatArray, FloatArray, StrArray], test: FloatArray
) -> tuple[FloatArray, Mapping[str, JsonValue], FittedModel]:
    model = learner.fit(*train)
    return model.predict(test), model.fitted_state(), model


def cross_validate(
    learner: Learner,
    features: FloatArray,
    targets: FloatArray,
    subjects: ArrayLike,
    folds: Sequence[Fold],
    *,
    keep_models: bool = False,
    workers: int = 1,
) -> CrossValidation:
    """Fit on each fold's training rows only, predict its test rows.

    Folds must test each subject at most once and never split a subject across train and
    test; that is checked, since a fold that did would silently leak. ``workers`` > 1 fits
    folds in that many spawned processes (the learner and models travel between processes
    in memory only); folds are independent, so the results are identical to ``workers=1``.
    As with any spawned process, the calling program's main module must be import-safe
    (``if __name__ == "__main__":``).
    """
    ids = as_subjects(subjects)
    x = np.asarray(features, dtype=np.float64)
    y = np.asarray(targets, dtype=np.float64)
    if x.ndim != 2 or x.shape[0] != ids.size or y.shape != ids.shape:
        raise ValueError("features must be rows x columns, with one target and subject per row")
    if workers < 1:
        raise ValueError("workers must be at least 1")
    tested = np.zeros(ids.size, dtype=bool)
    for fold in folds:
        if np.intersect1d(ids[fold.train], ids[fold.test]).size:
            raise ValueError(f"fold {fold.index} puts a subject on both sides")
        if tested[fold.test].any():
            raise ValueError(f"fold {fold.index} tests rows already tested")
        tested[fold.test] = True
    jobs = [((x[f.train], y[f.train], ids[f.train]), x[f.test]) for f in folds]
    if workers == 1 or len(folds) < 2:
        results = [_fit_fold(learner, train, test) for train, test in jobs]
    else:
        context = multiprocessing.get_context("spawn")
        with ProcessPoolExecutor(min(workers, len(folds)), mp_context=context) as pool:
            results = list(
                pool.map(
                    _fit_fold,
                    [learner] * len(jobs),
                    [train for train, _ in jobs],
                    [test for _, test in jobs],
                )
            )
    predictions = np.full(ids.size, np.nan)
    for fold, (predicted, _, _) in zip(folds, results, strict=True):
        predictions[fold.test] = predicted
    states = [state for _, state, _ in results]
    models = [model for _, _, model in results] if keep_models else []
    subject_ids, subject_predictions = subject_means(predictions[tested], ids[tested])
    return CrossValidation(ids, predictions, subject_ids, subject_predictions, states, models)


def state_digest(state: Mapping[str, JsonValue]) -> str:
    """A canonical JSON text of a fitted state, for exact comparison."""
    return json.dumps(state, sort_keys=True, allow_nan=True)


def held_out_changes_fit(
    build: Callable[[FloatArray, FloatArray], Learner],
    features: FloatArray,
    targets: FloatArray,
    subjects: ArrayLike,
    fold: Fold,
    *,
    seed: int,
) -> bool:
    """Whether replacing the held-out rows with garbage changes the fitted state of ``fold``.

    The leakage audit. ``build`` makes the learner from the whole matrix and targets, as any
    pipeline set up before splitting could; then features of the held-out rows become random
    values far outside the data's range and their targets are flipped (classes) or shifted
    (values). A pipeline that fits anything on rows outside ``fold.train`` (a global scaler, a
    selection or a search done before splitting) then ends in a different state. ``False`` is
    the answer a leak-free pipeline must give.
    """
    x = np.asarray(features, dtype=np.float64)
    y = np.asarray(targets, dtype=np.float64)
    rng = np.random.default_rng(seed)
    garbage_x = x.copy()
    scale = float(np.nanmax(np.abs(x))) if np.isfinite(x).any() else 1.0
    garbage_x[fold.test] = rng.uniform(-1e3, 1e3, size=(fold.test.size, x.shape[1])) * scale
    garbage_y = y.copy()
    is_binary = bool(np.all((y == 0) | (y == 1)))
    garbage_y[fold.test] = 1.0 - y[fold.test] if is_binary else y[fold.test] + 1e3
    clean = cross_validate(build(x, y), x, y, subjects, [fold]).fold_states[0]
    dirty = cross_validate(
        build(garbage_x, garbage_y), garbage_x, garbage_y, subjects, [fold]
    ).fold_states[0]
    return state_digest(clean) != state_digest(dirty)


# ------------------------------------------------------------------------------ reports
def classification_summary(
    subject_ids: ArrayLike,
    labels: ArrayLike,
    probability: ArrayLike,
    *,
    threshold: ArrayLike = 0.5,
    n_resamples: int = 2000,
    seed: int = 0,
    n_bins: int = 5,
    level: float = 0.95,
) -> dict[str, JsonValue]:
    """Subject-level classification metrics with bootstrap CIs, reliability curve, scores.

    One entry per subject in every argument (``threshold``: one cut, or one per subject).
    JSON-serialisable (NaN becomes ``null``).
    """
    ids = as_subjects(subject_ids)
    y = _binary(labels)
    p = np.asarray(probability, dtype=np.float64)
    cut = np.broadcast_to(np.asarray(threshold, dtype=np.float64), y.shape)
    if not (ids.size == y.size == p.size):
        raise ValueError("need one id, label and probability per subject")

    def statistic(indices: IntArray) -> dict[str, float]:
        return classification_metrics(y[indices], p[indices], cut[indices])

    estimates = bootstrap_over_subjects(
        statistic, ids.size, n_resamples=n_resamples, seed=seed, level=level
    )
    bins = reliability_curve(y, p, n_bins)
    return {
        "n_subjects": int(ids.size),
        "n_positive": int(y.sum()),
        "metrics": {name: estimate.as_dict() for name, estimate in estimates.items()},
        "reliability_curve": [
            {
                "low": round(b.low, 6),
                "high": round(b.high, 6),
                "count": b.count,
                "mean_predicted": _finite(b.mean_predicted),
                "observed_rate": _finite(b.observed_rate),
            }
            for b in bins
        ],
        "expected_calibration_error": _finite(expected_calibration_error(bins)),
        "subjects": [
            {
                "subject": s,
                "label": int(label),
                "probability": _finite(prob),
                "threshold": _finite(t),
                "predicted": int(prob >= t),
            }
            for s, label, prob, t in zip(
                ids.tolist(), y.tolist(), p.tolist(), cut.tolist(), strict=True
            )
        ],
    }


def regression_summary(
    subject_ids: ArrayLike,
    targets: ArrayLike,
    predicted: ArrayLike,
    *,
    baseline: ArrayLike,
    lower: ArrayLike | None = None,
    upper: ArrayLike | None = None,
    n_resamples: int = 2000,
    seed: int = 0,
    level: float = 0.95,
) -> dict[str, JsonValue]:
    """Subject-level MAE/RMSE/r with CIs, against a baseline predicted the same way.

    ``baseline`` is what a model-free predictor says for each subject out of fold (e.g. the
    training subjects' mean); ``mae_minus_baseline`` is a paired bootstrap of the difference,
    so a CI wholly below zero means the model beats it. ``lower``/``upper`` are per-subject
    prediction intervals, whose empirical coverage is reported.
    """
    ids = as_subjects(subject_ids)
    y = np.asarray(targets, dtype=np.float64)
    yhat = np.asarray(predicted, dtype=np.float64)
    base = np.asarray(baseline, dtype=np.float64)
    if not (ids.size == y.size == yhat.size == base.size):
        raise ValueError("need one id, target, prediction and baseline per subject")
    has_interval = lower is not None and upper is not None
    lo = np.asarray(lower if lower is not None else yhat, dtype=np.float64)
    hi = np.asarray(upper if upper is not None else yhat, dtype=np.float64)

    def statistic(indices: IntArray) -> dict[str, float]:
        model = regression_metrics(y[indices], yhat[indices])
        reference = float(np.mean(np.abs(base[indices] - y[indices])))
        values = {
            **model,
            "baseline_mae": reference,
            "mae_minus_baseline": model["mae"] - reference,
        }
        if has_interval:
            inside = (y[indices] >= lo[indices]) & (y[indices] <= hi[indices])
            values["interval_coverage"] = float(np.mean(inside))
        return values

    estimates = bootstrap_over_subjects(
        statistic, ids.size, n_resamples=n_resamples, seed=seed, level=level
    )
    rows: list[JsonValue] = []
    for i, subject in enumerate(ids.tolist()):
        row: dict[str, JsonValue] = {
            "subject": subject,
            "target": _finite(y[i]),
            "predicted": _finite(yhat[i]),
            "baseline": _finite(base[i]),
        }
        if has_interval:
            row["lower"], row["upper"] = _finite(lo[i]), _finite(hi[i])
        rows.append(row)
    return {
        "n_subjects": int(ids.size),
        "metrics": {name: estimate.as_dict() for name, estimate in estimates.items()},
        "subjects": rows,
    }
