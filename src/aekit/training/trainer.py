"""The training loop: mini-batches drawn by indexing one contiguous tensor, one flat optimizer.

Speed by design: no DataLoader and no per-sample Python; the whole training split is one
``float32`` tensor and each step indexes it with a slice of the epoch's permutation. Plain MLPs
take a hand-written backward pass (``fastpath``), other models autograd. Work that is not the
step (validation, callbacks' measurements) runs per epoch or every N steps.

Around the loop, in their own modules: best weights and early stopping
(:mod:`~aekit.training.best_weights`), when checkpoints are written
(:mod:`~aekit.training.checkpoint_timing`), the history and event log
(:mod:`~aekit.training.events`), the input checks (:mod:`~aekit.training.inputs`) and exact
resume (:mod:`~aekit.training.resume`).

A reconstruction target other than the input (denoising: noisy input, clean target) is a second
tensor of the same shape, ``fit(x_train, x_val, y_train, y_val)``; every batch takes the same
rows of both.

Under ``torchrun`` (an initialized process group) the loop is data-parallel: every rank draws
the same permutation, trains on its shard of each global batch, and the flat gradient buffer
is averaged across ranks with one all_reduce per step (see ``distributed``).
"""

from __future__ import annotations

import math
import time
from typing import Any, Sequence

import torch
from torch import nn

from aekit.config import AUTO_MAX_EPOCHS, RunConfig, parse_noise
from aekit.errors import TrainingError
from aekit.training import distributed, fastpath
from aekit.training.batches import epoch_batches
from aekit.training.best_weights import BestWeights
from aekit.training.callbacks import Callback
from aekit.training.checkpoint_timing import NO_TOTALS, CheckpointTimer
from aekit.training.events import EventLog, History
from aekit.training.inputs import (check_batch_schedule, check_row_weights, check_targets,
                                  check_validation_options)
from aekit.training.noise import corrupt, step_generator
from aekit.training.optim import FlatOptimizer, FlatParams, clip_gradients, weight_penalty
from aekit.training.plan import auto_epochs, auto_patience, batch_sizes, requested_batch_size
from aekit.training.device import autocast_dtype, matmul_precision, on_device, resolve_precision
from aekit.training.evaluation import mean_loss
from aekit.training.resume import Resumable
from aekit.training.schedules import Schedule

class Trainer(Resumable):
    """Trains ``model`` on a training tensor, optionally scoring a validation tensor per epoch.

    Args:
        model: an autoencoder whose ``forward`` returns :class:`aekit.models.AEOutput`.
        config: the run configuration (optimizer, schedule, loop options).
        callbacks: hooks called around each step and epoch, in order.
    """

    def __init__(self, model: nn.Module, config: RunConfig,
                 callbacks: Sequence[Callback] = ()) -> None:
        self.model = model
        self.config = config
        self.callbacks = list(callbacks)
        self.flat = FlatParams(model)
        self.optimizer = FlatOptimizer(self.flat, config.optim)
        device = self.flat.data.device
        self.precision = resolve_precision(config.train.precision, device)  # --precision
        self._autocast = autocast_dtype(self.precision)  # bf16: forward and loss autocast
        self.use_fastpath = fastpath.supports(model) and self._autocast is None
        self.step = 0
        self.epoch = 0
        self.lr = config.optim.lr
        self.epochs = config.train.epochs or 0  # resolved in fit() when auto
        self.batch_size = config.train.batch_size  # resolved in fit() when auto
        self.patience: int | None = None  # early stopping; resolved in fit() ("auto")
        self.steps_per_epoch = 1
        self.stop_training = False
        self.skipped_steps = 0
        self.history = History()
        # --noise: the data's range in the scaled space (pixels: (0, 1)), set by the caller
        self.value_range: tuple[float, float] | None = None
        self._row_weight: torch.Tensor | None = None  # set by fit()
        self._draw_weight: torch.Tensor | None = None
        self._epoch_batch: list[int] = []  # batch size and steps of each epoch, set by fit()
        self._epoch_steps: list[int] = []
        self.schedule: Schedule | None = None
        self.generator = torch.Generator()
        self.data_fingerprint: dict[str, Any] = {}
        self.epoch_rng = self.generator.get_state()  # at the current epoch's start
        self.events = EventLog()
        self.best_weights = BestWeights()  # runs after the callbacks, at each epoch end
        self.checkpoint_timer = CheckpointTimer()  # after the best weights
        self.resumed = False  # set by load_training_state (a Checkpointer resumed the run)
        self.resume_point: tuple[int, tuple[float, int, int]] = (0, NO_TOTALS)  # batch, totals
        self.pending_callback_states: dict[str, dict[str, Any]] | None = None
        opt = config.optim
        self._l1 = opt.l1 or 0.0
        self._l2 = opt.l2 or 0.0
        self.world = distributed.world_size()  # > 1: data-parallel under torchrun
        self.rank = distributed.rank()

    # -- events -------------------------------------------------------------------------------
    def log_event(self, kind: str, message: str, **data: Any) -> None:
        """Record a notable event (in the history, ``metrics.jsonl`` and on the console); one
        logged before training starts is held until every callback has started
        (:class:`~aekit.training.events.EventLog`)."""
        self.events.log(self, kind, message, **data)

    # -- the step -----------------------------------------------------------------------------
    def train_step(self, xb: torch.Tensor, weight: float = 1.0,
                   target: torch.Tensor | None = None,
                   row_weight: torch.Tensor | None = None) -> float:
        """One optimizer step on batch ``xb``; returns the batch loss (NaN when skipped).

        ``target``, when given, is what the reconstruction of ``xb`` is compared with (rows of
        the same shape; denoising: ``xb`` noisy, ``target`` clean); None: ``xb`` itself.
        ``row_weight`` (one per row of ``xb``) weights each row's reconstruction loss (class
        balancing, ``sample_weight``); None: every row counts the same.

        A non-finite loss or gradient never reaches the weights: the step is skipped, the
        optimizer state is untouched and the skip is counted. Data-parallel, ``xb`` is this
        rank's shard and ``weight`` its share of the global batch; the returned loss and the
        gradients are those of the global batch, the same on every rank, so every rank takes
        the same decision (step or skip).
        """
        loss: float | torch.Tensor
        if self.world > 1 and xb.shape[0] == 0:  # a shard of a last batch smaller than world
            self.flat.grad.zero_()
            loss = 0.0
        elif self.use_fastpath:  # writes every gradient, no zeroing needed
            loss = fastpath.lazy_loss_and_grad(self.model, xb, target, row_weight)
        else:
            self.flat.zero_grad()
            loss = self._autograd_loss(xb, target, row_weight)
        if self.world > 1:
            loss = distributed.reduce_gradients(self.flat.grad, float(loss), weight)
        penalty = weight_penalty(self.flat, self._l1, self._l2)
        for cb in self.callbacks:
            cb.on_after_backward(self, self.step)
        if isinstance(loss, torch.Tensor):  # a GPU's: one read for the loss and the check
            loss, grad_sum = torch.stack((loss, self.flat.grad.sum().double())).tolist()
        else:  # the CPU's (a float already): reading costs nothing there
            grad_sum = float(self.flat.grad.sum())
        loss += penalty
        if not (math.isfinite(loss) and math.isfinite(grad_sum)):
            self.skipped_steps += 1
            return float("nan")
        clip_gradients(self.flat, self.config.train.clip_value, self.config.train.clip_norm)
        self.optimizer.step(self.lr)
        return loss

    def _autograd_step(self, xb: torch.Tensor, target: torch.Tensor | None = None,
                       row_weight: torch.Tensor | None = None) -> float:
        """Forward and backward by autograd (gradients accumulate into ``flat.grad``); the
        loss as a Python float."""
        return float(self._autograd_loss(xb, target, row_weight))

    def _autograd_loss(self, xb: torch.Tensor, target: torch.Tensor | None = None,
                       row_weight: torch.Tensor | None = None) -> float | torch.Tensor:
        """:meth:`_autograd_step`'s loss: a float on the CPU, elsewhere a float64 scalar on
        the device, not read (see :func:`aekit.training.fastpath.lazy_loss_and_grad`)."""
        if self._autocast is not None:
            with torch.autocast(xb.device.type, dtype=self._autocast):
                out = (self.model(xb) if target is None and row_weight is None
                       else self.model(xb, target, row_weight))
        else:
            out = (self.model(xb) if target is None and row_weight is None
                   else self.model(xb, target, row_weight))
        out.loss.backward()
        return out.loss.item() if xb.device.type == "cpu" else out.loss.detach().double()

    # -- the loop -----------------------------------------------------------------------------
    def _batch_size(self, n_train: int) -> int:
        """Samples per step: the whole split for gd, else ``batch_size`` (auto: chosen from
        ``n_train`` by :func:`aekit.training.plan.requested_batch_size`), at most ``n_train``."""
        if self.config.optim.optimizer == "gd":
            return max(1, n_train)
        size = requested_batch_size(self.config.train.batch_size, n_train)
        return max(1, min(size, n_train))

    def _steps_for(self, batch_size: int, x_train: Any) -> int:
        """Steps of an epoch at ``batch_size`` (a last batch of one row is dropped under batch
        norm, which cannot normalise it; out of core, batches stay inside chunks)."""
        if not isinstance(x_train, torch.Tensor):
            return x_train.steps_per_epoch(batch_size, self._has_batch_norm())
        n_train = x_train.shape[0]
        steps = math.ceil(n_train / batch_size)
        return steps - 1 if self._has_batch_norm() and n_train % batch_size == 1 else steps

    def steps_in_epoch(self, epoch: int) -> int:
        """Optimizer steps of epoch ``epoch`` (they change with ``--batch-schedule``)."""
        steps = self._epoch_steps
        return steps[min(epoch, len(steps) - 1)] if steps else self.steps_per_epoch

    def fit(self, x_train: torch.Tensor, x_val: torch.Tensor | None = None,
            y_train: torch.Tensor | None = None, y_val: torch.Tensor | None = None,
            row_weight: torch.Tensor | None = None,
            draw_weight: torch.Tensor | None = None) -> History:
        """Train for ``config.train.epochs`` epochs (or until early stopping).

        The starting weights are a candidate for the best ones: before the first epoch (not
        when resuming) the validation set, if any, is scored with them
        (``history.initial_val_loss``, repeated in the first epoch's log as
        ``initial_val_loss``); when the best weights are kept (``restore_best_weights`` or
        early stopping) that score is the best so far (epoch 0), and if no epoch beats it the
        starting weights are put back at the end (a ``best_weights`` event with
        ``best_epoch`` 0). A model started from PCA's solution thus never ends worse than PCA
        on the validation data.

        Checkpoints are written by step count and by time, and the final state when the loop
        ends (:mod:`~aekit.training.checkpoint_timing`); a Checkpointer may resume a run (in its
        ``on_train_begin``) through :meth:`load_training_state`.

        Args:
            x_train: (n, n_features) float32 tensor on the model's device, or out-of-core
                training data (``StreamedTrainingData``).
            x_val: optional validation tensor, scored after every epoch.
            y_train: optional reconstruction target of ``x_train``'s shape (denoising:
                ``x_train`` noisy, ``y_train`` clean); every batch takes the same rows of
                both. Not for out-of-core data.
            y_val: optional target of ``x_val``'s shape.
            row_weight: optional (n,) weight of each training row's loss (mean 1: class
                balancing, ``sample_weight``); a batch's loss is the mean of its rows'
                weighted losses. Not for out-of-core data.
            draw_weight: optional (n,) non-negative weights: each epoch is then ``n`` rows
                drawn with replacement with these probabilities (class-balanced batches)
                instead of a permutation. Not for out-of-core data.

        Returns:
            The history of per-epoch logs and events.

        Raises:
            ConfigError: a target of the wrong shape, or a target with out-of-core data; an
                explicit early-stopping patience or the plateau schedule without ``x_val``
                (see :func:`check_validation_options`); ``batch_schedule`` under
                ``time_budget`` with neither ``step_size_epochs`` nor ``epochs``.
            TrainingError: every step had a non-finite loss or gradient.
        """
        device = self.flat.data.device  # tensors given elsewhere are moved (meta: refused)
        x_train, x_val, y_train, y_val, row_weight, draw_weight = (
            on_device(t, device, name) for t, name in (
                (x_train, "x_train"), (x_val, "x_val"), (y_train, "y_train"), (y_val, "y_val"),
                (row_weight, "row_weight"), (draw_weight, "draw_weight")))
        check_targets(x_train, x_val, y_train, y_val)
        check_row_weights(x_train, row_weight, draw_weight)
        self._row_weight, self._draw_weight = row_weight, draw_weight
        check_validation_options(self.config, 0 if x_val is None else len(x_val))
        check_batch_schedule(self.config)
        train = self.config.train
        n_train = x_train.shape[0]
        batch_size = self._batch_size(n_train)
        self.batch_size = batch_size
        self.steps_per_epoch = self._steps_for(batch_size, x_train)
        # --time-budget: the longest run allowed; the budget plans the real length
        self.epochs = train.epochs or (AUTO_MAX_EPOCHS if train.time_budget is not None
                                       else auto_epochs(self.steps_per_epoch))
        # --batch-schedule: the batch of each epoch (the same throughout without one)
        self._epoch_batch = batch_sizes(train.batch_schedule, batch_size, n_train, self.epochs,
                                        self.config.schedule.step_size_epochs)
        self._epoch_steps = [self._steps_for(b, x_train) for b in self._epoch_batch]
        patience = self.config.train.early_stopping_patience  # None: no early stopping
        self.patience = auto_patience(self.epochs) if patience == "auto" else patience
        total_steps = sum(self._epoch_steps)
        self.schedule = Schedule(self.config.schedule, self.config.optim.lr, total_steps,
                                 self.steps_per_epoch)
        # One generator seeded once; a fresh permutation per epoch. Its state at the start of
        # the current epoch is kept so that a resume can replay the epoch's order exactly.
        self.generator = torch.Generator().manual_seed(train.seed)
        self.epoch_rng = self.generator.get_state()
        self.best_weights.reset()
        self.resume_point, self.resumed = (0, NO_TOTALS), False
        fingerprint = self.checkpoint_timer.find(self.callbacks, x_train, y_train)
        if fingerprint:
            self.data_fingerprint = fingerprint
        self.model.train()
        self.events.close()
        self.pending_callback_states = None
        for cb in self.callbacks:
            cb.on_train_begin(self)  # a Checkpointer may load a saved state here
        self.load_callback_states()  # the callbacks' own saved states, once all have begun
        if not self.resumed:  # a resumed run has its score (and best state) back
            self._score_initial_weights(x_val, y_val)
        self.events.release(self, self.resumed)
        self.checkpoint_timer.on_train_begin(self)
        t_start = time.perf_counter()
        with matmul_precision(self.precision, device):  # TF32 on or off (CUDA only)
            for epoch in range(self.epoch, self.epochs):
                if self.stop_training:  # a resumed run that had already stopped early
                    break
                self._run_epoch(epoch, x_train, x_val, y_train, y_val, n_train)
                if self.stop_training:
                    break
        self.epoch = min(len(self.history.epochs), self.epochs)
        self.checkpoint_timer.on_loop_end(self)  # the final state, before the best weights
        self.best_weights.restore(self)
        if self.skipped_steps and self.skipped_steps >= self.step:
            raise TrainingError(f"every one of the {self.step} steps had a non-finite loss or "
                                "gradient; lower --lr, set --clip-norm, or check the data")
        self.model.eval()
        logs = {"train_seconds": time.perf_counter() - t_start, "steps": self.step}
        for cb in self.callbacks:
            cb.on_train_end(self, logs)
        return self.history

    def _score_initial_weights(self, x_val: torch.Tensor | None,
                               y_val: torch.Tensor | None) -> None:
        """Score the starting weights on the validation set; when the best weights are kept,
        they are the best so far (epoch 0): training can then only end better on it. The
        cost is one validation pass, as at every epoch end."""
        has_val = x_val is not None and len(x_val) > 0
        initial = mean_loss(self.model, x_val, y_val) if has_val else None
        if self.world > 1:  # every rank takes part, as for the per-epoch score
            initial = distributed.from_main(initial, self.flat.data.device)
        if initial is None:
            return
        self.history.initial_val_loss = initial
        self.best_weights.score_initial(self, initial)

    def _run_epoch(self, epoch: int, x_train: Any, x_val: torch.Tensor | None,
                   y_train: torch.Tensor | None, y_val: torch.Tensor | None,
                   n_train: int) -> None:
        """One epoch (or the rest of one, after a resume), then its logs (and a checkpoint
        when one is due, see :meth:`fit`)."""
        self.epoch = epoch
        batch_size = self.batch_size = self._epoch_batch[epoch]  # --batch-schedule
        self.steps_per_epoch = self._epoch_steps[epoch]
        for cb in self.callbacks:
            cb.on_epoch_begin(self, epoch)
        t0 = time.perf_counter()
        self.epoch_rng = self.generator.get_state()
        first, (loss_sum, loss_count, samples) = self.resume_point
        self.resume_point = (0, NO_TOTALS)
        batches = epoch_batches(x_train, y_train, self._row_weight, self._draw_weight,
                                self.generator, batch_size, n_train, first,
                                self.steps_per_epoch, self.config.train.shuffle,
                                self._has_batch_norm())
        last_batch = self.steps_per_epoch - 1
        batch_norm = self.world > 1 and self._has_batch_norm()
        noise = parse_noise(self.config.train.noise) if self.config.train.noise else None
        seed = self.config.train.seed
        for i, (xb, yb, wb) in zip(range(first, self.steps_per_epoch), batches):
            n_batch = xb.shape[0]  # the global batch
            if noise is not None:  # denoising: corrupted inputs, the clean rows as target
                yb = xb if yb is None else yb
                xb = corrupt(xb, noise, step_generator(seed, self.step), self.value_range)
            self.lr = self.schedule.lr(self.step)
            if self.world > 1:  # batch norm: no rank gets a single row (see shard)
                rows = 2 if batch_norm else 1
                part, weight = distributed.shard(xb, self.world, self.rank, rows)  # a view
                target, part_weight = (None if t is None else
                                       distributed.shard(t, self.world, self.rank, rows)[0]
                                       for t in (yb, wb))
                loss = self.train_step(part, weight, target, part_weight)
            else:
                loss = self.train_step(xb, 1.0, yb, wb)
            if math.isfinite(loss):
                loss_sum += loss * n_batch
                loss_count += n_batch
            samples += n_batch
            for cb in self.callbacks:
                cb.on_step_end(self, self.step, loss)
            self.step += 1
            if i < last_batch and self.checkpoint_timer.due(self.step):  # last: the epoch end
                self.checkpoint_timer.save(self, epoch, i + 1, (loss_sum, loss_count, samples))
            if self.world > 1:  # a callback's stop on one rank stops them all
                self.stop_training = distributed.any_rank(self.stop_training,
                                                          self.flat.data.device)
            if self.stop_training:
                break
        seconds = time.perf_counter() - t0
        val_loss = mean_loss(self.model, x_val, y_val) if x_val is not None and len(x_val) \
            else None
        if self.world > 1:  # decisions on it (lr cut, early stopping) are rank 0's
            val_loss = distributed.from_main(val_loss, self.flat.data.device)
        logs = {"epoch": epoch + 1, "step": self.step, "lr": self.lr,
                "train_loss": loss_sum / loss_count if loss_count else None,
                "val_loss": val_loss, "seconds": seconds,
                "samples_per_second": samples / max(seconds, 1e-9),
                "skipped_steps": self.skipped_steps}
        if self.config.train.batch_schedule is not None:
            logs["batch_size"] = batch_size
        if epoch == 0 and self.history.initial_val_loss is not None:
            logs["initial_val_loss"] = self.history.initial_val_loss
        self.history.epochs.append(logs)
        if self.schedule.on_epoch_end(val_loss):
            self.log_event("lr_cut", f"validation loss stalled: lr now {self.schedule.lr(self.step):.3g}")
        for cb in self.callbacks:
            cb.on_epoch_end(self, epoch, logs)
        self.best_weights.on_epoch_end(self, epoch, logs)  # may stop early
        if self.world > 1:
            self.stop_training = distributed.any_rank(self.stop_training, self.flat.data.device)
        self.checkpoint_timer.on_epoch_end(self, epoch, logs)

    def _has_batch_norm(self) -> bool:
        return any(isinstance(m, nn.modules.batchnorm._BatchNorm) for m in self.model.modules())
