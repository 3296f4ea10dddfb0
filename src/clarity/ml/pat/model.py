"""The PAT network in PyTorch, layer for layer as published (Ruan et al., arXiv:2411.15240).

The published Keras model: ``Reshape(num_patches, patch_size)`` -> ``Dense(96)`` (patch
embedding) -> ``+ sine-cosine positions`` -> N blocks of
``x1 = LayerNorm(x + Dropout(MultiHeadAttention(heads, key_dim=96)(x, x)))``,
``out = LayerNorm(x1 + Dropout(Dense(96)(Dense(256, relu)(x1))))`` (post-LayerNorm, eps 1e-6).
The classifier adds ``GlobalAveragePooling1D -> Dropout(0.1) -> Dense(128, relu) ->
Dense(1, sigmoid)``. Parameters are kept in the shapes of ``torch.nn.Linear`` so that a
Keras kernel maps to ``weight = kernel.reshape(in, out).T`` (see :mod:`weights_h5`).

Attention follows Keras ``MultiHeadAttention``: the query is scaled by ``1/sqrt(key_dim)``,
softmax over keys, no dropout on the attention probabilities (Keras' default ``dropout=0``).
"""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn
from torch.nn import functional as F

from clarity.ml.pat.config import HEAD_HIDDEN, PatConfig


def sincos_positions(num_patches: int, embed_dim: int) -> Tensor:
    """The published fixed position table: sines in the first half, cosines in the second.

    Frequencies ``exp(-ln(10000) * 2i / embed_dim)`` for ``i < embed_dim/2`` (Vaswani et al.,
    2017), laid out as ``concat([sin(pos*f), cos(pos*f)])`` rather than interleaved, as in
    the PAT notebooks' ``get_positional_embeddings``.
    """
    position = torch.arange(num_patches, dtype=torch.float32).unsqueeze(1)
    frequency = torch.exp(
        torch.arange(0, embed_dim, 2, dtype=torch.float32) * (-math.log(10000.0) / embed_dim)
    )
    angles = position * frequency
    return torch.cat([torch.sin(angles), torch.cos(angles)], dim=1)


class SelfAttention(nn.Module):
    """Keras-style multi-head self-attention with per-head width ``key_dim``."""

    def __init__(self, embed_dim: int, num_heads: int, key_dim: int) -> None:
        super().__init__()
        self.num_heads = num_heads
        self.key_dim = key_dim
        width = num_heads * key_dim
        self.query = nn.Linear(embed_dim, width)
        self.key = nn.Linear(embed_dim, width)
        self.value = nn.Linear(embed_dim, width)
        self.output = nn.Linear(width, embed_dim)

    def _heads(self, x: Tensor) -> Tensor:
        batch, tokens, _ = x.shape
        return x.view(batch, tokens, self.num_heads, self.key_dim).transpose(1, 2)

    def forward(self, x: Tensor) -> Tensor:
        batch, tokens, _ = x.shape
        query = self._heads(self.query(x))
        key = self._heads(self.key(x))
        value = self._heads(self.value(x))
        # softmax(q k^T / sqrt(key_dim)) v, computed by PyTorch's fused kernel (several times
        # faster on CPU than the explicit product, same result to float rounding).
        context = F.scaled_dot_product_attention(
            query, key, value, scale=1.0 / math.sqrt(self.key_dim)
        )
        projected: Tensor = self.output(context.transpose(1, 2).reshape(batch, tokens, -1))
        return projected


class EncoderBlock(nn.Module):
    """One post-LayerNorm transformer block (the notebooks' ``TransformerBlock``)."""

    def __init__(self, config: PatConfig) -> None:
        super().__init__()
        e = config.embed_dim
        self.attention = SelfAttention(e, config.num_heads, config.key_dim)
        self.attention_dropout = nn.Dropout(config.dropout)
        self.norm1 = nn.LayerNorm(e, eps=config.layer_norm_eps)
        self.ff1 = nn.Linear(e, config.ff_dim)
        self.ff2 = nn.Linear(config.ff_dim, e)
        self.ff_dropout = nn.Dropout(config.dropout)
        self.norm2 = nn.LayerNorm(e, eps=config.layer_norm_eps)

    def forward(self, x: Tensor) -> Tensor:
        x = self.norm1(x + self.attention_dropout(self.attention(x)))
        feed_forward = self.ff2(torch.relu(self.ff1(x)))
        out: Tensor = self.norm2(x + self.ff_dropout(feed_forward))
        return out


class PatEncoder(nn.Module):
    """Patch embedding, fixed positions and the encoder blocks: what the H5 files hold."""

    positions: Tensor

    def __init__(self, config: PatConfig) -> None:
        super().__init__()
        self.config = config
        self.patch_embedding = nn.Linear(config.patch_size, config.embed_dim)
        self.register_buffer(
            "positions", sincos_positions(config.num_patches, config.embed_dim), persistent=False
        )
        self.blocks = nn.ModuleList(EncoderBlock(config) for _ in range(config.num_layers))

    def embed(self, minutes: Tensor) -> Tensor:
        """(batch, 10080) standardised minutes -> (batch, patches, embed) with positions."""
        batch = minutes.shape[0]
        patches = minutes.reshape(batch, self.config.num_patches, self.config.patch_size)
        tokens: Tensor = self.patch_embedding(patches) + self.positions
        return tokens

    def run_blocks(self, tokens: Tensor) -> Tensor:
        for block in self.blocks:
            tokens = block(tokens)
        return tokens

    def forward(self, minutes: Tensor) -> Tensor:
        return self.run_blocks(self.embed(minutes))


class PatClassifier(nn.Module):
    """Encoder plus the published fine-tuning head; ``forward`` returns a probability."""

    def __init__(self, config: PatConfig, encoder: PatEncoder | None = None) -> None:
        super().__init__()
        if encoder is not None and encoder.config != config:
            raise ValueError("the encoder was built for another PAT size")
        self.config = config
        self.encoder = encoder if encoder is not None else PatEncoder(config)
        self.head_dropout = nn.Dropout(config.dropout)
        self.head_dense = nn.Linear(config.embed_dim, HEAD_HIDDEN)
        self.head_output = nn.Linear(HEAD_HIDDEN, 1)

    def logits(self, minutes: Tensor) -> Tensor:
        """(batch, 10080) -> (batch,) log-odds, for a numerically stable training loss."""
        pooled = self.encoder(minutes).mean(dim=1)
        hidden = torch.relu(self.head_dense(self.head_dropout(pooled)))
        logit: Tensor = self.head_output(hidden)
        return logit.squeeze(-1)

    def forward(self, minutes: Tensor) -> Tensor:
        return torch.sigmoid(self.logits(minutes))


def parameter_count(module: nn.Module) -> int:
    """Trainable parameters (buffers such as the position table are not counted)."""
    return sum(p.numel() for p in module.parameters() if p.requires_grad)
