"""Training data bigger than memory: a ``.npy`` file read in chunks through plain file reads.

Rule: ``aekit train --data FILE.npy`` streams the file when ``AEKIT_OUT_OF_CORE=1``, or when
the file is larger than ``AEKIT_OUT_OF_CORE_BYTES`` (default: a quarter of the machine's
physical memory); ``AEKIT_OUT_OF_CORE=0`` never streams. Everything else is loaded in memory.

The file is opened with ``np.load(mmap_mode="r")`` (header, shape, dtype, data offset); chunks
of about ``chunk_bytes`` are then read contiguously with plain file reads, so that only one
chunk (and its float32 copy) is ever held: pages of a memory map would stay in the process's
resident set after being touched. Rows come out as the in-memory loader makes them: float32,
image stacks ``(n, h, w, c)`` channels first.

Which rows are trained on is the caller's decision (:mod:`aekit.pipeline.streamed` asks
:func:`aekit.pipeline.split_plan`): the held rows (validation, test) are a short sorted index,
skipped inside each chunk by the training passes and gathered into memory by :meth:`gather`.
Each epoch shuffles the order of the chunks and the order of the training rows inside each
chunk; every training row is visited once per epoch. Validation (finite values) and the
statistics of the training rows are computed in streaming passes over the same file.
"""

from __future__ import annotations

import hashlib
import math
import os
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO, Iterator

import numpy as np
import torch

from aekit.data.dataset import CHANNEL_COUNTS, Dataset, pixel_max_for
from aekit.data.scaling import Scaler
from aekit.errors import DataError

STREAM_ENV = "AEKIT_OUT_OF_CORE"
THRESHOLD_ENV = "AEKIT_OUT_OF_CORE_BYTES"
CHUNK_BYTES = 64 * 2**20
STATS_BLOCK_BYTES = 4 * 2**20  # statistics passes read smaller blocks: float64 temporaries
NO_ROWS = np.zeros(0, dtype=np.int64)


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


@dataclass(frozen=True)
class ColumnStats:
    """Per-feature statistics of a set of rows from one streaming pass (float64, of the rows'
    float32 values, as the in-memory scaler sees them)."""

    n_rows: int
    low: np.ndarray
    high: np.ndarray
    total: np.ndarray

    @property
    def mean(self) -> np.ndarray:
        """Per-feature mean."""
        return self.total / max(1, self.n_rows)


def held_mask(held: np.ndarray, start: int, stop: int) -> np.ndarray | None:
    """Boolean mask of the rows of ``[start, stop)`` NOT in ``held`` (sorted row numbers), or
    None when none of them is held."""
    lo, hi = np.searchsorted(held, (start, stop))
    if lo == hi:
        return None
    keep = np.ones(stop - start, dtype=bool)
    keep[held[lo:hi] - start] = False
    return keep


class ChunkedNpy:
    """A ``.npy`` file of samples in rows, read chunk by chunk (never whole).

    Attributes:
        sample_shape, kind, pixel_max: as the in-memory :class:`Dataset` of the file has them
            (images channels first; ``pixel_max`` 255 for uint8 images).

    Args:
        path: the file: (n, features) or an image stack (n, h, w[, c]) of a numeric dtype.
        chunk_bytes: about how many bytes of the file one chunk holds (at least one row).

    Raises:
        DataError: not a readable ``.npy``, not C-ordered, a non-numeric dtype, a wrong rank
            or an unsupported channel count.
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
        self.kind = "image" if len(self.shape) > 2 else "tabular"
        self.pixel_max = pixel_max_for(self.dtype) if self.kind == "image" else None
        self.sample_shape = self._sample_shape()
        row_bytes = self.n_features * self.dtype.itemsize
        self.chunk_rows = max(1, min(self.n_samples, chunk_bytes // row_bytes))

    def _sample_shape(self) -> tuple[int, ...]:
        """One sample's shape as the in-memory loader stores it (channels first; one channel
        is greyscale ``(h, w)``)."""
        if len(self.shape) < 4:
            return self.shape[1:]
        h, w, channels = self.shape[1:]
        if channels not in CHANNEL_COUNTS:
            raise DataError(f"{self.path}: a 4-D array is read as images (samples, h, w, "
                            f"channels) with channels in {CHANNEL_COUNTS}. Received: shape "
                            f"{self.shape} ({channels} channels)")
        return (h, w) if channels == 1 else (channels, h, w)

    @property
    def n_chunks(self) -> int:
        """Number of chunks (the last may be shorter)."""
        return math.ceil(self.n_samples / self.chunk_rows)

    def chunk_bounds(self, chunk: int) -> tuple[int, int]:
        """Row range ``[start, stop)`` of ``chunk``."""
        start = chunk * self.chunk_rows
        return start, min(start + self.chunk_rows, self.n_samples)

    # -- reading ------------------------------------------------------------------------------
    def _read(self, f: BinaryIO, start: int, stop: int) -> np.ndarray:
        """Rows ``[start, stop)`` from the open file ``f``, as the file holds them."""
        row_bytes = self.n_features * self.dtype.itemsize
        f.seek(self.offset + start * row_bytes)
        rows = np.fromfile(f, dtype=self.dtype, count=(stop - start) * self.n_features)
        if rows.size != (stop - start) * self.n_features:
            raise DataError(f"{self.path}: the file is shorter than its header says "
                            f"({self.shape})")
        return rows.reshape(stop - start, self.n_features)

    def read_rows(self, start: int, stop: int) -> np.ndarray:
        """Rows ``[start, stop)`` as a (rows, n_features) array of the file's dtype and layout."""
        with open(self.path, "rb") as f:
            return self._read(f, start, stop)

    def as_samples(self, rows: np.ndarray) -> np.ndarray:
        """Raw rows as the in-memory loader makes them: float32, channels first (values beyond
        the float32 range become inf, which :meth:`check_finite` reports)."""
        if len(self.shape) == 4 and self.shape[3] > 1:
            rows = rows.reshape(len(rows), *self.shape[1:]).transpose(0, 3, 1, 2)
            rows = rows.reshape(len(rows), self.n_features)
        with np.errstate(over="ignore"):
            return np.ascontiguousarray(rows, dtype=np.float32)

    def read_samples(self, start: int, stop: int) -> np.ndarray:
        """Rows ``[start, stop)`` as float32 samples (see :meth:`as_samples`)."""
        return self.as_samples(self.read_rows(start, stop))

    def gather(self, index: np.ndarray) -> np.ndarray:
        """The rows ``index`` as float32 samples, in that order, read as runs of consecutive
        rows: a few thousand held rows cost a few thousand small reads, not a pass."""
        index = np.asarray(index, dtype=np.int64)
        out = np.empty((len(index), self.n_features), dtype=np.float32)
        if not len(index):
            return out
        breaks = np.flatnonzero(np.diff(index) != 1) + 1
        with open(self.path, "rb") as f:
            for a, b in zip(np.r_[0, breaks], np.r_[breaks, len(index)]):
                first = int(index[a])
                out[a:b] = self.as_samples(self._read(f, first, first + int(b - a)))
        return out

    def spread_rows(self, n: int, pieces: int = 16, held: np.ndarray = NO_ROWS) -> np.ndarray:
        """About ``n`` rows (float32 samples) read as ``pieces`` runs of rows spread evenly over
        the file, less the ``held`` rows: a sample that a file sorted by class or time still
        covers, at the cost of a few reads."""
        n = max(1, min(n, self.n_samples))
        pieces = max(1, min(pieces, n))
        per = n // pieces
        starts = np.linspace(0, self.n_samples - per, pieces).astype(int)
        parts = []
        for a in starts.tolist():
            rows = self.read_samples(a, a + per)
            keep = held_mask(held, a, a + per)
            parts.append(rows if keep is None else rows[keep])
        return np.concatenate(parts)

    def sample(self, n: int) -> Dataset:
        """:meth:`spread_rows` as a :class:`Dataset` (unscaled, as the in-memory loader makes
        them)."""
        return Dataset(self.spread_rows(n), self.sample_shape, self.kind, str(self.path),
                       None, self.pixel_max)

    def _blocks(self, block_bytes: int, held: np.ndarray
                ) -> Iterator[tuple[int, np.ndarray, np.ndarray | None]]:
        """``(first_row, samples, mask of the rows not held or None)`` block by block."""
        step = max(1, block_bytes // (self.n_features * self.dtype.itemsize))
        with open(self.path, "rb") as f:
            for start in range(0, self.n_samples, step):
                stop = min(start + step, self.n_samples)
                yield (start, self.as_samples(self._read(f, start, stop)),
                       held_mask(held, start, stop))

    def blocks(self, block_bytes: int = STATS_BLOCK_BYTES,
               held: np.ndarray = NO_ROWS) -> Iterator[tuple[int, np.ndarray]]:
        """``(first_row, samples)`` for consecutive blocks of about ``block_bytes``, in file
        order, without the ``held`` rows (sorted row numbers): the streaming passes."""
        for start, rows, keep in self._blocks(block_bytes, held):
            yield start, (rows if keep is None else rows[keep])

    # -- streaming passes ---------------------------------------------------------------------
    def _check_block(self, start: int, rows: np.ndarray) -> None:
        if self.dtype.kind != "f":
            return  # integers cannot hold NaN, inf or values beyond float32
        bad = ~np.isfinite(rows).all(axis=1)
        if bad.any():
            raise DataError(f"{self.path}: row {start + int(np.argmax(bad))} holds NaN or "
                            "infinite values (or values beyond the float32 range); clean the "
                            "file or drop those rows")

    def check_finite(self) -> None:
        """Streaming validation: every value finite (as float32).

        Raises:
            DataError: naming the first row with a NaN or infinite value.
        """
        for start, rows in self.blocks():
            self._check_block(start, rows)

    def scan(self, held: np.ndarray = NO_ROWS) -> ColumnStats:
        """One pass: check every row (:meth:`check_finite`) and take per-feature minimum,
        maximum and sum of the rows not ``held`` (sorted row numbers).

        Raises:
            DataError: a non-finite value (any row), or no row left.
        """
        low = np.full(self.n_features, np.inf)
        high = np.full(self.n_features, -np.inf)
        total = np.zeros(self.n_features)
        n_rows = 0
        for start, rows, keep in self._blocks(STATS_BLOCK_BYTES, held):
            self._check_block(start, rows)  # every row, held ones too
            if keep is not None:
                rows = rows[keep]
            if len(rows):
                low = np.minimum(low, rows.min(axis=0))
                high = np.maximum(high, rows.max(axis=0))
                total += rows.sum(axis=0, dtype=np.float64)
                n_rows += len(rows)
        if not n_rows:
            raise DataError(f"{self.path}: no training rows left after the held-back rows")
        return ColumnStats(n_rows, low, high, total)

    def fit_scaler(self, scaler: Scaler, stats: ColumnStats,
                   held: np.ndarray = NO_ROWS) -> Scaler:
        """Fit ``scaler`` on the rows not ``held`` as :meth:`Scaler.fit` does in memory:
        ``standard`` takes one more pass (squared deviations from ``stats``'s mean, float64,
        population std, near-constant features scale 1), ``minmax`` uses ``stats``.

        Args:
            scaler: unfitted (its mode chosen by :func:`aekit.pipeline.choose_scaler`).
            stats: :meth:`scan` of the same rows.
        """
        if scaler.mode == "standard":
            mean = stats.mean
            squares = np.zeros(self.n_features)
            for _, rows in self.blocks(held=held):
                deviation = rows.astype(np.float64) - mean
                squares += np.einsum("ij,ij->j", deviation, deviation)
            return scaler.set_statistics(mean, np.sqrt(squares / stats.n_rows))
        if scaler.mode == "minmax":
            return scaler.set_statistics(stats.low, stats.high)
        return scaler


class StreamedTrainingData:
    """What :class:`aekit.training.trainer.Trainer` trains on when data does not fit in memory:
    the rows of ``source`` not ``held``, scaled chunk by chunk.

    Args:
        source: the chunked file. scaler: a fitted scaler applied chunk by chunk.
        device: where batches go. held: sorted row numbers never trained on (validation, test).
    """

    def __init__(self, source: ChunkedNpy, scaler: Scaler, device: torch.device | str = "cpu",
                 held: np.ndarray = NO_ROWS) -> None:
        self.source = source
        self.scaler = scaler
        self.device = torch.device(device)
        self.held = np.asarray(held, dtype=np.int64)
        bounds = np.array([source.chunk_bounds(c) for c in range(source.n_chunks)])
        held_per_chunk = np.diff(np.searchsorted(self.held, np.r_[bounds[:, 0],
                                                                  source.n_samples]))
        self.chunk_counts = (bounds[:, 1] - bounds[:, 0] - held_per_chunk).tolist()
        self.shape = (int(sum(self.chunk_counts)), source.n_features)

    def __len__(self) -> int:
        return self.shape[0]

    def steps_per_epoch(self, batch_size: int, drop_single: bool = False) -> int:
        """Batches never straddle two chunks: the sum over chunks of ceil(training rows /
        batch) (less a last batch of one row per chunk with ``drop_single``, for batch norm)."""
        return sum(_n_batches(rows, batch_size, drop_single) for rows in self.chunk_counts)

    def fingerprint(self) -> dict[str, object]:
        """Identifies the training rows for ``--resume`` without reading them all: shape, dtype,
        and a SHA-256 of the file's size, modification time, first chunk and held rows."""
        stat = self.source.path.stat()
        first = self.source.read_rows(*self.source.chunk_bounds(0))
        digest = hashlib.sha256(f"{stat.st_size}:{stat.st_mtime_ns}:".encode()
                                + first.tobytes() + self.held.tobytes()).hexdigest()
        return {"shape": list(self.shape), "dtype": str(self.source.dtype), "sha256": digest}

    def epoch_batches(self, generator: torch.Generator, batch_size: int, shuffle: bool = True,
                      first: int = 0, drop_single: bool = False) -> Iterator[torch.Tensor]:
        """This epoch's batches, (batch, n_features) float32 scaled tensors.

        The chunk order, then each chunk's training-row order, are drawn from ``generator`` as
        the epoch goes, so the same generator state replays the same epoch. Batches before
        ``first`` are skipped (a resume) without reading their chunks, but their random draws
        are made.
        """
        n_chunks = self.source.n_chunks
        chunk_order = torch.randperm(n_chunks, generator=generator) if shuffle \
            else torch.arange(n_chunks)
        step = 0
        for chunk in chunk_order.tolist():
            rows = self.chunk_counts[chunk]
            row_order = torch.randperm(rows, generator=generator) if shuffle \
                else torch.arange(rows)
            n_batches = _n_batches(rows, batch_size, drop_single)
            if step + n_batches <= first:
                step += n_batches
                continue
            start, stop = self.source.chunk_bounds(chunk)
            samples = self.source.read_samples(start, stop)
            keep = held_mask(self.held, start, stop)
            if keep is not None:
                samples = samples[keep]
            x = torch.from_numpy(self.scaler.transform(samples)).to(self.device)
            for b in range(n_batches):
                if step >= first:
                    yield x[row_order[b * batch_size:(b + 1) * batch_size]]
                step += 1


def _n_batches(rows: int, batch_size: int, drop_single: bool) -> int:
    """Batches of a chunk of ``rows`` rows (a last batch of one row dropped on request)."""
    return math.ceil(rows / batch_size) - int(drop_single and rows % batch_size == 1)
