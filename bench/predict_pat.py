"""Inference latency of one patient-week through the PAT-architecture networks.

For each size (S, M, L) the classifier is exported to ONNX exactly as a trained one would be
(:func:`clarity.ml.pat.export.export_onnx`) and one week (10,080 minutes, batch 1) is scored
repeatedly with onnxruntime, the serving path; PyTorch eager on the same network and the
same thread count is the baseline measured in the same run. Prints median and p99 latency
in milliseconds and the torch/onnxruntime ratio. Goal: PAT-M under 100 ms median with
onnxruntime on this CPU.

The networks carry freshly initialised weights: latency does not depend on the values, and
nothing here is a prediction. With ``--bundle`` a real exported bundle is also timed end
to end (raw counts -> scaler -> onnxruntime) through :class:`clarity.ml.pat_onnx.PatOnnxModel`.

    python bench/predict_pat.py [--sizes S,M,L] [--repeats 100] [--threads 1] [--bundle DIR]

These machines are noisy (shared cores): compare the ratio, not the absolute numbers.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import onnxruntime as ort  # type: ignore[import-untyped]
import torch

from clarity.ml.pat.config import size
from clarity.ml.pat.export import export_onnx
from clarity.ml.pat.model import PatClassifier, parameter_count
from clarity.ml.pat_onnx import INPUT_NAME, OUTPUT_NAME, PatOnnxModel

GOAL_MS = {"M": 100.0}


def timings_ms(call: Callable[[], object], repeats: int, warmup: int) -> list[float]:
    for _ in range(warmup):
        call()
    out = []
    for _ in range(repeats):
        start = time.perf_counter()
        call()
        out.append((time.perf_counter() - start) * 1000.0)
    return out


def p99(values: list[float]) -> float:
    return float(np.percentile(values, 99))


@dataclass(frozen=True)
class PatTiming:
    """One size's latencies (ms) for one week: onnxruntime (served) and torch eager."""

    name: str
    params: int
    ort_ms: list[float]
    torch_ms: list[float]


def time_size(
    name: str, week: np.ndarray, folder: Path, *, repeats: int, warmup: int, threads: int
) -> PatTiming:
    """Export a freshly initialised classifier of this size to ONNX and time both engines."""
    config = size(name)
    model = PatClassifier(config).eval()
    path = folder / f"pat_{config.name}.onnx"
    export_onnx(model, path)
    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    session = ort.InferenceSession(
        str(path), sess_options=options, providers=["CPUExecutionProvider"]
    )
    ort_ms = timings_ms(lambda: session.run([OUTPUT_NAME], {INPUT_NAME: week}), repeats, warmup)
    with torch.inference_mode():
        torch_ms = timings_ms(lambda: model(torch.from_numpy(week)), repeats, warmup)
    return PatTiming(config.name, parameter_count(model), ort_ms, torch_ms)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", default="S,M,L")
    parser.add_argument("--repeats", type=int, default=100)
    parser.add_argument("--warmup", type=int, default=5)
    parser.add_argument("--threads", type=int, default=1, help="intra-op threads, both engines")
    parser.add_argument("--bundle", type=Path, help="an exported bundle to time end to end")
    args = parser.parse_args()

    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    week = np.random.default_rng(0).normal(0.0, 1.0, (1, 10080)).astype(np.float32)
    print(f"one patient-week (batch 1), {args.repeats} calls, {args.threads} thread(s)")
    header = (
        f"{'size':<5}{'params':>10}{'ort p50 ms':>12}{'ort p99 ms':>12}"
        f"{'torch p50 ms':>14}{'torch p99 ms':>14}{'torch/ort':>11}  goal"
    )
    print(header)
    failed = False
    with tempfile.TemporaryDirectory() as tmp:
        for name in args.sizes.split(","):
            t = time_size(
                name,
                week,
                Path(tmp),
                repeats=args.repeats,
                warmup=args.warmup,
                threads=args.threads,
            )
            ort_median, torch_median = statistics.median(t.ort_ms), statistics.median(t.torch_ms)
            goal = GOAL_MS.get(t.name)
            verdict = "-" if goal is None else ("met" if ort_median < goal else "MISSED")
            failed |= verdict == "MISSED"
            print(
                f"PAT-{t.name:<1}{t.params:>11,}{ort_median:>12.1f}"
                f"{p99(t.ort_ms):>12.1f}{torch_median:>14.1f}{p99(t.torch_ms):>14.1f}"
                f"{torch_median / ort_median:>11.2f}  "
                + (f"< {goal:.0f} ms p50: {verdict}" if goal else "")
            )
    if args.bundle:
        served = PatOnnxModel.load(args.bundle, threads=args.threads)
        counts = np.random.default_rng(1).gamma(0.5, 300.0, (1, 10080))
        end_to_end = timings_ms(lambda: served.predict_counts(counts), args.repeats, args.warmup)
        print(
            f"bundle {args.bundle} ({served.label}, PAT-{served.manifest['size']} layout): "
            f"raw counts -> probability p50 {statistics.median(end_to_end):.1f} ms, "
            f"p99 {p99(end_to_end):.1f} ms"
        )
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
