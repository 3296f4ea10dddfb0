"""The Keras H5 loader against synthetic files built here in the published layout.

The files are written with h5py directly (not with the loader's own writer), in the layout
Keras 2's ``Model.save`` gives the published encoders, and the loaded network is checked
against an independent numpy implementation of the Keras computation on the raw arrays.
"""

from __future__ import annotations

import math
from pathlib import Path

import h5py
import numpy as np
import pytest
import torch

from clarity.ml.pat.config import PAT_M, PAT_S, PatConfig
from clarity.ml.pat.digests import file_sha256
from clarity.ml.pat.model import PatClassifier, PatEncoder
from clarity.ml.pat.weights_h5 import (
    H5DigestMismatch,
    H5WeightsError,
    load_pat_h5,
    read_stored_weights,
    save_pat_h5,
)

Arrays = list[tuple[str, list[tuple[str, np.ndarray]]]]


def block_arrays(
    config: PatConfig, index: int, rng: np.random.Generator, scoped: bool = True
) -> list[tuple[str, np.ndarray]]:
    e, h, k, f = config.embed_dim, config.num_heads, config.key_dim, config.ff_dim
    att = f"encoder_layer_{index}_attention"
    pre = f"encoder_layer_{index}"
    spec = [
        (f"{att}/query/kernel:0", (e, h, k)),
        (f"{att}/query/bias:0", (h, k)),
        (f"{att}/key/kernel:0", (e, h, k)),
        (f"{att}/key/bias:0", (h, k)),
        (f"{att}/value/kernel:0", (e, h, k)),
        (f"{att}/value/bias:0", (h, k)),
        (f"{att}/attention_output/kernel:0", (h, k, e)),
        (f"{att}/attention_output/bias:0", (e,)),
        (f"{pre}_norm1/gamma:0", (e,)),
        (f"{pre}_norm1/beta:0", (e,)),
        (f"{pre}_ff1/kernel:0", (e, f)),
        (f"{pre}_ff1/bias:0", (f,)),
        (f"{pre}_ff2/kernel:0", (f, e)),
        (f"{pre}_ff2/bias:0", (e,)),
        (f"{pre}_norm2/gamma:0", (e,)),
        (f"{pre}_norm2/beta:0", (e,)),
    ]
    out = []
    for j, (name, shape) in enumerate(spec):
        if "kernel" in name:  # fan-in scaled, so activations stay of order one
            fan_in = shape[0] * shape[1] if "attention_output" in name else shape[0]
            value = rng.normal(0.0, 1.0 / math.sqrt(fan_in), size=shape)
        else:
            value = rng.normal(0.0, 0.1, size=shape)
        if "gamma" in name:
            value = 1.0 + value
        if not scoped:  # names that do not say their sublayer: only the order tells
            name = f"weight_{j}/{name.rsplit('/', 1)[-1]}"
        out.append((name, value.astype(np.float32)))
    return out


def encoder_layers(config: PatConfig, seed: int, scoped: bool = True) -> Arrays:
    rng = np.random.default_rng(seed)
    layers: Arrays = [
        ("inputs", []),
        ("reshape", []),
        (
            "dense",
            [
                ("dense/kernel:0", rng.normal(0, 0.3, (config.patch_size, 96)).astype(np.float32)),
                ("dense/bias:0", rng.normal(0, 0.1, (96,)).astype(np.float32)),
            ],
        ),
        ("tf.__operators__.add_6", []),
    ]
    for i in range(1, config.num_layers + 1):
        layers.append((f"encoder_layer_{i}_transformer", block_arrays(config, i, rng, scoped)))
    return layers


def classifier_layers(config: PatConfig, seed: int) -> Arrays:
    rng = np.random.default_rng(seed + 1)
    nested = [pair for _, pairs in encoder_layers(config, seed) for pair in pairs]
    return [
        ("finetuning_inputs", []),
        ("encoder_model", nested),
        ("global_avg_pool", []),
        ("dropout", []),
        (
            "dense_128",
            [
                ("dense_128/kernel:0", rng.normal(0, 0.1, (96, 128)).astype(np.float32)),
                ("dense_128/bias:0", rng.normal(0, 0.1, (128,)).astype(np.float32)),
            ],
        ),
        (
            "output",
            [
                ("output/kernel:0", rng.normal(0, 0.1, (128, 1)).astype(np.float32)),
                ("output/bias:0", rng.normal(0, 0.1, (1,)).astype(np.float32)),
            ],
        ),
    ]


def write_keras_h5(path: Path, layers: Arrays, *, chunk_names: bool = False) -> str:
    """A Keras 2 ``Model.save`` HDF5 file: model_weights/<layer>/<weight name> datasets."""
    with h5py.File(path, "w") as f:
        f.attrs["keras_version"] = b"2.15.0"
        f.attrs["backend"] = b"tensorflow"
        f.attrs["model_config"] = b'{"class_name": "Functional"}'
        root = f.create_group("model_weights")
        root.attrs["layer_names"] = np.array([n.encode() for n, _ in layers])
        for name, arrays in layers:
            group = root.create_group(name)
            names = np.array([w.encode() for w, _ in arrays], dtype="S")
            if chunk_names and len(names) > 2:
                group.attrs["weight_names0"] = names[:3]
                group.attrs["weight_names1"] = names[3:]
            else:
                group.attrs["weight_names"] = names
            for weight_name, value in arrays:
                group.create_dataset(weight_name, data=value)
    return file_sha256(path)


# ------------------------------------------------------------- Keras maths, in numpy
def layer_norm(x: np.ndarray, gamma: np.ndarray, beta: np.ndarray) -> np.ndarray:
    mean = x.mean(-1, keepdims=True)
    var = ((x - mean) ** 2).mean(-1, keepdims=True)
    return (x - mean) / np.sqrt(var + 1e-6) * gamma + beta


def keras_encoder(layers: Arrays, config: PatConfig, x: np.ndarray) -> np.ndarray:
    """The published encoder evaluated with Keras' einsum conventions (float64)."""
    flat = {n.split(":")[0]: v.astype(np.float64) for _, pairs in layers for n, v in pairs}
    b, n, p = x.shape[0], config.num_patches, config.patch_size
    position = np.arange(n)[:, None]
    freq = np.exp(np.arange(0, 96, 2) * (-math.log(10000.0) / 96))
    table = np.concatenate([np.sin(position * freq), np.cos(position * freq)], axis=1)
    h = x.reshape(b, n, p) @ flat["dense/kernel"] + flat["dense/bias"] + table
    for i in range(1, config.num_layers + 1):
        a, pre = f"encoder_layer_{i}_attention", f"encoder_layer_{i}"

        def proj(name: str, h: np.ndarray = h, a: str = a) -> np.ndarray:
            return (
                np.einsum("abc,cde->abde", h, flat[f"{a}/{name}/kernel"]) + flat[f"{a}/{name}/bias"]
            )

        q = proj("query") / math.sqrt(config.key_dim)
        k, v = proj("key"), proj("value")
        scores = np.einsum("aecd,abcd->acbe", k, q)
        scores = np.exp(scores - scores.max(-1, keepdims=True))
        probs = scores / scores.sum(-1, keepdims=True)
        context = np.einsum("acbe,aecd->abcd", probs, v)
        attention = (
            np.einsum("abcd,cde->abe", context, flat[f"{a}/attention_output/kernel"])
            + flat[f"{a}/attention_output/bias"]
        )
        x1 = layer_norm(h + attention, flat[f"{pre}_norm1/gamma"], flat[f"{pre}_norm1/beta"])
        ff = np.maximum(x1 @ flat[f"{pre}_ff1/kernel"] + flat[f"{pre}_ff1/bias"], 0.0)
        ff = ff @ flat[f"{pre}_ff2/kernel"] + flat[f"{pre}_ff2/bias"]
        h = layer_norm(x1 + ff, flat[f"{pre}_norm2/gamma"], flat[f"{pre}_norm2/beta"])
    return h


def minutes(batch: int, seed: int) -> np.ndarray:
    return np.random.default_rng(seed).normal(0, 1, (batch, 10080))


# ------------------------------------------------------------------------ tests
@pytest.mark.parametrize("config", [PAT_S, PAT_M], ids=["S", "M"])
def test_loaded_encoder_computes_what_keras_would(tmp_path: Path, config: PatConfig) -> None:
    layers = encoder_layers(config, seed=3)
    digest = write_keras_h5(tmp_path / "encoder.h5", layers)
    model, report = load_pat_h5(tmp_path / "encoder.h5", expected_sha256=digest)
    assert isinstance(model, PatEncoder)
    assert report.config == config
    assert not report.has_head
    x = minutes(2, seed=4)
    with torch.no_grad():
        ours = model(torch.from_numpy(x).float()).double().numpy()
    np.testing.assert_allclose(ours, keras_encoder(layers, config, x), atol=2e-4, rtol=0)


def test_every_tensor_is_mapped_by_name(tmp_path: Path) -> None:
    digest = write_keras_h5(tmp_path / "e.h5", encoder_layers(PAT_M, seed=1))
    model, report = load_pat_h5(tmp_path / "e.h5", expected_sha256=digest.upper())
    assert {m.torch_name for m in report.mapped} == set(dict(model.named_parameters()))
    assert len(report.mapped) == 2 + 16 * 2
    assert all(m.matched_by == "name" for m in report.mapped if ".blocks." in f".{m.torch_name}")
    by_path = {m.h5_path: m for m in report.mapped}
    query = by_path["encoder_layer_2_transformer/encoder_layer_2_attention/query/kernel:0"]
    assert query.torch_name == "blocks.1.attention.query.weight"
    assert query.keras_shape == (96, 12, 96)
    assert by_path["dense/dense/kernel:0"].torch_name == "patch_embedding.weight"
    assert "encoder_layer_1_norm2/beta:0" in report.as_text()


def test_unscoped_names_fall_back_to_keras_order(tmp_path: Path) -> None:
    scoped = write_keras_h5(tmp_path / "a.h5", encoder_layers(PAT_S, seed=5))
    bare = write_keras_h5(tmp_path / "b.h5", encoder_layers(PAT_S, seed=5, scoped=False))
    a, _ = load_pat_h5(tmp_path / "a.h5", expected_sha256=scoped)
    b, report = load_pat_h5(tmp_path / "b.h5", expected_sha256=bare)
    assert {m.matched_by for m in report.mapped} == {"order"}
    for (name, left), (_, right) in zip(
        a.state_dict().items(), b.state_dict().items(), strict=True
    ):
        assert torch.equal(left, right), name


def test_chunked_weight_names_attribute(tmp_path: Path) -> None:
    layers = encoder_layers(PAT_S, seed=6)
    digest = write_keras_h5(tmp_path / "c.h5", layers, chunk_names=True)
    model, _ = load_pat_h5(tmp_path / "c.h5", expected_sha256=digest)
    x = minutes(1, seed=7)
    with torch.no_grad():
        ours = model(torch.from_numpy(x).float()).double().numpy()
    np.testing.assert_allclose(ours, keras_encoder(layers, PAT_S, x), atol=2e-4, rtol=0)


def test_fine_tuned_file_loads_the_head(tmp_path: Path) -> None:
    layers = classifier_layers(PAT_S, seed=8)
    digest = write_keras_h5(tmp_path / "ft.h5", layers)
    model, report = load_pat_h5(tmp_path / "ft.h5", expected_sha256=digest)
    assert isinstance(model, PatClassifier)
    assert report.has_head
    x = minutes(2, seed=9)
    encoded = keras_encoder(layers[1:2], PAT_S, x).mean(axis=1)
    head = dict(pair for _, pairs in layers[4:] for pair in pairs)
    hidden = np.maximum(encoded @ head["dense_128/kernel:0"] + head["dense_128/bias:0"], 0)
    logit = (hidden @ head["output/kernel:0"] + head["output/bias:0"])[:, 0]
    with torch.no_grad():
        ours = model(torch.from_numpy(x).float()).double().numpy()
    np.testing.assert_allclose(ours, 1 / (1 + np.exp(-logit)), atol=2e-5, rtol=0)


@pytest.mark.parametrize("kind", ["encoder", "classifier"])
def test_round_trip_reproduces_the_file(tmp_path: Path, kind: str) -> None:
    layers = encoder_layers(PAT_M, 10) if kind == "encoder" else classifier_layers(PAT_S, 10)
    digest = write_keras_h5(tmp_path / "in.h5", layers)
    model, _ = load_pat_h5(tmp_path / "in.h5", expected_sha256=digest)
    written = save_pat_h5(model, tmp_path / "out.h5")
    original = read_stored_weights(tmp_path / "in.h5")
    again = read_stored_weights(tmp_path / "out.h5")
    assert [w.name for w in again] == [w.name for w in original]
    for left, right in zip(original, again, strict=True):
        assert np.array_equal(left.value, right.value), left.path
    reloaded, _ = load_pat_h5(tmp_path / "out.h5", expected_sha256=written)
    for (name, a), (_, b) in zip(
        model.state_dict().items(), reloaded.state_dict().items(), strict=True
    ):
        assert torch.equal(a, b), name


def test_digest_mismatch_is_refused(tmp_path: Path) -> None:
    digest = write_keras_h5(tmp_path / "e.h5", encoder_layers(PAT_S, seed=1))
    wrong = ("0" if digest[0] != "0" else "1") + digest[1:]
    with pytest.raises(H5DigestMismatch, match="is not the expected"):
        load_pat_h5(tmp_path / "e.h5", expected_sha256=wrong)
    with pytest.raises(ValueError, match="64 hexadecimal"):
        load_pat_h5(tmp_path / "e.h5", expected_sha256="abc")


def test_wrong_shape_missing_array_and_unknown_size_are_refused(tmp_path: Path) -> None:
    layers = encoder_layers(PAT_S, seed=2)
    arrays = layers[4][1]
    arrays[12] = (arrays[12][0], np.zeros((256, 95), np.float32))  # ff2 kernel
    digest = write_keras_h5(tmp_path / "shape.h5", layers)
    with pytest.raises(H5WeightsError, match=r"ff2/kernel:0: shape \(256, 95\)"):
        load_pat_h5(tmp_path / "shape.h5", expected_sha256=digest)

    layers = encoder_layers(PAT_S, seed=2)
    layers[4][1].pop()  # norm2 beta gone
    digest = write_keras_h5(tmp_path / "short.h5", layers)
    with pytest.raises(H5WeightsError, match="weight arrays"):
        load_pat_h5(tmp_path / "short.h5", expected_sha256=digest)

    odd = PatConfig("odd", patch_size=18, num_layers=1, num_heads=3)
    digest = write_keras_h5(tmp_path / "odd.h5", encoder_layers(odd, seed=2))
    with pytest.raises(H5WeightsError, match="not a published PAT size"):
        load_pat_h5(tmp_path / "odd.h5", expected_sha256=digest)


def test_not_a_keras_file(tmp_path: Path) -> None:
    path = tmp_path / "plain.h5"
    with h5py.File(path, "w") as f:
        f.create_dataset("x", data=np.zeros(3))
    with pytest.raises(H5WeightsError, match="layer_names"):
        load_pat_h5(path, expected_sha256=file_sha256(path))
