"""Boosted models on synthetic subjects: no step sees the held-out subject, runs repeat exactly,
calibration is right, explanations add up, and saved models come back identical."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from clarity.ml import boosted
from clarity.ml.boosted import BoostedConfig, BoostedLearner, BoostedModel, mcc_threshold
from clarity.ml.calibration import Calibrator, fit_calibrator, sigmoid
from clarity.ml.evaluation import (
    FloatArray,
    StrArray,
    classification_metrics,
    cross_validate,
    held_out_changes_fit,
    leave_one_subject_out,
)

NAMES = ("signal_a", "signal_b", "noise_a", "noise_b", "noise_c", "sparse")
LABELS = {name: f"plain words for {name}" for name in NAMES}
SMALL = {
    "inner_folds": 3,
    "n_features": (2, None),
    "max_depth": (1, 2),
    "rounds": (5, 20),
}


def _subjects(
    n: int = 24, seed: int = 0, rows: int = 3
) -> tuple[FloatArray, FloatArray, FloatArray, StrArray]:
    """Rows per subject; the label and a severity score shift the first two features."""
    rng = np.random.default_rng(seed)
    x, y, severity, ids = [], [], [], []
    for s in range(n):
        label = float(s % 2)
        score = 10.0 + 15.0 * label + rng.normal(0, 3)
        level = rng.normal(0, 0.3, size=2)
        for _ in range(rows):
            row = rng.normal(0, 1, size=len(NAMES))
            row[0] = level[0] + (score - 17.5) / 8 + rng.normal(0, 0.3)
            row[1] = level[1] + label + rng.normal(0, 0.5)
            row[5] = np.nan if rng.random() < 0.7 else row[5]  # mostly missing: screened out
            x.append(row)
            y.append(label)
            severity.append(score)
            ids.append(f"p{s:02d}")
    return np.array(x), np.array(y), np.array(severity), np.array(ids)


def _learner(task: str = "classification", **changes: Any) -> BoostedLearner:
    config = BoostedConfig(task=task, **{**SMALL, **changes})  # type: ignore[arg-type]
    return BoostedLearner(config, NAMES, LABELS)


# ------------------------------------------------------------------------------ leakage
def test_no_fitted_step_changes_when_the_held_out_subject_is_garbage() -> None:
    x, y, _, ids = _subjects()
    for fold in leave_one_subject_out(ids)[:6]:
        assert not held_out_changes_fit(lambda a, b: _learner(), x, y, ids, fold, seed=1)


def test_the_audit_is_sensitive_to_training_rows() -> None:
    """The same audit, pointed at a training subject, must see the fit change."""
    x, y, _, ids = _subjects()
    fold = leave_one_subject_out(ids)[0]
    learner = _learner()
    clean = cross_validate(learner, x, y, ids, [fold]).fold_states[0]
    changed = x.copy()
    changed[ids == "p05"] = 50.0
    dirty = cross_validate(learner, changed, y, ids, [fold]).fold_states[0]
    assert clean["booster_sha256"] != dirty["booster_sha256"]


def test_regressor_is_leak_free_too() -> None:
    x, _, severity, ids = _subjects()
    for fold in leave_one_subject_out(ids)[:4]:
        assert not held_out_changes_fit(
            lambda a, b: _learner("regression"), x, severity, ids, fold, seed=2
        )


def test_every_step_sees_training_subjects_only(monkeypatch: pytest.MonkeyPatch) -> None:
    """Instrument selection, boosting and calibration; none may receive the held-out rows."""
    x, y, _, ids = _subjects()
    seen: list[tuple[str, set[str]]] = []
    calibrated_rows: list[int] = []

    def spy(name: str, real: Callable[..., Any]) -> Callable[..., Any]:
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            subjects = next(a for a in args if isinstance(a, np.ndarray) and a.dtype.kind == "U")
            seen.append((name, set(subjects.tolist())))
            return real(*args, **kwargs)

        return wrapper

    real_calibrator = fit_calibrator

    def calibrator_spy(margin: Any, labels: Any, weights: Any = None, **kw: Any) -> Calibrator:
        calibrated_rows.append(np.asarray(margin).size)
        return real_calibrator(margin, labels, weights, **kw)

    monkeypatch.setattr(boosted, "rank_features", spy("rank", boosted.rank_features))
    monkeypatch.setattr(boosted, "_train", spy("train", boosted._train))
    monkeypatch.setattr("clarity.ml.boosted.fit_calibrator", calibrator_spy)
    fold = leave_one_subject_out(ids)[3]
    cross_validate(_learner(), x, y, ids, [fold])
    held = fold.held_out[0]
    assert {name for name, _ in seen} == {"rank", "train"}
    assert all(held not in subjects for _, subjects in seen)
    assert calibrated_rows == [fold.train.size]  # the inner out-of-fold rows, no more


# -------------------------------------------------------------------------- determinism
def test_same_seed_same_everything_and_another_seed_differs() -> None:
    x, y, _, ids = _subjects(seed=4)
    folds = leave_one_subject_out(ids)[:5]
    a = cross_validate(_learner(seed=7), x, y, ids, folds)
    b = cross_validate(_learner(seed=7), x, y, ids, folds)
    c = cross_validate(_learner(seed=8), x, y, ids, folds)
    assert json.dumps(a.fold_states) == json.dumps(b.fold_states)
    assert np.array_equal(a.row_predictions, b.row_predictions, equal_nan=True)
    assert json.dumps(a.fold_states) != json.dumps(c.fold_states)


def test_parallel_folds_give_the_same_results() -> None:
    x, y, _, ids = _subjects(seed=4)
    folds = leave_one_subject_out(ids)[:2]
    serial = cross_validate(_learner(), x, y, ids, folds)
    parallel = cross_validate(_learner(), x, y, ids, folds, workers=2, keep_models=True)
    assert json.dumps(serial.fold_states) == json.dumps(parallel.fold_states)
    assert np.array_equal(serial.row_predictions, parallel.row_predictions, equal_nan=True)
    assert all(isinstance(m, BoostedModel) for m in parallel.models)


# ----------------------------------------------------------------------------- learning
def test_classifier_learns_the_signal_under_loso() -> None:
    x, y, _, ids = _subjects(n=30, seed=5)
    result = cross_validate(_learner(), x, y, ids, leave_one_subject_out(ids), keep_models=True)
    subject_labels = np.array([y[ids == s][0] for s in result.subject_ids])
    metrics = classification_metrics(subject_labels, result.subject_predictions)
    assert metrics["auc"] > 0.85
    model = result.models[0]
    assert isinstance(model, BoostedModel)
    selected = model.fitted_state()["selected"]
    assert isinstance(selected, list)
    assert "sparse" not in selected  # 70 % missing: screened out
    assert 0.0 < model.threshold < 1.0


def test_regressor_beats_the_mean_and_its_interval_is_conformal() -> None:
    x, _, severity, ids = _subjects(n=30, seed=6)
    learner = _learner("regression", interval_level=0.8)
    result = cross_validate(learner, x, severity, ids, leave_one_subject_out(ids), keep_models=True)
    truth = np.array([severity[ids == s][0] for s in result.subject_ids])
    mae = np.mean(np.abs(result.subject_predictions - truth))
    assert mae < np.mean(np.abs(truth - truth.mean()))
    inside = 0
    for subject, model in zip(result.subject_ids, result.models, strict=True):
        assert isinstance(model, BoostedModel)
        low, high = model.interval(x[ids == subject])
        assert low < model.predict_subject(x[ids == subject]) < high
        inside += int(low <= truth[result.subject_ids == subject][0] <= high)
    assert inside / truth.size >= 0.6  # nominal 0.8; loose for 30 subjects


def test_mcc_threshold_separates_and_prefers_the_middle() -> None:
    labels = np.array([0, 0, 0, 1, 1, 1], dtype=np.float64)
    assert mcc_threshold(labels, np.array([0.1, 0.2, 0.3, 0.6, 0.7, 0.8])) == pytest.approx(0.45)
    # cuts 0.25 and 0.525 both reach MCC 0.707 (one error each): the tie goes to 0.525
    assert mcc_threshold(labels, np.array([0.1, 0.2, 0.35, 0.3, 0.7, 0.8])) == pytest.approx(0.525)


# -------------------------------------------------------------------------- calibration
def test_platt_recovers_a_known_logistic_map() -> None:
    rng = np.random.default_rng(9)
    margin = rng.normal(0, 2, size=20000)
    labels = (rng.random(margin.size) < sigmoid(0.5 * margin - 0.3)).astype(np.float64)
    fitted = fit_calibrator(margin, labels, method="platt")
    assert fitted.slope == pytest.approx(0.5, abs=0.03)
    assert fitted.intercept == pytest.approx(-0.3, abs=0.05)


def test_isotonic_is_monotone_within_0_1_and_round_trips() -> None:
    rng = np.random.default_rng(10)
    margin = rng.normal(0, 1, size=300)
    labels = (rng.random(300) < sigmoid(2 * margin)).astype(np.float64)
    fitted = fit_calibrator(margin, labels, method="isotonic")
    grid = np.linspace(-4, 4, 50)
    mapped = fitted(grid)
    assert np.all(np.diff(mapped) >= 0)
    assert mapped.min() >= 0
    assert mapped.max() <= 1
    again = Calibrator.from_dict(json.loads(json.dumps(fitted.as_dict())))
    assert np.array_equal(again(grid), mapped)
    with pytest.raises(ValueError, match="both classes"):
        fit_calibrator(margin, np.zeros(300))


# --------------------------------------------------------------- explanations, save/load
def _fitted(task: str = "classification", **changes: Any) -> tuple[BoostedModel, FloatArray]:
    x, y, severity, ids = _subjects(n=20, seed=12)
    targets = y if task == "classification" else severity
    model = _learner(task, **changes).fit(x, targets, ids)
    return model, x[ids == "p03"]


def test_explanation_adds_up_to_the_margin_in_plain_words() -> None:
    model, rows = _fitted()
    explanation = model.explain(rows, top=len(NAMES))
    total = explanation.baseline + sum(c.contribution for c in explanation.top)
    assert total == pytest.approx(explanation.margin, abs=1e-5)
    margin = float(np.mean(_margin(model, rows)))
    assert explanation.margin == pytest.approx(margin, abs=1e-5)
    assert all(c.label == f"plain words for {c.feature}" for c in explanation.top)
    top = explanation.top[0]
    assert top.feature in ("signal_a", "signal_b")
    assert explanation.units == "log-odds of depression"


def _margin(model: BoostedModel, rows: FloatArray) -> FloatArray:
    import xgboost as xgb

    data = xgb.DMatrix(rows[:, model.selected])
    out: FloatArray = model.booster.predict(
        data, output_margin=True, iteration_range=(0, model.setting.rounds)
    )
    return out


def test_save_and_load_give_identical_predictions(tmp_path: Path) -> None:
    model, rows = _fitted(ensemble_size=5)
    model.save(tmp_path / "m")
    files = sorted(p.relative_to(tmp_path / "m").as_posix() for p in (tmp_path / "m").rglob("*"))
    assert "metadata.json" in files
    assert "booster.json" in files
    assert all(f.endswith(".json") or f == "ensemble" for f in files)  # no pickle anywhere
    loaded = BoostedModel.load(tmp_path / "m")
    assert np.array_equal(loaded.predict(rows), model.predict(rows))
    assert loaded.interval(rows) == model.interval(rows)
    assert loaded.threshold == model.threshold
    assert loaded.explain(rows) == model.explain(rows)
    assert loaded.fitted_state() == model.fitted_state()
    low, high = model.interval(rows)
    assert 0.0 <= low <= high <= 1.0


def test_regressor_round_trips_with_its_interval(tmp_path: Path) -> None:
    model, rows = _fitted("regression")
    model.save(tmp_path)
    loaded = BoostedModel.load(tmp_path)
    assert loaded.interval(rows) == model.interval(rows)
    assert loaded.explain(rows).units == "MADRS"
    json.loads((tmp_path / "metadata.json").read_text(), parse_constant=_refuse)


def _refuse(name: str) -> float:
    raise AssertionError(f"metadata is not strict JSON: {name}")


def test_a_tampered_or_foreign_model_is_refused(tmp_path: Path) -> None:
    model, _ = _fitted()
    model.save(tmp_path)
    booster = tmp_path / "booster.json"
    booster.write_bytes(booster.read_bytes().replace(b'"', b" ", 1))
    with pytest.raises(ValueError, match="SHA-256"):
        BoostedModel.load(tmp_path)
    (tmp_path / "metadata.json").write_text('{"format": "something-else"}')
    with pytest.raises(ValueError, match="does not hold"):
        BoostedModel.load(tmp_path)
    with pytest.raises(ValueError, match="metadata"):
        BoostedModel.load(tmp_path / "absent")


def test_bad_inputs_are_refused() -> None:
    x, y, _, ids = _subjects()
    with pytest.raises(ValueError, match="both classes"):
        _learner().fit(x, np.zeros_like(y), ids)
    with pytest.raises(ValueError, match="rows x feature_names"):
        _learner().fit(x[:, :3], y, ids)
    model, rows = _fitted()
    with pytest.raises(ValueError, match="features"):
        model.predict(rows[:, :2])
    with pytest.raises(ValueError, match="ensemble"):
        model.interval(rows)


def test_the_null_model_predicts_the_weighted_median_and_is_searched_first() -> None:
    rng = np.random.default_rng(13)
    ids = np.repeat([f"q{i:02d}" for i in range(24)], 2)
    x = rng.normal(size=(ids.size, len(NAMES)))
    target = np.repeat(np.arange(24, dtype=np.float64), 2)
    target[ids == "q23"] = 1000.0  # an outlier the median ignores
    null = _learner("regression", rounds=(0,)).fit(x, target, ids)
    assert null.setting.rounds == 0
    assert null.booster.num_boosted_rounds() == 0
    assert np.all(null.predict(x[:5]) == pytest.approx(11.0))
    assert null.explain(x[:2]).top[0].contribution == 0.0
    searched = _learner("regression", rounds=(0, 10)).fit(x, target, ids)
    assert searched.search_losses[0][0].rounds == 0
    assert sum(s.rounds == 0 for s, _ in searched.search_losses) == 1
