"""Subject-level evaluation of "PAT architecture, trained on Depresjon".

Leakage: everything fitted lives inside the fold. For each fold :class:`PatLearner` fits the
minute scaler on the training subjects' windows, pretrains the masked autoencoder on those
windows only (the held-out subjects' data are never seen, not even unlabelled), then
fine-tunes and predicts the held-out windows. A subject's probability is the mean over its
windows (:func:`clarity.ml.evaluation.cross_validate`). ``held_out_changes_fit`` from
:mod:`clarity.ml.evaluation` audits this.

Folds: subject-grouped, class-stratified K folds (default 5) rather than leave-one-subject-out,
because every fold pretrains from scratch: LOSO means 55 pretraining + fine-tuning runs,
hours on two CPU cores. ``--folds 0`` runs LOSO anyway, through the shared protocol
(:func:`clarity.ml.protocol.evaluate_classifier`, as the boosted model), so the two reports
compare on equal terms; ``--compare boosted=report-boosted.json`` prints them in one table
(:func:`clarity.ml.card.comparison_table`, as ``clarity ml evaluate`` does).

Deterministic: a seed, ``torch.use_deterministic_algorithms`` and a fixed thread count
(results can differ with another thread count, since sums are split differently).

    python -m clarity.ml.pat.evaluate --size S --folds 5 --out pat-s-depresjon/ \
        [--compare boosted=boosted-report.json]
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import torch
from numpy.typing import NDArray

from clarity.ml import evaluation
from clarity.ml.card import ComparedModel, comparison_table
from clarity.ml.evaluation import CrossValidation, JsonValue
from clarity.ml.pat.config import PatConfig, size
from clarity.ml.pat.depresjon import WeekDataset, depresjon_weeks
from clarity.ml.pat.finetune import (
    FinetuneSettings,
    finetune,
    predict_probability,
    training_weights,
)
from clarity.ml.pat.model import PatClassifier
from clarity.ml.pat.pretrain import MaskedAutoencoder, PretrainSettings, pretrain
from clarity.ml.pat.weeks import MinuteScaler

MODEL_LABEL = "PAT architecture, trained on Depresjon"


@contextmanager
def deterministic(seed: int, threads: int) -> Iterator[None]:
    """Seed torch, force deterministic kernels and a thread count; restore them afterwards."""
    previous_threads = torch.get_num_threads()
    previous_deterministic = torch.are_deterministic_algorithms_enabled()
    torch.set_num_threads(threads)
    torch.use_deterministic_algorithms(True)
    torch.manual_seed(seed)
    try:
        yield
    finally:
        torch.use_deterministic_algorithms(previous_deterministic)
        torch.set_num_threads(previous_threads)


def weights_digest(module: torch.nn.Module) -> str:
    """SHA-256 over every parameter's bytes, in name order."""
    digest = hashlib.sha256()
    for name, value in sorted(module.state_dict().items()):
        digest.update(name.encode())
        digest.update(value.detach().cpu().contiguous().numpy().tobytes())
    return digest.hexdigest()


@dataclass
class FittedPat:
    """A fold's fitted scaler and classifier; ``predict`` takes raw counts (NaN = missing)."""

    classifier: PatClassifier
    scaler: MinuteScaler
    pretrain_loss: list[float]
    finetune_loss: list[float]
    threads: int

    def predict(self, features: NDArray[np.float64]) -> NDArray[np.float64]:
        minutes, _ = self.scaler.transform(features)
        previous = torch.get_num_threads()
        torch.set_num_threads(self.threads)
        try:
            return predict_probability(self.classifier, minutes)
        finally:
            torch.set_num_threads(previous)

    def fitted_state(self) -> Mapping[str, JsonValue]:
        return {
            "scaler_sha256": self.scaler.digest(),
            "weights_sha256": weights_digest(self.classifier),
            "pretrain_loss": [round(v, 6) for v in self.pretrain_loss],
            "finetune_loss": [round(v, 6) for v in self.finetune_loss],
        }


@dataclass
class PatLearner:
    """Scaler, MAE pretraining and fine-tuning, all fitted on the rows it is given."""

    config: PatConfig
    pretraining: PretrainSettings = field(default_factory=PretrainSettings)
    finetuning: FinetuneSettings = field(default_factory=FinetuneSettings)
    seed: int = 0
    threads: int = 2

    def fit(
        self,
        features: NDArray[np.float64],
        targets: NDArray[np.float64],
        subjects: NDArray[np.str_],
    ) -> FittedPat:
        with deterministic(self.seed, self.threads):
            generator = torch.Generator().manual_seed(self.seed)
            scaler = MinuteScaler.fit(features)
            minutes, observed = scaler.transform(features)
            autoencoder = MaskedAutoencoder(self.config)
            pretrain_loss: list[float] = []
            if self.pretraining.epochs:
                pretrain_loss = pretrain(
                    autoencoder, minutes, observed, self.pretraining, generator
                )
            classifier = PatClassifier(self.config, autoencoder.encoder)
            weights = training_weights(targets, subjects)
            finetune_loss = finetune(
                classifier, minutes, targets, weights, self.finetuning, generator
            )
        return FittedPat(classifier, scaler, pretrain_loss, finetune_loss, self.threads)


def subject_folds(
    subjects: NDArray[np.str_], labels: NDArray[np.float64], n_folds: int, seed: int
) -> list[evaluation.Fold]:
    """LOSO when ``n_folds`` is 0, else class-stratified subject-grouped folds."""
    if n_folds == 0:
        return evaluation.leave_one_subject_out(subjects)
    return evaluation.stratified_subject_folds(subjects, labels, n_folds, seed)


def out_of_fold(
    learner: PatLearner,
    counts: NDArray[np.float64],
    labels: NDArray[np.float64],
    subjects: NDArray[np.str_],
    folds: list[evaluation.Fold],
    *,
    keep_models: bool = False,
) -> CrossValidation:
    """Per-window and per-subject out-of-fold probabilities (``subject_ids``,
    ``subject_predictions``), every fit confined to its fold's training subjects."""
    return evaluation.cross_validate(
        learner, counts, labels, subjects, folds, keep_models=keep_models
    )


def subject_report(
    cv: CrossValidation, subject_label: Mapping[str, int], *, n_resamples: int, seed: int
) -> dict[str, JsonValue]:
    """The shared subject-level summary (metrics with bootstrap CIs over subjects,
    reliability curve, per-subject scores) of the out-of-fold probabilities."""
    labels = [subject_label[s] for s in cv.subject_ids.tolist()]
    return evaluation.classification_summary(
        cv.subject_ids, labels, cv.subject_predictions, n_resamples=n_resamples, seed=seed
    )


def evaluate_depresjon(
    learner: PatLearner, data: WeekDataset, *, n_folds: int, n_resamples: int, seed: int
) -> dict[str, JsonValue]:
    """The subject-level report: LOSO through the shared protocol (:mod:`clarity.ml.protocol`,
    as the boosted model) when ``n_folds`` is 0, else grouped stratified K folds."""
    if n_folds == 0:
        from clarity.ml.protocol import evaluate_classifier, protocol_description

        report = evaluate_classifier(
            learner, data.counts, data.labels, data.subjects, n_resamples=n_resamples, seed=seed
        )
        return {"protocol": protocol_description(n_resamples, seed, 0.95), **report}
    folds = subject_folds(data.subjects, data.labels, n_folds, seed)
    cv = out_of_fold(learner, data.counts, data.labels, data.subjects, folds)
    report = subject_report(cv, data.subject_labels(), n_resamples=n_resamples, seed=seed)
    protocol: dict[str, JsonValue] = {
        "splits": f"{n_folds} subject-grouped folds, stratified by class (seed {seed})",
        "fitting": "minute scaler, MAE pretraining and fine-tuning inside each fold",
        "unit_of_analysis": "subject (score = mean probability over their week windows)",
        "confidence_intervals": {
            "method": "percentile bootstrap over subjects",
            "resamples": n_resamples,
            "level": 0.95,
            "seed": seed,
        },
    }
    return {"protocol": protocol, **report, "fold_states": [dict(s) for s in cv.fold_states]}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--size", default="S", help="PAT size: S, M or L (default S)")
    parser.add_argument("--folds", type=int, default=5, help="subject folds; 0 = LOSO")
    parser.add_argument("--pretrain-epochs", type=int, default=PretrainSettings.epochs)
    parser.add_argument("--finetune-epochs", type=int, default=FinetuneSettings.epochs)
    parser.add_argument("--learning-rate", type=float, default=FinetuneSettings.learning_rate)
    parser.add_argument("--style", choices=["full", "linear_probe"], default="full")
    parser.add_argument("--max-weeks", type=int, default=5, help="windows per subject (cap)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--bootstrap", type=int, default=2000)
    parser.add_argument(
        "--compare",
        action="append",
        default=[],
        metavar="NAME=REPORT.json",
        help="another model's subject-level report to tabulate beside this one",
    )
    parser.add_argument("--out", type=Path, help="folder for report.json")
    args = parser.parse_args(argv)

    started = time.perf_counter()
    data = depresjon_weeks(max_weeks_per_subject=args.max_weeks)
    learner = PatLearner(
        size(args.size),
        PretrainSettings(epochs=args.pretrain_epochs),
        FinetuneSettings(
            epochs=args.finetune_epochs, learning_rate=args.learning_rate, style=args.style
        ),
        seed=args.seed,
        threads=args.threads,
    )
    report = evaluate_depresjon(
        learner, data, n_folds=args.folds, n_resamples=args.bootstrap, seed=args.seed
    )
    name = f"{MODEL_LABEL} (PAT-{learner.config.name} layout)"
    report = {
        "model": name,
        "data": {"dataset": "depresjon", "windows": int(data.counts.shape[0])},
        "max_weeks_per_subject": args.max_weeks,
        "pretraining": dict(asdict(learner.pretraining)),
        "finetuning": dict(asdict(learner.finetuning)),
        "seed": args.seed,
        "threads": args.threads,
        **report,
    }
    text = json.dumps(report, indent=2)
    if args.out:
        args.out.mkdir(parents=True, exist_ok=True)
        (args.out / "report.json").write_text(text + "\n")
    compared = [ComparedModel.from_report(name, report)]
    for item in args.compare:
        other, _, path = item.partition("=")
        compared.append(ComparedModel.from_report(other, json.loads(Path(path).read_text())))
    print(comparison_table(compared), end="")
    print(f"({time.perf_counter() - started:.0f} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
