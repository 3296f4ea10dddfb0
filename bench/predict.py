"""Inference latency of one patient-week: the boosted depression classifier and PAT-M.

Boosted, the served path: one real week of Depresjon minute counts (the latest span of 7
valid days of ``condition_1``) goes through :func:`clarity.predictions.compute.prepare`
(the endpoint's feature path, the very code that builds the training rows) and
:func:`clarity.predictions.compute.score` (calibrated probability, bootstrap-ensemble
interval, TreeSHAP top 5), as ``POST /patients/{id}/predictions/depression`` does after
reading the samples. Timed apart: features, the model step and its parts, end to end, and
``BoostedModel.predict`` alone. Baseline, measured in the same run: xgboost's own
``Booster.inplace_predict`` on the same selected inputs (no calibration, no interval, no
explanation): what our wrapper adds on top of the bare library.

The model is ``--model-dir`` (a folder ``BoostedModel.save`` wrote, e.g. an unpacked
registry artifact) or, by default, fitted here on every Depresjon week row with a REDUCED
grid: one setting, the served grid's largest (depth 3, 100 rounds, every screened
feature), with the served 20-member interval ensemble, so its latency bounds the served
model's from above. Its numbers are not an evaluation; ``clarity ml train`` makes those.

PAT-M (and any other ``--pat-sizes``): as ``bench/predict_pat.py``, a freshly initialised
network exported to ONNX and run with onnxruntime on one week (10,080 minutes, batch 1):
timing only, not a prediction; PyTorch eager on the same network is its baseline. With
``--pat-bundle`` a real exported bundle is also timed from raw counts.

Goals (median, this CPU, one thread): boosted end to end under 20 ms, PAT-M under 100 ms.

    .venv/bin/python bench/predict.py [--repeats 200] [--warmup 10] [--model-dir DIR]
        [--pat-sizes M] [--pat-bundle DIR] [--skip-pat]

These machines are noisy (shared cores): compare within a run, not across runs.
"""

from __future__ import annotations

import argparse
import datetime as dt
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from clarity.actigraphy.readers import depresjon_dir, read_depresjon_csv
from clarity.actigraphy.series import EpochSeries
from clarity.ml.boosted import BoostedConfig, BoostedLearner, BoostedModel
from clarity.ml.dataset import load_depresjon
from clarity.ml.pat_onnx import PatOnnxModel
from clarity.predictions.compute import prepare, score
from predict_pat import p99, time_size, timings_ms

GOAL_BOOSTED_MS = 20.0
GOAL_PAT_MS = {"M": 100.0}
SUBJECT = "condition/condition_1.csv"
REDUCED = BoostedConfig(
    task="classification",
    inner_folds=3,
    n_features=(None,),
    max_depth=(3,),
    rounds=(100,),
    ensemble_size=20,
)
_EPOCH_DAY = dt.date(1970, 1, 1)


def one_week(series: EpochSeries) -> EpochSeries:
    """The recording's latest span of 7 valid days, cut at its local midnights."""
    window = prepare(series).window
    if window is None:
        raise SystemExit(f"{SUBJECT} has no span of 7 valid days")
    low, high = ((d - _EPOCH_DAY).days for d in (window.start, window.end))
    day = series.local_day_numbers()
    inside = (day >= low) & (day <= high)
    return EpochSeries(
        series.timestamps[inside], series.counts[inside], series.epoch_seconds, series.timezone
    )


def fitted_model(model_dir: Path | None) -> tuple[BoostedModel, str]:
    if model_dir is not None:
        return BoostedModel.load(model_dir), f"loaded from {model_dir}"
    start = time.perf_counter()
    rows = load_depresjon()
    learner = BoostedLearner(REDUCED, rows.feature_names, dict(rows.feature_labels))
    model = learner.fit(rows.features, rows.labels, rows.subjects)
    seconds = time.perf_counter() - start
    return model, (
        f"fitted here in {seconds:.1f} s on {rows.subjects.size} Depresjon week rows of "
        f"{rows.n_subjects} people, REDUCED grid (depth 3, 100 rounds, 20-member ensemble)"
    )


def predict_minutes(model: BoostedModel, series: EpochSeries) -> object:
    """The endpoint's compute step: minutes -> latest window -> scored prediction."""
    window = prepare(series).window
    assert window is not None, "the series holds a span of 7 valid days"
    return score(model, window)


def row(label: str, values: list[float], goal: float | None = None) -> bool:
    """Print one latency row; True when a goal is given and missed."""
    median = statistics.median(values)
    verdict = ""
    if goal is not None:
        verdict = f"  goal < {goal:.0f} ms p50: " + ("met" if median < goal else "MISSED")
    print(f"  {label:<60}{median:>9.2f}{p99(values):>9.2f}{verdict}")
    return goal is not None and median >= goal


def boosted(args: argparse.Namespace) -> bool:
    model, origin = fitted_model(args.model_dir)
    recording = read_depresjon_csv(depresjon_dir() / SUBJECT)
    week = one_week(recording)
    window = prepare(week).window
    assert window is not None, "the week is the span that qualified"
    x = window.features.reshape(1, -1)
    selected = np.ascontiguousarray(x[:, model.selected])
    rounds = model.setting.rounds
    print(f"boosted depression classifier, {origin}")
    print(
        f"  setting {model.setting.as_dict()}, {len(model.ensemble)} ensemble members; input "
        f"{len(week):,} minutes: {window.start} to {window.end}, "
        f"{(window.end - window.start).days + 1} local days, {window.valid_days} of them valid"
    )
    print(f"  {'one patient-week, ' + str(args.repeats) + ' calls':<60}{'p50 ms':>9}{'p99 ms':>9}")
    n, w = args.repeats, args.warmup
    missed = row(
        "end to end: minutes -> features -> score",
        timings_ms(lambda: predict_minutes(model, week), n, w),
        GOAL_BOOSTED_MS,
    )
    row("  features (compute.prepare)", timings_ms(lambda: prepare(week), n, w))
    row("  model (compute.score)", timings_ms(lambda: score(model, window), n, w))
    row("    calibrated probability (predict)", timings_ms(lambda: model.predict(x), n, w))
    row("    interval (20-member ensemble)", timings_ms(lambda: model.interval(x), n, w))
    row("    explanation (TreeSHAP, top 5)", timings_ms(lambda: model.explain(x), n, w))
    row(
        "baseline: xgboost inplace_predict, bare",
        timings_ms(
            lambda: model.booster.inplace_predict(selected, iteration_range=(0, rounds)), n, w
        ),
    )
    row(
        f"whole recording ({len(recording):,} min, as the 28-day lookback) -> score",
        timings_ms(lambda: predict_minutes(model, recording), n, w),
    )
    return missed


def pat(args: argparse.Namespace) -> bool:
    torch.set_num_threads(1)
    torch.manual_seed(0)
    week = np.random.default_rng(0).normal(0.0, 1.0, (1, 10080)).astype(np.float32)
    print(
        "PAT architecture, freshly initialised weights exported to ONNX: timing only, no prediction"
    )
    print(f"  {'one patient-week, ' + str(args.repeats) + ' calls':<60}{'p50 ms':>9}{'p99 ms':>9}")
    missed = False
    with tempfile.TemporaryDirectory() as tmp:
        for name in args.pat_sizes.split(","):
            t = time_size(
                name, week, Path(tmp), repeats=args.repeats, warmup=args.warmup, threads=1
            )
            label = f"PAT-{t.name} ({t.params:,} parameters)"
            missed |= row(f"{label}: onnxruntime", t.ort_ms, GOAL_PAT_MS.get(t.name))
            row(f"baseline: {label}: PyTorch eager", t.torch_ms)
    if args.pat_bundle:
        served = PatOnnxModel.load(args.pat_bundle, threads=1)
        counts = np.random.default_rng(1).gamma(0.5, 300.0, (1, 10080))
        row(
            f"bundle ({served.label}): raw counts -> probability",
            timings_ms(lambda: served.predict_counts(counts), args.repeats, args.warmup),
        )
    return missed


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeats", type=int, default=200)
    parser.add_argument("--warmup", type=int, default=10)
    parser.add_argument("--model-dir", type=Path, help="a saved BoostedModel to time")
    parser.add_argument("--pat-sizes", default="M", help="PAT sizes to time, e.g. S,M,L")
    parser.add_argument("--pat-bundle", type=Path, help="an exported PAT bundle to time too")
    parser.add_argument("--skip-pat", action="store_true")
    args = parser.parse_args()
    print("one thread throughout (xgboost nthread=1, onnxruntime and torch intra-op 1)")
    missed = boosted(args)
    if not args.skip_pat:
        print()
        missed |= pat(args)
    return 1 if missed else 0


if __name__ == "__main__":
    sys.exit(main())
