"""One training run, as ``aekit train`` does it: load and check data, train, score against PCA,
write the run folder (``model.safetensors``, ``config.json``, ``metrics.jsonl``,
``summary.json``).
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from aekit import __version__
from aekit.api import Autoencoder, split_indices
from aekit.baselines.pca import fit_pca, pca_errors
from aekit.config import RunConfig
from aekit.data import Dataset, check_n_features, load
from aekit.data.out_of_core import should_stream
from aekit.errors import TrainingError
from aekit.serialization import write_json
from aekit.training.callbacks import Callback, MetricsWriter
from aekit.training import distributed
from aekit.training.checkpoint import prepare_checkpoints
from aekit.training.findings import finding_headline, findings_of


def load_run_data(cfg: RunConfig) -> tuple[Dataset, Dataset | None, str]:
    """Load ``--data`` and ``--test`` (validated, before any training).

    Returns:
        The training data, the test data (or None), and a description of the test source.
    """
    train = load(cfg.data.data)
    if cfg.data.test is not None:
        test = load(cfg.data.test)
        check_n_features(test, train.n_features, cfg.data.test)
        return train, test, cfg.data.test
    if cfg.data.test_split <= 0:
        return train, None, "none"
    keep, held = split_indices(train.n_samples, cfg.data.test_split, cfg.train.seed + 1)
    if len(keep) == 0 or len(held) == 0:
        return train, None, "none"
    return (_subset(train, keep), _subset(train, held),
            f"{cfg.data.test_split:.0%} of {cfg.data.data} held back")


def _subset(ds: Dataset, index: np.ndarray) -> Dataset:
    labels = ds.labels[index] if ds.labels is not None else None
    return Dataset(np.ascontiguousarray(ds.x[index]), ds.sample_shape, ds.kind, ds.source,
                   labels, ds.pixel_max)


def summarize(ae: Autoencoder, train: Dataset, test: Dataset | None, test_source: str,
              seconds: float) -> dict[str, Any]:
    """The numbers of ``summary.json``: training figures, errors, and PCA at the same size."""
    history = ae.history
    cfg = ae.config
    train_idx = ae.train_index
    val_mask = np.ones(train.n_samples, bool)
    val_mask[train_idx] = False
    epochs_run = len(history.epochs)
    summary: dict[str, Any] = {
        "aekit_version": __version__,
        "data": cfg.data.data, "test": test_source,
        "n_train": int(len(train_idx)), "n_val": int(val_mask.sum()),
        "n_test": test.n_samples if test is not None else 0,
        "n_features": train.n_features, "latent_dim": cfg.model.latent_dim,
        "epochs": epochs_run, "steps": ae.trainer.step,
        "skipped_steps": ae.trainer.skipped_steps,
        "train_seconds": seconds,
        "samples_per_second": sum(e["samples_per_second"] * e["seconds"]
                                  for e in history.epochs) / max(
            1e-9, sum(e["seconds"] for e in history.epochs)),
        "fast_path": ae.trainer.use_fastpath,
        "final_train_loss": history.epochs[-1]["train_loss"],
        "events": history.events,
        "findings": findings_of(ae.trainer),
    }
    x_train_scaled = ae.scaler.transform_rows(train.x, train_idx)  # ours: PCA may centre it
    pca = fit_pca(x_train_scaled, cfg.model.latent_dim, cfg.train.seed, overwrite=True)
    del x_train_scaled
    summary["pca_components"] = int(pca.n_components_)
    if val_mask.any():
        summary["val_mse"] = ae.score(train.x[val_mask])["mse"]
    if test is not None:
        summary.update(errors_on_test_set(ae, pca, test))
    return summary


def errors_on_test_set(ae: Autoencoder, pca: Any, test: Dataset) -> dict[str, float]:
    """The model's and PCA's errors on the test set (in the scaled space) and their ratio."""
    model_err = ae.score(test.x)
    pca_err = pca_errors(pca, ae.scaler.transform(test.x))
    return {"test_mse": model_err["mse"], "test_sse_per_sample": model_err["sse_per_sample"],
            "pca_test_mse": pca_err["mse"], "pca_test_sse_per_sample": pca_err["sse_per_sample"],
            "ratio_to_pca": model_err["mse"] / max(pca_err["mse"], 1e-30)}


def train_run(cfg: RunConfig, out_dir: str | Path,
              callbacks: Sequence[Callback] = ()) -> dict[str, Any]:
    """Train as ``aekit train`` does and write the run folder.

    Args:
        cfg: the run configuration.
        out_dir: the run folder (created; files in it are replaced).
        callbacks: extra hooks (diagnostics...).

    Returns:
        The summary (also written to ``summary.json``).

    Raises:
        DataError / ConfigError: bad input, raised before anything is written.
    """
    if should_stream(cfg.data.data):  # a .npy bigger than memory: streamed in chunks
        from aekit.apps.stream_train import train_streaming

        return train_streaming(cfg, out_dir, callbacks)
    train, test, test_source = load_run_data(cfg)
    out_dir = Path(out_dir)
    ae = Autoencoder(config=cfg)
    if not distributed.is_main_process():  # under torchrun only rank 0 writes files
        ae.fit(train, callbacks=[distributed.follower_checkpointer(cfg, out_dir), *callbacks])
        return {}
    metrics = MetricsWriter(out_dir / "metrics.jsonl", append=cfg.train.resume)
    checkpointer = prepare_checkpoints(cfg, out_dir)  # --resume: checked, metrics cut back
    t0 = time.perf_counter()
    try:
        ae.fit(train, callbacks=[metrics, checkpointer, *callbacks])
    except TrainingError as exc:
        if getattr(ae, "trainer", None) is None or ae.model is None:
            raise
        metrics.on_train_end(ae.trainer, {})  # close metrics.jsonl with the last events
        ae.save(out_dir)  # the doctor left the last good weights in the model
        raise TrainingError(f"{exc}. The last good weights are saved in {out_dir}") from exc
    seconds = time.perf_counter() - t0
    ae.save(out_dir)
    summary = summarize(ae, train, test, test_source, seconds)
    write_json(out_dir / "summary.json", summary)
    if cfg.train.report:  # aekit train --report
        from aekit.report import write_report

        write_report(out_dir)
    return summary


def format_summary(summary: dict[str, Any], out_dir: str | Path) -> str:
    """A short human-readable result: the model's test error next to PCA's."""
    lines = [f"trained {summary['epochs']} epochs ({summary['steps']} steps) in "
             f"{summary['train_seconds']:.1f}s, {summary['samples_per_second']:.0f} samples/s"]
    if "test_sse_per_sample" in summary:
        k = summary["pca_components"]
        lines += [
            f"test set: {summary['test']} ({summary['n_test']} samples, "
            f"{summary['n_features']} features)",
            f"  test error (squared error per sample)  aekit: "
            f"{summary['test_sse_per_sample']:.4g}   PCA-{k}: "
            f"{summary['pca_test_sse_per_sample']:.4g}   ratio: {summary['ratio_to_pca']:.2f}x",
        ]
    elif "val_mse" in summary:
        lines.append(f"  validation mse: {summary['val_mse']:.4g}")
    lines += doctor_lines(summary.get("findings"), out_dir)
    lines.append(f"run folder: {out_dir} (model.safetensors, config.json, metrics.jsonl, "
                 "summary.json)")
    return "\n".join(lines)


def doctor_lines(findings: list[dict[str, Any]] | None, out_dir: str | Path,
                 most: int = 3) -> list[str]:
    """What the training doctor found, one line each (most important first, at most ``most``),
    and where the evidence and advice are; nothing when the run was not examined."""
    if findings is None:
        return []
    if not findings:
        return ["doctor: no problem found"]
    lines = [f"doctor: {finding_headline(f)}" for f in findings[:most]]
    more = f"{len(findings) - most} more, " if len(findings) > most else ""
    return lines + [f"  ({more}evidence and advice: aekit diagnose {out_dir})"]
