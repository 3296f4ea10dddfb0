"""Subject-level evaluation: splits never cut a subject, metrics agree with scikit-learn,
bootstrap intervals resample subjects reproducibly, and the leakage audit catches a leak."""

from __future__ import annotations

import json
from collections.abc import Mapping

import numpy as np
import pytest
from sklearn.metrics import (  # type: ignore[import-untyped]
    accuracy_score,
    brier_score_loss,
    f1_score,
    matthews_corrcoef,
    roc_auc_score,
)

from clarity.ml.evaluation import (
    FloatArray,
    JsonValue,
    StrArray,
    bootstrap_over_subjects,
    classification_metrics,
    classification_summary,
    cross_validate,
    expected_calibration_error,
    held_out_changes_fit,
    leave_one_subject_out,
    regression_metrics,
    regression_summary,
    reliability_curve,
    roc_auc,
    stratified_subject_folds,
    subject_means,
    subject_weights,
)


def _rows(n_subjects: int = 12, seed: int = 0) -> tuple[FloatArray, FloatArray, StrArray]:
    """A few rows per subject; label depends on the subject, features carry the label."""
    rng = np.random.default_rng(seed)
    ids, labels, x = [], [], []
    for s in range(n_subjects):
        label = s % 2
        for _ in range(1 + s % 3):
            ids.append(f"s{s:02d}")
            labels.append(label)
            x.append(rng.normal(label, 1.0, size=3))
    return np.array(x), np.array(labels, dtype=np.float64), np.array(ids)


# ------------------------------------------------------------------------------- splits
def test_loso_holds_out_each_subject_once_and_never_splits_one() -> None:
    _, _, ids = _rows()
    folds = leave_one_subject_out(ids)
    assert [f.held_out[0] for f in folds] == sorted(set(ids.tolist()))
    tested = np.concatenate([f.test for f in folds])
    assert np.array_equal(np.sort(tested), np.arange(ids.size))
    for fold in folds:
        assert set(ids[fold.test]) == set(fold.held_out)
        assert fold.held_out[0] not in set(ids[fold.train])
        assert fold.train.size + fold.test.size == ids.size


def test_stratified_subject_folds_keep_subjects_whole_and_classes_balanced() -> None:
    _, y, ids = _rows(n_subjects=20)
    folds = stratified_subject_folds(ids, y, n_splits=5, seed=3)
    assert len(folds) == 5
    seen: set[str] = set()
    for fold in folds:
        test_subjects = set(ids[fold.test])
        assert not test_subjects & set(ids[fold.train])
        assert not test_subjects & seen
        seen |= test_subjects
        labels = {s: y[ids == s][0] for s in test_subjects}
        assert sum(labels.values()) == 2  # 10 positives over 5 folds
        assert len(test_subjects) == 4
    assert seen == set(ids.tolist())


def test_stratified_subject_folds_are_seeded() -> None:
    _, y, ids = _rows(n_subjects=20)
    a = stratified_subject_folds(ids, y, n_splits=4, seed=1)
    b = stratified_subject_folds(ids, y, n_splits=4, seed=1)
    c = stratified_subject_folds(ids, y, n_splits=4, seed=2)
    assert [f.held_out for f in a] == [f.held_out for f in b]
    assert [f.held_out for f in a] != [f.held_out for f in c]


def test_strata_must_be_constant_within_a_subject() -> None:
    ids = np.array(["a", "a", "b", "b"])
    with pytest.raises(ValueError, match="constant within each subject"):
        stratified_subject_folds(ids, [0, 1, 0, 0], n_splits=2, seed=0)
    with pytest.raises(ValueError, match="n_splits"):
        stratified_subject_folds(ids, [0, 0, 1, 1], n_splits=3, seed=0)


def test_subject_means_and_weights() -> None:
    ids = np.array(["b", "a", "b", "b"])
    unique, means = subject_means([1.0, 10.0, 2.0, 3.0], ids)
    assert unique.tolist() == ["a", "b"]
    assert means.tolist() == [10.0, 2.0]
    _, matrix = subject_means(np.array([[1.0, 0.0], [10.0, 1.0], [3.0, 0.0], [5.0, 3.0]]), ids)
    assert matrix.tolist() == [[10.0, 1.0], [3.0, 1.0]]
    assert subject_weights(ids).tolist() == pytest.approx([1 / 3, 1.0, 1 / 3, 1 / 3])


# ------------------------------------------------------------------------------ metrics
def test_metrics_agree_with_scikit_learn() -> None:
    rng = np.random.default_rng(11)
    for trial in range(20):
        y = rng.integers(0, 2, size=40).astype(np.float64)
        if y.min() == y.max():
            continue
        # rounded scores create ties, which the rank formula must count one half
        p = np.round(np.clip(0.3 * y + rng.uniform(0, 0.7, size=40), 0, 1), 1 + trial % 2)
        m = classification_metrics(y, p, threshold=0.5)
        predicted = (p >= 0.5).astype(int)
        assert m["auc"] == pytest.approx(roc_auc_score(y, p), abs=1e-12)
        assert m["accuracy"] == pytest.approx(accuracy_score(y, predicted))
        assert m["f1"] == pytest.approx(f1_score(y, predicted, zero_division=0.0))
        assert m["mcc"] == pytest.approx(matthews_corrcoef(y, predicted), abs=1e-12)
        assert m["brier"] == pytest.approx(brier_score_loss(y, p))


def test_metric_edge_cases() -> None:
    assert np.isnan(roc_auc([1, 1, 1], [0.2, 0.4, 0.9]))
    perfect = classification_metrics([0, 0, 1, 1], [0.1, 0.2, 0.8, 0.9])
    assert perfect["auc"] == 1.0
    assert perfect["mcc"] == 1.0
    assert perfect["brier"] == pytest.approx((0.01 + 0.04 + 0.04 + 0.01) / 4)
    all_negative = classification_metrics([0, 0, 1, 1], [0.1, 0.2, 0.3, 0.4])
    assert all_negative["mcc"] == 0.0
    assert all_negative["f1"] == 0.0
    with pytest.raises(ValueError, match="0 or 1"):
        classification_metrics([0, 2], [0.1, 0.2])
    with pytest.raises(ValueError, match="within"):
        classification_metrics([0, 1], [0.1, 1.2])
    r = regression_metrics([10, 20, 30], [12, 18, 33])
    assert r["mae"] == pytest.approx(7 / 3)
    assert r["rmse"] == pytest.approx(np.sqrt(17 / 3))


def test_reliability_curve_bins_and_calibration_error() -> None:
    y = np.array([0, 0, 0, 1, 0, 1, 1, 1, 1, 1])
    p = np.array([0.05, 0.1, 0.15, 0.15, 0.5, 0.55, 0.9, 0.95, 1.0, 1.0])
    bins = reliability_curve(y, p, n_bins=5)
    assert [b.count for b in bins] == [4, 2, 4]
    assert bins[0].observed_rate == 0.25
    assert bins[0].mean_predicted == pytest.approx(0.1125)
    assert bins[-1].high == 1.0  # p == 1.0 lands in the last, closed bin
    ece = expected_calibration_error(bins)
    expected = (4 * abs(0.25 - 0.1125) + 2 * abs(0.5 - 0.525) + 4 * abs(1.0 - 0.9625)) / 10
    assert ece == pytest.approx(expected)


# ---------------------------------------------------------------------------- bootstrap
def test_bootstrap_resamples_subjects_reproducibly() -> None:
    values = np.arange(30, dtype=np.float64)
    sizes: set[int] = set()

    def mean(indices: np.ndarray) -> dict[str, float]:
        sizes.add(indices.size)
        return {"mean": float(values[indices].mean())}

    a = bootstrap_over_subjects(mean, 30, n_resamples=500, seed=4)
    b = bootstrap_over_subjects(mean, 30, n_resamples=500, seed=4)
    c = bootstrap_over_subjects(mean, 30, n_resamples=500, seed=5)
    assert a == b
    assert a != c
    assert sizes == {30}
    est = a["mean"]
    assert est.value == 14.5
    assert est.low < 14.5 < est.high
    # standard error of a mean of 30 uniform integers is about 1.6, so the 95% CI spans ~6
    assert 4.0 < est.high - est.low < 9.0


def test_bootstrap_leaves_out_undefined_resamples() -> None:
    y = np.array([0.0] * 9 + [1.0])
    p = np.linspace(0, 1, 10)
    result = bootstrap_over_subjects(
        lambda i: {"auc": roc_auc(y[i], p[i])}, 10, n_resamples=300, seed=0
    )
    # the single positive is missing from about (0.9)^10 = 35% of resamples
    assert 150 < result["auc"].resamples < 250


def test_summaries_are_strict_json() -> None:
    rng = np.random.default_rng(2)
    ids = [f"s{i}" for i in range(30)]
    y = np.array([i % 2 for i in range(30)], dtype=np.float64)
    p = np.clip(0.5 * y + rng.uniform(0, 0.5, size=30), 0, 1)
    report = classification_summary(ids, y, p, n_resamples=200, seed=1)
    text = json.dumps(report, allow_nan=False)
    assert json.loads(text)["metrics"]["auc"]["value"] == pytest.approx(
        roc_auc_score(y, p), abs=1e-6
    )
    assert report == classification_summary(ids, y, p, n_resamples=200, seed=1)
    target = rng.normal(20, 5, size=30)
    reg = regression_summary(
        ids, target, target + 1.0, baseline=np.full(30, 20.0), lower=target - 2, upper=target - 0.5
    )
    json.dumps(reg, allow_nan=False)
    metrics = reg["metrics"]
    assert isinstance(metrics, dict)
    mae = metrics["mae"]
    assert isinstance(mae, dict)
    assert mae["value"] == pytest.approx(1.0)
    coverage = metrics["interval_coverage"]
    assert isinstance(coverage, dict)
    assert coverage["value"] == 0.0  # every target lies just above its interval


# --------------------------------------------------------------------- cross-validation
class _CentroidModel:
    def __init__(self, mean: FloatArray, scale: FloatArray, centroids: FloatArray) -> None:
        self.mean, self.scale, self.centroids = mean, scale, centroids

    def predict(self, features: FloatArray) -> FloatArray:
        z = (features - self.mean) / self.scale
        d0 = np.linalg.norm(z - self.centroids[0], axis=1)
        d1 = np.linalg.norm(z - self.centroids[1], axis=1)
        closeness: FloatArray = d0 / (d0 + d1)
        return closeness

    def fitted_state(self) -> Mapping[str, JsonValue]:
        return {
            "mean": self.mean.tolist(),
            "scale": self.scale.tolist(),
            "centroids": self.centroids.tolist(),
        }


class _InFoldCentroids:
    """Standardises with the rows it is given, then nearest class centroid."""

    def __init__(self) -> None:
        self.seen: list[set[str]] = []

    def fit(self, features: FloatArray, targets: FloatArray, subjects: StrArray) -> _CentroidModel:
        self.seen.append(set(subjects.tolist()))
        mean, scale = features.mean(axis=0), features.std(axis=0)
        z = (features - mean) / scale
        centroids = np.stack([z[targets == 0].mean(axis=0), z[targets == 1].mean(axis=0)])
        return _CentroidModel(mean, scale, centroids)


class _GloballyScaledCentroids(_InFoldCentroids):
    """The classic leak: the scaler was fitted on every row before the split."""

    def __init__(self, all_features: FloatArray) -> None:
        super().__init__()
        self.mean, self.scale = all_features.mean(axis=0), all_features.std(axis=0)

    def fit(self, features: FloatArray, targets: FloatArray, subjects: StrArray) -> _CentroidModel:
        z = (features - self.mean) / self.scale
        centroids = np.stack([z[targets == 0].mean(axis=0), z[targets == 1].mean(axis=0)])
        return _CentroidModel(self.mean, self.scale, centroids)


def test_cross_validate_fits_each_fold_without_its_subject() -> None:
    x, y, ids = _rows()
    learner = _InFoldCentroids()
    folds = leave_one_subject_out(ids)
    result = cross_validate(learner, x, y, ids, folds)
    for fold, seen in zip(folds, learner.seen, strict=True):
        assert fold.held_out[0] not in seen
        assert len(seen) == len(folds) - 1
    assert np.all(np.isfinite(result.row_predictions))
    assert result.subject_ids.tolist() == sorted(set(ids.tolist()))
    _, expected = subject_means(result.row_predictions, ids)
    assert np.array_equal(result.subject_predictions, expected)


def test_cross_validate_refuses_a_fold_that_splits_a_subject() -> None:
    x, y, ids = _rows()
    fold = leave_one_subject_out(ids)[2]  # s02 has three rows
    split = type(fold)(0, fold.held_out, np.append(fold.train, fold.test[0]), fold.test[1:])
    with pytest.raises(ValueError, match="both sides"):
        cross_validate(_InFoldCentroids(), x, y, ids, [split])


def test_leakage_audit_passes_in_fold_fitting_and_catches_a_global_scaler() -> None:
    x, y, ids = _rows()
    for fold in leave_one_subject_out(ids):
        in_fold = held_out_changes_fit(lambda a, b: _InFoldCentroids(), x, y, ids, fold, seed=0)
        leaky = held_out_changes_fit(
            lambda a, b: _GloballyScaledCentroids(a), x, y, ids, fold, seed=0
        )
        assert not in_fold
        assert leaky
