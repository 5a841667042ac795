"""The run pipeline: the one place that turns options and data into a prepared run, and that
scores a trained model against PCA.

Every entry point goes through it -- ``Autoencoder.fit``, ``aekit train`` (in memory and
streamed), ``lr-find``, ``study``, ``sweep`` and the scikit-learn estimator -- so the same data
and the same options give the same decisions whichever door a user comes in by:

1. **split** (:func:`split_plan`): the test rows are drawn first, with a generator that does not
   depend on ``--seed`` (runs with different seeds are scored on the same rows; ``--split-seed``
   draws another test split); the validation
   rows are then drawn from the rest with ``--seed``. Each held-back part is at most
   ``MAX_HELD_ROWS`` rows.
2. **scale** (:func:`choose_scaler`): fitted on the training rows only; ``auto`` is pixels to
   [0, 1], tabular data already within [0, 1] left alone, other tabular data standardized.
3. **defaults from the data** (:func:`data_defaults`): latent size, widths and batch size when
   the user did not set them (the rules are in that function's docstring and the README).
4. **output** (:func:`choose_output`): sigmoid for data in [0, 1], identity otherwise -- and
   identity for a model that starts from PCA, whose linear path must reproduce PCA exactly.
5. **PCA** (:func:`fit_baseline`): fitted once on the scaled training targets at the latent
   size; it initialises the model's linear path (``pca_init``) and is the yardstick of the
   validation and test errors.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from typing import Any

import numpy as np
import torch

from aekit.baselines.pca import fit_pca, pca_errors
from aekit.config import RunConfig, auto_batch_size
from aekit.data import Dataset, Scaler, check_n_features, load
from aekit.data.dataset import dataset_from_array
from aekit.errors import ConfigError, DataError
from aekit.training.callbacks import Callback
from aekit.training.findings import findings_of
from aekit.training.trainer import check_validation_options

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


# -- the prepared run -------------------------------------------------------------------------
@dataclass
class PreparedRun:
    """Everything decided before the first step (arrays are scaled float32).

    Attributes:
        config: the options with the data-dependent defaults filled in.
        data: the rows the model learns from (the test rows removed).
        train_index, val_index: rows of ``data`` for training and validation.
        scaler: fitted on the training rows. output_activation: sigmoid or identity.
        x_train, x_val: scaled inputs; y_train, y_val: scaled targets (None: the inputs).
        test, test_source: the test set (raw, or None) and where it came from.
        pca: PCA at the latent size, fitted on the scaled training targets.
    """

    config: RunConfig
    data: Dataset
    train_index: np.ndarray
    val_index: np.ndarray
    scaler: Scaler
    output_activation: str
    x_train: np.ndarray
    x_val: np.ndarray | None
    y_train: np.ndarray | None = None
    y_val: np.ndarray | None = None
    test: Dataset | None = None
    test_source: str = "none"
    pca: Any = None

    @property
    def n_features(self) -> int:
        """Values per sample."""
        return self.data.n_features


def as_dataset(x: Any, source: str = "array") -> Dataset:
    """Wrap a numpy array, torch tensor or :class:`Dataset` as a validated :class:`Dataset`."""
    if isinstance(x, Dataset):
        return x
    if isinstance(x, torch.Tensor):
        x = x.detach().cpu().numpy()
    return dataset_from_array(np.asarray(x), source)


def subset(ds: Dataset, index: np.ndarray) -> Dataset:
    """The rows ``index`` of ``ds`` (labels kept)."""
    labels = ds.labels[index] if ds.labels is not None else None
    return Dataset(np.ascontiguousarray(ds.x[index]), ds.sample_shape, ds.kind, ds.source,
                   labels, ds.pixel_max)


def load_splits(cfg: RunConfig) -> tuple[Dataset, Dataset | None, str]:
    """Load ``--data`` and ``--test`` (validated) and hold back the test rows.

    Returns:
        The rows to learn from, the test set (or None) and a description of it.
    """
    data = load(cfg.data.data)
    if cfg.data.test is not None:
        test = load(cfg.data.test)
        check_n_features(test, data.n_features, cfg.data.test)
        return data, test, cfg.data.test
    rest, _, held = split_plan(data.n_samples, cfg.data.test_split, 0.0, cfg.train.seed,
                               cfg.data.split_seed)
    if len(held) == 0 or len(rest) == 0:
        return data, None, "none"
    return (subset(data, rest), subset(data, held),
            f"{cfg.data.test_split:.0%} of {cfg.data.data} held back")


def prepare_spec(cfg: RunConfig) -> PreparedRun:
    """Load ``cfg``'s data and test set and prepare the run (``aekit train`` in memory)."""
    data, test, test_source = load_splits(cfg)
    return prepare(cfg, data, test=test, test_source=test_source)


def _target(y: Any, x: Dataset) -> Dataset | None:
    """The target as a Dataset shaped like ``x``; None when it is the input itself."""
    if y is None:
        return None
    if isinstance(y, Dataset):
        y_arr = y.x
    else:
        y_arr = y.detach().cpu().numpy() if isinstance(y, torch.Tensor) else np.asarray(y)
    if y_arr is x.x or (isinstance(y_arr, np.ndarray) and y_arr.size == x.x.size and
                        y_arr.reshape(x.x.shape).dtype == x.x.dtype and
                        np.array_equal(y_arr.reshape(x.x.shape), x.x)):
        return None
    target = as_dataset(y, "y (the target)")
    if target.n_samples != x.n_samples or target.n_features != x.n_features:
        raise DataError(f"y (the target) must have the shape of x: {x.n_samples} samples of "
                        f"{x.n_features} values. Received: {target.n_samples} samples of "
                        f"{target.n_features}")
    return target


def prepare(cfg: RunConfig, x: Any, y: Any = None, validation_data: Any = None,
            test: Dataset | None = None, test_source: str = "none") -> PreparedRun:
    """Split, scale, choose the defaults and the output, fit PCA: a run ready to train.

    Args:
        cfg: the options. x: the rows to learn from (array, tensor or Dataset).
        y: the target (denoising: ``x`` noisy, ``y`` clean); None or ``x`` itself: ``x``.
        validation_data: a validation set (array, or ``(x_val, y_val)``) replacing the split.
        test, test_source: a test set to score after training (raw units).

    Raises:
        DataError / ConfigError: bad data or options, before anything is trained.
    """
    ds = as_dataset(x)
    target = _target(y, ds)
    if validation_data is not None:
        train_idx, val_idx = np.arange(ds.n_samples), np.arange(0)
    else:
        train_idx, val_idx, _ = split_plan(ds.n_samples, 0.0, cfg.train.validation_split,
                                           cfg.train.seed)
    if len(train_idx) == 0:
        raise ConfigError(f"`validation_split` leaves no training samples out of "
                          f"{ds.n_samples}. Received: validation_split="
                          f"{cfg.train.validation_split}")
    check_validation_options(cfg, len(val_idx) if validation_data is None else 1)
    cfg = data_defaults(cfg, len(train_idx), ds.n_features, ds.kind)
    fit_rows = ds.x[train_idx]
    scaler = choose_scaler(ds.kind, float(fit_rows.min()), float(fit_rows.max()),
                           cfg.data.scaling, ds.pixel_max, ds.source).fit(fit_rows)
    del fit_rows
    x_train = scaler.transform_rows(ds.x, train_idx)
    y_train = scaler.transform_rows(target.x, train_idx) if target is not None else None
    x_val, y_val = _validation(scaler, ds, target, val_idx, validation_data)
    fitted = y_train if y_train is not None else x_train
    unit = bool(fitted.size) and in_unit_range(float(fitted.min()), float(fitted.max()))
    output = choose_output(cfg, unit, scaler.mode)
    return PreparedRun(cfg, ds, train_idx, val_idx, scaler, output, x_train, x_val, y_train,
                       y_val, test, test_source, fit_baseline(fitted, cfg))


def _validation(scaler: Scaler, ds: Dataset, target: Dataset | None, val_idx: np.ndarray,
                validation_data: Any) -> tuple[np.ndarray | None, np.ndarray | None]:
    """Scaled validation inputs and targets (targets None when they are the inputs)."""
    if validation_data is None:
        if not len(val_idx):
            return None, None
        y_val = scaler.transform_rows(target.x, val_idx) if target is not None else None
        return scaler.transform_rows(ds.x, val_idx), y_val
    x_part, y_part = (validation_data if isinstance(validation_data, tuple)
                      else (validation_data, None))
    val = as_dataset(x_part, "validation_data")
    check_n_features(val, ds.n_features, "validation_data")
    val_target = _target(y_part, val)
    return (scaler.transform(val.x),
            scaler.transform(val_target.x) if val_target is not None else None)


# -- scoring ----------------------------------------------------------------------------------
def reconstruction_errors(x: np.ndarray | torch.Tensor, x_hat: np.ndarray | torch.Tensor
                          ) -> dict[str, float]:
    """``mse`` over all values and ``sse_per_sample`` of a reconstruction (float64 sums)."""
    diff = np.asarray(x_hat, dtype=np.float64) - np.asarray(x, dtype=np.float64)
    sse = float(np.einsum("ij,ij->", diff, diff)) if diff.ndim == 2 else float((diff ** 2).sum())
    return {"mse": sse / max(1, diff.size), "sse_per_sample": sse / max(1, diff.shape[0])}


def pca_validation_mse(run: PreparedRun) -> float | None:
    """PCA's validation MSE (to the targets) on all validation rows, or None without any."""
    if run.x_val is None or not len(run.x_val):
        return None
    return pca_errors(run.pca, run.x_val, run.y_val)["mse"]


MIN_CHECK_ROWS = 3  # fewer validation rows than twice this: no check, all rows select


def validation_halves(run: Any) -> tuple[tuple[np.ndarray | None, np.ndarray | None],
                                         tuple[np.ndarray | None, np.ndarray | None]]:
    """The validation rows cut in two, ``(x, y)`` each (``y`` None: the inputs).

    The **selection** half (even positions) is what the trainer scores every epoch: it picks
    the best epoch and drives early stopping and the doctor. The **check** half (odd positions)
    is seen only once, at the end, by :class:`PCAGate`: a model chosen on some rows always
    looks better on those rows than it is, so the comparison with PCA is made on rows the
    choice never saw. With fewer than ``2 * MIN_CHECK_ROWS`` rows all of them select and there
    is no check, and a model started from PCA stays at PCA's solution (:class:`PCAGate`).
    """
    x, y = run.x_val, run.y_val
    if x is None or len(x) < 2 * MIN_CHECK_ROWS:
        return (x, y), (None, None)
    half = (lambda a, start: np.ascontiguousarray(a[start::2]) if a is not None else None)
    return (half(x, 0), half(y, 0)), (half(x, 1), half(y, 1))


KEEP_T = 2.0  # the trained model replaces PCA's solution when it is this many standard errors better


def clearly_better_than_pca(model_sse: np.ndarray, pca_sse: np.ndarray) -> tuple[bool, str]:
    """Does the trained model beat PCA on the validation rows by more than noise?

    Paired per-row squared errors: the mean difference must be negative and at least
    ``KEEP_T`` standard errors from zero (a one-sided paired t-test at about 2.5%). On a few
    dozen validation rows a model can look better than PCA by chance -- the best epoch is
    chosen on those same rows -- and then lose on new data; a run that cannot show a clear
    gain keeps PCA's solution, which it started from.

    Returns:
        The decision and a sentence with the numbers.
    """
    diff = np.asarray(model_sse, np.float64) - np.asarray(pca_sse, np.float64)
    n = diff.shape[0]
    change = diff.mean() / max(float(np.mean(pca_sse)), 1e-30)
    if n < 3:
        return False, f"{n} validation row(s) cannot show a gain"
    se = diff.std(ddof=1) / math.sqrt(n)
    t = -diff.mean() / se if se > 0 else (math.inf if diff.mean() < 0 else 0.0)
    verdict = bool(t >= KEEP_T)
    return verdict, (f"{change:+.1%} error change against PCA on {n} validation rows, "
                     f"{t:.2f} standard errors ({'above' if verdict else 'below'} the "
                     f"{KEEP_T:g} required)")


def per_row_sse(x: np.ndarray, x_hat: np.ndarray) -> np.ndarray:
    """Squared error of each row (float64)."""
    diff = np.asarray(x_hat, np.float64) - np.asarray(x, np.float64)
    return np.einsum("ij,ij->i", diff, diff)


def comparable_with_pca(cfg: RunConfig) -> bool:
    """True when the validation loss is a plain MSE, comparable with PCA's (not a VAE's KL, a
    code penalty or a cross-entropy)."""
    return cfg.model.loss == "mse" and cfg.model.kind != "vae" and not cfg.optim.l1_codes


class PCABaseline(Callback):
    """Logs PCA's validation error as a ``pca_baseline`` event when a run starts (not when it
    resumes), so that the training doctor compares the model with it."""

    def __init__(self, val_mse: float, latent_dim: int) -> None:
        self.val_mse, self.latent_dim = val_mse, latent_dim

    def on_train_begin(self, trainer: Any) -> None:
        if trainer.step == 0:
            trainer.log_event("pca_baseline", f"PCA-{self.latent_dim} validation mse "
                              f"{self.val_mse:.4g}", val_mse=self.val_mse,
                              latent_dim=self.latent_dim)


class PCAGate(Callback):
    """At the end of training, keeps the trained model only if it is clearly better than PCA
    on the check half of the validation rows (:func:`validation_halves`,
    :func:`clearly_better_than_pca`); otherwise puts the model back
    on PCA's solution (``init_from_pca``: the linear path to PCA, the hidden path's output to
    zero). Either way a ``pca_check`` event says what was decided and why. Put it first among
    the callbacks, so that the event reaches ``metrics.jsonl`` before it is closed."""

    def __init__(self, x_check: np.ndarray | None, y_check: np.ndarray | None, pca: Any,
                 n_val: int = 0) -> None:
        self.x_val = x_check  # None: too few validation rows to check anything
        self.target = y_check if y_check is not None else x_check
        self.pca = pca
        self.n_val = n_val
        self.pca_sse = (per_row_sse(self.target, pca.inverse_transform(pca.transform(x_check)))
                        if x_check is not None else None)

    @torch.inference_mode()
    def on_train_end(self, trainer: Any, logs: dict[str, Any]) -> None:
        model = trainer.model
        model.eval()
        if self.x_val is None:
            keep, why = False, (f"{self.n_val} validation row(s) are too few to show a gain "
                                f"(at least {2 * MIN_CHECK_ROWS}: half choose the epoch, half "
                                "check it)")
        else:
            device = next(model.parameters()).device
            x_hat = np.concatenate([model(torch.from_numpy(self.x_val[i:i + 4096]).to(device))
                                    .x_hat.cpu().numpy()
                                    for i in range(0, len(self.x_val), 4096)])
            keep, why = clearly_better_than_pca(per_row_sse(self.target, x_hat), self.pca_sse)
        if not keep:
            model.init_from_pca(self.pca.components_, self.pca.mean_)
        trainer.log_event("pca_check", ("kept the trained model: " if keep else
                                        "kept PCA's solution (the run's start): ") + why,
                          kept_model=keep)


def pca_callbacks(run: Any, cfg: RunConfig, output_activation: str) -> list[Callback]:
    """The callbacks that compare a run with PCA: the baseline event (the doctor's yardstick)
    and, for a model that started from PCA, the gate that keeps PCA unless clearly beaten."""
    out: list[Callback] = []
    (x_sel, y_sel), (x_chk, y_chk) = validation_halves(run)
    if x_sel is None or not len(x_sel) or not comparable_with_pca(cfg):
        return out
    if starts_from_pca(cfg, output_activation):  # with too few rows to check: PCA is kept
        out.append(PCAGate(x_chk, y_chk, run.pca, len(run.x_val)))
    # the doctor compares with the validation loss the trainer sees: the selection half
    out.append(PCABaseline(pca_errors(run.pca, x_sel, y_sel)["mse"],
                           int(run.pca.n_components_)))
    return out


def errors_vs_pca(reconstruct: Any, scaler: Scaler, pca: Any, x_raw: np.ndarray,
                  prefix: str = "test") -> dict[str, float]:
    """The model's and PCA's errors on raw rows ``x_raw`` (in the scaled space) and the ratio.

    Args:
        reconstruct: scaled rows -> scaled reconstructions (the model).
        scaler, pca: the run's. x_raw: rows in the data's units. prefix: key prefix.
    """
    x = scaler.transform(x_raw)
    model_err = reconstruction_errors(x, reconstruct(x))
    pca_err = pca_errors(pca, x)
    return {f"{prefix}_mse": model_err["mse"],
            f"{prefix}_sse_per_sample": model_err["sse_per_sample"],
            f"pca_{prefix}_mse": pca_err["mse"],
            f"pca_{prefix}_sse_per_sample": pca_err["sse_per_sample"],
            "ratio_to_pca": model_err["mse"] / max(pca_err["mse"], 1e-30)}


def training_figures(ae: Any, seconds: float) -> dict[str, Any]:
    """Epochs, steps, time, throughput, events and findings of a trained ``Autoencoder``."""
    epochs = ae.history.epochs
    return {"epochs": len(epochs), "steps": ae.trainer.step,
            "skipped_steps": ae.trainer.skipped_steps, "train_seconds": seconds,
            "samples_per_second": sum(e["samples_per_second"] * e["seconds"] for e in epochs)
            / max(1e-9, sum(e["seconds"] for e in epochs)),
            "fast_path": ae.trainer.use_fastpath,
            "final_train_loss": epochs[-1]["train_loss"] if epochs else None,
            "events": ae.history.events, "findings": findings_of(ae.trainer)}


def validation_errors(ae: Any, run: Any) -> dict[str, float]:
    """``val_mse`` of a trained ``Autoencoder`` and ``pca_val_mse`` (to the targets), in the
    scaled space; ``run`` is a :class:`PreparedRun` or a streamed run."""
    target = run.y_val if run.y_val is not None else run.x_val
    return {"val_mse": reconstruction_errors(target, ae.reconstruct_scaled(run.x_val))["mse"],
            "pca_val_mse": pca_validation_mse(run)}


def with_config(run: PreparedRun, **changes: Any) -> PreparedRun:
    """The same prepared data under changed options that do not change the data's decisions
    (e.g. a sweep's latent size: PCA is refitted at the new size)."""
    cfg = run.config.replace(**changes)
    cfg = data_defaults(cfg, len(run.train_index), run.n_features, run.data.kind)
    fitted = run.y_train if run.y_train is not None else run.x_train
    return replace(run, config=cfg, pca=fit_baseline(fitted, cfg))
