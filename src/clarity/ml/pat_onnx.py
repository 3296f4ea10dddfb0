"""Serving an exported PAT-architecture classifier with onnxruntime alone (no torch).

Loads a bundle written by :mod:`clarity.ml.pat.export`: ``model.onnx``, ``scaler.npz`` and
``manifest.json``. Both files are checked against the SHA-256 digests in the manifest before
use, and the manifest's label travels with every prediction, so a network trained here is
always presented as what it is ("PAT architecture, trained on Depresjon"), never as "PAT".

Input: raw one-minute counts (``NaN`` = missing), cut into weeks from local midnights by
:func:`clarity.ml.pat.weeks.weeks_from_series`, standardised with the bundle's scaler.
Imports numpy, onnxruntime and the numpy-only ``clarity.ml.pat.weeks``/``config`` modules.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import onnxruntime as ort  # type: ignore[import-untyped]
from numpy.typing import NDArray

from clarity.actigraphy.series import EpochSeries
from clarity.ml.pat.config import WEEK_MINUTES
from clarity.ml.pat.digests import file_sha256
from clarity.ml.pat.weeks import MinuteScaler, weeks_from_series

INPUT_NAME = "minutes"
OUTPUT_NAME = "probability"
MODEL_FILE = "model.onnx"
SCALER_FILE = "scaler.npz"
MANIFEST_FILE = "manifest.json"


class PatBundleError(ValueError):
    """The bundle is incomplete, altered or not a PAT-architecture export."""


@dataclass(frozen=True)
class WeekPredictions:
    """Probabilities per week window (UTC start) and their mean, with the model's label."""

    label: str
    starts: NDArray[np.datetime64]
    probabilities: NDArray[np.float64]

    @property
    def mean(self) -> float:
        return float(self.probabilities.mean()) if self.probabilities.size else float("nan")


class PatOnnxModel:
    """One loaded bundle: an onnxruntime session and the fitted minute scaler."""

    def __init__(
        self, manifest: dict[str, Any], session: ort.InferenceSession, scaler: MinuteScaler
    ) -> None:
        self.manifest = manifest
        self.session = session
        self.scaler = scaler

    @classmethod
    def load(cls, directory: str | Path, *, threads: int = 1) -> PatOnnxModel:
        """Verify and load a bundle; ``threads`` bounds onnxruntime's intra-op threads."""
        folder = Path(directory)
        try:
            manifest = json.loads((folder / MANIFEST_FILE).read_text())
        except (OSError, ValueError) as exc:
            raise PatBundleError(f"{folder}: no readable {MANIFEST_FILE}") from exc
        label = manifest.get("label") if isinstance(manifest, dict) else None
        if not isinstance(label, str) or not label.startswith("PAT architecture, trained on"):
            raise PatBundleError(f"{folder}: manifest lacks the 'PAT architecture, ...' label")
        files = manifest.get("files")
        if not isinstance(files, dict):
            raise PatBundleError(f"{folder}: manifest lists no file digests")
        for name in (MODEL_FILE, SCALER_FILE):
            path = folder / name
            if not path.is_file():
                raise PatBundleError(f"{folder}: {name} is missing")
            if file_sha256(path) != files.get(name):
                raise PatBundleError(f"{folder}: {name} does not match its SHA-256 in the manifest")
        options = ort.SessionOptions()
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
        session = ort.InferenceSession(
            str(folder / MODEL_FILE), sess_options=options, providers=["CPUExecutionProvider"]
        )
        return cls(manifest, session, MinuteScaler.load(folder / SCALER_FILE))

    @property
    def label(self) -> str:
        return str(self.manifest["label"])

    def predict_standardised(self, minutes: NDArray[np.float32]) -> NDArray[np.float64]:
        """Probabilities for rows of 10,080 already-standardised minutes."""
        x = np.ascontiguousarray(minutes, dtype=np.float32)
        if x.ndim != 2 or x.shape[1] != WEEK_MINUTES:
            raise ValueError(f"input must be rows of {WEEK_MINUTES} minutes")
        if x.shape[0] == 0:
            return np.zeros(0)
        out = self.session.run([OUTPUT_NAME], {INPUT_NAME: x})[0]
        return np.asarray(out, dtype=np.float64).reshape(-1)

    def predict_counts(self, counts: NDArray[np.float64]) -> NDArray[np.float64]:
        """Probabilities for rows of 10,080 raw minute counts (``NaN`` = missing)."""
        standard, _ = self.scaler.transform(counts)
        return self.predict_standardised(standard)

    def predict_series(self, series: EpochSeries, *, step_days: int = 1) -> WeekPredictions:
        """Every week window of a one-minute recording, scored."""
        weeks = weeks_from_series(series, step_days=step_days)
        starts = np.array([w.start for w in weeks], dtype="datetime64[s]")
        if not weeks:
            return WeekPredictions(self.label, starts, np.zeros(0))
        counts = np.stack([w.counts for w in weeks])
        return WeekPredictions(self.label, starts, self.predict_counts(counts))
