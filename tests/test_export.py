"""``aekit export --format onnx``: the graphs run in onnxruntime and match PyTorch."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

import aekit
from aekit.cli import main
from aekit.errors import ConfigError, FormatError
from aekit.export import export_model

ort = pytest.importorskip("onnxruntime")


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny model on standardized tabular data (the scaler has per-feature statistics)."""
    rng = np.random.default_rng(0)
    x = (rng.normal(size=(150, 2)) @ rng.normal(size=(2, 7)) * 20 + 100).astype(np.float32)
    ae = aekit.Autoencoder(latent_dim=3, hidden=(16,), epochs=3, progress=False, seed=0,
                           batch_norm=True, threads=1, diagnostics_every_steps=None)
    ae.fit(x)
    out = tmp_path_factory.mktemp("model")
    ae.save(out)
    np.save(out / "x.npy", x)
    return out


def _run(path: Path, name: str, value: np.ndarray) -> np.ndarray:
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    return session.run(None, {name: value})[0]


def test_onnx_matches_pytorch_in_data_units(model_dir: Path, tmp_path: Path) -> None:
    assert main(["export", "--model", str(model_dir), "--out", str(tmp_path)]) == 0
    ae = aekit.load(model_dir)
    x = np.load(model_dir / "x.npy")[:37]
    z = _run(tmp_path / "encoder.onnx", "x", x)
    np.testing.assert_allclose(z, ae.encode(x), rtol=1e-5, atol=1e-5)
    x_hat = _run(tmp_path / "decoder.onnx", "z", z)
    ref = ae.decode(z)
    np.testing.assert_allclose(x_hat, ref, rtol=1e-5, atol=1e-5 * float(np.abs(ref).max()))
    info = json.loads((tmp_path / "export.json").read_text())
    assert info["scaling_included"] and info["latent_dim"] == 3 and info["n_features"] == 7


def test_onnx_without_scaling_works_in_scaled_space(model_dir: Path, tmp_path: Path) -> None:
    export_model(model_dir, tmp_path, include_scaling=False)
    ae = aekit.load(model_dir)
    x = np.load(model_dir / "x.npy")[:5]
    z = _run(tmp_path / "encoder.onnx", "x", ae.scaler.transform(x))
    np.testing.assert_allclose(z, ae.encode(x), rtol=1e-5, atol=1e-5)
    x_hat = _run(tmp_path / "decoder.onnx", "z", z)
    np.testing.assert_allclose(ae.scaler.inverse_transform(x_hat), ae.decode(z), rtol=1e-5,
                               atol=1e-3)


def test_export_rejects_unknown_format_and_missing_model(model_dir: Path, tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="`--format` must be one of onnx. Received: "
                                          "--format 'tflite'"):
        export_model(model_dir, tmp_path, "tflite")
    with pytest.raises(FormatError, match="no such model folder"):
        export_model(tmp_path / "nothing", tmp_path)


def test_conv_model_exports_too(tmp_path: Path) -> None:
    images = np.random.default_rng(1).integers(0, 256, size=(40, 6, 7), dtype=np.uint8)
    ae = aekit.Autoencoder(latent_dim=2, kind="conv", conv_channels=(4,), epochs=2,
                           progress=False, seed=0, threads=1, diagnostics_every_steps=None)
    ae.fit(images)
    ae.save(tmp_path / "m")
    export_model(tmp_path / "m", tmp_path / "onnx")
    x = images.reshape(40, -1)[:9].astype(np.float32)
    z = _run(tmp_path / "onnx" / "encoder.onnx", "x", x)
    np.testing.assert_allclose(z, ae.encode(x), rtol=1e-5, atol=1e-5)
    x_hat = _run(tmp_path / "onnx" / "decoder.onnx", "z", z)
    np.testing.assert_allclose(x_hat, ae.decode(z), rtol=1e-5, atol=255 * 1e-5)
