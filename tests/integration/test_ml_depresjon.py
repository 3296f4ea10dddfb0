"""The boosted models on the real Depresjon recordings, kept small enough for the suite.

Depresjon: Garcia-Ceja E, et al. MMSys '18, 2018, doi:10.1145/3204949.3208125 (read from
../shared/data beside the repo). The full evaluation (every fold with the whole search grid,
both models, 2000 bootstrap resamples) takes minutes and is what ``evaluate_boosted`` runs
for the model cards; here the same protocol runs with a reduced grid, plus the leakage audit
and the determinism check on real rows.
"""

from __future__ import annotations

import json
import re

import numpy as np
import pytest

from clarity.actigraphy.readers import (
    SharedDataMissing,
    depresjon_dir,
    depresjon_files,
    read_depresjon_csv,
)
from clarity.ml.boosted import BoostedConfig, BoostedLearner
from clarity.ml.dataset import (
    DATA_QUANTITY_FEATURES,
    MODEL_FEATURES,
    FeatureRows,
    data_fingerprint,
    load_depresjon,
    week_windows,
)
from clarity.ml.evaluation import (
    classification_metrics,
    cross_validate,
    held_out_changes_fit,
    leave_one_subject_out,
    subject_means,
)

REDUCED = BoostedConfig(
    task="classification", inner_folds=3, n_features=(None,), max_depth=(2,), rounds=(25, 50)
)


@pytest.fixture(scope="module")
def rows() -> FeatureRows:
    try:
        depresjon_dir()
    except SharedDataMissing as exc:
        pytest.skip(f"Depresjon data set not available: {exc}")
    return load_depresjon()


def test_rows_cover_every_person_with_labels_and_madrs(rows: FeatureRows) -> None:
    assert rows.n_subjects == 55
    assert rows.excluded == {}
    ids, labels = subject_means(rows.labels, rows.subjects)
    assert int(labels.sum()) == 23
    assert set(np.unique(labels)) == {0.0, 1.0}  # constant within each person
    for subject in ids.tolist():
        mine = rows.subjects == subject
        assert mine.sum() >= 1
        assert np.all(np.isfinite(rows.madrs[mine])) == subject.startswith("condition")
    assert rows.features.shape == (rows.subjects.size, len(MODEL_FEATURES))
    assert not DATA_QUANTITY_FEATURES & set(rows.feature_names)
    assert all(rows.feature_labels[name] for name in rows.feature_names)


def test_fingerprint_is_sha256_over_the_files_read(rows: FeatureRows) -> None:
    root = depresjon_dir()
    assert re.fullmatch(r"[0-9a-f]{64}", rows.fingerprint)
    assert rows.fingerprint == data_fingerprint(root, [root / "scores.csv", *depresjon_files(root)])


def test_real_folds_are_leak_free_and_repeat_exactly(rows: FeatureRows) -> None:
    learner = BoostedLearner(REDUCED, rows.feature_names)
    folds = leave_one_subject_out(rows.subjects)
    chosen = [f for f in folds if f.held_out[0] in ("condition_1", "control_7")]
    for fold in chosen:
        assert not held_out_changes_fit(
            lambda a, b: learner, rows.features, rows.labels, rows.subjects, fold, seed=3
        )
    first = cross_validate(learner, rows.features, rows.labels, rows.subjects, chosen)
    second = cross_validate(learner, rows.features, rows.labels, rows.subjects, chosen)
    assert json.dumps(first.fold_states) == json.dumps(second.fold_states)
    assert np.array_equal(first.row_predictions, second.row_predictions, equal_nan=True)


def test_reduced_loso_separates_patients_from_controls(rows: FeatureRows) -> None:
    """With a one-point-per-axis grid; the full grid's numbers are the model cards'."""
    learner = BoostedLearner(REDUCED, rows.feature_names)
    folds = leave_one_subject_out(rows.subjects)
    result = cross_validate(learner, rows.features, rows.labels, rows.subjects, folds)
    _, labels = subject_means(rows.labels, rows.subjects)
    metrics = classification_metrics(labels, result.subject_predictions)
    assert metrics["auc"] > 0.75
    assert metrics["brier"] < 0.2


def test_the_served_window_is_the_latest_training_window(rows: FeatureRows) -> None:
    path = next(p for p in depresjon_files(depresjon_dir()) if p.stem == "condition_3")
    series = read_depresjon_csv(path)
    ((start, vector),) = week_windows(series, latest_only=True)
    mine = np.flatnonzero(rows.subjects == "condition_3")
    assert start.isoformat() == rows.window_start[mine[-1]]
    assert np.array_equal(vector, rows.features[mine[-1]], equal_nan=True)
