"""One training run, as ``aekit train`` does it: load and check data, train, score against PCA,
write the run folder (``model.safetensors``, ``config.json``, ``metrics.jsonl``,
``summary.json``).
"""

from __future__ import annotations

import sys
import time
from pathlib import Path
from typing import Any, Callable, Sequence

from aekit import __version__
from aekit.api import Autoencoder
from aekit.config import RunConfig
from aekit.data.out_of_core import should_stream
from aekit.apps.stream_train import train_streaming
from aekit.pipeline import (PreparedRun, add_label_results, denoising_errors, errors_vs_pca,
                            format_classes, label_summary, prepare_spec, starts_from_pca,
                            training_figures, validation_errors)
from aekit.report import write_report
from aekit.errors import TrainingError
from aekit.serialization import write_json
from aekit.training.callbacks import Callback, MetricsWriter
from aekit.training import distributed
from aekit.training.checkpoint import prepare_checkpoints
from aekit.training.findings import finding_headline


def summarize(ae: Autoencoder, run: PreparedRun, seconds: float) -> dict[str, Any]:
    """The numbers of ``summary.json``: training figures, errors, and PCA at the same size
    (the PCA the pipeline fitted on the training split, which also started the model)."""
    cfg = ae.config
    summary: dict[str, Any] = {
        "aekit_version": __version__,
        "data": cfg.data.data, "test": run.test_source,
        "n_train": int(len(run.train_index)), "n_val": int(len(run.val_index)),
        "n_test": run.test.n_samples if run.test is not None else 0,
        "n_features": run.n_features, "latent_dim": cfg.model.latent_dim,
        "hidden": list(cfg.model.hidden), "batch_size": cfg.train.batch_size,
        "balance": cfg.train.balance,
        "pca_init": starts_from_pca(cfg, ae.output_activation),
        **training_figures(ae, seconds),
        "pca_components": int(run.pca.n_components_),
    }
    if run.x_val is not None and len(run.x_val):
        summary.update(validation_errors(ae, run))
    if run.test is not None:
        summary.update(errors_vs_pca(ae.reconstruct_scaled, ae.scaler, run.pca, run.test.x))
        add_label_results(summary, label_summary(ae, ae.scaler, run.pca, run.test, run.data,
                                                 run.train_index, cfg.train.seed))
        if cfg.train.noise is not None:
            summary.update(denoising_errors(ae.reconstruct_scaled, ae.scaler, run.pca,
                                            run.test.x, cfg.train.noise, cfg.train.seed))
    return summary


def train_run(cfg: RunConfig, out_dir: str | Path,
              callbacks: Sequence[Callback] = ()) -> dict[str, Any]:
    """Train as ``aekit train`` does and write the run folder.

    Args:
        cfg: the run configuration.
        out_dir: the run folder (created; files in it are replaced).
        callbacks: extra hooks (diagnostics, a tracker such as
            :class:`~aekit.training.mlflow_log.MLflowLogger`...). A callback with an
            ``end_run(out_dir, summary, status)`` method is called once the run folder is
            complete (status FINISHED), or when the run fails (FAILED, KILLED on Ctrl-C).

    Returns:
        The summary (also written to ``summary.json``).

    Raises:
        DataError / ConfigError: bad input, raised before anything is written.
    """
    if should_stream(cfg.data.data):  # a .npy bigger than memory: streamed in chunks
        return with_trackers(callbacks, out_dir,
                             lambda: train_streaming(cfg, out_dir, callbacks))
    return train_prepared(prepare_spec(cfg), out_dir, callbacks)


def train_prepared(run: PreparedRun, out_dir: str | Path,
                   callbacks: Sequence[Callback] = ()) -> dict[str, Any]:
    """:func:`train_run` on a run the pipeline already prepared (``aekit tune`` prepares its
    data once and trains each trial through here); same files, same summary."""
    return with_trackers(callbacks, out_dir, lambda: _train_prepared(run, out_dir, callbacks))


def with_trackers(callbacks: Sequence[Callback], out_dir: str | Path,
                  train: Callable[[], dict[str, Any]]) -> dict[str, Any]:
    """Run ``train`` and tell the callbacks that track runs (those with ``end_run``) how it
    ended, with the finished run folder and its summary."""
    trackers = [cb for cb in callbacks if callable(getattr(cb, "end_run", None))]
    try:
        summary = train()
    except BaseException as exc:
        status = "KILLED" if isinstance(exc, KeyboardInterrupt) else "FAILED"
        for tracker in trackers:
            try:
                tracker.end_run(out_dir, None, status)
            except Exception:  # the run's own error matters more than the tracker's
                pass
        raise
    if summary:  # under torchrun only rank 0 has one
        for tracker in trackers:
            try:
                tracker.end_run(out_dir, summary, "FINISHED")
            except Exception as exc:  # the run folder is complete: say so, do not fail
                print(f"aekit: warning: {type(tracker).__name__} could not log the run: "
                      f"{exc}", file=sys.stderr, flush=True)
    return summary


def _train_prepared(run: PreparedRun, out_dir: str | Path,
                    callbacks: Sequence[Callback]) -> dict[str, Any]:
    cfg = run.config
    out_dir = Path(out_dir)
    ae = Autoencoder(config=cfg)
    if not distributed.is_main_process():  # under torchrun only rank 0 writes files
        ae.fit_prepared(run, callbacks=[distributed.follower_checkpointer(cfg, out_dir),
                                        *callbacks])
        return {}
    metrics = MetricsWriter(out_dir / "metrics.jsonl", append=cfg.train.resume)
    checkpointer = prepare_checkpoints(cfg, out_dir)  # --resume: checked, metrics cut back
    t0 = time.perf_counter()
    try:
        ae.fit_prepared(run, callbacks=[metrics, checkpointer, *callbacks])
    except TrainingError as exc:
        if getattr(ae, "trainer", None) is None or ae.model is None:
            raise
        metrics.on_train_end(ae.trainer, {})  # close metrics.jsonl with the last events
        ae.save(out_dir)  # the doctor left the last good weights in the model
        raise TrainingError(f"{exc}. The last good weights are saved in {out_dir}") from exc
    seconds = time.perf_counter() - t0
    ae.save(out_dir)
    summary = summarize(ae, run, seconds)
    write_json(out_dir / "summary.json", summary)
    if cfg.train.report:  # aekit train --report
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
            *format_classes(summary),
        ]
        if "denoise_test_sse_per_sample" in summary:
            lines.append(
                f"  denoising ({summary['noise']}), error to the clean test rows  aekit: "
                f"{summary['denoise_test_sse_per_sample']:.4g}   PCA-{k} of the noisy rows: "
                f"{summary['pca_denoise_test_sse_per_sample']:.4g}   the noisy rows: "
                f"{summary['noisy_test_sse_per_sample']:.4g}")
    elif "val_mse" in summary:
        lines.append(f"  validation mse: {summary['val_mse']:.4g}")
    lines += [f"PCA check: {e['message']}" for e in summary.get("events", [])
              if e.get("kind") == "pca_check"]
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
