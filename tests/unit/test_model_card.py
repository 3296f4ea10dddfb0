"""Model cards and their results tables, on SYNTHETIC report numbers (no model behind them):
what every card must say, the exact table format, the regressor's honest verdict, and the
round trip card -> table that ``clarity ml evaluate --check`` relies on, and the table that
sets the boosted classifier, PAT-S and the published reference points side by side."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from clarity.ml.card import (
    REFERENCE_POINTS,
    TABLE_BEGIN,
    TABLE_END,
    CardFacts,
    ComparedModel,
    card_table,
    comparison_table,
    json_safe,
    metrics_table,
    render_card,
)

PROTOCOL = {
    "splits": "leave-one-subject-out (one fold per subject)",
    "fitting": "every fitted step inside the fold",
    "unit_of_analysis": "subject",
    "confidence_intervals": {"resamples": 2000, "level": 0.95, "seed": 0},
}


def _m(value: float | None, low: float | None, high: float | None) -> dict[str, Any]:
    return {"value": value, "ci_low": low, "ci_high": high, "resamples": 2000}


# Synthetic numbers, shaped like a report section.
CLASSIFIER = {
    "n_subjects": 55,
    "n_positive": 23,
    "metrics": {
        "auc": _m(0.88, 0.779, 0.96),
        "accuracy": _m(0.781818, 0.672727, 0.890909),
        "f1": _m(0.75, 0.6, 0.871),
        "mcc": _m(0.559, 0.335, 0.778),
        "brier": _m(0.15, 0.11, 0.19),
        "sensitivity": _m(0.739, 0.55, 0.91),
        "specificity": _m(0.8125, 0.68, 0.94),
    },
    "reliability_curve": [
        {"low": 0.0, "high": 0.2, "count": 20, "mean_predicted": 0.12, "observed_rate": 0.1},
        {"low": 0.8, "high": 1.0, "count": 5, "mean_predicted": 0.86, "observed_rate": 1.0},
    ],
    "expected_calibration_error": 0.0712,
}


def _regressor(low: float, high: float) -> dict[str, Any]:
    return {
        "n_subjects": 23,
        "config": {"interval_level": 0.9},
        "metrics": {
            "mae": _m(4.56, 3.5, 5.7),
            "baseline_mae": _m(4.15, 3.6, 4.8),
            "mae_minus_baseline": _m(0.41, low, high),
            "rmse": _m(5.4, 4.3, 6.5),
            "pearson_r": _m(None, None, None),
            "interval_coverage": _m(0.91, 0.78, 1.0),
        },
    }


def _facts(task: str = "classification", **changes: Any) -> CardFacts:
    values: dict[str, Any] = {
        "name": "depression-classifier",
        "label": "Gradient-boosted trees on actigraphy features, trained on Depresjon",
        "kind": "boosted-classifier",
        "task": task,
        "output": "probability",
        "created_by": "cli:tester",
        "created_at": datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC),
        "code_version": "clarity 0.1.0, code sha256 0123456789abcdef",
        "data": {
            "fingerprint_sha256": "ab" * 32,
            "feature_code_sha256": "cd" * 32,
            "granularity": "week",
            "n_rows": 534,
            "n_subjects": 55,
            "excluded_subjects": {},
            "window_valid_days": 7,
        },
        "protocol": PROTOCOL,
        "section": CLASSIFIER if task == "classification" else _regressor(-0.2, 1.1),
        "training": {"seed": 0, "threshold": float("nan")},
        "features": [("k_ar", "chance per minute that activity turns into rest")],
    }
    values.update(changes)
    return CardFacts(**values)


def test_classifier_table_states_every_metric_with_its_interval() -> None:
    table = metrics_table("classification", CLASSIFIER, PROTOCOL)
    assert table.startswith("Subjects: 55 (23 depressed, 32 controls)")
    assert "2,000 resamples, seed 0" in table
    for row in (
        "| AUC (ROC) | 0.880 | [0.779, 0.960] |",
        "| Accuracy | 0.782 | [0.673, 0.891] |",
        "| F1 (depressed class) | 0.750 | [0.600, 0.871] |",
        "| MCC | 0.559 | [0.335, 0.778] |",
        "| Brier score (lower is better) | 0.150 | [0.110, 0.190] |",
        "| Expected calibration error (reliability bins) | 0.071 | not bootstrapped |",
        "| 0.8-1.0 | 5 | 0.860 | 1.000 |",
    ):
        assert row in table.splitlines()
    assert table.endswith("|\n")


@pytest.mark.parametrize(
    ("low", "high", "verdict"),
    [
        (-0.3, 1.2, "**no better than predicting the training subjects' mean MADRS**"),
        (-1.5, -0.2, "**better**"),
        (0.1, 1.9, "**worse**"),
    ],
)
def test_regressor_table_says_how_it_compares_with_the_mean(
    low: float, high: float, verdict: str
) -> None:
    table = metrics_table("regression", _regressor(low, high), PROTOCOL)
    assert "| MAE, MADRS points | 4.56 | [3.50, 5.70] |" in table
    assert "| MAE of the mean baseline | 4.15 | [3.60, 4.80] |" in table
    assert "| Pearson r | n/a | n/a |" in table
    assert "| Coverage of the 90% prediction interval | 0.91 | [0.78, 1.00] |" in table
    assert table.rstrip("\n").splitlines()[-1].startswith("Against the mean baseline: " + verdict)


def test_card_states_use_limits_data_and_is_not_a_diagnostic_device() -> None:
    card = render_card(_facts())
    assert card.startswith("# Model card: Gradient-boosted trees on actigraphy features")
    for text in (
        "**Not a diagnostic device.**",
        "## Intended use",
        "## Not for use",
        "## Training data",
        "doi:10.1145/3204949.3208125",
        "23 patients",
        "32 controls",
        "ab" * 32,
        "## Evaluation protocol",
        "leave-one-subject-out",
        "## Reference points",
        "| 0.73 | 0.44 |",
        "| 0.788 | 0.748 | 0.568 |",
        "## Limits",
        "chance per minute that activity turns into rest (`k_ar`)",
        "clarity 0.1.0, code sha256 0123456789abcdef",
        "2026-01-02T03:04:05+00:00 by cli:tester",
    ):
        assert text in card, text
    assert "NaN" not in card


def test_card_table_is_exactly_the_metrics_table() -> None:
    for task in ("classification", "regression"):
        facts = _facts(task)
        card = render_card(facts)
        assert card.count(TABLE_BEGIN) == card.count(TABLE_END) == 1
        assert card_table(card) == metrics_table(facts.task, facts.section, PROTOCOL)
    regression = render_card(_facts("regression"))
    assert "mean baseline above" in regression
    assert "| 0.788 |" not in regression  # classifier reference points only on classifiers


def test_a_card_without_markers_states_no_table() -> None:
    assert card_table("# A card\n\nno table here\n") is None
    assert card_table(f"{TABLE_END} before {TABLE_BEGIN}") is None


def test_json_safe_replaces_non_finite_numbers() -> None:
    value = {"a": float("nan"), "b": [1.0, float("inf"), {"c": 2}], "d": (3, "x")}
    assert json_safe(value) == {"a": None, "b": [1.0, None, {"c": 2}], "d": [3, "x"]}


# Hand-made reports in the two shapes `clarity ml evaluate` writes: the boosted report (its
# classifier in a `classifier` section) and the PAT report (the section is the report).
PAT_PROTOCOL = {
    "splits": "5 subject-grouped folds, stratified by class (seed 0)",
    "confidence_intervals": {"resamples": 2000, "level": 0.95, "seed": 0},
}
BOOSTED_REPORT = {"protocol": PROTOCOL, "classifier": CLASSIFIER, "regressor": _regressor(0, 1)}
PAT_REPORT = {
    "protocol": PAT_PROTOCOL,
    "n_subjects": 55,
    "n_positive": 23,
    "metrics": {
        "auc": _m(0.7, 0.55, 0.84),
        "accuracy": _m(0.6, 0.47, 0.73),
        "f1": _m(0.5, 0.3, 0.67),
        "mcc": _m(0.2, -0.05, 0.45),
        "brier": _m(0.25, None, None),  # no interval: the value alone
        "sensitivity": _m(0.5, 0.3, 0.7),
        "specificity": _m(0.7, 0.5, 0.85),
    },
}


def test_comparison_table_sets_models_and_published_points_side_by_side() -> None:
    table = comparison_table(
        [
            ComparedModel.from_report("Boosted (`depression-classifier`)", BOOSTED_REPORT),
            ComparedModel.from_report("PAT architecture, trained on Depresjon", PAT_REPORT),
        ]
    )
    assert table == (
        "| model | protocol (splits) | subjects | AUC | accuracy | F1 | MCC "
        "| Brier (lower is better) |\n"
        "| --- | --- | --- | ---: | ---: | ---: | ---: | ---: |\n"
        "| Boosted (`depression-classifier`) | leave-one-subject-out (one fold per subject) "
        "| 55 (23 depressed) | 0.880 [0.779, 0.960] | 0.782 [0.673, 0.891] "
        "| 0.750 [0.600, 0.871] | 0.559 [0.335, 0.778] | 0.150 [0.110, 0.190] |\n"
        "| PAT architecture, trained on Depresjon "
        "| 5 subject-grouped folds, stratified by class (seed 0) | 55 (23 depressed) "
        "| 0.700 [0.550, 0.840] | 0.600 [0.470, 0.730] | 0.500 [0.300, 0.670] "
        "| 0.200 [-0.050, 0.450] | 0.250 |\n"
        "| Published: Garcia-Ceja et al. 2018 (the data set's paper) "
        "| its baseline; not split by person | n/a | n/a | n/a | 0.73 | 0.44 | n/a |\n"
        "| Published: 1D-CNN + BiLSTM (ActiPheno, github.com/MankushG/ActiPheno) "
        "| leave-one-patient-out, mean of 11 seeds | n/a | n/a | 0.788 | 0.748 | 0.568 | n/a |\n"
        "\n"
        "- Intervals: 95% percentile bootstrap intervals over subjects (2,000 resamples, "
        "seed 0).\n"
        "- The models were evaluated with different splits (protocol column): a model "
        "evaluated on fewer, larger folds was trained on fewer subjects per fold, so the rows "
        "are close to, not strictly, comparable.\n"
        "- Published rows: as their authors report them, without intervals; other protocols, "
        "preprocessing and units of analysis: indicative, not a ranking.\n"
    )


def test_comparison_notes_follow_the_rows() -> None:
    other_intervals = {**PROTOCOL, "confidence_intervals": {"resamples": 200, "seed": 1}}
    table = comparison_table(
        [
            ComparedModel("a", CLASSIFIER, PROTOCOL),
            ComparedModel("b", CLASSIFIER, other_intervals),
        ],
        references=(),
    )
    assert "- a: 95% percentile bootstrap intervals over subjects (2,000 resamples, seed 0).\n" in (
        table
    )
    assert "- b: 95% percentile bootstrap intervals over subjects (200 resamples, seed 1).\n" in (
        table
    )
    assert "different splits" not in table  # both leave-one-subject-out
    assert "published" not in table.lower()
    assert len([line for line in table.splitlines() if line.startswith("| ")]) == 4


def test_compared_model_needs_a_classification_section() -> None:
    assert ComparedModel.from_report("x", {"classification": PAT_REPORT}).section is PAT_REPORT
    with pytest.raises(ValueError, match="no subject-level classification"):
        ComparedModel.from_report("boosted regressor only", {"regressor": _regressor(0, 1)})


def test_card_reference_points_are_the_comparison_reference_rows() -> None:
    card = render_card(_facts())
    for reference in REFERENCE_POINTS:
        row = (
            f"| {reference.source} | {reference.evaluation} | {reference.accuracy} "
            f"| {reference.f1} | {reference.mcc} |"
        )
        assert row in card.splitlines()
    assert (
        "| Garcia-Ceja et al. 2018 (the data set's paper) | its baseline; not split by person "
        "| n/a | 0.73 | 0.44 |" in card.splitlines()
    )
