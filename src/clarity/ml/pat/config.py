"""PAT model sizes as published (numpy-free, torch-free: serving reads them too).

Sizes from the published notebooks and paper (Ruan et al., arXiv:2411.15240): every size
embeds patches of one week of minute counts (10,080 minutes) into 96 dimensions and runs
post-LayerNorm encoder blocks whose Keras ``MultiHeadAttention`` uses ``key_dim=96`` per head
(so a block's attention width is heads x 96, not 96), a 256-wide ReLU feed-forward and
dropout 0.1. Positions are fixed sine-cosine tables. The fine-tuning head is global average
pooling, dropout 0.1, Dense(128, ReLU), Dense(1, sigmoid).
"""

from __future__ import annotations

from dataclasses import dataclass

WEEK_MINUTES = 10_080
HEAD_HIDDEN = 128


@dataclass(frozen=True)
class PatConfig:
    """One PAT size. ``key_dim`` is per head (Keras ``MultiHeadAttention(key_dim=...)``)."""

    name: str
    patch_size: int
    num_layers: int
    num_heads: int
    embed_dim: int = 96
    key_dim: int = 96
    ff_dim: int = 256
    dropout: float = 0.1
    input_minutes: int = WEEK_MINUTES
    layer_norm_eps: float = 1e-6

    def __post_init__(self) -> None:
        if self.input_minutes % self.patch_size:
            raise ValueError("input_minutes must be a whole number of patches")
        if self.embed_dim % 2:
            raise ValueError("embed_dim must be even for the sine-cosine table")

    @property
    def num_patches(self) -> int:
        return self.input_minutes // self.patch_size

    def encoder_parameters(self) -> int:
        """Trainable parameters of the encoder (patch embedding + blocks), from the shapes.

        Patch Dense: P*E + E. Per block, Keras MultiHeadAttention with H heads of size K:
        query, key and value kernels E*H*K plus biases H*K each, output kernel H*K*E plus
        bias E; two LayerNorms 2*(2E); feed-forward E*F + F and F*E + E. The positional
        table is fixed (not a parameter).
        """
        e, h, k, f, p = self.embed_dim, self.num_heads, self.key_dim, self.ff_dim, self.patch_size
        attention = 3 * (e * h * k + h * k) + (h * k * e + e)
        block = attention + 2 * (2 * e) + (e * f + f) + (f * e + e)
        return (p * e + e) + self.num_layers * block

    def classifier_parameters(self) -> int:
        """Encoder plus the published fine-tuning head: Dense(E->128) and Dense(128->1)."""
        head = (self.embed_dim * HEAD_HIDDEN + HEAD_HIDDEN) + (HEAD_HIDDEN + 1)
        return self.encoder_parameters() + head


PAT_S = PatConfig("S", patch_size=18, num_layers=1, num_heads=6)
PAT_M = PatConfig("M", patch_size=18, num_layers=2, num_heads=12)
PAT_L = PatConfig("L", patch_size=9, num_layers=4, num_heads=12)
SIZES: dict[str, PatConfig] = {c.name: c for c in (PAT_S, PAT_M, PAT_L)}


def size(name: str) -> PatConfig:
    """The published size named ``name`` (S, M or L; case-insensitive), or ``ValueError``."""
    key = name.strip().upper()
    if key not in SIZES:
        raise ValueError(f"unknown PAT size {name!r}; choose one of {', '.join(SIZES)}")
    return SIZES[key]
