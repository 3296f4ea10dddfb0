"""MAE pretraining, fine-tuning and subject-level evaluation, on tiny budgets.

A narrow network (PatConfig "tiny") and a handful of synthetic subjects keep these to
seconds; the published sizes are trained by the CLI (python -m clarity.ml.pat.evaluate).
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from clarity.ml import evaluation
from clarity.ml.card import ComparedModel, comparison_table
from clarity.ml.pat.config import PatConfig
from clarity.ml.pat.depresjon import WeekDataset
from clarity.ml.pat.evaluate import (
    PatLearner,
    evaluate_depresjon,
    out_of_fold,
    subject_folds,
    subject_report,
)
from clarity.ml.pat.finetune import FinetuneSettings, finetune, training_weights
from clarity.ml.pat.model import PatClassifier
from clarity.ml.pat.pretrain import (
    MaskedAutoencoder,
    PretrainSettings,
    pretrain,
    random_visible,
    reconstruction_loss,
    visible_count,
)

TINY = PatConfig(
    "tiny", patch_size=18, num_layers=1, num_heads=2, embed_dim=16, key_dim=8, ff_dim=32
)


def synthetic_subjects(n_subjects: int, weeks: int, seed: int) -> tuple[np.ndarray, ...]:
    """Synthetic (not real) minute counts: class 1 has a flatter day-night rhythm."""
    rng = np.random.default_rng(seed)
    minute = np.arange(10080) % 1440
    rows, labels, subjects = [], [], []
    for s in range(n_subjects):
        label = s % 2
        amplitude = 150.0 if label == 0 else 60.0
        for _ in range(weeks):
            mean = 120 + amplitude * np.sin(2 * np.pi * (minute - 480) / 1440)
            rows.append(rng.poisson(np.clip(mean, 1, None)).astype(np.float64))
            labels.append(float(label))
            subjects.append(f"synthetic_{s}")
    return np.stack(rows), np.array(labels), np.array(subjects)


def test_ninety_percent_of_patches_are_hidden() -> None:
    assert visible_count(560, 0.9) == 56
    assert visible_count(1120, 0.9) == 112
    visible = random_visible(4, 560, 0.9, torch.Generator().manual_seed(0))
    assert visible.shape == (4, 56)
    assert all(torch.unique(row).numel() == 56 for row in visible)
    assert torch.equal(visible, torch.sort(visible, dim=1).values)
    assert not torch.equal(visible[0], visible[1])


def test_reconstruction_sees_only_visible_patches() -> None:
    torch.manual_seed(0)
    model = MaskedAutoencoder(TINY).eval()
    x = torch.randn(1, 10080)
    visible = random_visible(1, 560, 0.9, torch.Generator().manual_seed(1))
    hidden = next(p for p in range(560) if p not in set(visible[0].tolist()))
    shown = int(visible[0, 0])
    with torch.no_grad():
        base = model(x, visible)
        assert base.shape == (1, 10080)
        assert float(base.abs().max()) <= 2.0
        changed = x.clone()
        changed[0, hidden * 18 : (hidden + 1) * 18] += 5.0
        assert torch.equal(model(changed, visible), base)
        changed = x.clone()
        changed[0, shown * 18 : (shown + 1) * 18] += 5.0
        assert not torch.equal(model(changed, visible), base)


def test_loss_is_over_every_recorded_minute() -> None:
    target = torch.zeros(1, 10080)
    reconstruction = torch.ones(1, 10080)
    reconstruction[0, :80] = 3.0
    observed = torch.ones(1, 10080, dtype=torch.bool)
    assert float(reconstruction_loss(reconstruction, target, observed)) == pytest.approx(
        (80 * 9 + 10000) / 10080
    )
    observed[0, :80] = False  # padding: nothing to reconstruct there
    assert float(reconstruction_loss(reconstruction, target, observed)) == pytest.approx(1.0)


def test_pretraining_reduces_reconstruction_error() -> None:
    counts, _, _ = synthetic_subjects(2, 3, seed=0)
    standard = ((counts - counts.mean(0)) / counts.std(0)).astype(np.float32)
    torch.manual_seed(0)
    model = MaskedAutoencoder(TINY)
    history = pretrain(
        model,
        standard,
        np.ones_like(standard, dtype=bool),
        PretrainSettings(epochs=6, batch_size=3, learning_rate=3e-3),
        torch.Generator().manual_seed(0),
    )
    assert len(history) == 6
    assert history[-1] < history[0]


def test_training_weights_balance_subjects_and_classes() -> None:
    labels = np.array([1, 1, 1, 0, 0, 0, 0, 0], dtype=np.float64)
    subjects = np.array(["a", "a", "a", "b", "c", "c", "c", "c"])
    w = training_weights(labels, subjects)
    assert w.mean() == pytest.approx(1.0)
    assert w[labels == 1].sum() == pytest.approx(w[labels == 0].sum())
    assert w[subjects == "b"].sum() == pytest.approx(w[subjects == "c"].sum())
    with pytest.raises(ValueError, match="both classes"):
        training_weights(np.zeros(3), np.array(["a", "b", "c"]))


def test_linear_probe_freezes_the_encoder() -> None:
    counts, labels, subjects = synthetic_subjects(2, 2, seed=1)
    standard = ((counts - counts.mean(0)) / counts.std(0)).astype(np.float32)
    torch.manual_seed(0)
    model = PatClassifier(TINY)
    encoder_before = [p.detach().clone() for p in model.encoder.parameters()]
    head_before = model.head_output.weight.detach().clone()
    settings = FinetuneSettings(epochs=1, batch_size=2, style="linear_probe")
    finetune(
        model, standard, labels, training_weights(labels, subjects), settings, torch.Generator()
    )
    assert all(
        torch.equal(a, b) for a, b in zip(encoder_before, model.encoder.parameters(), strict=True)
    )
    assert not torch.equal(head_before, model.head_output.weight)
    assert all(p.requires_grad for p in model.parameters())


def tiny_learner(seed: int = 0) -> PatLearner:
    return PatLearner(
        TINY,
        PretrainSettings(epochs=1, batch_size=4),
        FinetuneSettings(epochs=1, batch_size=4, learning_rate=1e-3),
        seed=seed,
        threads=1,
    )


def test_fits_are_deterministic() -> None:
    counts, labels, subjects = synthetic_subjects(4, 2, seed=2)
    first = tiny_learner().fit(counts, labels, subjects).fitted_state()
    second = tiny_learner().fit(counts, labels, subjects).fitted_state()
    assert first == second
    assert tiny_learner(seed=1).fit(counts, labels, subjects).fitted_state() != first


def test_held_out_subjects_never_reach_the_fit() -> None:
    counts, labels, subjects = synthetic_subjects(6, 2, seed=3)
    fold = subject_folds(subjects, labels, 3, seed=0)[0]
    assert not evaluation.held_out_changes_fit(
        lambda x, y: tiny_learner(), counts, labels, subjects, fold, seed=0
    )


def test_out_of_fold_probabilities_per_subject() -> None:
    counts, labels, subjects = synthetic_subjects(4, 2, seed=4)
    folds = subject_folds(subjects, labels, 2, seed=0)
    cv = out_of_fold(tiny_learner(), counts, labels, subjects, folds)
    assert cv.subject_ids.tolist() == [f"synthetic_{i}" for i in range(4)]
    assert np.all((cv.subject_predictions > 0) & (cv.subject_predictions < 1))
    assert len(cv.fold_states) == 2
    report = subject_report(cv, {f"synthetic_{i}": i % 2 for i in range(4)}, n_resamples=50, seed=0)
    assert report["n_subjects"] == 4
    assert "auc" in report["metrics"]  # type: ignore[operator]
    assert len(subject_folds(subjects, labels, 0, seed=0)) == 4  # LOSO


def test_depresjon_style_report_and_comparison_table() -> None:
    counts, labels, subjects = synthetic_subjects(4, 2, seed=5)
    data = WeekDataset(counts, subjects, labels, np.zeros(labels.size, dtype="datetime64[s]"))
    grouped = evaluate_depresjon(tiny_learner(), data, n_folds=2, n_resamples=20, seed=0)
    loso = evaluate_depresjon(tiny_learner(), data, n_folds=0, n_resamples=20, seed=0)
    assert "2 subject-grouped folds" in grouped["protocol"]["splits"]  # type: ignore[index]
    assert "leave-one-subject-out" in loso["protocol"]["splits"]  # type: ignore[index]
    assert len(loso["subjects"]) == 4  # type: ignore[arg-type]
    table = comparison_table(
        [
            ComparedModel.from_report("pat", grouped),
            ComparedModel.from_report("other", {"classification": loso}),
        ],
        references=(),
    )
    rows = [line for line in table.splitlines() if line.startswith("| ")]
    assert len(rows) == 4  # header, rule, two models
    assert rows[2].startswith("| pat | 2 subject-grouped folds")
    assert rows[3].startswith("| other | leave-one-subject-out")
    assert " [" in rows[3]
