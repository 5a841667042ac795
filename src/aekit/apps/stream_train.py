"""``aekit train`` on a ``.npy`` bigger than memory (see :mod:`aekit.data.out_of_core`).

The run is prepared with the pipeline's decisions (:mod:`aekit.pipeline`), so that the same file
and options give the same split, scaler, defaults and output as ``aekit train`` in memory:

1. split: :func:`~aekit.pipeline.split_plan` over the file's rows (``--test-split`` when there
   is no ``--test``). The validation and test rows (at most ``MAX_HELD_ROWS`` each) are read
   into memory; every other row is a training row, streamed in shuffled chunks.
2. scale: the raw range and the statistics of the training rows, in streaming passes;
   :func:`~aekit.pipeline.choose_scaler` picks the mode.
3. defaults and output: :func:`~aekit.pipeline.data_defaults`,
   :func:`~aekit.pipeline.choose_output` (from the scaled training rows' range).
4. PCA: incremental PCA over the scaled training rows, block by block, at the latent size: it
   starts the model's linear path (``pca_init``) and is the yardstick of the validation and
   test errors (``"pca": "incremental"`` in ``summary.json``).

The run folder is the usual one (``model.safetensors``, ``config.json``, ``metrics.jsonl``,
``summary.json``, checkpoints).
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator, Sequence

import numpy as np
import torch

from aekit import __version__
from aekit.api import Autoencoder
from aekit.baselines.pca import fit_pca_streamed
from aekit.config import RunConfig
from aekit.data import Dataset, Scaler, check_n_features, load
from aekit.data.labels import check_labels, read_labels, test_labels_spec, with_labels
from aekit.data.out_of_core import CHUNK_BYTES, ChunkedNpy, StreamedTrainingData
from aekit.errors import ConfigError, TrainingError
from aekit.pipeline import (add_label_results, choose_output, choose_scaler, data_defaults,
                            errors_vs_pca, held_count, in_unit_range, label_summary,
                            pca_callbacks, split_plan, starts_from_pca, training_figures,
                            validation_errors, validation_halves)
from aekit.serialization import write_json
from aekit.training import distributed
from aekit.training.callbacks import Callback, MetricsWriter, ProgressBar
from aekit.training.checkpoint import prepare_checkpoints
from aekit.training.doctor import default_callbacks
from aekit.training.lr_range import NUM_STEPS, auto_lr
from aekit.training.trainer import Trainer

CHUNK_ENV = "AEKIT_OUT_OF_CORE_CHUNK_BYTES"
PROBE_ROWS = 256  # training rows spread over the file: diagnostics and tensorboard probe


@dataclass
class StreamedRun:
    """A streamed run prepared by the pipeline's rules: what
    :meth:`aekit.api.Autoencoder.build_prepared` reads from a :class:`~aekit.pipeline.PreparedRun`,
    with the training rows left in the file.

    Attributes:
        config: the options with the data-dependent defaults filled in.
        data: the file (``sample_shape``, ``kind``, ``pixel_max``, chunk layout).
        train_index, val_index, test_index: rows of the file (sorted); ``test_index`` is empty
            with ``--test``. held: validation and test rows together, never trained on.
        scaler: fitted on the training rows. output_activation: sigmoid or identity.
        x_val: the scaled validation rows (or None). y_val: None (no separate target).
        test, test_source: the test set (raw: ``--test`` or the held rows) and its origin.
        pca: incremental PCA at the latent size on the scaled training rows.
    """

    config: RunConfig
    data: ChunkedNpy
    train_index: np.ndarray
    val_index: np.ndarray
    test_index: np.ndarray
    held: np.ndarray
    scaler: Scaler
    output_activation: str
    x_val: np.ndarray | None
    test: Dataset | None = None
    test_source: str = "none"
    pca: Any = None
    y_val: None = None

    @property
    def n_features(self) -> int:
        """Values per sample."""
        return self.data.n_features


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


def prepare_streamed(cfg: RunConfig, chunk_size: int | None = None) -> StreamedRun:
    """Split, scale, choose the defaults and the output, fit PCA, reading ``cfg.data.data``
    (a ``.npy``) in streaming passes: never more than a block, the held rows and a chunk.

    Raises:
        DataError / ConfigError: bad data or options, before anything is trained.
    """
    source = ChunkedNpy(cfg.data.data, chunk_size or chunk_bytes())
    if cfg.train.noise is not None:
        raise ConfigError(f"--noise needs the data in memory: {cfg.data.data} is trained out of "
                          "core; set AEKIT_OUT_OF_CORE=0 to load it into memory, or train on a sample "
                          "saved as a smaller .npy")
    if cfg.train.balance != "none":
        raise ConfigError(f"--balance {cfg.train.balance} needs the training data in memory: "
                          f"{cfg.data.data} is trained out of core (streamed in file order "
                          "chunks), where rows cannot be weighted or drawn by class")
    labels = None  # --labels FILE: one per row of the file, for the held-back test rows
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
    return StreamedRun(cfg, source, train_idx, val_idx, test_idx, held, scaler, output, x_val,
                       test, test_source, pca)


def _scaled_blocks(source: ChunkedNpy, scaler: Scaler, held: np.ndarray,
                   bounds: list[float]) -> Iterator[np.ndarray]:
    """The scaled training rows block by block; ``bounds`` becomes their [min, max]."""
    for _, rows in source.blocks(held=held):
        if len(rows):
            x = scaler.transform(rows)
            bounds[0], bounds[1] = min(bounds[0], float(x.min())), max(bounds[1], float(x.max()))
            yield x


def train_streaming(cfg: RunConfig, out_dir: str | Path,
                    callbacks: Sequence[Callback] = ()) -> dict[str, Any]:
    """Train on ``cfg.data.data`` (a ``.npy``) out of core and write the run folder.

    Returns:
        The summary (also written to ``summary.json`` on rank 0).

    Raises:
        DataError / ConfigError: unreadable file, non-finite values or bad options (found by
            the streaming passes, before anything is written).
    """
    out_dir = Path(out_dir)
    run = prepare_streamed(cfg)
    ae = Autoencoder(config=run.config)
    ae.build_prepared(run)
    cfg = run.config
    # training rows spread over the file: the range test's rows and the probes
    n_sample = min(NUM_STEPS * cfg.train.batch_size, run.data.chunk_rows) if cfg.train.lr_auto \
        else PROBE_ROWS
    sample = torch.from_numpy(run.scaler.transform(
        run.data.spread_rows(n_sample, held=run.held))).to(ae.device)
    probe = sample[::max(1, len(sample) // PROBE_ROWS)]
    if cfg.train.lr_auto:
        cfg = ae.config = auto_lr(ae.model, cfg, sample)
    (x_sel, _), _ = validation_halves(run)  # the other half checks against PCA at the end
    x_val = torch.from_numpy(x_sel).to(ae.device) if x_sel is not None else None
    data = StreamedTrainingData(run.data, run.scaler, ae.device, run.held)
    main = distributed.is_main_process()
    hooks: list[Callback] = [*callbacks]
    metrics = None
    if main:
        metrics = MetricsWriter(out_dir / "metrics.jsonl", append=cfg.train.resume)
        hooks = [metrics, prepare_checkpoints(cfg, out_dir), *hooks]
    else:
        hooks = [distributed.follower_checkpointer(cfg, out_dir), *hooks]
    # the PCA gate first: its event must reach metrics.jsonl before it is closed
    hooks = [*pca_callbacks(run, cfg, ae.output_activation), *hooks]
    hooks += default_callbacks(cfg.train, probe, hooks)
    if cfg.train.tensorboard and main:  # --tensorboard DIR: the probe is the validation rows
        from aekit.training.tensorboard import TensorBoardWriter

        hooks.append(TensorBoardWriter(cfg.train.tensorboard,
                                       x_val if x_val is not None else probe, ae.sample_shape))
    if cfg.train.time_budget is not None:  # plans the run's length from its speed
        from aekit.training.budget import TimeBudget

        hooks.insert(0, TimeBudget(cfg.train.time_budget))
    if cfg.train.progress:
        hooks.append(ProgressBar())
    ae.trainer = Trainer(ae.model, cfg, hooks)
    t0 = time.perf_counter()
    try:
        ae.history = ae.trainer.fit(data, x_val)
    except TrainingError as exc:
        if metrics is None:
            raise
        metrics.on_train_end(ae.trainer, {})  # close metrics.jsonl with the last events
        ae.save(out_dir)  # the doctor left the last good weights in the model
        raise TrainingError(f"{exc}. The last good weights are saved in {out_dir}") from exc
    seconds = time.perf_counter() - t0
    if not main:
        return {}
    ae.save(out_dir)
    summary = summarize_streamed(ae, run, seconds)
    write_json(out_dir / "summary.json", summary)
    if cfg.train.report:  # --report: pictures from a sample of the file, not all of it
        from aekit.report import write_report

        write_report(out_dir)
    return summary


def summarize_streamed(ae: Autoencoder, run: StreamedRun, seconds: float) -> dict[str, Any]:
    """``summary.json`` of a streamed run: the in-memory run's numbers (errors in the scaled
    space, next to PCA's) with the chunk layout."""
    cfg = ae.config
    summary: dict[str, Any] = {
        "aekit_version": __version__, "data": cfg.data.data, "test": run.test_source,
        "out_of_core": True, "chunk_rows": run.data.chunk_rows, "n_chunks": run.data.n_chunks,
        "n_train": int(len(run.train_index)), "n_val": int(len(run.val_index)),
        "n_test": run.test.n_samples if run.test is not None else 0,
        "n_features": run.n_features, "latent_dim": cfg.model.latent_dim,
        "hidden": list(cfg.model.hidden), "batch_size": cfg.train.batch_size,
        "pca_init": starts_from_pca(cfg, ae.output_activation),
        **training_figures(ae, seconds),
        "pca_components": int(run.pca.n_components_), "pca": "incremental",
    }
    if run.x_val is not None:
        summary.update(validation_errors(ae, run))
    if run.test is not None:
        summary.update(errors_vs_pca(ae.reconstruct_scaled, ae.scaler, run.pca, run.test.x))
        # per-class test errors; no probe: the training rows are not in memory
        add_label_results(summary, label_summary(ae, ae.scaler, run.pca, run.test))
    return summary
