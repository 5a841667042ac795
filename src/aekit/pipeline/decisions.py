"""The run pipeline's decisions: split, scaling, defaults from the data, output, PCA."""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from aekit.baselines.pca import fit_pca
from aekit.config import RunConfig, auto_batch_size
from aekit.data import Scaler
from aekit.errors import ConfigError


MAX_HELD_ROWS = 10_000  # a validation or test split larger than this adds precision, not value
TEST_SPLIT_SEED = 20_251_129  # the test rows do not move with --seed
MAX_LATENT = 32


# -- 1. split ---------------------------------------------------------------------------------
def held_count(n: int, fraction: float) -> int:
    """Rows held back out of ``n`` for ``fraction``: rounded, at least 1 when the fraction is
    positive and ``n > 1``, at most ``MAX_HELD_ROWS``."""
    n_held = min(MAX_HELD_ROWS, int(round(n * fraction)))
    if fraction > 0 and n_held == 0 and n > 1:
        n_held = 1
    return n_held


def split_indices(n: int, fraction: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Shuffle ``range(n)`` with ``seed`` and hold back ``fraction`` of it: (kept, held), sorted."""
    order = np.random.default_rng(seed).permutation(n)
    n_held = held_count(n, fraction)
    return np.sort(order[n_held:]), np.sort(order[:n_held])


MIN_AUTO_VAL_ROWS = 200  # validation_split "auto": at least this many rows ...
MAX_AUTO_VAL_SHARE = 0.25  # ... but never more than this share of the rows


def validation_fraction(value: float | str, n: int) -> float:
    """The share of ``n`` rows held for validation; ``auto``: 10%, but at least
    ``MIN_AUTO_VAL_ROWS`` rows and at most ``MAX_AUTO_VAL_SHARE`` of them."""
    if value != "auto":
        return float(value)
    if n <= 0:
        return 0.1
    return max(0.1, min(MAX_AUTO_VAL_SHARE, MIN_AUTO_VAL_ROWS / n))


def split_plan(n: int, test_fraction: float, validation_split: float | str,
               seed: int, split_seed: int | None = None
               ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Indices (train, validation, test) of ``n`` rows, as every entry point splits them.

    The test rows are drawn with ``split_seed`` (``--split-seed``; None: ``TEST_SPLIT_SEED``,
    so that runs with different ``--seed`` are scored on the same rows), the validation rows
    from the remaining rows with ``seed`` (``validation_split`` a share or ``auto``, see
    :func:`validation_fraction`). Callers pass ``cfg.train.seed`` and ``cfg.data.split_seed``.
    """
    test_seed = TEST_SPLIT_SEED if split_seed is None else split_seed
    rest, test = split_indices(n, test_fraction, test_seed)
    keep, val = split_indices(len(rest), validation_fraction(validation_split, len(rest)), seed)
    return rest[keep], rest[val], test


# -- 2. scale ---------------------------------------------------------------------------------
def in_unit_range(low: float, high: float) -> bool:
    """True when every value lies within [0, 1]."""
    return low >= 0.0 and high <= 1.0


def choose_scaler(kind: str, low: float, high: float, mode: str,
                  pixel_max: float | None, source: str = "data") -> Scaler:
    """The (unfitted) scaler for ``mode``; ``auto`` leaves tabular data within [0, 1] alone.

    Args:
        kind: "image" or "tabular". low, high: the smallest and largest raw value.
        mode: auto, unit, standard, minmax or none. pixel_max: the value of white, if known.
    """
    if mode == "auto":
        if kind == "image":
            mode = "unit" if pixel_max else "minmax"
        else:
            mode = "none" if in_unit_range(low, high) else "standard"
    if mode == "unit" and pixel_max is None:
        raise ConfigError(f"scaling mode 'unit' needs the data's pixel_max, and {source} "
                          f"({kind}) has none. Allowed here: auto, standard, minmax, none")
    return Scaler(mode, pixel_max if mode == "unit" else None)


# -- 3. defaults from the data ----------------------------------------------------------------
def data_defaults(cfg: RunConfig, n_train: int, n_features: int, kind: str) -> RunConfig:
    """``cfg`` with the options the user left to aekit chosen from the data.

    Rules (the README states them too):

    - ``latent_dim``: ``ceil(n_features / 4)``, at most ``MAX_LATENT`` (32). A latent size of
      ``n_features`` or more is refused: the identity would be a perfect "autoencoder".
    - ``hidden``: images of 256 values or more get ``512,256,128``; everything else one hidden
      layer of ``2 * n_features`` units, within [64, 256] (a small table needs a small
      correction on top of PCA, not a deep network that memorises it).
    - ``batch_size``: :func:`aekit.config.auto_batch_size` of the training rows.

    Raises:
        ConfigError: a latent size the data cannot have.
    """
    model = cfg.model
    if n_features < 2:
        raise ConfigError(f"an autoencoder needs at least 2 features to compress; the data has "
                          f"{n_features} feature(s) (n_features={n_features})")
    latent = model.latent_dim
    if latent is None:
        latent = min(MAX_LATENT, math.ceil(n_features / 4), n_features - 1)
    elif latent >= n_features:
        raise ConfigError(f"`latent_dim` must be smaller than the number of features "
                          f"({n_features}): a code as large as the data can copy it and learns "
                          f"nothing. Received: latent_dim={latent}; allowed: 1..{n_features - 1}")
    hidden = model.hidden
    if hidden is None:
        if kind == "image" and n_features >= 256:
            hidden = (512, 256, 128)
        else:
            hidden = (int(min(256, max(64, 2 * n_features))),)
    changes: dict[str, Any] = {"latent_dim": latent, "hidden": hidden}
    if cfg.train.batch_size is None:
        changes["batch_size"] = auto_batch_size(n_train)
    return cfg.replace(**changes)


# -- 4. output --------------------------------------------------------------------------------
def starts_from_pca(cfg: RunConfig, output_activation: str = "identity") -> bool:
    """True when the model's linear path is initialised from PCA: an MLP with ``pca_init``
    and an identity output (through a sigmoid, PCA's solution is not the model's)."""
    return cfg.model.kind == "mlp" and cfg.model.pca_init and output_activation == "identity"


def choose_output(cfg: RunConfig, unit_range: bool, scaling: str) -> str:
    """The output activation ``auto`` stands for, and the check that bce can apply.

    Args:
        cfg: the run configuration. unit_range: the scaled training targets lie in [0, 1].
        scaling: the scaler's mode, named in the message.
    """
    if cfg.model.loss == "bce" and not unit_range:
        raise ConfigError(f"`loss` bce needs data scaled to [0, 1]; this data after scaling "
                          f"{scaling!r} is not. Use --loss mse or --scaling minmax")
    if cfg.model.output_activation != "auto":
        return cfg.model.output_activation
    if starts_from_pca(cfg) and cfg.model.loss == "mse":
        return "identity"  # the linear path must reproduce PCA exactly
    return "sigmoid" if unit_range else "identity"


# -- 5. PCA -----------------------------------------------------------------------------------
def fit_baseline(x_train: np.ndarray, cfg: RunConfig) -> Any:
    """PCA with ``latent_dim`` components on the scaled training targets (a copy is centred)."""
    return fit_pca(x_train, cfg.model.latent_dim, cfg.train.seed)
