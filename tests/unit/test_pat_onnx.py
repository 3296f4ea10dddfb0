"""ONNX export of the PAT classifier and serving it with onnxruntime, without torch."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from clarity.ml.pat.config import PAT_M, PAT_S, PatConfig
from clarity.ml.pat.evaluate import MODEL_LABEL, FittedPat
from clarity.ml.pat.export import compare_with_torch, export_bundle, export_onnx
from clarity.ml.pat.model import PatClassifier
from clarity.ml.pat.weeks import MinuteScaler
from clarity.ml.pat_onnx import PatBundleError, PatOnnxModel


def trained_like(config: PatConfig, seed: int) -> PatClassifier:
    """A classifier with non-trivial weights (random, larger than the initial ones)."""
    torch.manual_seed(seed)
    model = PatClassifier(config)
    with torch.no_grad():
        for parameter in model.parameters():
            parameter.add_(torch.randn_like(parameter) * 0.05)
    return model.eval()


@pytest.mark.parametrize("config", [PAT_S, PAT_M], ids=["S", "M"])
def test_onnxruntime_matches_torch_to_1e_5(tmp_path: Path, config: PatConfig) -> None:
    model = trained_like(config, seed=1)
    opset = export_onnx(model, tmp_path / "m.onnx")
    assert opset >= 17
    rng = np.random.default_rng(2)
    inputs = np.concatenate([rng.normal(0, 1, (3, 10080)), rng.normal(0, 4, (2, 10080))])
    difference = compare_with_torch(model, tmp_path / "m.onnx", inputs)
    assert difference <= 1e-5
    # the comparison can fail: another network's outputs are far off
    other = trained_like(config, seed=3)
    assert compare_with_torch(other, tmp_path / "m.onnx", inputs) > 1e-3


def fitted(seed: int) -> FittedPat:
    rng = np.random.default_rng(seed)
    scaler = MinuteScaler.fit(rng.gamma(0.5, 200.0, (6, 10080)))
    return FittedPat(trained_like(PAT_S, seed), scaler, [1.0], [0.7], threads=1)


def test_bundle_serves_raw_counts_like_torch(tmp_path: Path) -> None:
    fit = fitted(4)
    manifest = export_bundle(fit, tmp_path / "b", training={"data": "synthetic, test only"})
    assert manifest["label"] == MODEL_LABEL
    served = PatOnnxModel.load(tmp_path / "b")
    assert served.label == "PAT architecture, trained on Depresjon"
    counts = np.random.default_rng(5).gamma(0.5, 200.0, (3, 10080))
    counts[1, 5000:6000] = np.nan  # missing minutes become the scaler's mean
    np.testing.assert_allclose(served.predict_counts(counts), fit.predict(counts), atol=1e-5)
    assert served.predict_standardised(np.zeros((0, 10080), np.float32)).shape == (0,)
    with pytest.raises(ValueError, match="10080"):
        served.predict_standardised(np.zeros((1, 100), np.float32))


def test_altered_or_unlabelled_bundles_are_refused(tmp_path: Path) -> None:
    export_bundle(fitted(6), tmp_path / "b", training={})
    scaler = tmp_path / "b" / "scaler.npz"
    original = scaler.read_bytes()
    MinuteScaler(np.zeros(10080), np.ones(10080)).save(scaler)
    with pytest.raises(PatBundleError, match=r"scaler\.npz does not match"):
        PatOnnxModel.load(tmp_path / "b")
    scaler.write_bytes(original)
    manifest_path = tmp_path / "b" / "manifest.json"
    manifest = json.loads(manifest_path.read_text())
    manifest["label"] = "PAT"
    manifest_path.write_text(json.dumps(manifest))
    with pytest.raises(PatBundleError, match="label"):
        PatOnnxModel.load(tmp_path / "b")
    with pytest.raises(PatBundleError, match="manifest"):
        PatOnnxModel.load(tmp_path / "nowhere")


def test_serving_side_imports_never_load_torch() -> None:
    """The API server's install has no torch: the app and the ONNX serving path must not
    import it (nor h5py or onnxscript, the other parts of the training extra)."""
    code = (
        "import importlib, sys\n"
        "for module in ('clarity.app', 'clarity.cli', 'clarity.ml', 'clarity.ml.evaluation',\n"
        "               'clarity.ml.pat', 'clarity.ml.pat.weeks', 'clarity.ml.pat_onnx',\n"
        "               'clarity.ml.registry.service', 'clarity.predictions.service'):\n"
        "    importlib.import_module(module)\n"
        "    heavy = [m for m in ('torch', 'h5py', 'onnxscript') if m in sys.modules]\n"
        "    if heavy:\n"
        "        print(module, 'imported', ','.join(heavy))\n"
        "        break\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=120
    )
    assert result.stdout.strip() == ""
