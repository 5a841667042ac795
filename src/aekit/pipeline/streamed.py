"""The prepared run of a ``.npy`` bigger than memory (see :mod:`aekit.data.out_of_core`).

:func:`aekit.pipeline.prepare_spec` comes here when :func:`~aekit.data.out_of_core.should_stream`
says the file is to be streamed. The same decisions as in memory, so that the same file and
options give the same split, scaler, defaults and output:

1. split: :func:`~aekit.pipeline.decisions.split_plan` over the file's rows (``--test-split``
   when there is no ``--test``). The validation and test rows (at most ``MAX_HELD_ROWS`` each)
   are read into memory; every other row is a training row, streamed in shuffled chunks.
2. scale: the raw range and the statistics of the training rows, in streaming passes;
   :func:`~aekit.pipeline.decisions.choose_scaler` picks the mode.
3. defaults and output: :func:`~aekit.pipeline.decisions.data_defaults`,
   :func:`~aekit.pipeline.decisions.choose_output` (from the scaled training rows' range).
4. PCA: incremental PCA over the scaled training rows, block by block, at the latent size: it
   starts the model's linear path (``pca_init``) and is the yardstick of the validation and
   test errors (``"pca": "incremental"`` in ``summary.json``).

The result is an ordinary :class:`~aekit.pipeline.prepared.PreparedRun` whose ``x_train`` is
None and whose ``stream`` is the file.
"""

from __future__ import annotations

import os
from typing import Any, Iterator

import numpy as np

from aekit.baselines.pca import fit_pca_streamed
from aekit.config import RunConfig
from aekit.data import Dataset, Scaler, check_n_features, load
from aekit.data.labels import check_labels, read_labels, test_labels_spec, with_labels
from aekit.data.out_of_core import CHUNK_BYTES, ChunkedNpy
from aekit.errors import ConfigError
from aekit.pipeline.decisions import (choose_output, choose_scaler, data_defaults, held_count,
                                      in_unit_range, split_plan)
from aekit.pipeline.prepared import PreparedRun

CHUNK_ENV = "AEKIT_OUT_OF_CORE_CHUNK_BYTES"


def split_rows(cfg: RunConfig, n_rows: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(train, validation, test) rows of a file of ``n_rows`` rows, as in memory: test rows
    from ``--test-split`` unless ``--test`` is given (and none when they would be all or no
    rows), then validation rows from the rest."""
    test_fraction = 0.0 if cfg.data.test is not None else cfg.data.test_split
    if held_count(n_rows, test_fraction) in (0, n_rows):
        test_fraction = 0.0
    return split_plan(n_rows, test_fraction, cfg.train.validation_split, cfg.train.seed,
                      cfg.data.split_seed)


def chunk_bytes() -> int:
    """Bytes of file per chunk (``AEKIT_OUT_OF_CORE_CHUNK_BYTES``, default 64 MB)."""
    return int(os.environ.get(CHUNK_ENV, CHUNK_BYTES))


def check_streamable(cfg: RunConfig) -> None:
    """Refuse the options that need the training rows in memory.

    Raises:
        ConfigError: ``--noise`` or ``--balance`` on a streamed file.
    """
    if cfg.train.noise is not None:
        raise ConfigError(f"--noise needs the data in memory: {cfg.data.data} is trained out of "
                          "core; set AEKIT_OUT_OF_CORE=0 to load it into memory, or train on a "
                          "sample saved as a smaller .npy")
    if cfg.train.balance != "none":
        raise ConfigError(f"--balance {cfg.train.balance} needs the training data in memory: "
                          f"{cfg.data.data} is trained out of core (streamed in file order "
                          "chunks), where rows cannot be weighted or drawn by class")


def prepare_streamed(cfg: RunConfig, chunk_size: int | None = None) -> PreparedRun:
    """Split, scale, choose the defaults and the output, fit PCA, reading ``cfg.data.data``
    (a ``.npy``) in streaming passes: never more than a block, the held rows and a chunk.

    Returns:
        A :class:`~aekit.pipeline.prepared.PreparedRun` with ``stream`` set.

    Raises:
        DataError / ConfigError: bad data or options, before anything is trained.
    """
    source = ChunkedNpy(cfg.data.data, chunk_size or chunk_bytes())
    check_streamable(cfg)
    labels = names = None  # --labels FILE: one per row of the file, for the held-back test rows
    if cfg.data.labels not in ("auto", "none"):
        labels, names = read_labels(cfg.data.labels, "--labels")
        check_labels(labels, source.n_samples, f"--labels {cfg.data.labels}", cfg.data.data)
    test, test_source = None, "none"
    if cfg.data.test is not None:  # loaded (and checked) before the passes over the file
        test, test_source = load(cfg.data.test), cfg.data.test
        check_n_features(test, source.n_features, cfg.data.test)
        test = with_labels(test, test_labels_spec(cfg.data.labels, cfg.data.test_labels),
                           "--test-labels")
    train_idx, val_idx, test_idx = split_rows(cfg, source.n_samples)
    if not len(train_idx):
        raise ConfigError(f"`validation_split` leaves no training samples out of "
                          f"{source.n_samples - len(test_idx)}. Received: validation_split="
                          f"{cfg.train.validation_split}")
    held = np.union1d(val_idx, test_idx).astype(np.int64)
    stats = source.scan(held)  # every value checked; range and sums of the training rows
    cfg = data_defaults(cfg, len(train_idx), source.n_features, source.kind)
    scaler = choose_scaler(source.kind, float(stats.low.min()), float(stats.high.max()),
                           cfg.data.scaling, source.pixel_max, cfg.data.data)
    source.fit_scaler(scaler, stats, held)
    if len(test_idx):
        test = Dataset(source.gather(test_idx), source.sample_shape, source.kind,
                       cfg.data.data, labels[test_idx] if labels is not None else None,
                       source.pixel_max, names if labels is not None else None)
        test_source = f"{cfg.data.test_split:.0%} of {cfg.data.data} held back"
    x_val = scaler.transform(source.gather(val_idx)) if len(val_idx) else None
    bounds = [np.inf, -np.inf]  # the scaled training rows' range, taken during the PCA pass
    pca = fit_pca_streamed(_scaled_blocks(source, scaler, held, bounds), cfg.model.latent_dim,
                           len(train_idx), source.n_features)
    output = choose_output(cfg, in_unit_range(*bounds), scaler.mode)
    return PreparedRun(cfg, source, train_idx, val_idx, scaler, output, None, x_val,
                       test=test, test_source=test_source, pca=pca, stream=source, held=held,
                       test_index=test_idx)


def refit_pca_streamed(run: PreparedRun, cfg: RunConfig) -> Any:
    """Incremental PCA at ``cfg``'s latent size over a streamed run's scaled training rows."""
    bounds = [np.inf, -np.inf]
    return fit_pca_streamed(_scaled_blocks(run.stream, run.scaler, run.held, bounds),
                            cfg.model.latent_dim, len(run.train_index), run.n_features)


def _scaled_blocks(source: ChunkedNpy, scaler: Scaler, held: np.ndarray,
                   bounds: list[float]) -> Iterator[np.ndarray]:
    """The scaled training rows block by block; ``bounds`` becomes their [min, max]."""
    for _, rows in source.blocks(held=held):
        if len(rows):
            x = scaler.transform(rows)
            bounds[0], bounds[1] = min(bounds[0], float(x.min())), max(bounds[1], float(x.max()))
            yield x
