"""One training run, as ``aekit train`` does it: load and check data, train, score against PCA,
write the run folder (``model.safetensors``, ``config.json``, ``metrics.jsonl``,
``summary.json``).

The route: :func:`train_run` prepares the run (:func:`aekit.pipeline.prepare_spec`: in memory,
or streamed from a ``.npy`` bigger than memory), :func:`aekit.pipeline.rundir.train_into`
trains it (:func:`aekit.pipeline.fit.assemble` puts the training together,
:class:`aekit.training.trainer.Trainer` runs it) and writes the folder, and the trackers
(MLflow...) are told how the run ended.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any, Callable, Sequence

from aekit.api import Autoencoder
from aekit.config import RunConfig
from aekit.pipeline import PreparedRun, format_classes, prepare_spec
from aekit.pipeline.rundir import train_into
from aekit.report import write_report
from aekit.training.callbacks import Callback
from aekit.training.findings import finding_headline


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
    return train_prepared(prepare_spec(cfg), out_dir, callbacks)  # in memory or streamed


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
    summary = train_into(Autoencoder(config=run.config), run, out_dir, callbacks)
    if summary and run.config.train.report:  # aekit train --report
        write_report(out_dir)  # streamed: pictures from a sample of the file, not all of it
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
