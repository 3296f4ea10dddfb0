"""Export a fine-tuned PAT classifier to ONNX, as a bundle that serves without torch.

A bundle is a folder: ``model.onnx`` (input ``minutes``: float32 batch x 10,080 standardised
minutes; output ``probability``: float32 batch), ``scaler.npz`` (the per-minute mean and
scale fitted on the training windows) and ``manifest.json`` (label, size, SHA-256 of both
files, exporter, the torch-vs-onnxruntime check, training provenance and, when given, the
subject-level evaluation). :mod:`clarity.ml.pat_onnx` loads it with onnxruntime only.

Exporter: ``torch.onnx.export(..., dynamo=True)`` (the ``torch.export`` based exporter, with
onnxscript), dynamic batch axis, weights stored inside the ``.onnx`` file.

    python -m clarity.ml.pat.export --size S --out models/pat-s-depresjon \
        [--evaluation pat-s-depresjon-eval/report.json]
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
import warnings
from dataclasses import asdict
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort  # type: ignore[import-untyped]
import torch

from clarity.ml.evaluation import JsonValue
from clarity.ml.pat.config import size
from clarity.ml.pat.digests import file_sha256
from clarity.ml.pat.evaluate import MODEL_LABEL, FittedPat, PatLearner
from clarity.ml.pat.finetune import FinetuneSettings
from clarity.ml.pat.model import PatClassifier
from clarity.ml.pat.pretrain import PretrainSettings
from clarity.ml.pat_onnx import (
    INPUT_NAME,
    MANIFEST_FILE,
    MODEL_FILE,
    OUTPUT_NAME,
    SCALER_FILE,
)

TOLERANCE = 1e-5


def export_onnx(classifier: PatClassifier, path: str | Path) -> int:
    """Write ``classifier`` (evaluation mode) to ``path``; returns the ONNX opset used."""
    classifier.eval()
    example = torch.zeros(2, classifier.config.input_minutes)
    batch = torch.export.Dim("batch", min=1)
    logging.getLogger("torch.onnx").setLevel(logging.ERROR)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(
            classifier,
            (example,),
            str(path),
            input_names=[INPUT_NAME],
            output_names=[OUTPUT_NAME],
            dynamic_shapes=({0: batch},),
            dynamo=True,
            external_data=False,
            verbose=False,
        )
    model = onnx.load(str(path))
    onnx.checker.check_model(model)
    return max(int(o.version) for o in model.opset_import if o.domain in ("", "ai.onnx"))


def compare_with_torch(classifier: PatClassifier, path: str | Path, inputs: np.ndarray) -> float:
    """Largest absolute difference between torch and onnxruntime probabilities."""
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    x = np.ascontiguousarray(inputs, dtype=np.float32)
    onnx_out = np.asarray(session.run([OUTPUT_NAME], {INPUT_NAME: x})[0], dtype=np.float64)
    classifier.eval()
    with torch.no_grad():
        torch_out = classifier(torch.from_numpy(x)).double().numpy()
    return float(np.max(np.abs(onnx_out - torch_out)))


def export_bundle(
    fitted: FittedPat,
    directory: str | Path,
    *,
    training: dict[str, JsonValue],
    evaluation: JsonValue = None,
    check_seed: int = 0,
) -> dict[str, JsonValue]:
    """Write model, scaler and manifest to ``directory``; refuses a bundle that disagrees
    with torch by more than ``TOLERANCE`` on random standardised inputs."""
    folder = Path(directory)
    folder.mkdir(parents=True, exist_ok=True)
    opset = export_onnx(fitted.classifier, folder / MODEL_FILE)
    check = np.random.default_rng(check_seed).normal(0.0, 1.0, (8, fitted.scaler.mean.size))
    difference = compare_with_torch(fitted.classifier, folder / MODEL_FILE, check)
    if not difference <= TOLERANCE:
        raise RuntimeError(f"ONNX output differs from torch by {difference:.2e} > {TOLERANCE}")
    fitted.scaler.save(folder / SCALER_FILE)
    config = fitted.classifier.config
    manifest: dict[str, JsonValue] = {
        "label": MODEL_LABEL,
        "architecture": (
            f"PAT-{config.name} layout (Ruan et al., arXiv:2411.15240): patch {config.patch_size}, "
            f"{config.num_layers} blocks, {config.num_heads} heads x {config.key_dim}"
        ),
        "size": config.name,
        "parameters": config.classifier_parameters(),
        "input": {
            "name": INPUT_NAME,
            "shape": ["batch", config.input_minutes],
            "meaning": (
                "one week of one-minute activity counts from a local midnight, standardised "
                "per minute with scaler.npz; missing minutes set to 0"
            ),
        },
        "output": {
            "name": OUTPUT_NAME,
            "meaning": (
                "probability that the week comes from Depresjon's condition group (a "
                "depressive episode) rather than its control group; research use, not a "
                "clinical risk score, not calibrated to any clinic's population"
            ),
        },
        "files": {
            MODEL_FILE: file_sha256(folder / MODEL_FILE),
            SCALER_FILE: file_sha256(folder / SCALER_FILE),
        },
        "exporter": f"torch.onnx.export(dynamo=True), torch {torch.__version__}, opset {opset}",
        "onnx_check": {"inputs": int(check.shape[0]), "max_abs_difference": difference},
        "training": training,
        "evaluation": evaluation,
    }
    (folder / MANIFEST_FILE).write_text(json.dumps(manifest, indent=2) + "\n")
    return manifest


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Train on all Depresjon weeks and export.")
    parser.add_argument("--size", default="S")
    parser.add_argument("--pretrain-epochs", type=int, default=PretrainSettings.epochs)
    parser.add_argument("--finetune-epochs", type=int, default=FinetuneSettings.epochs)
    parser.add_argument("--learning-rate", type=float, default=FinetuneSettings.learning_rate)
    parser.add_argument("--max-weeks", type=int, default=5)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--evaluation", type=Path, help="report.json of clarity.ml.pat.evaluate")
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args(argv)

    from clarity.ml.pat.depresjon import depresjon_weeks

    data = depresjon_weeks(max_weeks_per_subject=args.max_weeks)
    learner = PatLearner(
        size(args.size),
        PretrainSettings(epochs=args.pretrain_epochs),
        FinetuneSettings(epochs=args.finetune_epochs, learning_rate=args.learning_rate),
        seed=args.seed,
        threads=args.threads,
    )
    fitted = learner.fit(data.counts, data.labels, data.subjects)
    evaluation = json.loads(args.evaluation.read_text()) if args.evaluation else None
    training: dict[str, JsonValue] = {
        "data": "Depresjon (Garcia-Ceja et al., MMSys 2018), all 55 subjects",
        "windows": int(data.counts.shape[0]),
        "max_weeks_per_subject": args.max_weeks,
        "pretraining": dict(asdict(learner.pretraining)),
        "finetuning": dict(asdict(learner.finetuning)),
        "seed": args.seed,
        "threads": args.threads,
        **fitted.fitted_state(),
    }
    manifest = export_bundle(fitted, args.out, training=training, evaluation=evaluation)
    print(json.dumps({k: manifest[k] for k in ("label", "size", "files", "onnx_check")}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
