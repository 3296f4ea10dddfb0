"""Training "PAT architecture, trained on Depresjon" (PAT-S layout) for the registry.

Evaluation: subject-grouped folds stratified by class (``full``: 5 folds; ``reduced``: 3),
every fitted step (minute scaler, masked-autoencoder pretraining, fine-tuning) inside the
fold (:func:`clarity.ml.pat.evaluate.evaluate_depresjon`): leave-one-subject-out would mean
55 pretraining runs, hours on a 2-core CPU. Then the network is fitted on every subject and
exported to ONNX (:mod:`clarity.ml.pat.export`), which serving loads without torch.
Needs torch (the ``train`` extra).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass
from datetime import datetime
from pathlib import Path
from typing import Any, Final

from clarity.actigraphy.readers import depresjon_dir, depresjon_files
from clarity.ml.card import CardFacts, json_safe, metrics_table, render_card
from clarity.ml.dataset import data_fingerprint
from clarity.ml.evaluation import JsonValue
from clarity.ml.pat.config import size
from clarity.ml.pat.depresjon import depresjon_weeks
from clarity.ml.pat.evaluate import MODEL_LABEL, PatLearner, evaluate_depresjon
from clarity.ml.pat.export import export_bundle
from clarity.ml.pat.finetune import FinetuneSettings
from clarity.ml.pat.pretrain import PretrainSettings
from clarity.ml.registry import DEPRESSION_PAT_S, PAT_ONNX
from clarity.ml.training import Candidate, Grid


@dataclass(frozen=True)
class PatPlan:
    """Budget of one grid: folds, windows per subject, epochs."""

    folds: int
    max_weeks: int
    pretrain_epochs: int
    finetune_epochs: int
    threads: int = 2


PLANS: Final[dict[str, PatPlan]] = {
    "full": PatPlan(folds=5, max_weeks=5, pretrain_epochs=3, finetune_epochs=4),
    "reduced": PatPlan(folds=3, max_weeks=2, pretrain_epochs=1, finetune_epochs=1),
}


def _learner(plan: PatPlan, seed: int) -> PatLearner:
    return PatLearner(
        size("S"),
        PretrainSettings(epochs=plan.pretrain_epochs),
        FinetuneSettings(epochs=plan.finetune_epochs),
        seed=seed,
        threads=plan.threads,
    )


def _fingerprint() -> str:
    root = depresjon_dir()
    return data_fingerprint(root, [root / "scores.csv", *depresjon_files(root)])


def evaluate_pat(grid: Grid, seed: int, bootstrap: int) -> dict[str, JsonValue]:
    """The subject-level report of the PAT-S network (deterministic for grid, seed, data)."""
    plan = PLANS[grid]
    data = depresjon_weeks(max_weeks_per_subject=plan.max_weeks)
    learner = _learner(plan, seed)
    report = evaluate_depresjon(learner, data, n_folds=plan.folds, n_resamples=bootstrap, seed=seed)
    report.pop("fold_states", None)
    return {
        **report,
        "grid": grid,
        "data": {
            "dataset": "depresjon",
            "fingerprint_sha256": _fingerprint(),
            "granularity": "week windows of one-minute counts from local midnights",
            "n_rows": int(data.counts.shape[0]),
            "n_subjects": int(data.subject_ids.size),
            "excluded_subjects": {},
            "max_weeks_per_subject": plan.max_weeks,
        },
        "plan": dict(asdict(plan)),
    }


def pat_table(report: Mapping[str, Any]) -> str:
    return metrics_table("classification", report, report["protocol"])


def train_pat(
    report: Mapping[str, Any],
    *,
    grid: Grid,
    seed: int,
    out_dir: Path,
    created_by: str,
    created_at: datetime,
    code_version: str,
) -> Candidate:
    """Fit on every subject, export the ONNX bundle to ``out_dir/<name>/``, write the card."""
    plan = PLANS[grid]
    data = depresjon_weeks(max_weeks_per_subject=plan.max_weeks)
    learner = _learner(plan, seed)
    fitted = learner.fit(data.counts, data.labels, data.subjects)
    training: dict[str, JsonValue] = {
        "data": "Depresjon (Garcia-Ceja et al., MMSys 2018), all 55 subjects",
        "windows": int(data.counts.shape[0]),
        "max_weeks_per_subject": plan.max_weeks,
        "pretraining": dict(asdict(learner.pretraining)),
        "finetuning": dict(asdict(learner.finetuning)),
        "seed": seed,
        "threads": plan.threads,
        **fitted.fitted_state(),
    }
    directory = out_dir / DEPRESSION_PAT_S
    export_bundle(fitted, directory, training=training)
    params: dict[str, Any] = json_safe({"grid": grid, "seed": seed, "size": "S", **training})
    data_section = report["data"]
    facts = CardFacts(
        name=DEPRESSION_PAT_S,
        label=MODEL_LABEL,
        kind=PAT_ONNX,
        task="classification",
        output="probability per week window that it comes from Depresjon's depressed group; "
        "a person's score is the mean over their windows",
        created_by=created_by,
        created_at=created_at,
        code_version=code_version,
        data=data_section,
        protocol=report["protocol"],
        section=report,
        training=params,
        evaluation_words=[
            f"Not leave-one-subject-out: {plan.folds} subject-grouped folds (every fold "
            "pretrains from scratch), so its numbers are not strictly comparable with the "
            "boosted models' LOSO numbers.",
            "The network follows the published PAT-S layout (Ruan et al., arXiv:2411.15240) "
            "but was pretrained only on Depresjon's own weeks, never on NHANES: it is not the "
            "published PAT model and is not presented as such.",
        ],
        extra_limits=[
            f"Training budget is small ({plan.pretrain_epochs} pretraining and "
            f"{plan.finetune_epochs} fine-tuning epochs on a CPU); a larger budget may "
            "change the results.",
            "The probability is not calibrated after training.",
        ],
    )
    return Candidate(
        name=DEPRESSION_PAT_S,
        kind=PAT_ONNX,
        label=MODEL_LABEL,
        directory=directory,
        params=params,
        metrics=json_safe(dict(report)),
        data_fingerprint=str(data_section["fingerprint_sha256"]),
        card_markdown=render_card(facts),
        code_version=code_version,
    )
