"""Checks that turn any numeric array into the float32 matrix training needs, or say why not."""

from __future__ import annotations

import math
import numbers
from collections.abc import Sequence
from typing import Any

import numpy as np

from aekit.errors import ConfigError, DataError

TEXT_KINDS = "OUSV"  # object, unicode, bytes, void (structured)


def validate_array(
    x: Any, source: str, column_names: Sequence[str] | None = None
) -> np.ndarray:
    """Check a data matrix and return it as float32, C-contiguous, 2-D ``(n_samples, n_features)``.

    Arrays of rank > 2 are flattened per sample. Bool and integer arrays are cast. The check is
    vectorised: one ``np.isfinite`` over the whole array, then the first bad cell is located.

    Args:
        x: array-like of numbers, rank >= 2.
        source: file or spec the data came from, named in messages.
        column_names: optional names of the columns, used in messages.

    Returns:
        The data as a float32 C-contiguous 2-D array (no copy when it already is one).

    Raises:
        DataError: wrong rank, zero rows or columns, complex / text / object dtype, NaN or
            +inf / -inf (naming the 0-based row and the column), values beyond float32 range.
    """
    x = np.asarray(x)
    _check_dtype(x, source)
    _check_shape(x, source)
    if x.ndim > 2:
        x = x.reshape(x.shape[0], -1)
    with np.errstate(over="ignore"):  # overflow becomes inf and is reported below
        out = np.ascontiguousarray(x, dtype=np.float32)
    # Integer and bool data cannot hold NaN or inf; only floats need the scan.
    if x.dtype.kind == "f":
        _check_finite(x, out, source, column_names)
    return out


def check_n_features(dataset_or_array: Any, n_features: int, source: str) -> None:
    """Check that each sample has as many features as the model expects.

    Args:
        dataset_or_array: a Dataset or an array of samples (rows).
        n_features: the number of features the model expects.
        source: file or spec the data came from, named in the message.

    Raises:
        ConfigError: ``n_features`` is not a positive integer.
        DataError: the counts differ.
    """
    if isinstance(n_features, bool) or not isinstance(n_features, numbers.Integral) or n_features < 1:
        raise ConfigError(f"n_features must be a positive integer. Received: n_features={n_features!r}")
    got = _features_per_sample(dataset_or_array)
    if got != n_features:
        raise DataError(
            f"{source} has {got} features per sample but the model expects {n_features}"
        )


def _features_per_sample(data: Any) -> int:
    """Features per sample of a Dataset (``n_features``) or of an array of rows."""
    if hasattr(data, "n_features") and hasattr(data, "sample_shape"):
        return int(data.n_features)
    shape = np.shape(data)
    if len(shape) <= 1:
        return int(shape[0]) if shape else 1
    return math.prod(shape[1:])


def _check_dtype(x: np.ndarray, source: str) -> None:
    """Refuse complex, text, object and other non-real dtypes."""
    kind = x.dtype.kind
    if kind == "c":
        raise DataError(
            f"{source}: complex numbers are not supported (dtype {x.dtype}); "
            "allowed: real numbers (float, int, bool). Split real and imaginary parts into columns"
        )
    if kind in TEXT_KINDS:
        raise DataError(f"{source}: {_describe_text(x)}; allowed: real numbers (float, int, bool)")
    if kind not in "biuf":
        raise DataError(
            f"{source}: dtype {x.dtype} is not supported; allowed: real numbers (float, int, bool)"
        )


def _describe_text(x: np.ndarray) -> str:
    """Say what is wrong with an object / text array, naming the first non-number if any."""
    what = "an object array" if x.dtype.kind == "O" else f"text (dtype {x.dtype})"
    if x.ndim >= 2 and x.size and x.dtype.kind != "V":
        flat = x.reshape(x.shape[0], -1)
        for index, value in enumerate(flat.flat):
            if not _is_number(value):
                value = value.item() if isinstance(value, np.generic) else value
                row, col = divmod(index, flat.shape[1])
                return f"data is {what}; row {row}, column {col} holds {value!r}, not a number"
    return f"data is {what}, not numbers"


def _is_number(value: Any) -> bool:
    """True for real numbers and strings that read as one."""
    if isinstance(value, (numbers.Real, np.bool_)):
        return True
    if isinstance(value, (str, bytes)):
        try:
            float(value)
        except ValueError:
            return False
        return True
    return False


def _check_shape(x: np.ndarray, source: str) -> None:
    """Refuse ranks below 2 and empty sample / feature axes."""
    if x.ndim < 2:
        raise DataError(
            f"{source}: expected a 2-D array (samples, features) or image stack "
            f"(samples, h, w[, c]). Received: a {x.ndim}-D array of shape {x.shape}"
        )
    if x.shape[0] == 0:
        raise DataError(f"{source}: no samples (zero rows). Received: shape {x.shape}")
    if math.prod(x.shape[1:]) == 0:
        raise DataError(f"{source}: samples have no features (zero columns). Received: shape {x.shape}")


def _check_finite(
    original: np.ndarray, out: np.ndarray, source: str, column_names: Sequence[str] | None
) -> None:
    """Raise on the first NaN / inf in ``out`` (float32), naming its row and column."""
    finite = np.isfinite(out)
    if finite.all():
        return
    bad_count = int(finite.size - np.count_nonzero(finite))
    row, col = divmod(int(np.argmin(finite.ravel())), out.shape[1])
    value = float(original.reshape(out.shape)[row, col])
    if math.isnan(value):
        what = "NaN"
    elif math.isinf(value):
        what = "+inf" if value > 0 else "-inf"
    else:
        what = f"{value!r}, beyond the float32 range (±3.4e38),"
    raise DataError(
        f"{source}: {what} at row {row} (0-based sample index), "
        f"column {_column_label(col, column_names)}; "
        f"{bad_count} non-finite value(s) in total. Allowed: finite numbers only; "
        "drop or impute missing values first"
    )


def _column_label(col: int, column_names: Sequence[str] | None) -> str:
    """``'name' (index 3)`` when names are known, else the 0-based index."""
    if column_names is not None and col < len(column_names):
        return f"{column_names[col]!r} (index {col})"
    return f"{col} (0-based)"


def parses_as_float(text: str) -> bool:
    """True when ``text`` (a cell of a text file) reads as a number."""
    try:
        float(text)
    except ValueError:
        return False
    return True
