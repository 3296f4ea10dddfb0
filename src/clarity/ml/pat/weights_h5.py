"""Load (and write) PAT weights in the published Keras H5 layout.

The published encoders (``encoder_{small,medium,large}_90_unsmoothed_mse_all.h5``) were saved
with Keras 2's ``Model.save`` to HDF5: the root holds ``model_weights``, whose attribute
``layer_names`` lists the layers in order; each layer is a group whose attribute
``weight_names`` lists its variables in order, each stored as a dataset at that name (the
slashes of a name make nested groups). The encoder's layers are ``inputs``, ``reshape``,
``dense`` (the patch embedding: kernel (patch, 96), bias), a position-adding op without
weights and ``encoder_layer_{i}_transformer`` blocks, whose 16 variables are named
``encoder_layer_{i}_attention/{query,key,value}/{kernel,bias}`` (kernel (96, heads, 96),
bias (heads, 96)), ``.../attention_output/{kernel,bias}`` (kernel (heads, 96, 96), bias
(96,)), ``encoder_layer_{i}_norm{1,2}/{gamma,beta}`` and ``encoder_layer_{i}_ff{1,2}/
{kernel,bias}``. A fine-tuned model file nests all of these under ``encoder_model`` and adds
``dense_128`` and ``output``. (Ruan et al., arXiv:2411.15240; njacobsonlab/Pretrained-
Actigraphy-Transformer notebooks; Keras 2 ``legacy/saving/hdf5_format.py``.)

Keras itself loads such a file by order, not by name; so does this loader, and where the
variable names carry their layer (``query``, ``norm1``, ``ff2`` ...) it maps by name
instead and says so. Every tensor of the model must come from the file and every array of
the file must be used, or loading fails. The file's SHA-256 must match the digest the caller
expects: the published files cannot be fetched here, so whoever holds them supplies it.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import h5py  # type: ignore[import-untyped]
import numpy as np
import torch
from numpy.typing import NDArray

from clarity.ml.pat.config import HEAD_HIDDEN, SIZES, PatConfig
from clarity.ml.pat.digests import file_sha256
from clarity.ml.pat.model import PatClassifier, PatEncoder

FloatArray = NDArray[np.float32]
Kind = Literal["dense", "qkv", "attention_output", "norm"]
BLOCK_SLOTS: tuple[tuple[str, str, Kind], ...] = (
    # (keras sublayer, variable, kind) in Keras' saving order within one block
    ("query", "kernel", "qkv"),
    ("query", "bias", "qkv"),
    ("key", "kernel", "qkv"),
    ("key", "bias", "qkv"),
    ("value", "kernel", "qkv"),
    ("value", "bias", "qkv"),
    ("attention_output", "kernel", "attention_output"),
    ("attention_output", "bias", "attention_output"),
    ("norm1", "gamma", "norm"),
    ("norm1", "beta", "norm"),
    ("ff1", "kernel", "dense"),
    ("ff1", "bias", "dense"),
    ("ff2", "kernel", "dense"),
    ("ff2", "bias", "dense"),
    ("norm2", "gamma", "norm"),
    ("norm2", "beta", "norm"),
)
TORCH_OF_SLOT = {
    "query": "attention.query",
    "key": "attention.key",
    "value": "attention.value",
    "attention_output": "attention.output",
    "norm1": "norm1",
    "norm2": "norm2",
    "ff1": "ff1",
    "ff2": "ff2",
}
TORCH_VARIABLE = {"kernel": "weight", "bias": "bias", "gamma": "weight", "beta": "bias"}
_SHA256 = re.compile(r"[0-9a-f]{64}")


class H5WeightsError(ValueError):
    """The file is not a PAT H5 of the published layout; the message says what differs."""


class H5DigestMismatch(H5WeightsError):
    """The file's SHA-256 is not the one the caller expected."""


@dataclass(frozen=True)
class StoredWeight:
    """One array of the file: its layer, its Keras variable name and its dataset path
    (relative to ``model_weights``, e.g. ``dense/dense/kernel:0``)."""

    layer: str
    name: str
    path: str
    value: FloatArray


@dataclass(frozen=True)
class MappedTensor:
    """Where one model tensor came from, and how it was matched."""

    torch_name: str
    h5_path: str
    keras_shape: tuple[int, ...]
    matched_by: Literal["name", "order"]


@dataclass(frozen=True)
class LoadReport:
    """The per-tensor mapping of one load, with the digest that was verified."""

    path: str
    sha256: str
    config: PatConfig
    has_head: bool
    mapped: tuple[MappedTensor, ...]

    def as_text(self) -> str:
        lines = [f"{self.path} sha256={self.sha256} PAT-{self.config.name} head={self.has_head}"]
        lines += [
            f"  {m.h5_path} {m.keras_shape} -> {m.torch_name} (by {m.matched_by})"
            for m in self.mapped
        ]
        return "\n".join(lines)


def _attribute_list(group: h5py.Group, name: str) -> list[str]:
    """A list attribute, also when Keras split it into ``name0``, ``name1`` ... chunks."""
    if name in group.attrs:
        values = list(group.attrs[name])
    else:
        values, chunk = [], 0
        while f"{name}{chunk}" in group.attrs:
            values.extend(group.attrs[f"{name}{chunk}"])
            chunk += 1
    return [v.decode("utf8") if isinstance(v, bytes) else str(v) for v in values]


def read_stored_weights(path: str | Path) -> list[StoredWeight]:
    """Every weight array of a Keras 2 H5 file, in Keras' loading order."""
    with h5py.File(Path(path), "r") as handle:
        root = handle.get("model_weights", handle)
        layers = _attribute_list(root, "layer_names")
        if not layers:
            raise H5WeightsError("no 'layer_names' attribute: not a Keras 2 H5 weights file")
        stored: list[StoredWeight] = []
        for layer in layers:
            if layer not in root:
                raise H5WeightsError(f"layer {layer!r} is listed but has no group")
            group = root[layer]
            for name in _attribute_list(group, "weight_names"):
                if name not in group or not isinstance(group[name], h5py.Dataset):
                    raise H5WeightsError(f"weight {layer}/{name} is listed but not stored")
                value = np.asarray(group[name][()], dtype=np.float32)
                stored.append(StoredWeight(layer, name, f"{layer}/{name}", value))
    return stored


def _segments(name: str) -> list[str]:
    return name.split(":")[0].split("/")


def _variable(weight: StoredWeight) -> str:
    return _segments(weight.name)[-1]


def _block_slot_by_name(weight: StoredWeight) -> tuple[str, str] | None:
    parts = _segments(weight.name)
    if len(parts) < 2:
        return None
    sublayer, variable = parts[-2], parts[-1]
    if sublayer in ("query", "key", "value", "attention_output"):
        return sublayer, variable
    for slot in ("norm1", "norm2", "ff1", "ff2"):
        if sublayer == slot or sublayer.endswith(f"_{slot}"):
            return slot, variable
    return None


def _match_block(weights: Sequence[StoredWeight]) -> tuple[list[StoredWeight], bool]:
    """The 16 arrays of a block in slot order; by name when every name says its slot."""
    by_name: dict[tuple[str, str], StoredWeight] = {}
    for weight in weights:
        slot = _block_slot_by_name(weight)
        if slot is None or slot in by_name:
            break
        by_name[slot] = weight
    else:
        if set(by_name) == {(s, v) for s, v, _ in BLOCK_SLOTS}:
            return [by_name[(s, v)] for s, v, _ in BLOCK_SLOTS], True
    for weight, (_, variable, _) in zip(weights, BLOCK_SLOTS, strict=True):
        if _variable(weight) != variable:
            raise H5WeightsError(
                f"{weight.path}: expected a '{variable}' variable at this position"
            )
    return list(weights), False


def infer_config(stored: Sequence[StoredWeight]) -> tuple[PatConfig, bool]:
    """The PAT size the arrays describe, and whether a fine-tuning head is present."""
    count = len(stored)
    has_head = count >= 22 and (count - 6) % 16 == 0 and stored[-2].value.shape == (HEAD_HIDDEN, 1)
    if not has_head and (count < 18 or (count - 2) % 16):
        raise H5WeightsError(
            f"{count} weight arrays: a PAT encoder has 2 + 16 per block (and 4 more with a head)"
        )
    layers = (count - (6 if has_head else 2)) // 16
    patch_kernel, query_kernel, ff1_kernel = stored[0].value, stored[2].value, stored[12].value
    if patch_kernel.ndim != 2 or query_kernel.ndim != 3 or ff1_kernel.ndim != 2:
        raise H5WeightsError("the first arrays are not a patch Dense and an attention kernel")
    found = (
        int(patch_kernel.shape[0]),
        layers,
        int(query_kernel.shape[1]),
        int(patch_kernel.shape[1]),
        int(query_kernel.shape[2]),
        int(ff1_kernel.shape[1]),
    )
    for known in SIZES.values():
        layout = (
            known.patch_size,
            known.num_layers,
            known.num_heads,
            known.embed_dim,
            known.key_dim,
            known.ff_dim,
        )
        if layout == found:
            return known, has_head
    raise H5WeightsError(
        "patch {}, {} blocks, {} heads, width {}, key_dim {}, feed-forward {}: "
        "not a published PAT size (S, M or L)".format(*found)
    )


def keras_shape(slot: str, variable: str, config: PatConfig) -> tuple[int, ...]:
    """The Keras shape of one block variable."""
    e, h, k, f = config.embed_dim, config.num_heads, config.key_dim, config.ff_dim
    shapes: dict[tuple[str, str], tuple[int, ...]] = {
        ("attention_output", "kernel"): (h, k, e),
        ("attention_output", "bias"): (e,),
        ("ff1", "kernel"): (e, f),
        ("ff1", "bias"): (f,),
        ("ff2", "kernel"): (f, e),
        ("ff2", "bias"): (e,),
    }
    if slot in ("query", "key", "value"):
        return (e, h, k) if variable == "kernel" else (h, k)
    if slot in ("norm1", "norm2"):
        return (e,)
    return shapes[(slot, variable)]


def _to_torch(value: FloatArray, kind: Kind, variable: str) -> torch.Tensor:
    """A Keras array in ``torch.nn.Linear``/``LayerNorm`` form (kernels transposed)."""
    if variable != "kernel":
        return torch.from_numpy(np.ascontiguousarray(value.reshape(-1)))
    if kind == "qkv":  # (embed, heads, key_dim) -> (embed, heads*key_dim)
        value = value.reshape(value.shape[0], -1)
    elif kind == "attention_output":  # (heads, key_dim, embed) -> (heads*key_dim, embed)
        value = value.reshape(-1, value.shape[-1])
    return torch.from_numpy(np.ascontiguousarray(value.T))


def _check_shape(weight: StoredWeight, expected: tuple[int, ...]) -> None:
    if weight.value.shape != expected:
        raise H5WeightsError(f"{weight.path}: shape {weight.value.shape}, expected {expected}")


def load_pat_h5(
    path: str | Path, *, expected_sha256: str
) -> tuple[PatEncoder | PatClassifier, LoadReport]:
    """A PAT encoder (or classifier, for a fine-tuned file) holding the file's weights.

    Raises :class:`H5DigestMismatch` before reading anything when the SHA-256 differs, and
    :class:`H5WeightsError` when the layout, a shape or the coverage is not as published.
    """
    file = Path(path)
    expected = expected_sha256.strip().lower()
    if not _SHA256.fullmatch(expected):
        raise ValueError("expected_sha256 must be 64 hexadecimal characters")
    actual = file_sha256(file)
    if actual != expected:
        raise H5DigestMismatch(f"{file.name}: SHA-256 {actual} is not the expected {expected}")
    stored = read_stored_weights(file)
    config, has_head = infer_config(stored)
    prefix = "encoder." if has_head else ""
    state: dict[str, torch.Tensor] = {}
    mapped: list[MappedTensor] = []

    def put(weight: StoredWeight, torch_name: str, kind: Kind, by_name: bool) -> None:
        variable = _variable(weight)
        state[torch_name] = _to_torch(weight.value, kind, variable)
        mapped.append(
            MappedTensor(
                torch_name, weight.path, weight.value.shape, "name" if by_name else "order"
            )
        )

    patch = (
        ("kernel", "patch_embedding.weight", (config.patch_size, config.embed_dim)),
        ("bias", "patch_embedding.bias", (config.embed_dim,)),
    )
    for weight, (variable, torch_name, shape) in zip(stored[:2], patch, strict=True):
        if _variable(weight) != variable:
            raise H5WeightsError(f"{weight.path}: expected the patch Dense '{variable}'")
        _check_shape(weight, shape)
        put(weight, prefix + torch_name, "dense", False)
    for block in range(config.num_layers):
        chunk = stored[2 + 16 * block : 2 + 16 * (block + 1)]
        ordered, by_name = _match_block(chunk)
        for weight, (slot, variable, kind) in zip(ordered, BLOCK_SLOTS, strict=True):
            _check_shape(weight, keras_shape(slot, variable, config))
            name = f"{prefix}blocks.{block}.{TORCH_OF_SLOT[slot]}.{TORCH_VARIABLE[variable]}"
            put(weight, name, kind, by_name)
    if has_head:
        head = stored[-4:]
        shapes = ((config.embed_dim, HEAD_HIDDEN), (HEAD_HIDDEN,), (HEAD_HIDDEN, 1), (1,))
        names = ("head_dense.weight", "head_dense.bias", "head_output.weight", "head_output.bias")
        for weight, shape, torch_name in zip(head, shapes, names, strict=True):
            _check_shape(weight, shape)
            put(weight, torch_name, "dense", False)
    model: PatEncoder | PatClassifier = PatClassifier(config) if has_head else PatEncoder(config)
    model.load_state_dict(state, strict=True)
    model.eval()
    report = LoadReport(str(file), actual, config, has_head, tuple(mapped))
    return model, report


def _keras_arrays(
    model: PatEncoder | PatClassifier,
) -> list[tuple[str, list[tuple[str, FloatArray]]]]:
    """Layers and (variable name, Keras array) pairs in the published layout."""
    encoder = model.encoder if isinstance(model, PatClassifier) else model
    config = encoder.config
    h, k = config.num_heads, config.key_dim

    def np_(t: torch.Tensor) -> FloatArray:
        return t.detach().cpu().float().numpy()

    layers: list[tuple[str, list[tuple[str, FloatArray]]]] = [
        ("inputs", []),
        ("reshape", []),
        (
            "dense",
            [
                ("dense/kernel:0", np_(encoder.patch_embedding.weight).T),
                ("dense/bias:0", np_(encoder.patch_embedding.bias)),
            ],
        ),
        ("tf.__operators__.add", []),
    ]
    for index, block in enumerate(encoder.blocks, start=1):
        scope = f"encoder_layer_{index}"
        arrays: list[tuple[str, FloatArray]] = []
        for slot, variable, kind in BLOCK_SLOTS:
            module = block.get_submodule(TORCH_OF_SLOT[slot])
            value = np_(getattr(module, TORCH_VARIABLE[variable]))
            if variable == "kernel":
                value = value.T
                if kind == "qkv":
                    value = value.reshape(config.embed_dim, h, k)
                elif kind == "attention_output":
                    value = value.reshape(h, k, config.embed_dim)
            elif kind == "qkv":
                value = value.reshape(h, k)
            attention = kind in ("qkv", "attention_output")
            sublayer = f"{scope}_attention/{slot}" if attention else f"{scope}_{slot}"
            arrays.append((f"{sublayer}/{variable}:0", np.ascontiguousarray(value)))
        layers.append((f"{scope}_transformer", arrays))
    if isinstance(model, PatClassifier):
        encoder_arrays = [pair for _, pairs in layers for pair in pairs]
        layers = [
            ("finetuning_inputs", []),
            ("encoder_model", encoder_arrays),
            ("global_avg_pool", []),
            ("dropout", []),
            (
                "dense_128",
                [
                    ("dense_128/kernel:0", np_(model.head_dense.weight).T),
                    ("dense_128/bias:0", np_(model.head_dense.bias)),
                ],
            ),
            (
                "output",
                [
                    ("output/kernel:0", np_(model.head_output.weight).T),
                    ("output/bias:0", np_(model.head_output.bias)),
                ],
            ),
        ]
    return layers


def save_pat_h5(model: PatEncoder | PatClassifier, path: str | Path) -> str:
    """Write ``model`` in the published Keras 2 layout; returns the file's SHA-256.

    Weights only (no ``model_config``): a Keras user rebuilds the published model and calls
    ``load_weights`` on it; :func:`load_pat_h5` reads it back.
    """
    with h5py.File(Path(path), "w") as handle:
        handle.attrs["backend"] = b"tensorflow"
        handle.attrs["keras_version"] = b"2.15.0"
        root = handle.create_group("model_weights")
        layers = _keras_arrays(model)
        root.attrs["layer_names"] = np.array([name.encode() for name, _ in layers])
        root.attrs["backend"] = b"tensorflow"
        root.attrs["keras_version"] = b"2.15.0"
        for name, arrays in layers:
            group = root.create_group(name)
            group.attrs["weight_names"] = np.array([n.encode() for n, _ in arrays], dtype="S")
            for weight_name, value in arrays:
                group.create_dataset(weight_name, data=value)
    return file_sha256(path)
