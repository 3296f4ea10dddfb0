"""Training and evaluating the boosted Depresjon models for the registry (no database here).

``evaluate_models`` runs the subject-level protocol (:func:`clarity.ml.boosted.evaluate_boosted`)
for a grid and seed; ``train_models`` fits the served models on every subject, saves them and
writes their cards from that report. ``clarity ml train`` and ``clarity ml evaluate`` both go
through ``evaluate_models`` and :func:`result_tables`, so the table a card states and the
table a later evaluation prints are produced by the same code from the same kind of report.

Grids: ``full`` is the search evaluated for the model cards (:func:`default_configs`);
``reduced`` (one point per axis but the number of rounds, 3 inner folds) exists so that the
whole path can be tested in about a minute. Its cards say which grid they used.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from dataclasses import dataclass, replace
from datetime import datetime
from pathlib import Path
from typing import Any, Final, Literal

import numpy as np

from clarity.ml.boosted import BoostedConfig, BoostedLearner, BoostedModel, default_configs
from clarity.ml.card import CardFacts, Task, json_safe, metrics_table, render_card
from clarity.ml.dataset import FeatureRows
from clarity.ml.evaluation import JsonValue
from clarity.ml.registry import (
    BOOSTED_CLASSIFIER,
    BOOSTED_REGRESSOR,
    DEPRESSION_CLASSIFIER,
    MADRS_REGRESSOR,
)

Grid = Literal["full", "reduced"]
GRIDS: Final[tuple[Grid, ...]] = ("full", "reduced")
REDUCED_AXES: Final[dict[str, Any]] = {
    "inner_folds": 3,
    "n_features": (None,),
    "max_depth": (2,),
    "rounds": (25, 50),
}
CLASSIFIER_LABEL: Final = "Gradient-boosted trees on actigraphy features, trained on Depresjon"
REGRESSOR_LABEL: Final = (
    "Gradient-boosted trees on actigraphy features, trained on Depresjon (MADRS estimate)"
)


@dataclass(frozen=True)
class BoostedSpec:
    """How a registry name maps onto the report: its section, task, kind and label."""

    name: str
    section: str
    task: Task
    kind: str
    label: str
    output: str


SPECS: Final = (
    BoostedSpec(
        DEPRESSION_CLASSIFIER,
        "classifier",
        "classification",
        BOOSTED_CLASSIFIER,
        CLASSIFIER_LABEL,
        "probability that a person's most recent 7 valid days look like Depresjon's "
        "depressed group rather than its controls, with a bootstrap-ensemble interval",
    ),
    BoostedSpec(
        MADRS_REGRESSOR,
        "regressor",
        "regression",
        BOOSTED_REGRESSOR,
        REGRESSOR_LABEL,
        "estimated MADRS (mean of start and end ratings) with a 90% cross-conformal interval",
    ),
)


def served_configs(grid: Grid, seed: int) -> tuple[BoostedConfig, BoostedConfig]:
    """Classifier and regressor configurations for ``grid`` (the served classifier carries
    its bootstrap ensemble)."""
    if grid not in GRIDS:
        raise ValueError(f"grid must be one of {', '.join(GRIDS)}")
    classifier, regressor = default_configs(seed)
    if grid == "reduced":
        classifier = replace(classifier, **REDUCED_AXES)
        regressor = replace(regressor, **REDUCED_AXES)
    return classifier, regressor


def evaluate_models(
    rows: FeatureRows, *, grid: Grid, seed: int, bootstrap: int, workers: int = 1
) -> dict[str, JsonValue]:
    """The subject-level report of both models (deterministic for a grid, seed and data)."""
    from clarity.ml.boosted import evaluate_boosted

    classifier, regressor = served_configs(grid, seed)
    report = evaluate_boosted(
        rows,
        seed=seed,
        n_resamples=bootstrap,
        classifier=replace(classifier, ensemble_size=0),  # scores do not depend on it
        regressor=regressor,
        workers=workers,
    )
    return {**report, "grid": grid}


def result_tables(report: Mapping[str, Any]) -> dict[str, str]:
    """Each model's results table (:func:`clarity.ml.card.metrics_table`), by registry name."""
    return {
        spec.name: metrics_table(spec.task, report[spec.section], report["protocol"])
        for spec in SPECS
        if spec.section in report
    }


@dataclass(frozen=True)
class Candidate:
    """A trained model ready to register: artifact folder, metadata and card."""

    name: str
    kind: str
    label: str
    directory: Path
    params: dict[str, Any]
    metrics: dict[str, Any]
    data_fingerprint: str
    card_markdown: str
    code_version: str


def fit_models(rows: FeatureRows, grid: Grid, seed: int) -> dict[str, BoostedModel]:
    """The served classifier (every subject) and MADRS regressor (rated patients)."""
    classifier, regressor = served_configs(grid, seed)
    names, labels = rows.feature_names, dict(rows.feature_labels)
    patients = rows.subset(np.isfinite(rows.madrs))
    return {
        DEPRESSION_CLASSIFIER: BoostedLearner(classifier, names, labels).fit(
            rows.features, rows.labels, rows.subjects
        ),
        MADRS_REGRESSOR: BoostedLearner(regressor, names, labels).fit(
            patients.features, patients.madrs, patients.subjects
        ),
    }


def _evaluation_words(spec: BoostedSpec, report: Mapping[str, Any]) -> list[str]:
    section = report[spec.section]
    settings = section.get("fold_settings") or []
    words = [
        f"Search grid `{report.get('grid')}`: tree depth, rounds and the number of features "
        "chosen by an inner subject-grouped cross-validation inside every fold; the most "
        "frequent choice over folds was "
        + (json_text(settings[0]["value"]) if settings else "n/a")
        + ".",
        "The numbers measure the whole pipeline refitted without the held-out person; the "
        "served model is the same pipeline fitted on every subject.",
    ]
    if spec.task == "classification":
        cuts = section.get("fold_thresholds") or {}
        words.append(
            "Decision threshold: the MCC-optimal cut on inner out-of-fold scores, refitted "
            f"per fold (median {float(cuts.get('median', math.nan)):.3f} over folds)."
        )
    return words


def json_text(value: Any) -> str:
    return f"`{json.dumps(value, sort_keys=True)}`"


def train_models(
    rows: FeatureRows,
    report: Mapping[str, Any],
    *,
    grid: Grid,
    seed: int,
    out_dir: Path,
    created_by: str,
    created_at: datetime,
    code_version: str,
) -> list[Candidate]:
    """Fit, save under ``out_dir/<name>/`` and write the cards from ``report``."""
    models = fit_models(rows, grid, seed)
    candidates: list[Candidate] = []
    for spec in SPECS:
        model = models[spec.name]
        directory = out_dir / spec.name
        model.save(directory)
        fitted = model.fitted_state()
        params: dict[str, Any] = json_safe(
            {
                "grid": grid,
                "seed": seed,
                "bootstrap": report["protocol"]["confidence_intervals"]["resamples"],
                "config": model.config.as_dict(),
                "fitted": {k: v for k, v in fitted.items() if k != "search"},
            }
        )
        metrics: dict[str, Any] = json_safe(
            {
                "protocol": report["protocol"],
                "data": report["data"],
                "software": report.get("software"),
                "grid": grid,
                **report[spec.section],
            }
        )
        facts = CardFacts(
            name=spec.name,
            label=spec.label,
            kind=spec.kind,
            task=spec.task,
            output=spec.output,
            created_by=created_by,
            created_at=created_at,
            code_version=code_version,
            data=report["data"],
            protocol=report["protocol"],
            section=report[spec.section],
            training=params,
            features=[
                (n, model.feature_labels.get(n, n))
                for n in (model.feature_names[j] for j in model.selected)
            ],
            evaluation_words=_evaluation_words(spec, report),
            extra_limits=_extra_limits(spec),
        )
        candidates.append(
            Candidate(
                name=spec.name,
                kind=spec.kind,
                label=spec.label,
                directory=directory,
                params=params,
                metrics=metrics,
                data_fingerprint=str(report["data"]["fingerprint_sha256"]),
                card_markdown=render_card(facts),
                code_version=code_version,
            )
        )
    return candidates


def _extra_limits(spec: BoostedSpec) -> list[str]:
    if spec.task == "classification":
        return [
            "Probabilities are calibrated out of fold on these 55 people (42% patients); at "
            "another prevalence they will not mean the same.",
            "The interval served with each probability is the spread of a bootstrap ensemble: "
            "how much the estimate depends on who was in training, not a coverage guarantee.",
        ]
    return [
        "MADRS was rated only at the start and end of each recording; the target is their "
        "mean, so day-to-day severity is not known.",
        "Only the 23 patients were rated: the regressor has never seen a person without "
        "depression and says nothing about whether someone is depressed.",
    ]
