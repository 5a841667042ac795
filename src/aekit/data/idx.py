"""IDX files, the format of MNIST and Fashion-MNIST (``*-idx3-ubyte[.gz]``), parsed by hand.

Layout: two zero bytes, a dtype code, the number of dimensions, then one big-endian uint32 per
dimension, then the values, big-endian, row-major.
"""

from __future__ import annotations

import gzip
import math
import re
import struct
import zlib
from pathlib import Path

import numpy as np

from aekit.data.dataset import Dataset, dataset_from_array
from aekit.errors import DataError, DataNotFoundError

# dtype code -> big-endian numpy dtype
IDX_DTYPES = {
    0x08: np.dtype(">u1"),
    0x09: np.dtype(">i1"),
    0x0B: np.dtype(">i2"),
    0x0C: np.dtype(">i4"),
    0x0D: np.dtype(">f4"),
    0x0E: np.dtype(">f8"),
}
GZIP_MAGIC = b"\x1f\x8b"
IDX_NAME = re.compile(r"idx\d+-ubyte(\.gz)?$", re.IGNORECASE)


def is_idx_path(path: Path) -> bool:
    """True when the file name looks like an IDX file (``...idx3-ubyte`` or ``...idx3-ubyte.gz``)."""
    return IDX_NAME.search(path.name) is not None


def read_idx(path: Path) -> np.ndarray:
    """Read an IDX file (gzipped or not) into an array with its native dtype and shape.

    Args:
        path: the file.

    Returns:
        The array, read with ``np.frombuffer`` (read-only view on the decompressed bytes).

    Raises:
        DataNotFoundError: the file does not exist.
        DataError: the file is unreadable, not gzip-complete, or its header does not match its size.
    """
    data = _read_bytes(path)
    if len(data) < 4:
        raise DataError(f"{path}: not an IDX file: {len(data)} bytes, shorter than the 4-byte header")
    zero, code, ndim = data[0:2], data[2], data[3]
    if zero != b"\x00\x00" or code not in IDX_DTYPES:
        raise DataError(
            f"{path}: not an IDX file: magic bytes {data[:4].hex()}; expected 0000 followed by a "
            f"dtype code in {sorted(hex(c) for c in IDX_DTYPES)} and the number of dimensions"
        )
    header_size = 4 + 4 * ndim
    if ndim == 0 or len(data) < header_size:
        raise DataError(
            f"{path}: truncated IDX header: {ndim} dimensions need {header_size} header bytes, "
            f"file has {len(data)}"
        )
    dims = struct.unpack(f">{ndim}I", data[4:header_size])
    dtype = IDX_DTYPES[code]
    expected = math.prod(dims) * dtype.itemsize  # Python ints: no overflow
    present = len(data) - header_size
    if present != expected:
        problem = "truncated" if present < expected else "has trailing bytes"
        raise DataError(
            f"{path}: IDX file {problem}: header says shape {dims} of {dtype.name} "
            f"({expected} bytes of values) but {present} bytes follow the header"
        )
    array = np.frombuffer(data, dtype=dtype, offset=header_size).reshape(dims)
    return array.astype(dtype.newbyteorder("="), copy=False)


def labels_path_for(images_path: Path) -> Path | None:
    """The sibling labels file of an IDX images file, if one exists.

    ``train-images-idx3-ubyte.gz`` -> ``train-labels-idx1-ubyte[.gz]``;
    ``train-images.idx3-ubyte`` -> ``train-labels.idx1-ubyte[.gz]``.

    Args:
        images_path: path of the images file.

    Returns:
        The labels file path, or None when there is none.
    """
    name = re.sub(r"\.gz$", "", images_path.name, flags=re.IGNORECASE)
    stem = re.sub(r"idx\d+-ubyte$", "idx1-ubyte", name, flags=re.IGNORECASE)
    stem = stem.replace("images", "labels").replace("Images", "Labels")
    if stem == name:
        return None
    for candidate in (stem, stem + ".gz"):
        path = images_path.with_name(candidate)
        if path.is_file():
            return path
    return None


def load_idx(path: Path, source: str | None = None) -> Dataset:
    """Load an IDX data file, with labels from its sibling labels file when present.

    Args:
        path: the images (or data) file.
        source: name for messages; defaults to the path.

    Returns:
        The dataset: images for rank 3, tabular for rank 2.

    Raises:
        DataNotFoundError: the file does not exist.
        DataError: malformed file, wrong rank, or labels that do not match the images.
    """
    source = source or str(path)
    array = read_idx(path)
    labels = None
    labels_path = labels_path_for(path)
    if labels_path is not None:
        labels = _read_labels(labels_path, array.shape[0] if array.ndim else 0, path)
    return dataset_from_array(array, source, labels)


def _read_labels(path: Path, n_samples: int, images_path: Path) -> np.ndarray:
    """Read a 1-D integer IDX labels file and check it has one label per sample."""
    labels = read_idx(path)
    if labels.ndim != 1 or not np.issubdtype(labels.dtype, np.integer):
        raise DataError(
            f"{path}: a labels file must hold a 1-D integer array. "
            f"Received: shape {labels.shape}, dtype {labels.dtype}"
        )
    if labels.shape[0] != n_samples:
        raise DataError(
            f"{path} has {labels.shape[0]} labels but {images_path} has {n_samples} samples"
        )
    return labels.astype(np.int64)


def _read_bytes(path: Path) -> bytes:
    """The file's bytes, decompressed when they start with the gzip magic."""
    try:
        raw = path.read_bytes()
    except FileNotFoundError as err:
        raise DataNotFoundError(f"{path}: no such file") from err
    except OSError as err:
        raise DataError(f"{path}: cannot read the file: {err}") from err
    if not raw.startswith(GZIP_MAGIC):
        return raw
    try:
        return gzip.decompress(raw)
    except (OSError, EOFError, zlib.error) as err:
        raise DataError(f"{path}: corrupt or truncated gzip data: {err}") from err
