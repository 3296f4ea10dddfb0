"""The shared evaluation protocol: leave-one-subject-out, scored per subject, with CIs.

Any :class:`~clarity.ml.evaluation.Learner` goes through the same steps, so models of
different kinds (boosted trees here, networks elsewhere) are compared on equal terms:

1. one fold per subject; the learner fits on the other subjects' rows only;
2. the held-out subject's score is the mean of the model's outputs over their rows;
3. metrics are computed over subjects, with percentile bootstrap CIs over subjects
   (:mod:`clarity.ml.evaluation`); the regressor is compared with a model-free baseline
   (each fold's training-subject mean) by a paired bootstrap.

The report is plain JSON with no timings or paths in it, so two runs with the same seed give
byte-identical reports (:func:`report_json`).
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Callable, Mapping
from typing import Any

import numpy as np

from clarity.ml.evaluation import (
    CrossValidation,
    FittedModel,
    FloatArray,
    JsonValue,
    Learner,
    StrArray,
    classification_summary,
    cross_validate,
    leave_one_subject_out,
    regression_summary,
    subject_means,
)

PROTOCOL_VERSION = "clarity-loso/1"


def protocol_description(n_resamples: int, seed: int, level: float) -> dict[str, JsonValue]:
    """What was done, in the words a model card needs."""
    return {
        "version": PROTOCOL_VERSION,
        "splits": "leave-one-subject-out (one fold per subject)",
        "fitting": "every fitted step (selection, search, calibration, threshold) inside the fold",
        "unit_of_analysis": "subject (score = mean of the model's outputs over their rows)",
        "confidence_intervals": {
            "method": "percentile bootstrap over subjects",
            "resamples": n_resamples,
            "level": level,
            "seed": seed,
        },
    }


def _fold_choices(result: CrossValidation, key: str) -> list[JsonValue]:
    counts = Counter(
        json.dumps(state.get(key), sort_keys=True) for state in result.fold_states if key in state
    )
    return [
        {"value": json.loads(value), "folds": n}
        for value, n in sorted(counts.items(), key=lambda item: (-item[1], item[0]))
    ]


def evaluate_classifier(
    learner: Learner,
    features: FloatArray,
    labels: FloatArray,
    subjects: StrArray,
    *,
    threshold_of: Callable[[FittedModel], float] = lambda model: 0.5,
    n_resamples: int = 2000,
    seed: int = 0,
    level: float = 0.95,
    workers: int = 1,
) -> dict[str, JsonValue]:
    """LOSO subject-level classification report; ``threshold_of`` reads each fold's cut."""
    folds = leave_one_subject_out(subjects)
    result = cross_validate(
        learner, features, labels, subjects, folds, keep_models=True, workers=workers
    )
    cut_of = {f.held_out[0]: threshold_of(m) for f, m in zip(folds, result.models, strict=True)}
    _, y = subject_means(labels, subjects)
    cuts = np.array([cut_of[s] for s in result.subject_ids.tolist()])
    summary = classification_summary(
        result.subject_ids,
        y,
        np.clip(result.subject_predictions, 0.0, 1.0),
        threshold=cuts,
        n_resamples=n_resamples,
        seed=seed,
        level=level,
    )
    return {
        **summary,
        "n_rows": int(np.asarray(subjects).size),
        "fold_settings": _fold_choices(result, "setting"),
        "fold_thresholds": {
            "min": float(cuts.min()),
            "median": float(np.median(cuts)),
            "max": float(cuts.max()),
        },
    }


def evaluate_regressor(
    learner: Learner,
    features: FloatArray,
    targets: FloatArray,
    subjects: StrArray,
    *,
    interval_of: Callable[[FittedModel, FloatArray], tuple[float, float]] | None = None,
    n_resamples: int = 2000,
    seed: int = 0,
    level: float = 0.95,
    workers: int = 1,
) -> dict[str, JsonValue]:
    """LOSO subject-level regression report against each fold's training-mean baseline."""
    folds = leave_one_subject_out(subjects)
    result = cross_validate(
        learner, features, targets, subjects, folds, keep_models=True, workers=workers
    )
    ids = np.asarray(subjects).astype(str)
    baseline: dict[str, float] = {}
    lower: dict[str, float] = {}
    upper: dict[str, float] = {}
    for fold, model in zip(folds, result.models, strict=True):
        held = fold.held_out[0]
        _, training_targets = subject_means(targets[fold.train], ids[fold.train])
        baseline[held] = float(training_targets.mean())
        if interval_of is not None:
            lower[held], upper[held] = interval_of(model, features[fold.test])
    _, y = subject_means(targets, subjects)
    order = result.subject_ids.tolist()
    summary = regression_summary(
        result.subject_ids,
        y,
        result.subject_predictions,
        baseline=np.array([baseline[s] for s in order]),
        lower=np.array([lower[s] for s in order]) if interval_of else None,
        upper=np.array([upper[s] for s in order]) if interval_of else None,
        n_resamples=n_resamples,
        seed=seed,
        level=level,
    )
    return {
        **summary,
        "n_rows": int(ids.size),
        "fold_settings": _fold_choices(result, "setting"),
    }


def report_json(report: Mapping[str, Any]) -> str:
    """The canonical text of a report: strict JSON, sorted keys, two-space indent."""
    return json.dumps(report, sort_keys=True, indent=2, allow_nan=False) + "\n"
