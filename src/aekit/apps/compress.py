"""Compress data into small files with a trained autoencoder, and back.

    report = compress("runs/fm30", "fashion-mnist:test", "test.aez", bits=8)
    x = decompress("test.aez")               # the model is found from the file's hint
    x = decompress("test.aez", "runs/fm30")  # or named; a different model is refused

The file holds the quantized codes only (format: :mod:`aekit.apps.codec`); decoding needs the
model. Reported sizes count the whole file (header and checksum included); the raw size is one
byte per value for pixel data (8-bit images) and four (float32) for anything else. Errors (MSE,
PSNR) are measured in the space the model works in: pixels in [0, 1], tabular data
standardized; PSNR's peak is 1 for images and the scaled data's range otherwise.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from aekit.api import Autoencoder, as_dataset
from aekit.apps.codec import (MAX_HEADER_BYTES, MAX_PAYLOAD_BYTES, Quantized, check_bits,
                              decode_file, encode_file, model_fingerprint, quantize)
from aekit.data import Dataset, check_n_features, load
from aekit.errors import FormatError
from aekit.serialization import atomic_write_bytes


@dataclass(frozen=True)
class CompressionReport:
    """Sizes and errors of one compressed file."""

    n_samples: int
    n_features: int
    latent_dim: int
    bits: int
    file_bytes: int
    bits_per_sample: float
    bits_per_pixel: float | None
    raw_bytes: int
    raw_dtype: str
    ratio: float  # raw bytes / file bytes
    mse: float  # after quantization, model space
    psnr_db: float
    mse_unquantized: float  # the same model without quantization

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dictionary."""
        return asdict(self)

    def format(self) -> str:
        """Human-readable lines."""
        bpp = f", {self.bits_per_pixel:.4f} bits/pixel" if self.bits_per_pixel is not None \
            else ""
        return (f"{self.n_samples} samples x {self.n_features} values -> {self.file_bytes} bytes "
                f"({self.bits_per_sample:.1f} bits/sample{bpp}); raw {self.raw_dtype}: "
                f"{self.raw_bytes} bytes, ratio {self.ratio:.1f}x\n"
                f"reconstruction: MSE {self.mse:.5g} (unquantized {self.mse_unquantized:.5g}, "
                f"{100 * (self.mse / max(self.mse_unquantized, 1e-30) - 1):+.2f}%), "
                f"PSNR {self.psnr_db:.2f} dB")


def _as_model(model: Autoencoder | str | Path) -> tuple[Autoencoder, str | None]:
    if isinstance(model, Autoencoder):
        return model, None
    return Autoencoder.load(model), str(Path(model).resolve())


def _as_data(data: Any) -> Dataset:
    return load(data) if isinstance(data, (str, Path)) else as_dataset(data)


def compress_array(ae: Autoencoder, data: Any, bits: int = 8, model_dir: str | None = None
                   ) -> tuple[bytes, CompressionReport]:
    """Encode, quantize and entropy-code ``data``; measure what it costs and loses.

    Args:
        ae: a trained autoencoder.
        data: samples (array, tensor or :class:`Dataset`).
        bits: bits per code value, 2..16.
        model_dir: the model's folder, stored as a hint for decompression.

    Returns:
        The file's bytes and its report.

    Raises:
        ConfigError: ``bits`` out of range. DataError: data that does not fit the model.
    """
    bits = check_bits(bits)
    ds = _as_data(data)
    check_n_features(ds, ae._require_fitted().n_features, "data to compress")
    codes = ae.encode(ds)
    quantized = quantize(codes, bits)
    blob = encode_file(quantized, ae.sample_shape, ae.data_kind,
                       model_fingerprint(ae.model.state_dict()), model_dir)
    x_scaled = ae.scaler.transform(ds.x)
    x_hat_q = ae.scaler.transform(ae.decode(quantized.dequantize()))
    x_hat = ae.scaler.transform(ae.decode(codes))
    return blob, _report(ds, ae, bits, len(blob), x_scaled, x_hat_q, x_hat)


def _report(ds: Dataset, ae: Autoencoder, bits: int, n_bytes: int, x: np.ndarray,
            x_hat_q: np.ndarray, x_hat: np.ndarray) -> CompressionReport:
    n, f = ds.x.shape
    is_image = ae.data_kind == "image"
    raw_bytes = n * f * (1 if is_image else 4)
    mse_q = _mse(x, x_hat_q)
    peak = 1.0 if is_image else float(x.max() - x.min()) if x.size else 1.0
    return CompressionReport(
        n_samples=n, n_features=f, latent_dim=ae.config.model.latent_dim, bits=bits,
        file_bytes=n_bytes, bits_per_sample=8 * n_bytes / max(n, 1),
        bits_per_pixel=8 * n_bytes / max(n * f, 1) if is_image else None,
        raw_bytes=raw_bytes, raw_dtype="uint8" if is_image else "float32",
        ratio=raw_bytes / n_bytes, mse=mse_q, psnr_db=psnr(mse_q, peak),
        mse_unquantized=_mse(x, x_hat))


def _mse(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.mean(np.square(a.astype(np.float64) - b.astype(np.float64)))) if a.size \
        else 0.0


def psnr(mse: float, peak: float = 1.0) -> float:
    """Peak signal-to-noise ratio in dB (``inf`` for a perfect reconstruction)."""
    return math.inf if mse <= 0 else 10.0 * math.log10(peak * peak / mse)


def compress(model: Autoencoder | str | Path, data: Any, out: str | Path, bits: int = 8
             ) -> CompressionReport:
    """Compress ``data`` with ``model`` into the file ``out`` (written atomically).

    Args:
        model: a trained :class:`Autoencoder` or its folder.
        data: a data spec (``"fashion-mnist:test"``, a path) or an array.
        out: the file to write (``.aez`` by convention).
        bits: bits per code value, 2..16.
    """
    ae, model_dir = _as_model(model)
    blob, report = compress_array(ae, data, bits, model_dir)
    atomic_write_bytes(out, blob)
    return report


def read_compressed(path: str | Path) -> tuple[Quantized, dict[str, Any]]:
    """Read and check an ``.aez`` file (size-checked before reading)."""
    path = Path(path)
    try:
        size = path.stat().st_size
        limit = MAX_PAYLOAD_BYTES + MAX_HEADER_BYTES + 64
        if size > limit:
            raise FormatError(f"{path}: {size} bytes, over the {limit}-byte limit")
        data = path.read_bytes()
    except OSError as exc:
        raise FormatError(f"{path}: cannot be read ({exc})") from None
    try:
        return decode_file(data)
    except FormatError as exc:
        raise FormatError(f"{path}: {exc}") from None


def decompress(source: str | Path, model: Autoencoder | str | Path | None = None
               ) -> np.ndarray:
    """Decode an ``.aez`` file back to data, in the units the model was trained on.

    Args:
        source: the compressed file.
        model: the model (or its folder); default: the folder recorded in the file.

    Returns:
        (n_samples, n_features) float32.

    Raises:
        FormatError: a malformed file, or a model other than the one that wrote it.
    """
    quantized, header = read_compressed(source)
    if model is None:
        if not header["model_dir"]:
            raise FormatError(f"{source}: the file names no model folder; pass the model "
                              "(--model DIR)")
        model = header["model_dir"]
    ae, _ = _as_model(model)
    if model_fingerprint(ae.model.state_dict()) != header["model_sha256"]:
        raise FormatError(f"{source}: written by the model with fingerprint "
                          f"{header['model_sha256'][:12]}..., not by this model; decoding "
                          "with another model would return garbage")
    return ae.decode(quantized.dequantize())
