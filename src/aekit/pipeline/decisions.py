"""The run pipeline's decisions: split, scaling, defaults from the data, output, PCA, and the
weights of the training rows (sample weights, class balancing)."""

from __future__ import annotations

import math
from typing import Any, Sequence

import numpy as np

from aekit.baselines.pca import fit_pca
from aekit.config import RunConfig
from aekit.data import Scaler
from aekit.errors import ConfigError, DataError
from aekit.training.plan import auto_epochs, requested_batch_size


MAX_HELD_ROWS = 10_000  # a validation or test split larger than this adds precision, not value
TEST_SPLIT_SEED = 20_251_129  # the test rows do not move with --seed
MAX_LATENT = 32
LARGE_IMAGE_VALUES = 256  # images of this many values or more get the deep model ...
# ... and when its run makes this many passes over the training rows or more (a small set:
# 5,000 Fashion-MNIST images make 112), weight decay too (see data_defaults)
MANY_PASSES = 50
SMALL_IMAGE_SET_WEIGHT_DECAY = 0.5
IMAGE_HIDDEN = (512, 256, 128)
# --time-budget on image data: a budget of at least LONG_BUDGET_MS_PER_ROW per training row
# (270 s for Fashion-MNIST's 54,000) trains the deeper model with weight decay, which at 300 s
# beat the default model (0.466x PCA-30's test error against 0.51x; guide/training.md)
LONG_BUDGET_MS_PER_ROW = 5.0
LONG_BUDGET_HIDDEN = (1000, 500, 250)
LONG_BUDGET_WEIGHT_DECAY = 0.5


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


def subsample_rows(n_rows: int, max_train_samples: int | None, seed: int) -> np.ndarray | None:
    """The rows a ``max_train_samples`` option keeps of ``n_rows`` (sweep, study): a random
    subset drawn with ``seed``, sorted; None when every row is kept.

    Raises:
        ConfigError: ``max_train_samples`` below 1.
    """
    if max_train_samples is None:
        return None
    if isinstance(max_train_samples, bool) or not isinstance(max_train_samples,
                                                              (int, np.integer)) \
            or max_train_samples < 1:
        raise ConfigError(f"`max_train_samples` must be at least 1. Received: "
                          f"max_train_samples={max_train_samples!r}")
    if max_train_samples >= n_rows:
        return None
    return np.sort(np.random.default_rng(seed).permutation(n_rows)[:max_train_samples])


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
    - ``weight_decay``: on a small set of images -- :data:`LARGE_IMAGE_VALUES` (256) values
      or more, in a run of :data:`MANY_PASSES` (50) epochs or more (:func:`passes`) -- the
      default model with Adam gets weight decay 0.5. A model given many passes over few
      images overfits from the first epochs, and its best weights stay near PCA's solution,
      where it started: on 5,000 Fashion-MNIST images (112 epochs) the test error was 0.83x
      PCA-30's without weight decay and 0.73x with it; on 1,000 (the confirmation) 0.95x
      and 0.94x (docs/benchmarks.md, "Defaults on a panel").
    - ``hidden``: images of 256 values or more get ``512,256,128``; everything else one hidden
      layer of ``2 * n_features`` units, within [64, 256] (a small table needs a small
      correction on top of PCA, not a deep network that memorises it).
    - With ``time_budget`` on such images and at least :data:`LONG_BUDGET_MS_PER_ROW` of it
      per training row: ``hidden`` ``1000,500,250`` and, for Adam, ``weight_decay`` 0.5 (a
      larger model trained long overfits without it).
    - ``batch_size``: :func:`aekit.training.plan.requested_batch_size` of the training rows.

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
    check_latent_dims([latent], n_features)
    hidden = model.hidden
    large_image = kind == "image" and n_features >= LARGE_IMAGE_VALUES
    batch_size = requested_batch_size(cfg.train.batch_size, n_train)
    small_image_set = large_image and passes(cfg, n_train, batch_size) >= MANY_PASSES
    changes: dict[str, Any] = {"latent_dim": latent}
    if hidden is None:
        if large_image:
            hidden, decay = IMAGE_HIDDEN, None
            if small_image_set and model.kind == "mlp":
                decay = SMALL_IMAGE_SET_WEIGHT_DECAY
            if long_budget(cfg, n_train):
                hidden, decay = LONG_BUDGET_HIDDEN, LONG_BUDGET_WEIGHT_DECAY
            if (decay is not None and cfg.optim.weight_decay is None
                    and cfg.optim.optimizer in ("adam", "adamw")):
                changes["weight_decay"] = decay
        else:
            hidden = (int(min(256, max(64, 2 * n_features))),)
    changes["hidden"] = hidden
    changes["batch_size"] = batch_size
    return cfg.replace(**changes)


def passes(cfg: RunConfig, n_train: int, batch_size: int) -> int:
    """Epochs the run will make over its ``n_train`` training rows: ``--epochs``, else
    :func:`aekit.training.plan.auto_epochs` of its steps per epoch (full batch for ``gd``); a
    ``--time-budget`` run plans its own length and counts as few (0)."""
    if cfg.train.time_budget is not None:
        return 0
    if cfg.train.epochs is not None:
        return cfg.train.epochs
    steps = 1 if cfg.optim.optimizer == "gd" else math.ceil(n_train / max(1, batch_size))
    return auto_epochs(steps)


def check_latent_dims(sizes: Sequence[int], n_features: int) -> None:
    """Refuse latent sizes that are not smaller than the feature count (``aekit train``'s
    ``latent_dim``, a sweep's sizes): the identity would be a perfect "autoencoder".

    Raises:
        ConfigError: a size of ``n_features`` or more.
    """
    too_large = [int(k) for k in sizes if k >= n_features]
    if not too_large:
        return
    received = (f"latent_dim={too_large[0]}" if len(sizes) == 1 else
                f"latent sizes {too_large}, not smaller than the number of features")
    raise ConfigError(f"`latent_dim` must be smaller than the number of features "
                      f"({n_features}): a code as large as the data can copy it and learns "
                      f"nothing. Received: {received}; allowed: 1..{n_features - 1}")


def long_budget(cfg: RunConfig, n_train: int) -> bool:
    """True when ``--time-budget`` gives at least :data:`LONG_BUDGET_MS_PER_ROW` per training
    row (of an MLP on images: the rule applies to that model only)."""
    budget = cfg.train.time_budget
    return (cfg.model.kind == "mlp" and budget is not None
            and budget * 1000.0 >= LONG_BUDGET_MS_PER_ROW * n_train)


# -- 4. output --------------------------------------------------------------------------------
def starts_from_pca(cfg: RunConfig, output_activation: str = "identity") -> bool:
    """True when the model's linear path is initialised from PCA: an MLP with ``pca_init``
    and an identity or clipped output (through a sigmoid, PCA's solution is not the model's;
    clipped to [0, 1], it is PCA's reconstruction clipped, never further from data in [0, 1])."""
    return (cfg.model.kind == "mlp" and cfg.model.pca_init
            and output_activation in ("identity", "clip"))


def choose_output(cfg: RunConfig, unit_range: bool, scaling: str) -> str:
    """The output activation ``auto`` stands for, and the check that bce can apply.

    Args:
        cfg: the run configuration. unit_range: the scaled training targets lie in [0, 1].
        scaling: the scaler's mode, named in the message.
    """
    if cfg.model.loss == "bce" and not unit_range:
        raise ConfigError(f"`loss` bce needs data scaled to [0, 1]; this data after scaling "
                          f"{scaling!r} is not. Use --loss mse or --scaling minmax")
    if cfg.model.output_activation == "clip" and not unit_range:
        raise ConfigError(f"`output_activation` clip clips to [0, 1]; this data after scaling "
                          f"{scaling!r} is not within it. Use --output-activation identity "
                          "or --scaling minmax")
    if cfg.model.output_activation != "auto":
        return cfg.model.output_activation
    if starts_from_pca(cfg) and cfg.model.loss == "mse":
        # the linear path reproduces PCA; pixels (scaled by their known maximum) cannot leave
        # [0, 1], so the output is clipped to it: PCA's reconstruction clipped is closer to
        # every such image, and a correction can never overshoot the range
        return "clip" if scaling == "unit" else "identity"
    return "sigmoid" if unit_range else "identity"


# -- 5. PCA -----------------------------------------------------------------------------------
def fit_baseline(x_train: np.ndarray, cfg: RunConfig) -> Any:
    """PCA with ``latent_dim`` components on the scaled training targets (a copy is centred)."""
    return fit_pca(x_train, cfg.model.latent_dim, cfg.train.seed)


# -- 6. weights of the training rows ----------------------------------------------------------------------------------
def check_sample_weight(sample_weight: Any, n_rows: int) -> np.ndarray | None:
    """``sample_weight`` as float64 (n_rows,), checked: finite, >= 0, not all zero."""
    if sample_weight is None:
        return None
    w = np.asarray(sample_weight.detach().cpu() if hasattr(sample_weight, "detach")
                   else sample_weight, dtype=np.float64)
    if w.shape != (n_rows,):
        raise DataError(f"sample_weight must hold one weight per row ({n_rows}). Received: "
                        f"shape {w.shape}")
    bad = np.flatnonzero(~np.isfinite(w) | (w < 0))
    if bad.size:
        raise DataError(f"sample_weight must be finite and >= 0. Received: {w[bad[0]]} at row "
                        f"{bad[0]} ({bad.size} such weight(s))")
    if not w.any():
        raise DataError("sample_weight is zero for every row: nothing would be learned")
    return w


def class_counts(labels: np.ndarray) -> dict[int, int]:
    """Rows per class code."""
    codes, counts = np.unique(labels, return_counts=True)
    return {int(c): int(n) for c, n in zip(codes, counts)}


def training_weights(balance: str, labels: np.ndarray | None,
                     sample_weight: np.ndarray | None
                     ) -> tuple[np.ndarray | None, np.ndarray | None]:
    """The weights of the training rows: ``(row_weight, draw_weight)``, float32 or None.

    ``row_weight`` weights each row's loss and has mean 1 (the loss keeps its scale):
    ``sample_weight`` times, with ``balance="weights"``, the inverse of the row's class
    frequency -- every class then weighs the same in the loss. ``draw_weight``
    (``balance="sampler"``) makes every class equally likely in each draw of a batch row
    (times ``sample_weight``'s share within its class, when given).

    Raises:
        ConfigError: balancing without labels, or with a single class.
    """
    if balance != "none":
        if labels is None:
            raise ConfigError(f"--balance {balance} needs class labels: give --labels SPEC "
                              "(FILE.npy, FILE.npz:KEY, FILE.csv:COLUMN) or use data with its "
                              "own labels (digits, Fashion-MNIST, an image folder with a "
                              "subfolder per class); in Python, fit(x, labels=y)")
        if len(np.unique(labels)) < 2:
            raise ConfigError(f"--balance {balance}: the training rows hold one class only "
                              f"({class_counts(labels)}); there is nothing to balance")
    n = len(labels) if labels is not None else len(sample_weight) \
        if sample_weight is not None else 0
    sw = sample_weight if sample_weight is not None else np.ones(n)
    row = draw = None
    if balance == "weights":
        _, inverse, counts = np.unique(labels, return_inverse=True, return_counts=True)
        row = sw / counts[inverse]
    elif balance == "sampler":  # every class equally likely; within one, as sample_weight
        _, inverse = np.unique(labels, return_inverse=True)
        totals = np.bincount(inverse, weights=sw)
        draw = sw / np.where(totals[inverse] > 0, totals[inverse], 1.0)
    elif sample_weight is not None:
        row = sw
    if row is not None:
        row = (row / row.mean()).astype(np.float32)
    if draw is not None:
        draw = (draw / draw.sum()).astype(np.float32)
    return row, draw
