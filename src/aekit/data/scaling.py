"""Per-feature affine scaling ``y = (x - shift) / scale``, fitted on the training split and stored
with the model so that decoding can undo it.

Modes:
    1. "unit": divide by pixel_max (pixels -> [0, 1]).
    2. "standard": per-feature mean / std (population std; a std of 0 is replaced by 1).
    3. "minmax": per-feature min / (max - min) -> [0, 1]; constant features map to 0.
    4. "none": identity.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from aekit.errors import ConfigError, DataError, FormatError

MODES = ("unit", "standard", "minmax", "none")
FITTED_MODES = ("standard", "minmax")
CHUNK_ROWS = 8192  # bounds the float64 temporaries of fit() on large data


class Scaler:
    """Affine feature scaling with statistics learned by :meth:`fit`.

    Attributes:
        mode: one of MODES.
        pixel_max: divisor for mode "unit".
        shift: (n_features,) float64, set by fit for "standard" / "minmax".
        scale: (n_features,) float64, set by fit for "standard" / "minmax"; never 0.
    """

    def __init__(self, mode: str = "none", pixel_max: float | None = None) -> None:
        """Create an unfitted scaler.

        Args:
            mode: one of "unit", "standard", "minmax", "none".
            pixel_max: the value meaning "white"; required for "unit".

        Raises:
            ConfigError: unknown mode, or "unit" without a positive finite pixel_max.
        """
        if mode not in MODES:
            raise ConfigError(
                f"scaling mode must be one of {('auto',) + MODES}. Received: mode={mode!r}"
            )
        if mode == "unit" and not _is_positive_number(pixel_max):
            raise ConfigError(
                "scaling mode 'unit' divides by pixel_max, which must be a positive number. "
                f"Received: pixel_max={pixel_max!r}; use mode='minmax' for data without one"
            )
        self.mode = mode
        self.pixel_max = float(pixel_max) if mode == "unit" else None
        self.shift: np.ndarray | None = None
        self.scale: np.ndarray | None = None

    @property
    def is_fitted(self) -> bool:
        """True once transform can run (always for "unit" and "none")."""
        return self.mode not in FITTED_MODES or self.shift is not None

    @property
    def output_range(self) -> tuple[float, float] | None:
        """(0.0, 1.0) for "unit" / "minmax" (training data lands in it), None otherwise."""
        return (0.0, 1.0) if self.mode in ("unit", "minmax") else None

    def fit(self, x: np.ndarray) -> Scaler:
        """Learn per-feature statistics from the training split (no-op for "unit" / "none").

        Args:
            x: (n_samples, n_features) training data.

        Returns:
            self.

        Raises:
            DataError: x is not a non-empty 2-D array.
        """
        if self.mode not in FITTED_MODES:
            return self
        x = np.asarray(x)
        if x.ndim != 2 or x.shape[0] == 0:
            raise DataError(
                "Scaler.fit needs a non-empty 2-D array (samples, features). "
                f"Received: shape {x.shape}"
            )
        if self.mode == "standard":
            return self.set_statistics(*_mean_std(x))
        return self.set_statistics(x.min(axis=0), x.max(axis=0))

    def set_statistics(self, first: np.ndarray, second: np.ndarray) -> Scaler:
        """Fit from per-feature statistics computed elsewhere (streaming passes over a file):
        ``standard`` takes (mean, population std), ``minmax`` (min, max). The one rule for
        constant features: a std of (almost) 0 or a span of 0 becomes a scale of 1.

        Returns:
            self.
        """
        first, second = np.asarray(first, np.float64), np.asarray(second, np.float64)
        if self.mode == "standard":
            constant = (second == 0) | (second <= 10 * np.finfo(np.float64).eps * np.abs(first))
            self.shift, self.scale = first.copy(), np.where(constant, 1.0, second)
        elif self.mode == "minmax":
            span = second - first
            self.shift, self.scale = first.copy(), np.where(span > 0, span, 1.0)
        return self

    def transform(self, x: np.ndarray) -> np.ndarray:
        """Scale data; the input is not modified.

        Args:
            x: (..., n_features) data.

        Returns:
            Scaled float32 array of the same shape.

        Raises:
            ConfigError: the scaler needs fit first.
            DataError: wrong number of features.
        """
        x = np.asarray(x, dtype=np.float32)
        shift, scale = self._params(x)
        if shift is None:
            return x.copy()
        out = np.subtract(x, shift, dtype=np.float32)  # a new array: x is left alone
        out /= scale
        return out

    def transform_rows(self, x: np.ndarray, index: np.ndarray, block: int = 8192) -> np.ndarray:
        """``transform(x[index])`` without holding an unscaled copy of the selected rows: the
        rows are gathered and scaled block by block into one float32 array.

        Args:
            x: (n, n_features) data.
            index: the rows to take, in order.
            block: rows per block.
        """
        out = np.empty((len(index), x.shape[1]), dtype=np.float32)
        for start in range(0, len(index), block):
            out[start:start + block] = self.transform(x[index[start:start + block]])
        return out

    def inverse_transform(self, x: np.ndarray) -> np.ndarray:
        """Undo :meth:`transform`; the input is not modified.

        Args:
            x: (..., n_features) scaled data, e.g. decoder output.

        Returns:
            float32 array in the original units.

        Raises:
            ConfigError: the scaler needs fit first.
            DataError: wrong number of features.
        """
        x = np.asarray(x, dtype=np.float32)
        shift, scale = self._params(x)
        if shift is None:
            return x.copy()
        out = np.multiply(x, scale, dtype=np.float32)
        out += shift
        return out

    def _params(self, x: np.ndarray) -> tuple[np.ndarray | None, np.ndarray | None]:
        """float32 (shift, scale) broadcastable to x, or (None, None) for the identity."""
        if self.mode == "none":
            return None, None
        if self.mode == "unit":
            return np.float32(0.0), np.float32(self.pixel_max)
        if self.shift is None or self.scale is None:
            raise ConfigError(f"Scaler(mode={self.mode!r}) is not fitted; call fit(x_train) first")
        if x.ndim == 0 or x.shape[-1] != self.shift.shape[0]:
            raise DataError(
                f"Scaler was fitted on {self.shift.shape[0]} features per sample but received "
                f"data of shape {x.shape}"
            )
        return self.shift.astype(np.float32), self.scale.astype(np.float32)

    def to_dict(self) -> dict[str, Any]:
        """JSON-serialisable state; :meth:`from_dict` rebuilds the same scaler exactly.

        Returns:
            ``{"mode", "pixel_max", "shift", "scale"}`` with lists of floats (or None).
        """
        return {
            "mode": self.mode,
            "pixel_max": self.pixel_max,
            "shift": None if self.shift is None else [float(v) for v in self.shift],
            "scale": None if self.scale is None else [float(v) for v in self.scale],
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Scaler:
        """Rebuild a scaler from :meth:`to_dict` output.

        Args:
            d: the dictionary, e.g. read from a model's JSON.

        Returns:
            The scaler.

        Raises:
            FormatError: not a dict, unknown mode, or malformed statistics.
        """
        if not isinstance(d, dict) or "mode" not in d:
            raise FormatError(f"scaler state must be a dict with a 'mode'. Received: {_short(d)}")
        try:
            scaler = cls(d["mode"], d.get("pixel_max"))
        except ConfigError as err:
            raise FormatError(f"malformed scaler state: {err}") from err
        shift, scale = d.get("shift"), d.get("scale")
        if scaler.mode in FITTED_MODES and (shift is not None or scale is not None):
            scaler.shift = _float_list(shift, "shift")
            scaler.scale = _float_list(scale, "scale")
            _check_stats(scaler.shift, scaler.scale)
        return scaler

    def __repr__(self) -> str:
        n_features = None if self.shift is None else self.shift.shape[0]
        return f"Scaler(mode={self.mode!r}, pixel_max={self.pixel_max}, n_features={n_features})"


def _mean_std(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per-column mean and population std in float64, two passes over row chunks."""
    total = np.zeros(x.shape[1], dtype=np.float64)
    for start in range(0, x.shape[0], CHUNK_ROWS):
        total += x[start:start + CHUNK_ROWS].sum(axis=0, dtype=np.float64)
    mean = total / x.shape[0]
    squares = np.zeros(x.shape[1], dtype=np.float64)
    for start in range(0, x.shape[0], CHUNK_ROWS):
        deviation = x[start:start + CHUNK_ROWS].astype(np.float64) - mean
        squares += np.einsum("ij,ij->j", deviation, deviation)
    return mean, np.sqrt(squares / x.shape[0])


def _is_positive_number(value: Any) -> bool:
    return isinstance(value, (int, float, np.number)) and not isinstance(value, bool) \
        and math.isfinite(float(value)) and float(value) > 0


def _float_list(values: Any, name: str) -> np.ndarray:
    """A non-empty list of finite numbers as float64, or FormatError."""
    if not isinstance(values, list) or not values or \
            not all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in values):
        raise FormatError(
            f"scaler state: {name!r} must be a non-empty list of numbers. "
            f"Received: {_short(values)}"
        )
    array = np.asarray(values, dtype=np.float64)
    if not np.isfinite(array).all():
        raise FormatError(f"scaler state: {name!r} holds non-finite values")
    return array


def _check_stats(shift: np.ndarray, scale: np.ndarray) -> None:
    if shift.shape != scale.shape:
        raise FormatError(
            f"scaler state: 'shift' has {shift.shape[0]} values but 'scale' has {scale.shape[0]}"
        )
    if (scale <= 0).any():
        raise FormatError("scaler state: every 'scale' value must be > 0")


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 80 else text[:77] + "..."
