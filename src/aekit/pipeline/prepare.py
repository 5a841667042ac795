"""The prepared run: data loaded, split and scaled, defaults chosen, PCA fitted.

:func:`prepare_spec` is where ``aekit train``, tune, lr-find and sweep get their run: it loads
the data into memory, or streams a ``.npy`` bigger than memory (:mod:`aekit.pipeline.streamed`)
when :func:`~aekit.data.out_of_core.should_stream` says so. Either way the result is one
:class:`PreparedRun`.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import numpy as np
import torch

from aekit.config import RunConfig
from aekit.data import Dataset, Scaler, check_n_features, load
from aekit.data.dataset import dataset_from_array
from aekit.data.labels import attach, same_classes, test_labels_spec, with_labels
from aekit.data.out_of_core import should_stream
from aekit.errors import ConfigError, DataError
from aekit.training.noise import VALIDATION_STREAM, corrupt_array
from aekit.training.inputs import check_validation_options
from aekit.pipeline.decisions import (check_sample_weight, choose_output, choose_scaler,
                                      data_defaults, fit_baseline, in_unit_range, split_plan,
                                      training_weights)
from aekit.pipeline.prepared import PreparedRun
from aekit.pipeline.streamed import prepare_streamed, refit_pca_streamed


def host_values(values: Any, name: str) -> Any:
    """A tensor given for ``name`` (labels, sample weights) as a numpy array, from any device;
    anything else as given.

    Raises:
        DataError: a tensor on the ``meta`` device (a shape without values).
    """
    if not isinstance(values, torch.Tensor):
        return values
    if values.device.type == "meta":
        raise DataError(f"`{name}` is a tensor on the meta device, which holds no values (only "
                        f"a shape, {tuple(values.shape)}). Allowed: a numpy array or a tensor "
                        "with values, on any device")
    return values.detach().cpu().numpy()


def as_dataset(x: Any, source: str = "array") -> Dataset:
    """Wrap a numpy array, torch tensor or :class:`Dataset` as a validated :class:`Dataset`."""
    if isinstance(x, Dataset):
        return x
    x = host_values(x, source)  # a tensor on any device: copied to the CPU, as numpy
    return dataset_from_array(np.asarray(x), source)


def subset(ds: Dataset, index: np.ndarray) -> Dataset:
    """The rows ``index`` of ``ds`` (labels and feature names kept)."""
    labels = ds.labels[index] if ds.labels is not None else None
    return Dataset(np.ascontiguousarray(ds.x[index]), ds.sample_shape, ds.kind, ds.source,
                   labels, ds.pixel_max, ds.label_names, ds.feature_names)


def load_splits(cfg: RunConfig) -> tuple[Dataset, Dataset | None, str]:
    """Load ``--data`` and ``--test`` (validated) and hold back the test rows.

    Returns:
        The rows to learn from, the test set (or None) and a description of it.
    """
    data = with_labels(load(cfg.data.data), cfg.data.labels, "--labels")
    if cfg.data.test is not None:
        test = load(cfg.data.test)
        check_n_features(test, data.n_features, cfg.data.test)
        spec = test_labels_spec(cfg.data.labels, cfg.data.test_labels)
        test = same_classes(data, with_labels(test, spec, "--test-labels"))
        return data, test, cfg.data.test
    if cfg.data.test_labels is not None:
        raise ConfigError("--test-labels labels the rows of --test; without --test the test "
                          "rows are held back from --data and keep the labels of --labels. "
                          f"Received: --test-labels {cfg.data.test_labels!r} without --test")
    rest, _, held = split_plan(data.n_samples, cfg.data.test_split, 0.0, cfg.train.seed,
                               cfg.data.split_seed)
    if len(held) == 0 or len(rest) == 0:
        return data, None, "none"
    return (subset(data, rest), subset(data, held),
            f"{cfg.data.test_split:.0%} of {cfg.data.data} held back")


def prepare_spec(cfg: RunConfig) -> PreparedRun:
    """Load ``cfg``'s data and test set and prepare the run, as ``aekit train`` does: in
    memory, or streamed from a ``.npy`` bigger than memory (``run.stream`` set)."""
    if should_stream(cfg.data.data):
        return prepare_streamed(cfg)
    data, test, test_source = load_splits(cfg)
    return prepare(cfg, data, test=test, test_source=test_source)


def training_run_of(cfg: RunConfig, data: str | None = None
                    ) -> tuple[PreparedRun | None, str | None]:
    """The run a saved model was trained by, prepared again from its configuration: its
    training rows, scaler and PCA, the PCA a loaded model is compared with (``aekit
    evaluate``, ``aekit explain``). Class balancing and noise are left out: they do not change
    the rows, the scaler or PCA.

    Args:
        cfg: the model's configuration (``config.json``). data: the training data as named
            now (the run may have named it from another folder); None: ``cfg``'s.

    Returns:
        ``(run, None)``, or ``(None, why)`` when the data cannot be prepared (moved, deleted).
    """
    from aekit.errors import AekitError

    changes: dict[str, Any] = {"balance": "none", "noise": None}
    if data is not None:
        changes["data"] = data
    try:
        return prepare_spec(cfg.replace(**changes)), None
    except (AekitError, OSError) as exc:
        return None, f"the run's training data could not be prepared ({exc})"


def _target(y: Any, x: Dataset) -> Dataset | None:
    """The target as a Dataset shaped like ``x``; None when it is the input itself."""
    if y is None:
        return None
    if isinstance(y, Dataset):
        y_arr = y.x
    else:
        y_arr = np.asarray(host_values(y, "y (the target)"))
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
            test: Dataset | None = None, test_source: str = "none", *,
            labels: Any = None, sample_weight: Any = None) -> PreparedRun:
    """Split, scale, choose the defaults and the output, fit PCA: a run ready to train.

    Args:
        cfg: the options. x: the rows to learn from (array, tensor or Dataset).
        y: the target (denoising: ``x`` noisy, ``y`` clean); None or ``x`` itself: ``x``.
        validation_data: a validation set (array, or ``(x_val, y_val)``) replacing the split.
        test, test_source: a test set to score after training (raw units).
        labels: class labels of ``x``'s rows (default: a Dataset's own, unless the
            ``labels`` option is ``none``); ``balance`` and the per-class results use them.
        sample_weight: a weight per row of ``x`` (>= 0) for its loss.

    Raises:
        DataError / ConfigError: bad data or options, before anything is trained.
    """
    ds = as_dataset(x)
    if cfg.data.labels == "none":  # a Dataset's own labels are ignored too
        ds = with_labels(ds, "none")
    labels, sample_weight = host_values(labels, "labels"), host_values(sample_weight,
                                                                       "sample_weight")
    ds = attach(ds, labels)
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
    if cfg.train.noise is not None and x_val is not None:  # denoising: noisy in, clean out
        y_val = x_val if y_val is None else y_val
        x_val = corrupt_array(x_val, cfg.train.noise, cfg.train.seed, VALIDATION_STREAM,
                              scaler.output_range)
    fitted = y_train if y_train is not None else x_train
    unit = bool(fitted.size) and in_unit_range(float(fitted.min()), float(fitted.max()))
    output = choose_output(cfg, unit, scaler.mode)
    weights = check_sample_weight(sample_weight, ds.n_samples)
    row_weight, draw_weight = training_weights(
        cfg.train.balance, ds.labels[train_idx] if ds.labels is not None else None,
        weights[train_idx] if weights is not None else None)
    return PreparedRun(cfg, ds, train_idx, val_idx, scaler, output, x_train, x_val, y_train,
                       y_val, test, test_source, fit_baseline(fitted, cfg), row_weight,
                       draw_weight)


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


def with_config(run: PreparedRun, **changes: Any) -> PreparedRun:
    """The same prepared data under changed options that do not change the data's decisions
    (e.g. a sweep's latent size: PCA is refitted at the new size)."""
    cfg = run.config.replace(**changes)
    cfg = data_defaults(cfg, len(run.train_index), run.n_features, run.data.kind)
    if run.stream is not None:
        return replace(run, config=cfg, pca=refit_pca_streamed(run, cfg))
    fitted = run.y_train if run.y_train is not None else run.x_train
    return replace(run, config=cfg, pca=fit_baseline(fitted, cfg))
