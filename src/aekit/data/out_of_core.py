"""Training data bigger than memory: a ``.npy`` file read in chunks through its memory map.

Rule: ``aekit train --data FILE.npy`` streams the file when ``AEKIT_OUT_OF_CORE=1``, or when
the file is larger than ``AEKIT_OUT_OF_CORE_BYTES`` (default: a quarter of the machine's
physical memory); ``AEKIT_OUT_OF_CORE=0`` never streams. Everything else is loaded in memory.

The file is opened with ``np.load(mmap_mode="r")`` (header, shape, dtype, data offset); chunks
of about ``chunk_bytes`` are then read contiguously with plain file reads, so that only one
chunk (and its float32 copy) is ever held: pages of a memory map would stay in the process's
resident set after being touched. Each epoch shuffles the order of the chunks and the order of
the rows inside each chunk; every row is visited once per epoch. Validation (finite values) and
the scaler's statistics are computed in streaming passes over the same chunks.
"""

from __future__ import annotations

import hashlib
import math
import os
from pathlib import Path
from typing import Iterator

import numpy as np
import torch

from aekit.data.dataset import Dataset, pixel_max_for
from aekit.data.scaling import Scaler
from aekit.errors import DataError

STREAM_ENV = "AEKIT_OUT_OF_CORE"
THRESHOLD_ENV = "AEKIT_OUT_OF_CORE_BYTES"
CHUNK_BYTES = 64 * 2**20
STATS_BLOCK_BYTES = 4 * 2**20  # statistics passes read smaller blocks: float64 temporaries


def stream_threshold_bytes() -> int:
    """Files larger than this stream (``AEKIT_OUT_OF_CORE_BYTES``, default RAM / 4)."""
    if os.environ.get(THRESHOLD_ENV):
        return int(os.environ[THRESHOLD_ENV])
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") // 4
    except (ValueError, OSError, AttributeError):
        return 4 * 2**30


def should_stream(spec: str) -> bool:
    """True when ``--data spec`` is a ``.npy`` file to train on out of core (module rule)."""
    path = Path(spec)
    if path.suffix.lower() != ".npy" or not path.is_file():
        return False
    forced = os.environ.get(STREAM_ENV, "").strip()
    if forced in ("0", "1"):
        return forced == "1"
    return path.stat().st_size > stream_threshold_bytes()


class ChunkedNpy:
    """A ``.npy`` file of samples in rows, read chunk by chunk (never whole).

    Args:
        path: the file: (n, features) or an image stack (n, h, w[, c]) of a numeric dtype.
        chunk_bytes: about how many bytes of the file one chunk holds (at least one row).

    Raises:
        DataError: not a readable ``.npy``, not C-ordered, a non-numeric dtype or a wrong rank.
    """

    def __init__(self, path: str | Path, chunk_bytes: int = CHUNK_BYTES) -> None:
        self.path = Path(path)
        try:
            mapped = np.load(self.path, mmap_mode="r", allow_pickle=False)
        except (ValueError, OSError, EOFError) as err:
            raise DataError(f"{self.path}: cannot open as .npy for streaming: {err}") from err
        if mapped.ndim not in (2, 3, 4) or mapped.shape[0] == 0 or \
                mapped.dtype.kind not in "uif" or not mapped.flags.c_contiguous:
            raise DataError(f"{self.path}: out-of-core training needs a C-ordered numeric array "
                            "(samples, features) or (samples, h, w[, c]). Received: "
                            f"{mapped.dtype} shape {mapped.shape}, "
                            f"{'C' if mapped.flags.c_contiguous else 'Fortran'} order")
        self.shape = tuple(int(v) for v in mapped.shape)
        self.dtype = mapped.dtype
        self.offset = int(mapped.offset)
        del mapped  # only the header was needed: rows are read with plain reads
        self.n_samples = self.shape[0]
        self.n_features = math.prod(self.shape[1:])
        self.sample_shape = self.shape[1:]
        row_bytes = self.n_features * self.dtype.itemsize
        self.chunk_rows = max(1, min(self.n_samples, chunk_bytes // row_bytes))

    @property
    def n_chunks(self) -> int:
        """Number of chunks (the last may be shorter)."""
        return math.ceil(self.n_samples / self.chunk_rows)

    def chunk_bounds(self, chunk: int) -> tuple[int, int]:
        """Row range ``[start, stop)`` of ``chunk``."""
        start = chunk * self.chunk_rows
        return start, min(start + self.chunk_rows, self.n_samples)

    def read_rows(self, start: int, stop: int) -> np.ndarray:
        """Rows ``[start, stop)`` as a (rows, n_features) array of the file's dtype."""
        row_bytes = self.n_features * self.dtype.itemsize
        with open(self.path, "rb") as f:
            f.seek(self.offset + start * row_bytes)
            rows = np.fromfile(f, dtype=self.dtype, count=(stop - start) * self.n_features)
        if rows.size != (stop - start) * self.n_features:
            raise DataError(f"{self.path}: the file is shorter than its header says "
                            f"({self.shape})")
        return rows.reshape(stop - start, self.n_features)

    def spread_rows(self, n: int, pieces: int = 16) -> np.ndarray:
        """About ``n`` rows read as ``pieces`` runs of rows spread evenly over the file: a
        sample that a file sorted by class or time still covers, at the cost of a few reads."""
        n = max(1, min(n, self.n_samples))
        pieces = max(1, min(pieces, n))
        per = n // pieces
        starts = np.linspace(0, self.n_samples - per, pieces).astype(int)
        return np.concatenate([self.read_rows(int(a), int(a) + per) for a in starts])

    def sample(self, n: int) -> Dataset:
        """:meth:`spread_rows` as a :class:`Dataset` (raw values, as the file holds them)."""
        image = len(self.shape) > 2
        return Dataset(np.ascontiguousarray(self.spread_rows(n), dtype=np.float32),
                       self.sample_shape, "image" if image else "tabular", str(self.path),
                       None, pixel_max_for(self.dtype) if image else None)

    def blocks(self, block_bytes: int = STATS_BLOCK_BYTES) -> Iterator[tuple[int, np.ndarray]]:
        """``(first_row, rows)`` for consecutive blocks of about ``block_bytes``, in file order
        (the streaming passes of validation and statistics)."""
        step = max(1, block_bytes // (self.n_features * self.dtype.itemsize))
        for start in range(0, self.n_samples, step):
            yield start, self.read_rows(start, min(start + step, self.n_samples))

    def check_finite(self) -> None:
        """Streaming validation: every value finite.

        Raises:
            DataError: naming the first row with a NaN or infinite value.
        """
        if self.dtype.kind != "f":
            return
        for start, rows in self.blocks():
            bad = ~np.isfinite(rows).all(axis=1)
            if bad.any():
                raise DataError(f"{self.path}: row {start + int(np.argmax(bad))} holds NaN or "
                                "infinite values; clean the file or drop those rows")

    def fit_scaler(self, mode: str) -> Scaler:
        """A fitted :class:`Scaler` from streaming passes (``auto``: unit for uint8 images,
        minmax for other images, standard for tables).

        Raises:
            ConfigError: ``unit`` for data that is not uint8.
        """
        image = len(self.shape) > 2
        pixel_max = 255.0 if self.dtype == np.uint8 else None
        if mode == "auto":
            mode = ("unit" if pixel_max else "minmax") if image else "standard"
        scaler = Scaler(mode, pixel_max if mode == "unit" else None)
        if mode == "standard":
            total = np.zeros(self.n_features)
            for _, rows in self.blocks():
                total += rows.sum(axis=0, dtype=np.float64)
            mean = total / self.n_samples
            squares = np.zeros(self.n_features)
            for _, rows in self.blocks():
                deviation = rows.astype(np.float64) - mean
                squares += np.einsum("ij,ij->j", deviation, deviation)
            std = np.sqrt(squares / self.n_samples)
            constant = (std == 0) | (std <= 10 * np.finfo(np.float64).eps * np.abs(mean))
            scaler.shift, scaler.scale = mean, np.where(constant, 1.0, std)
        elif mode == "minmax":
            low = np.full(self.n_features, np.inf)
            high = np.full(self.n_features, -np.inf)
            for _, rows in self.blocks():
                low = np.minimum(low, rows.min(axis=0))
                high = np.maximum(high, rows.max(axis=0))
            span = high - low
            scaler.shift, scaler.scale = low, np.where(span > 0, span, 1.0)
        return scaler


class StreamedTrainingData:
    """What :class:`aekit.training.trainer.Trainer` trains on when data does not fit in memory.

    Args:
        source: the chunked file. scaler: a fitted scaler applied chunk by chunk.
        device: where batches go.
    """

    def __init__(self, source: ChunkedNpy, scaler: Scaler,
                 device: torch.device | str = "cpu") -> None:
        self.source = source
        self.scaler = scaler
        self.device = torch.device(device)
        self.shape = (source.n_samples, source.n_features)

    def __len__(self) -> int:
        return self.source.n_samples

    def steps_per_epoch(self, batch_size: int, drop_single: bool = False) -> int:
        """Batches never straddle two chunks: the sum over chunks of ceil(rows / batch)
        (less a last batch of one row per chunk with ``drop_single``, for batch norm)."""
        return sum(_n_batches(stop - start, batch_size, drop_single)
                   for start, stop in map(self.source.chunk_bounds, range(self.source.n_chunks)))

    def fingerprint(self) -> dict[str, object]:
        """Identifies the data for ``--resume`` without reading it all: shape, dtype, and a
        SHA-256 of the file's size, modification time and first chunk."""
        stat = self.source.path.stat()
        first = self.source.read_rows(*self.source.chunk_bounds(0))
        digest = hashlib.sha256(f"{stat.st_size}:{stat.st_mtime_ns}:".encode()
                                + first.tobytes()).hexdigest()
        return {"shape": list(self.shape), "dtype": str(self.source.dtype), "sha256": digest}

    def epoch_batches(self, generator: torch.Generator, batch_size: int, shuffle: bool = True,
                      first: int = 0, drop_single: bool = False) -> Iterator[torch.Tensor]:
        """This epoch's batches, (batch, n_features) float32 scaled tensors.

        The chunk order, then each chunk's row order, are drawn from ``generator`` as the epoch
        goes, so the same generator state replays the same epoch. Batches before ``first`` are
        skipped (a resume) without reading their chunks, but their random draws are made.
        """
        n_chunks = self.source.n_chunks
        chunk_order = torch.randperm(n_chunks, generator=generator) if shuffle \
            else torch.arange(n_chunks)
        step = 0
        for chunk in chunk_order.tolist():
            start, stop = self.source.chunk_bounds(chunk)
            rows = stop - start
            row_order = torch.randperm(rows, generator=generator) if shuffle \
                else torch.arange(rows)
            n_batches = _n_batches(rows, batch_size, drop_single)
            if step + n_batches <= first:
                step += n_batches
                continue
            x = torch.from_numpy(self.scaler.transform(self.source.read_rows(start, stop)))
            x = x.to(self.device)
            for b in range(n_batches):
                if step >= first:
                    yield x[row_order[b * batch_size:(b + 1) * batch_size]]
                step += 1


def _n_batches(rows: int, batch_size: int, drop_single: bool) -> int:
    """Batches of a chunk of ``rows`` rows (a last batch of one row dropped on request)."""
    return math.ceil(rows / batch_size) - int(drop_single and rows % batch_size == 1)
