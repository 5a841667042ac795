"""``aekit train`` on a ``.npy`` bigger than memory (see :mod:`aekit.data.out_of_core`).

The last ``validation_split`` of the rows (at most ``MAX_VAL_ROWS``) is the validation set,
held in memory; the rows before it stream in shuffled chunks. The run folder is the usual one
(``model.safetensors``, ``config.json``, ``metrics.jsonl``, ``summary.json``, checkpoints).
With ``--test`` the test set is loaded in memory and scored next to PCA at the same size,
fitted incrementally (``IncrementalPCA``) over the scaled training rows, block by block.
"""

from __future__ import annotations

import copy
import os
import time
from pathlib import Path
from typing import Any, Sequence

import torch

from aekit import __version__
from aekit.api import Autoencoder
from aekit.baselines.pca import fit_pca_streamed
from aekit.config import RunConfig
from aekit.data import Dataset, check_n_features, load
from aekit.data.out_of_core import CHUNK_BYTES, ChunkedNpy, StreamedTrainingData
from aekit.errors import ConfigError
from aekit.runner import errors_on_test_set
from aekit.serialization import write_json
from aekit.training import distributed
from aekit.training.callbacks import Callback, MetricsWriter, ProgressBar
from aekit.training.checkpoint import prepare_checkpoints
from aekit.training.doctor import default_callbacks
from aekit.training.findings import findings_of
from aekit.training.trainer import Trainer, resolve_device

CHUNK_ENV = "AEKIT_OUT_OF_CORE_CHUNK_BYTES"
MAX_VAL_ROWS = 4096  # held in memory: bounded


def split_tail(source: ChunkedNpy, fraction: float) -> tuple[ChunkedNpy, int]:
    """The training part of ``source`` (its first rows) and the first validation row."""
    n_val = min(MAX_VAL_ROWS, int(round(source.n_samples * fraction)))
    if fraction > 0 and n_val == 0 and source.n_samples > 1:
        n_val = 1
    train = copy.copy(source)
    train.n_samples = source.n_samples - n_val
    return train, train.n_samples


def _output_activation(cfg: RunConfig, scaling: str) -> str:
    in_unit_range = scaling in ("unit", "minmax")
    if cfg.model.loss == "bce" and not in_unit_range:
        raise ConfigError(f"`loss` bce needs data scaled to [0, 1]; streamed data scaled "
                          f"{scaling!r} is not. Use --loss mse or --scaling minmax")
    if cfg.model.output_activation != "auto":
        return cfg.model.output_activation
    return "sigmoid" if in_unit_range else "identity"


def train_streaming(cfg: RunConfig, out_dir: str | Path,
                    callbacks: Sequence[Callback] = ()) -> dict[str, Any]:
    """Train on ``cfg.data.data`` (a ``.npy``) out of core and write the run folder.

    Returns:
        The summary (also written to ``summary.json`` on rank 0).

    Raises:
        DataError: unreadable file or non-finite values (checked in a streaming pass first).
    """
    out_dir = Path(out_dir)
    source = ChunkedNpy(cfg.data.data, int(os.environ.get(CHUNK_ENV, CHUNK_BYTES)))
    source.check_finite()
    test = None
    if cfg.data.test is not None:  # loaded (and checked) before any training
        test = load(cfg.data.test)
        check_n_features(test, source.n_features, cfg.data.test)
    train_src, val_start = split_tail(source, cfg.train.validation_split)
    ae = Autoencoder(config=cfg)
    ae.scaler = train_src.fit_scaler(cfg.data.scaling)
    ae.sample_shape, ae.data_kind = source.sample_shape, \
        "image" if len(source.shape) > 2 else "tabular"
    ae.output_activation = _output_activation(cfg, ae.scaler.mode)
    ae._apply_threads()
    torch.manual_seed(cfg.train.seed)
    ae.device = resolve_device(cfg.train.device)
    ae.model = ae._build(source.n_features)
    if cfg.train.lr_auto:  # the range test on as many rows as it draws, from all over
        from aekit.apps.lr_find import NUM_STEPS, auto_lr

        rows = train_src.spread_rows(min(NUM_STEPS * cfg.train.batch_size,
                                         train_src.chunk_rows))
        sample = torch.from_numpy(ae.scaler.transform(rows))
        cfg = ae.config = auto_lr(ae.model, cfg, sample.to(ae.device))
    x_val = None
    if val_start < source.n_samples:
        x_val = torch.from_numpy(ae.scaler.transform(
            source.read_rows(val_start, source.n_samples))).to(ae.device)
    data = StreamedTrainingData(train_src, ae.scaler, ae.device)
    main = distributed.is_main_process()
    hooks: list[Callback] = [*callbacks]
    if main:
        hooks = [MetricsWriter(out_dir / "metrics.jsonl", append=cfg.train.resume),
                 prepare_checkpoints(cfg, out_dir), *hooks]
    else:
        hooks = [distributed.follower_checkpointer(cfg, out_dir), *hooks]
    hooks += default_callbacks(cfg.train, x_val, hooks)
    if cfg.train.tensorboard and main:  # --tensorboard DIR: the probe is the validation rows
        from aekit.training.tensorboard import TensorBoardWriter

        probe = x_val if x_val is not None else torch.from_numpy(
            ae.scaler.transform(train_src.spread_rows(64))).to(ae.device)
        hooks.append(TensorBoardWriter(cfg.train.tensorboard, probe, ae.sample_shape))
    if cfg.train.progress:
        hooks.append(ProgressBar())
    ae.trainer = Trainer(ae.model, cfg, hooks)
    t0 = time.perf_counter()
    ae.history = ae.trainer.fit(data, x_val)
    seconds = time.perf_counter() - t0
    if not main:
        return {}
    ae.save(out_dir)
    summary = _summary(ae, source, train_src, x_val, seconds)
    if test is not None:
        summary.update(_test_and_pca(ae, train_src, test))
    write_json(out_dir / "summary.json", summary)
    if cfg.train.report:  # --report: pictures from a sample of the file, not all of it
        from aekit.report import write_report

        write_report(out_dir)
    return summary


def _summary(ae: Autoencoder, source: ChunkedNpy, train_src: ChunkedNpy,
             x_val: torch.Tensor | None, seconds: float) -> dict[str, Any]:
    epochs = ae.history.epochs
    summary: dict[str, Any] = {
        "aekit_version": __version__, "data": ae.config.data.data, "test": "none",
        "out_of_core": True, "chunk_rows": train_src.chunk_rows,
        "n_chunks": train_src.n_chunks, "n_train": train_src.n_samples,
        "n_val": source.n_samples - train_src.n_samples, "n_test": 0,
        "n_features": source.n_features, "latent_dim": ae.config.model.latent_dim,
        "epochs": len(epochs), "steps": ae.trainer.step,
        "skipped_steps": ae.trainer.skipped_steps, "train_seconds": seconds,
        "samples_per_second": sum(e["samples_per_second"] * e["seconds"] for e in epochs)
        / max(1e-9, sum(e["seconds"] for e in epochs)),
        "fast_path": ae.trainer.use_fastpath,
        "final_train_loss": epochs[-1]["train_loss"], "events": ae.history.events,
        "findings": findings_of(ae.trainer),
    }
    if x_val is not None:  # in scaled units, as Autoencoder.score
        summary["val_mse"] = ae.score(ae.scaler.inverse_transform(x_val.cpu().numpy()))["mse"]
    return summary


def _test_and_pca(ae: Autoencoder, train_src: ChunkedNpy, test: Dataset) -> dict[str, Any]:
    """The test error next to PCA's at the same size (incremental, over the training rows)."""
    pca = fit_pca_streamed((ae.scaler.transform(rows) for _, rows in train_src.blocks()),
                           ae.config.model.latent_dim, train_src.n_samples, train_src.n_features)
    return {"test": ae.config.data.test, "n_test": test.n_samples,
            "pca_components": int(pca.n_components_), "pca": "incremental",
            **errors_on_test_set(ae, pca, test)}
