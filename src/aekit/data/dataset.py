"""The :class:`Dataset` record every source returns, and the rules that turn an array into one."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from aekit.data.validate import validate_array
from aekit.errors import DataError

KINDS = ("image", "tabular")
RANK_HINT = "expected a 2-D array (samples, features) or image stack (samples, h, w[, c])"
CHANNEL_COUNTS = (1, 3, 4)


@dataclass(frozen=True, eq=False)
class Dataset:
    """One validated data set: samples as rows of a float32 matrix, plus what they are.

    Attributes:
        x: (n_samples, n_features) float32, C-contiguous, finite, raw values (not scaled).
        sample_shape: shape of one sample, e.g. (28, 28), (3, 32, 32) (channels first), (n_features,).
        kind: "image" or "tabular".
        source: the spec or path it came from, for messages.
        labels: int64 (n_samples,) when the source has labels, else None.
        pixel_max: for images, the value that means "white" (255 for 8-bit); None if unknown.
        label_names: the class names, ``label_names[code]``, when the labels were names
            (strings, subfolders); None: the labels are the classes themselves.
        feature_names: one name per feature (column of ``x``) when the source names them (a
            CSV file's header, a Parquet file's columns); None otherwise.
    """

    x: np.ndarray
    sample_shape: tuple[int, ...]
    kind: str
    source: str
    labels: np.ndarray | None = None
    pixel_max: float | None = None
    label_names: tuple[str, ...] | None = None
    feature_names: tuple[str, ...] | None = None

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise DataError(f"{self.source}: kind must be one of {KINDS}. Received: kind={self.kind!r}")
        if not isinstance(self.x, np.ndarray) or self.x.ndim != 2 or self.x.dtype != np.float32:
            raise DataError(
                f"{self.source}: Dataset.x must be a 2-D float32 array; use validate_array first. "
                f"Received: {type(self.x).__name__} {getattr(self.x, 'dtype', '')} "
                f"shape {getattr(self.x, 'shape', '')}"
            )
        if math.prod(self.sample_shape) != self.x.shape[1]:
            raise DataError(
                f"{self.source}: sample_shape {self.sample_shape} holds {math.prod(self.sample_shape)} "
                f"values but each sample has {self.x.shape[1]} features"
            )
        if self.labels is not None and self.labels.shape != (self.x.shape[0],):
            raise DataError(
                f"{self.source}: labels have shape {self.labels.shape} "
                f"but there are {self.x.shape[0]} samples"
            )
        if self.feature_names is not None:
            names = tuple(str(name) for name in self.feature_names)
            if len(names) != self.x.shape[1]:
                raise DataError(
                    f"{self.source}: {len(names)} feature names "
                    f"but each sample has {self.x.shape[1]} features"
                )
            object.__setattr__(self, "feature_names", names)

    @property
    def n_samples(self) -> int:
        """Number of samples (rows of ``x``)."""
        return int(self.x.shape[0])

    @property
    def n_features(self) -> int:
        """Number of values in one sample (columns of ``x``)."""
        return int(self.x.shape[1])


def pixel_max_for(dtype: np.dtype) -> float | None:
    """The value meaning "white" for image arrays of ``dtype``: 255 for uint8, else unknown.

    Args:
        dtype: dtype of the raw pixel array.

    Returns:
        255.0 for uint8, None otherwise.
    """
    return 255.0 if np.dtype(dtype) == np.uint8 else None


def dataset_from_array(
    array: np.ndarray,
    source: str,
    labels: np.ndarray | None = None,
    pixel_max: float | None | str = "auto",
) -> Dataset:
    """Build a validated :class:`Dataset` from a raw array, deciding its kind from its rank.

    Rank 2 is tabular; rank 3 ``(n, h, w)`` is a greyscale image stack; rank 4 ``(n, h, w, c)``
    with c in (1, 3, 4) is a channels-last image stack, stored channels first (c == 1 is stored
    as greyscale ``(h, w)``).

    Args:
        array: the raw array, any numeric dtype.
        source: spec or path, for messages.
        labels: optional labels, one per sample.
        pixel_max: value meaning "white" for images; "auto" picks 255 for uint8, else None.

    Returns:
        The validated dataset.

    Raises:
        DataError: wrong rank, unsupported channel count, or invalid values.
    """
    array = np.asarray(array)
    if array.ndim not in (2, 3, 4):
        raise DataError(
            f"{source}: {RANK_HINT}. Received: a {array.ndim}-D array of shape {array.shape}"
        )
    if array.ndim == 2:
        x = validate_array(array, source)
        return Dataset(x, (x.shape[1],), "tabular", source, _as_labels(labels, source))
    if pixel_max == "auto":
        pixel_max = pixel_max_for(array.dtype)
    if array.ndim == 4:
        array = _channels_first(array, source)
    sample_shape = tuple(int(d) for d in array.shape[1:])
    # math.prod, not -1: numpy cannot infer -1 for an empty stack (zero rows)
    x = validate_array(array.reshape(array.shape[0], math.prod(array.shape[1:])), source)
    return Dataset(x, sample_shape, "image", source, _as_labels(labels, source), pixel_max)


def _channels_first(array: np.ndarray, source: str) -> np.ndarray:
    """(n, h, w, c) -> (n, c, h, w), or (n, h, w) when c == 1."""
    channels = array.shape[-1]
    if channels not in CHANNEL_COUNTS:
        raise DataError(
            f"{source}: a 4-D array is read as images (samples, h, w, channels) with channels in "
            f"{CHANNEL_COUNTS}. Received: shape {array.shape} ({channels} channels)"
        )
    if channels == 1:
        return array[..., 0]
    return np.ascontiguousarray(np.moveaxis(array, -1, 1))


def _as_labels(labels: np.ndarray | None, source: str) -> np.ndarray | None:
    """Labels as int64 (n,), or None."""
    if labels is None:
        return None
    labels = np.asarray(labels)
    if labels.ndim != 1 or not np.issubdtype(labels.dtype, np.integer):
        raise DataError(
            f"{source}: labels must be a 1-D integer array. "
            f"Received: dtype {labels.dtype}, shape {labels.shape}"
        )
    return labels.astype(np.int64, copy=False)
