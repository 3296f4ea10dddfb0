"""Fine-tuning a PAT classifier on labelled week windows, and predicting with it.

As published (Ruan et al., arXiv:2411.15240, fine-tuning notebook): the pretrained encoder
under the head ``GlobalAveragePooling1D -> Dropout(0.1) -> Dense(128, relu) -> Dense(1,
sigmoid)``, binary cross-entropy with balanced class weights (class 0 weighted by the share
of class 1 and vice versa), Adam (beta 0.9/0.999, eps 1e-7), "full" fine-tuning or a
"linear_probe" with the encoder frozen.

Departures, each deliberate: every subject weighs the same in the loss (a window counts
1/(that subject's windows)), since Depresjon has several windows per person while NHANES had
one; a fixed number of epochs instead of early stopping on a validation AUC (no validation
subjects can be spared from 55 without another nested split), and a learning rate suited to
a few epochs rather than the published 1e-5 over thousands.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np
import torch
from numpy.typing import NDArray
from torch import nn

from clarity.ml.pat.model import PatClassifier

Style = Literal["full", "linear_probe"]


@dataclass(frozen=True)
class FinetuneSettings:
    """Budget of one fine-tuning run (modest defaults: this runs on a 2-core CPU)."""

    epochs: int = 4
    batch_size: int = 16
    learning_rate: float = 1e-4
    style: Style = "full"

    def __post_init__(self) -> None:
        if self.epochs < 1 or self.batch_size < 1 or self.learning_rate <= 0:
            raise ValueError("epochs >= 1, batch_size >= 1 and learning_rate > 0 are required")
        if self.style not in ("full", "linear_probe"):
            raise ValueError("style must be 'full' or 'linear_probe'")


def training_weights(
    labels: NDArray[np.float64], subjects: NDArray[np.str_]
) -> NDArray[np.float64]:
    """Per-window loss weights: balanced class weight x 1/(windows of the subject), mean 1."""
    y = np.asarray(labels, dtype=np.float64)
    if y.size == 0 or not np.all((y == 0) | (y == 1)):
        raise ValueError("labels must be 0 or 1, at least one")
    _, inverse, counts = np.unique(np.asarray(subjects), return_inverse=True, return_counts=True)
    per_subject = 1.0 / counts[inverse]
    positive_share = float(np.sum(per_subject * y) / np.sum(per_subject))
    if positive_share in (0.0, 1.0):
        raise ValueError("fine-tuning needs subjects of both classes")
    class_weight = np.where(y == 1, 1.0 - positive_share, positive_share)
    weights = class_weight * per_subject
    return np.asarray(weights / weights.mean(), dtype=np.float64)


def finetune(
    model: PatClassifier,
    minutes: NDArray[np.float32],
    labels: NDArray[np.float64],
    weights: NDArray[np.float64],
    settings: FinetuneSettings,
    generator: torch.Generator,
) -> list[float]:
    """Train ``model`` in place; returns the weighted mean loss per epoch."""
    x = torch.from_numpy(np.ascontiguousarray(minutes, dtype=np.float32))
    y = torch.from_numpy(np.asarray(labels, dtype=np.float32))
    w = torch.from_numpy(np.asarray(weights, dtype=np.float32))
    if x.ndim != 2 or y.shape != (x.shape[0],) or w.shape != y.shape or x.shape[0] == 0:
        raise ValueError("need matching non-empty windows, labels and weights")
    frozen = settings.style == "linear_probe"
    for parameter in model.encoder.parameters():
        parameter.requires_grad_(not frozen)
    trainable = [p for p in model.parameters() if p.requires_grad]
    optimiser = torch.optim.Adam(trainable, lr=settings.learning_rate, betas=(0.9, 0.999), eps=1e-7)
    loss_function = nn.BCEWithLogitsLoss(reduction="none")
    model.train()
    if frozen:
        model.encoder.eval()
    history: list[float] = []
    for _ in range(settings.epochs):
        order = torch.randperm(x.shape[0], generator=generator)
        total, weight_sum = 0.0, 0.0
        for batch in torch.split(order, settings.batch_size):
            per_window = loss_function(model.logits(x[batch]), y[batch]) * w[batch]
            loss = per_window.sum() / w[batch].sum()
            optimiser.zero_grad(set_to_none=True)
            torch.autograd.backward(loss)
            optimiser.step()
            total += float(per_window.detach().sum())
            weight_sum += float(w[batch].sum())
        history.append(total / weight_sum)
    for parameter in model.encoder.parameters():
        parameter.requires_grad_(True)
    model.eval()
    return history


@torch.no_grad()
def predict_probability(
    model: PatClassifier, minutes: NDArray[np.float32], batch_size: int = 32
) -> NDArray[np.float64]:
    """Probability per window (evaluation mode: no dropout)."""
    model.eval()
    x = torch.from_numpy(np.ascontiguousarray(minutes, dtype=np.float32))
    if x.ndim != 2:
        raise ValueError("minutes must be windows x minutes")
    parts = [model(chunk) for chunk in torch.split(x, batch_size)] if x.shape[0] else []
    out = torch.cat(parts) if parts else torch.zeros(0)
    return out.double().numpy()
