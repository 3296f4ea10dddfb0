"""Masked-autoencoder pretraining of the PAT encoder (He K, et al. "Masked Autoencoders Are
Scalable Vision Learners", CVPR 2022; as adapted to actigraphy by Ruan et al., arXiv:2411.15240).

As published: 90% of the patches are hidden; the encoder sees only the visible patches (with
their positions); the decoder is one transformer block of the encoder's width and heads over
all patches, visible ones encoded and hidden ones a learned mask token, with positions added
again; a Dense(patch_size) with ``2*tanh`` (reconstructions clipped at two standard
deviations) rebuilds every minute; the loss is the mean squared error over all minutes
("mse_all", not only the masked ones). Adam with Keras' defaults (beta 0.9/0.999, eps 1e-7).

Departures, each deliberate: a fresh random mask per window (the notebooks draw one
permutation per batch), and minutes that were not recorded (padding) are left out of the
loss, since there is nothing to reconstruct there.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from numpy.typing import NDArray
from torch import Tensor, nn

from clarity.ml.pat.config import PatConfig
from clarity.ml.pat.model import EncoderBlock, PatEncoder

MASK_TOKEN_STD = 0.05  # Keras "random_normal" initialiser, as the notebooks' mask token


@dataclass(frozen=True)
class PretrainSettings:
    """Budget of one pretraining run (modest defaults: this runs on a 2-core CPU)."""

    epochs: int = 3
    batch_size: int = 16
    learning_rate: float = 1e-3  # published for PAT-S and PAT-M
    mask_ratio: float = 0.9

    def __post_init__(self) -> None:
        if self.epochs < 0 or self.batch_size < 1 or self.learning_rate <= 0:
            raise ValueError("epochs >= 0, batch_size >= 1 and learning_rate > 0 are required")
        if not 0.0 < self.mask_ratio < 1.0:
            raise ValueError("mask_ratio must be in (0, 1)")


def visible_count(num_patches: int, mask_ratio: float) -> int:
    """Patches left visible: ``num_patches - round(mask_ratio * num_patches)`` (at least 1)."""
    masked = int(np.round(mask_ratio * num_patches))
    return max(1, num_patches - masked)


def random_visible(
    batch: int, num_patches: int, mask_ratio: float, generator: torch.Generator
) -> Tensor:
    """(batch, visible) sorted patch indices, an independent uniform choice per window."""
    noise = torch.rand(batch, num_patches, generator=generator)
    keep = visible_count(num_patches, mask_ratio)
    return torch.sort(torch.argsort(noise, dim=1)[:, :keep], dim=1).values


class MaskedAutoencoder(nn.Module):
    """PAT encoder + the published one-block decoder, for pretraining only."""

    def __init__(self, config: PatConfig, encoder: PatEncoder | None = None) -> None:
        super().__init__()
        self.config = config
        self.encoder = encoder if encoder is not None else PatEncoder(config)
        self.mask_token = nn.Parameter(torch.randn(1, 1, config.embed_dim) * MASK_TOKEN_STD)
        self.decoder_block = EncoderBlock(config)
        self.decoder_dense = nn.Linear(config.embed_dim, config.patch_size)

    def forward(self, minutes: Tensor, visible: Tensor) -> Tensor:
        """Reconstruct all (batch, 10080) minutes from the patches listed in ``visible``."""
        tokens = self.encoder.embed(minutes)
        batch, patches, width = tokens.shape
        index = visible.unsqueeze(-1).expand(-1, -1, width)
        encoded = self.encoder.run_blocks(torch.gather(tokens, 1, index))
        full = self.mask_token.expand(batch, patches, width).scatter(1, index, encoded)
        decoded = self.decoder_block(full + self.encoder.positions)
        return (2.0 * torch.tanh(self.decoder_dense(decoded))).reshape(batch, -1)


def reconstruction_loss(reconstruction: Tensor, target: Tensor, observed: Tensor) -> Tensor:
    """Mean squared error over every recorded minute (masked and visible patches alike)."""
    weights = observed.to(reconstruction.dtype)
    return ((reconstruction - target) ** 2 * weights).sum() / weights.sum().clamp_min(1.0)


def pretrain(
    model: MaskedAutoencoder,
    minutes: NDArray[np.float32],
    observed: NDArray[np.bool_],
    settings: PretrainSettings,
    generator: torch.Generator,
) -> list[float]:
    """Train ``model`` in place on standardised windows; returns the mean loss per epoch."""
    x = torch.from_numpy(np.ascontiguousarray(minutes, dtype=np.float32))
    seen = torch.from_numpy(np.ascontiguousarray(observed, dtype=np.bool_))
    if x.ndim != 2 or x.shape != seen.shape or x.shape[0] == 0:
        raise ValueError("minutes and observed must be matching non-empty windows x minutes")
    optimiser = torch.optim.Adam(
        model.parameters(), lr=settings.learning_rate, betas=(0.9, 0.999), eps=1e-7
    )
    model.train()
    history: list[float] = []
    for _ in range(settings.epochs):
        order = torch.randperm(x.shape[0], generator=generator)
        total, windows = 0.0, 0
        for batch in torch.split(order, settings.batch_size):
            visible = random_visible(
                batch.numel(), model.config.num_patches, settings.mask_ratio, generator
            )
            loss = reconstruction_loss(model(x[batch], visible), x[batch], seen[batch])
            optimiser.zero_grad(set_to_none=True)
            torch.autograd.backward(loss)
            optimiser.step()
            total += float(loss.detach()) * batch.numel()
            windows += batch.numel()
        history.append(total / windows)
    model.eval()
    return history
