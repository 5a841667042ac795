"""Fitting a prepared run: the one assembly of a training, in memory or streamed.

:func:`assemble` takes a :class:`~aekit.pipeline.prepared.PreparedRun` and a built model and
puts together, in this order, what every run gets:

1. the training data on the model's device: the training tensor, or the streamed file's
   chunks (:class:`~aekit.data.out_of_core.StreamedTrainingData`), and the validation rows
   that select the best epoch (the other half checks against PCA at the end);
2. the sanity batch: one small batch through the model before the first step;
3. ``--lr auto``: the learning-rate range test picks the rate (:func:`auto_lr`);
4. the callbacks: the PCA baseline and gate first (their events must reach ``metrics.jsonl``
   before it is closed), the caller's (run folder, trackers), diagnostics and the doctor,
   TensorBoard, the time budget (first of all) and the progress bar;
5. the :class:`~aekit.training.trainer.Trainer`.

:meth:`Training.run` then trains. ``Autoencoder.fit`` (through ``fit_prepared``), ``aekit
train`` and every app that trains come through here.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Sequence

import torch

from aekit.config import RunConfig
from aekit.data.out_of_core import StreamedTrainingData
from aekit.errors import TrainingError
from aekit.training import distributed
from aekit.training.budget import TimeBudget
from aekit.training.callbacks import Callback, ProgressBar
from aekit.training.doctor import default_callbacks
from aekit.training.lr_range import NUM_STEPS, auto_lr
from aekit.training.trainer import History, Trainer
from aekit.pipeline.prepared import PreparedRun
from aekit.pipeline.prepare import validation_halves
from aekit.pipeline.scoring import pca_callbacks

PROBE_ROWS = 256  # streamed: training rows spread over the file for diagnostics and tensorboard
SANITY_ROWS = 8


@dataclass
class Training:
    """An assembled training: :meth:`run` trains.

    Attributes:
        config: the run's options (``lr`` as the range test chose it under ``--lr auto``).
        trainer: the trainer, with every callback.
        train_data: the training tensor, or the streamed file's chunks.
        x_val: the validation rows that select the best epoch (or None).
        targets: ``y_train``, ``y_val``, ``row_weight``, ``draw_weight`` where given.
    """

    config: RunConfig
    trainer: Trainer
    train_data: Any
    x_val: torch.Tensor | None
    targets: dict[str, torch.Tensor] = field(default_factory=dict)

    def run(self) -> History:
        """Train; returns the history."""
        return self.trainer.fit(self.train_data, self.x_val, **self.targets)


def training_rows(run: PreparedRun, device: torch.device, n_rows: int = PROBE_ROWS
                  ) -> torch.Tensor:
    """Scaled training rows on ``device``: all of them in memory; streamed, about ``n_rows``
    rows spread over the file, never validation or test rows."""
    if run.stream is None:
        return torch.from_numpy(run.x_train).to(device)
    rows = run.stream.spread_rows(n_rows, held=run.held)
    return torch.from_numpy(run.scaler.transform(rows)).to(device)


def sanity_check(model: torch.nn.Module, x_train: torch.Tensor) -> None:
    """Run one small batch through the model before training (fail before the first step).

    Raises:
        TrainingError: the model fails on the batch, or its loss is not finite.
    """
    try:
        with torch.no_grad():
            out = model(x_train[: min(SANITY_ROWS, len(x_train))] if len(x_train) > 1
                        else x_train.repeat(2, 1))
    except RuntimeError as exc:
        raise TrainingError(f"the model fails on a first batch: {exc}. Likely causes: a "
                            "feature count that does not match the model, or batch "
                            "normalization with a single sample") from exc
    if not math.isfinite(out.loss.item()):
        raise TrainingError("the loss of a first batch is not finite: check the data "
                            "scaling (--scaling) and the initialisation (--init)")


def assemble(run: PreparedRun, model: torch.nn.Module, device: torch.device,
             callbacks: Sequence[Callback] = ()) -> Training:
    """Put together the training of ``model`` (built for ``run``, on ``device``).

    Args:
        run: the prepared run. model: the model, its linear path started from PCA where the
            run says so. callbacks: the caller's hooks (run folder, trackers, ...), placed
            after the PCA gate and before the diagnostics.

    Raises:
        TrainingError: the model fails on a first batch.
    """
    cfg = run.config
    to_device = (lambda a: torch.from_numpy(a).to(device) if a is not None else None)
    (x_sel, y_sel), _ = validation_halves(run)  # the other half checks against PCA
    if run.stream is None:
        t_train, t_val = to_device(run.x_train), to_device(x_sel)
        sample = probe = t_train
    else:  # rows spread over the file: the sanity batch, the range test and the probes
        n_sample = (min(NUM_STEPS * cfg.train.batch_size, run.stream.chunk_rows)
                    if cfg.train.lr_auto else PROBE_ROWS)
        sample = training_rows(run, device, n_sample)
        probe = sample[::max(1, len(sample) // PROBE_ROWS)]
        t_val = to_device(x_sel)
        t_train = StreamedTrainingData(run.stream, run.scaler, device, run.held)
    sanity_check(model, sample)
    if cfg.train.lr_auto:  # the learning-rate range test picks --lr (aekit lr-find)
        cfg = auto_lr(model, cfg, sample)
    hooks = [*pca_callbacks(run, cfg, run.output_activation), *callbacks]
    hooks += default_callbacks(cfg.train, probe, hooks)
    if cfg.train.tensorboard and distributed.is_main_process():  # --tensorboard DIR
        from aekit.training.tensorboard import TensorBoardWriter

        shown = t_val if t_val is not None and len(t_val) else probe
        hooks.append(TensorBoardWriter(cfg.train.tensorboard, shown, run.data.sample_shape))
    if cfg.train.time_budget is not None:  # plans the run's length from its speed
        hooks.insert(0, TimeBudget(cfg.train.time_budget))
    if cfg.train.progress:
        hooks.append(ProgressBar())
    trainer = Trainer(model, cfg, hooks)
    trainer.value_range = run.scaler.output_range  # --noise clips to it
    targets = {k: to_device(v) for k, v in (("y_train", run.y_train), ("y_val", y_sel),
                                            ("row_weight", run.row_weight),
                                            ("draw_weight", run.draw_weight))
               if v is not None}
    return Training(cfg, trainer, t_train, t_val, targets)


def fit_run(run: PreparedRun, model: torch.nn.Module, device: torch.device,
            callbacks: Sequence[Callback] = ()) -> Training:
    """:func:`assemble` and train; returns the training (its trainer holds the history)."""
    training = assemble(run, model, device, callbacks)
    training.run()
    return training

