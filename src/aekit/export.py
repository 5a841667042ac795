"""``aekit export``: a trained model's encoder and decoder as ONNX files.

``encoder.onnx`` maps a batch of samples ``x`` (batch, n_features) to codes ``z``
(batch, latent_dim); ``decoder.onnx`` maps codes back to samples. By default the model's feature
scaling (pixels / 255, or the training split's mean and std) is written into the graphs as
constant ops, so both work in the data's own units exactly like ``Autoencoder.encode`` /
``decode``. With ``include_scaling=False`` the graphs work in the scaled space the network sees
(the caller applies ``(x - shift) / scale`` and its inverse). ``export.json`` beside them says
which, and holds the shapes and the scaling constants.
"""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from aekit.errors import ConfigError
from aekit.serialization import write_json

FORMATS = ("onnx",)
OPSET = 17


class _Affine(nn.Module):
    """``(x - shift) / scale`` (``inverse=False``) or ``x * scale + shift``, as constants."""

    def __init__(self, shift: np.ndarray | None, scale: np.ndarray | None, inverse: bool) -> None:
        super().__init__()
        self.inverse = inverse
        self.active = shift is not None
        if self.active:
            self.register_buffer("shift", torch.as_tensor(shift, dtype=torch.float32))
            self.register_buffer("scale", torch.as_tensor(scale, dtype=torch.float32))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self.active:
            return x
        return x * self.scale + self.shift if self.inverse else (x - self.shift) / self.scale


class EncoderGraph(nn.Module):
    """Scaling (optional) then the model's encoder: (batch, n_features) -> (batch, latent_dim)."""

    def __init__(self, model: nn.Module, scaling: _Affine) -> None:
        super().__init__()
        self.model, self.scaling = model, scaling

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.model.encode(self.scaling(x))


class DecoderGraph(nn.Module):
    """The model's decoder then the inverse scaling (optional): codes -> samples."""

    def __init__(self, model: nn.Module, scaling: _Affine) -> None:
        super().__init__()
        self.model, self.scaling = model, scaling

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return self.scaling(self.model.decode(z))


def scaler_constants(scaler: Any) -> tuple[np.ndarray | None, np.ndarray | None]:
    """The scaler as float32 ``(shift, scale)`` vectors, or (None, None) for the identity."""
    if scaler.mode == "none":
        return None, None
    if scaler.mode == "unit":
        return np.zeros(1, np.float32), np.full(1, scaler.pixel_max, np.float32)
    return scaler.shift.astype(np.float32), scaler.scale.astype(np.float32)


def _export_one(module: nn.Module, example: torch.Tensor, path: Path, names: tuple[str, str]
                ) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the TorchScript exporter's deprecation notices
        torch.onnx.export(module, (example,), str(path), dynamo=False, opset_version=OPSET,
                          input_names=[names[0]], output_names=[names[1]],
                          dynamic_axes={names[0]: {0: "batch"}, names[1]: {0: "batch"}})


def export_onnx(model_dir: str | Path, out_dir: str | Path, include_scaling: bool = True
                ) -> dict[str, Any]:
    """Write ``encoder.onnx``, ``decoder.onnx`` and ``export.json`` into ``out_dir``.

    Args:
        model_dir: a model (run) folder.
        out_dir: where to write (created).
        include_scaling: put the feature scaling into the graphs (data units in and out).

    Returns:
        The contents of ``export.json``.

    Raises:
        FormatError: the model folder is missing or malformed.
        ConfigError: the ``onnx`` package is not installed.
    """
    import aekit
    from aekit.optional import require

    require("onnx", "export", "aekit export --format onnx")
    ae = aekit.load(model_dir)
    model = ae.model.cpu().eval()
    shift, scale = scaler_constants(ae.scaler) if include_scaling else (None, None)
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    n_features, latent_dim = model.n_features, model.cfg.latent_dim
    with torch.no_grad():
        _export_one(EncoderGraph(model, _Affine(shift, scale, inverse=False)),
                    torch.zeros(2, n_features), out_dir / "encoder.onnx", ("x", "z"))
        _export_one(DecoderGraph(model, _Affine(shift, scale, inverse=True)),
                    torch.zeros(2, latent_dim), out_dir / "decoder.onnx", ("z", "x"))
    info = {"format": "onnx", "opset": OPSET, "model": str(model_dir),
            "n_features": n_features, "latent_dim": latent_dim,
            "sample_shape": list(ae.sample_shape), "scaling_included": include_scaling,
            "scaler": ae.scaler.to_dict(),
            "encoder": {"file": "encoder.onnx", "input": "x", "output": "z"},
            "decoder": {"file": "decoder.onnx", "input": "z", "output": "x"}}
    write_json(out_dir / "export.json", info)
    return info


def export_model(model_dir: str | Path, out_dir: str | Path, fmt: str = "onnx",
                 include_scaling: bool = True) -> dict[str, Any]:
    """Export a model in format ``fmt`` (only ``onnx`` for now).

    Raises:
        ConfigError: unknown format.
    """
    if fmt not in FORMATS:
        raise ConfigError(f"`--format` must be one of {', '.join(FORMATS)}. Received: "
                          f"--format {fmt!r}")
    return export_onnx(model_dir, out_dir, include_scaling)
