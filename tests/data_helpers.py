"""Tiny data files for the data tests, written from scratch in a temporary folder."""

from __future__ import annotations

import gzip
import struct
from pathlib import Path

import numpy as np
from PIL import Image

IDX_CODES = {np.dtype(np.uint8): 0x08, np.dtype(np.int16): 0x0B, np.dtype(np.float32): 0x0D}


def idx_bytes(array: np.ndarray) -> bytes:
    """The IDX encoding of an array: zero, zero, dtype code, rank, big-endian dims, values."""
    code = IDX_CODES[array.dtype]
    header = struct.pack(">BBBB", 0, 0, code, array.ndim) + struct.pack(f">{array.ndim}I", *array.shape)
    return header + array.astype(array.dtype.newbyteorder(">")).tobytes()


def write_idx(path: Path, array: np.ndarray, gz: bool = False) -> Path:
    """Write ``array`` as an IDX file, gzipped when ``gz``."""
    data = idx_bytes(array)
    path.write_bytes(gzip.compress(data) if gz else data)
    return path


def tiny_images(n: int = 5, h: int = 4, w: int = 3, seed: int = 0) -> np.ndarray:
    """(n, h, w) uint8 images."""
    return np.random.default_rng(seed).integers(0, 256, size=(n, h, w), dtype=np.uint8)


def write_fashion_like(folder: Path, n_train: int = 6, n_test: int = 4) -> None:
    """IDX files named like Fashion-MNIST's (gzipped), 28x28, with labels."""
    for prefix, n in (("train", n_train), ("t10k", n_test)):
        write_idx(folder / f"{prefix}-images-idx3-ubyte.gz", tiny_images(n, 28, 28), gz=True)
        labels = (np.arange(n) % 10).astype(np.uint8)
        write_idx(folder / f"{prefix}-labels-idx1-ubyte.gz", labels, gz=True)


def write_png(path: Path, pixels: np.ndarray) -> Path:
    """Save (h, w) uint8 as a grey PNG or (h, w, 3) as an RGB PNG."""
    Image.fromarray(pixels).save(path)  # (h, w) -> "L", (h, w, 3) -> "RGB"
    return path
