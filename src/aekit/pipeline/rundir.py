"""The run folder: what ``aekit train`` writes, and how a failed run leaves it.

    out_dir/model.safetensors  config.json  metrics.jsonl  summary.json  checkpoint-*.safetensors

:func:`train_into` trains a prepared run into its folder: the metrics file and the
checkpointer join the run's callbacks (under ``torchrun``, rank 0 writes; the other ranks only
read the checkpoint they resume from), the weights are saved when training fails (the doctor
left the last good ones in the model), and :func:`summarize` writes ``summary.json``.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any, Sequence

from aekit import __version__
from aekit.errors import TrainingError
from aekit.serialization import write_json
from aekit.training import distributed
from aekit.training.callbacks import Callback, MetricsWriter
from aekit.training.checkpoint import prepare_checkpoints
from aekit.pipeline.classes import add_label_results, label_summary
from aekit.pipeline.decisions import starts_from_pca
from aekit.pipeline.prepared import PreparedRun
from aekit.pipeline.scoring import (denoising_errors, errors_vs_pca, training_figures,
                                    validation_errors)


def train_into(ae: Any, run: PreparedRun, out_dir: str | Path,
               callbacks: Sequence[Callback] = ()) -> dict[str, Any]:
    """Train ``ae`` (an :class:`aekit.Autoencoder`) on ``run`` and write the run folder.

    Returns:
        The summary (also written to ``summary.json``); empty on ranks other than 0.

    Raises:
        TrainingError: training could not go on; the last good weights are saved first.
    """
    cfg = run.config
    out_dir = Path(out_dir)
    if not distributed.is_main_process():  # under torchrun only rank 0 writes files
        ae.fit_prepared(run, callbacks=[prepare_checkpoints(cfg, out_dir, writer=False),
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
    return summary


def summarize(ae: Any, run: PreparedRun, seconds: float) -> dict[str, Any]:
    """The numbers of ``summary.json``: training figures, errors, and PCA at the same size
    (the PCA the pipeline fitted on the training split, which also started the model).

    A streamed run adds its chunk layout and ``"pca": "incremental"``; its codes are not
    probed (the training rows are not in memory).
    """
    cfg = ae.config
    streamed = run.stream is not None
    summary: dict[str, Any] = {"aekit_version": __version__, "data": cfg.data.data,
                               "test": run.test_source}
    if streamed:
        summary.update(out_of_core=True, chunk_rows=run.stream.chunk_rows,
                       n_chunks=run.stream.n_chunks)
    summary.update({
        "n_train": int(len(run.train_index)), "n_val": int(len(run.val_index)),
        "n_test": run.test.n_samples if run.test is not None else 0,
        "n_features": run.n_features, "latent_dim": cfg.model.latent_dim,
        "hidden": list(cfg.model.hidden), "batch_size": cfg.train.batch_size,
    })
    if not streamed:
        summary["balance"] = cfg.train.balance
    summary.update({
        "pca_init": starts_from_pca(cfg, ae.output_activation),
        **training_figures(ae, seconds),
        "pca_components": int(run.pca.n_components_),
    })
    if streamed:
        summary["pca"] = "incremental"
    if run.x_val is not None and len(run.x_val):
        summary.update(validation_errors(ae, run))
    if run.test is not None:
        summary.update(errors_vs_pca(ae.reconstruct_scaled, ae.scaler, run.pca, run.test.x))
        training = {} if streamed else dict(train=run.data, train_rows=run.train_index,
                                            seed=cfg.train.seed)
        add_label_results(summary, label_summary(ae, ae.scaler, run.pca, run.test, **training))
        if cfg.train.noise is not None:
            summary.update(denoising_errors(ae.reconstruct_scaled, ae.scaler, run.pca,
                                            run.test.x, cfg.train.noise, cfg.train.seed))
    return summary
