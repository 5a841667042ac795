"""The training loop: mini-batches drawn by indexing one contiguous tensor, one flat optimizer.

Speed by design: no DataLoader and no per-sample Python; the whole training split is one
``float32`` tensor and each step indexes it with a slice of the epoch's permutation. Plain MLPs
take a hand-written backward pass (``fastpath``), other models autograd. Work that is not the
step (validation, callbacks' measurements) runs per epoch or every N steps; checkpoints are
written by step count and by time, never merely because an epoch ended (see
:meth:`Trainer.fit`), so that a run of hundreds of 10 ms epochs is not dominated by them.

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
from dataclasses import dataclass, field
from typing import Any, Iterator, Sequence

import torch
from torch import nn

from aekit.config import (AUTO_MAX_EPOCHS, RunConfig, auto_epochs, auto_patience,
                          batch_sizes, parse_noise, requested_batch_size)
from aekit.errors import ConfigError, TrainingError
from aekit.training import distributed, fastpath
from aekit.training.callbacks import Callback
from aekit.training.checkpoint import Checkpointer, data_fingerprint
from aekit.training.noise import corrupt, step_generator
from aekit.training.optim import FlatOptimizer, FlatParams
from aekit.training.resume import Resumable
from aekit.training.schedules import Schedule

EVAL_BATCH = 4096
CHECKPOINT_SECONDS = 60.0  # at most this much training between two checkpoints


@dataclass
class History:
    """Per-epoch logs of a run (``history.epochs[i]["val_loss"]``) and its notable events.

    ``initial_val_loss`` is the validation loss of the starting weights, scored before the
    first epoch (None without a validation set); the first epoch's log repeats it.
    """

    epochs: list[dict[str, Any]] = field(default_factory=list)
    events: list[dict[str, Any]] = field(default_factory=list)
    initial_val_loss: float | None = None

    def __getitem__(self, key: str) -> list[Any]:
        """Keras-style column access: ``history["loss"]`` is the list of train losses."""
        key = {"loss": "train_loss"}.get(key, key)
        return [e.get(key) for e in self.epochs]


def resolve_device(name: str) -> torch.device:
    """``auto`` is CUDA when available, else the CPU."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name == "cuda" and not torch.cuda.is_available():
        from aekit.errors import ConfigError

        raise ConfigError("`device` is cuda but PyTorch sees no CUDA device. "
                          "Allowed here: auto, cpu")
    return torch.device(name)


@torch.inference_mode()
def mean_loss(model: nn.Module, x: torch.Tensor, y: torch.Tensor | None = None) -> float:
    """Mean of ``forward(...).loss`` over ``x``, in large batches, weighted by batch size.

    Args:
        model: the autoencoder (put in eval mode for the pass, then back).
        x: (n, ...) inputs.
        y: optional reconstruction targets of the same shape (None: the inputs themselves).
    """
    was_training = model.training
    model.eval()
    total = 0.0
    for start in range(0, x.shape[0], EVAL_BATCH):
        xb = x[start:start + EVAL_BATCH]
        out = model(xb) if y is None else model(xb, y[start:start + EVAL_BATCH])
        total += float(out.loss) * xb.shape[0]
    model.train(was_training)
    return total / max(1, x.shape[0])


def check_validation_options(config: RunConfig, n_val: int,
                             where: str = "this run") -> None:
    """Refuse the options that act on the validation loss when there is none to act on.

    An explicit early-stopping patience (a number: ``auto`` simply means off without
    validation rows) and the ``plateau`` schedule read the validation loss; without
    validation rows they would silently do nothing.

    Args:
        config: the run's options. n_val: its validation rows.
        where: names the run in the message.

    Raises:
        ConfigError: such an option without validation rows.
    """
    if n_val > 0:
        return
    split = config.train.validation_split
    fix = (f"give validation rows (--validation-split, now {split!r}; validation_data= in "
           "Python)")
    patience = config.train.early_stopping_patience
    if isinstance(patience, int) and not isinstance(patience, bool):
        raise ConfigError(f"`early_stopping_patience` {patience} stops training when the "
                          f"validation loss stops improving, and {where} has no validation "
                          f"rows: it would never stop. {fix}, or leave early stopping to auto "
                          "(off without validation rows) or none")
    if config.schedule.schedule == "plateau":
        raise ConfigError(f"`schedule` plateau cuts the learning rate when the validation loss "
                          f"stalls, and {where} has no validation rows: the rate would never "
                          f"change. {fix}, or choose another --schedule (cosine, one_cycle...)")


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
        self.use_fastpath = fastpath.supports(model)
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
        self._epoch_rng = self.generator.get_state()
        self._checkpointers: list[Checkpointer] = []
        self._checkpoint_every: int | None = None
        self._next_checkpoint: float = math.inf
        self._checkpoint_deadline: float = math.inf  # perf_counter time of the next timed one
        self._saved_at: tuple[int, int, int] | None = None  # (step, epoch, batch) last written
        self._resumed = False
        self._callback_states: dict[str, dict[str, Any]] | None = None  # loaded, not yet given
        self._events_open = False  # False until fit() has run the callbacks' on_train_begin
        self._held_events: list[dict[str, Any]] = []
        self._position: tuple[int, int, tuple[float, int, int]] = (0, 0, (0.0, 0, 0))
        self._resume_batch = 0
        self._resume_totals: tuple[float, int, int] = (0.0, 0, 0)
        self._best_val = math.inf
        self._best_state: dict[str, torch.Tensor] | None = None
        self._best_epoch = 0
        self._bad_epochs = 0
        opt = config.optim
        self._l1 = opt.l1 or 0.0
        self._l2 = opt.l2 or 0.0
        self.world = distributed.world_size()  # > 1: data-parallel under torchrun
        self.rank = distributed.rank()

    # -- events -------------------------------------------------------------------------------
    def log_event(self, kind: str, message: str, **data: Any) -> None:
        """Record a notable event (in the history, ``metrics.jsonl`` and on the console).

        An event logged before training starts (before :meth:`fit`, or from a callback's
        ``on_train_begin``, e.g. the run pipeline's ``pca_baseline``) is held until every
        callback has started (the metrics file is open, a checkpoint is loaded) and then
        recorded; on a resumed run it is dropped when the restored history already holds an
        event of its kind (the interrupted run logged it), so ``metrics.jsonl`` has it once.
        """
        event = {"kind": kind, "step": self.step, "epoch": self.epoch, "message": message, **data}
        if not self._events_open:
            self._held_events.append(event)
            return
        self._record_event(event)

    def _record_event(self, event: dict[str, Any]) -> None:
        self.history.events.append(event)
        for cb in self.callbacks:
            cb.on_event(self, event)

    def _release_held_events(self) -> None:
        """Record the events logged before training started (see :meth:`log_event`)."""
        self._events_open = True
        held, self._held_events = self._held_events, []
        logged = {e.get("kind") for e in self.history.events} if self._resumed else set()
        for event in held:
            if event["kind"] not in logged:
                event.update(step=self.step, epoch=self.epoch)  # where training (re)starts
                self._record_event(event)

    # -- state for rollback and early stopping ----------------------------------------------
    def snapshot(self) -> dict[str, torch.Tensor]:
        """A copy of the weights, buffers (batch-norm statistics) and optimizer state."""
        state = {f"model.{k}": v.detach().clone() for k, v in self.model.state_dict().items()}
        state.update({f"optim.{k}": v  # state_tensors returns new tensors: no second copy
                      for k, v in self.optimizer.state_tensors().items()})
        return state

    def restore(self, state: dict[str, torch.Tensor]) -> None:
        """Put back what :meth:`snapshot` returned."""
        with torch.no_grad():
            model_state = {k[6:]: v for k, v in state.items() if k.startswith("model.")}
            for key, tensor in self.model.state_dict().items():
                tensor.copy_(model_state[key])
        self.optimizer.load_state_tensors(
            {k[6:]: v for k, v in state.items() if k.startswith("optim.")})

    # -- the step -----------------------------------------------------------------------------
    def _penalty(self) -> float:
        """Add the L1/L2 weight penalties' gradients; return their value."""
        if not (self._l1 or self._l2) or not self.flat.has_penalty_mask:
            return 0.0
        w, g, mask = self.flat.data, self.flat.grad, self.flat.weight_mask
        value = 0.0
        if self._l2:
            g.addcmul_(w, mask, value=2.0 * self._l2)
            value += self._l2 * float(torch.dot(w * mask, w))
        if self._l1:
            g.addcmul_(torch.sign(w), mask, value=self._l1)
            value += self._l1 * float(torch.dot(w.abs(), mask))
        return value

    def _clip(self) -> None:
        train = self.config.train
        if train.clip_value is not None:
            self.flat.grad.clamp_(-train.clip_value, train.clip_value)
        if train.clip_norm is not None:
            norm = float(torch.linalg.vector_norm(self.flat.grad))
            if norm > train.clip_norm:
                self.flat.grad.mul_(train.clip_norm / (norm + 1e-6))

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
        if self.world > 1 and xb.shape[0] == 0:  # a shard of a last batch smaller than world
            self.flat.grad.zero_()
            loss = 0.0
        elif self.use_fastpath:  # writes every gradient, no zeroing needed
            loss = fastpath.loss_and_grad(self.model, xb, target, row_weight)
        else:
            self.flat.zero_grad()
            loss = self._autograd_step(xb, target, row_weight)
        if self.world > 1:
            loss = distributed.reduce_gradients(self.flat.grad, loss, weight)
        loss += self._penalty()
        for cb in self.callbacks:
            cb.on_after_backward(self, self.step)
        if not (math.isfinite(loss) and math.isfinite(float(self.flat.grad.sum()))):
            self.skipped_steps += 1
            return float("nan")
        self._clip()
        self.optimizer.step(self.lr)
        return loss

    def _autograd_step(self, xb: torch.Tensor, target: torch.Tensor | None = None,
                       row_weight: torch.Tensor | None = None) -> float:
        out = (self.model(xb) if target is None and row_weight is None
               else self.model(xb, target, row_weight))
        out.loss.backward()
        return out.loss.item()

    # -- the loop -----------------------------------------------------------------------------
    def _batch_size(self, n_train: int) -> int:
        """Samples per step: the whole split for gd, else ``batch_size`` (auto: chosen from
        ``n_train`` by :func:`aekit.config.requested_batch_size`), at most ``n_train``."""
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

    def _resolve_patience(self) -> int | None:
        """Early-stopping patience in epochs: ``auto`` is :func:`aekit.config.auto_patience`
        of the run's epochs; None: no early stopping."""
        patience = self.config.train.early_stopping_patience
        return auto_patience(self.epochs) if patience == "auto" else patience

    def _keeps_best(self) -> bool:
        """True when the run ends with its best weights (restore_best_weights or early stop)."""
        return self.patience is not None or self.config.train.restore_best_weights

    @staticmethod
    def _check_row_weights(x_train: Any, row_weight: torch.Tensor | None,
                           draw_weight: torch.Tensor | None) -> None:
        for name, w in (("row_weight", row_weight), ("draw_weight", draw_weight)):
            if w is None:
                continue
            if not isinstance(x_train, torch.Tensor):
                raise ConfigError(f"{name} (sample weights, class balancing) needs the "
                                  "training data in memory; out-of-core (streamed) training "
                                  "data is read in file order chunks")
            if not isinstance(w, torch.Tensor) or w.shape != (x_train.shape[0],):
                raise ConfigError(f"{name} must be a tensor of one weight per training row "
                                  f"({x_train.shape[0]}). Received: "
                                  f"{tuple(getattr(w, 'shape', ())) or type(w)}")

    @staticmethod
    def _check_targets(x_train: Any, x_val: torch.Tensor | None, y_train: torch.Tensor | None,
                       y_val: torch.Tensor | None) -> None:
        if y_train is not None:
            if not isinstance(x_train, torch.Tensor):
                raise ConfigError("a reconstruction target (y_train) needs the training data "
                                  "in memory: out-of-core (streamed) training data has no "
                                  "target; train on the inputs themselves, or load the data "
                                  "into memory")
            if not isinstance(y_train, torch.Tensor) or y_train.shape != x_train.shape:
                raise ConfigError("y_train (the reconstruction target) must be a tensor of the "
                                  f"training inputs' shape {tuple(x_train.shape)}. Received: "
                                  f"{tuple(getattr(y_train, 'shape', ())) or type(y_train)}")
        if y_val is not None:
            if x_val is None:
                raise ConfigError("y_val (the validation target) was given without x_val")
            if not isinstance(y_val, torch.Tensor) or y_val.shape != x_val.shape:
                raise ConfigError("y_val (the validation target) must be a tensor of the "
                                  f"validation inputs' shape {tuple(x_val.shape)}. Received: "
                                  f"{tuple(getattr(y_val, 'shape', ())) or type(y_val)}")

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

        Checkpoints: a :class:`~aekit.training.checkpoint.Checkpointer` among the callbacks
        gets the full state once the step count reaches the next multiple of its
        ``every_steps`` (mid-epoch, or at the epoch end when that step is the epoch's last)
        and whenever :data:`CHECKPOINT_SECONDS` of training have passed since the last one
        (checked after every step and at every epoch end), but not merely because an epoch
        ended; the final state is written when the loop ends (before the best weights are put
        back, so that a resume of a finished run ends the same way). A Checkpointer may resume
        a run (in its ``on_train_begin``) through :meth:`load_training_state`.

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
        self._check_targets(x_train, x_val, y_train, y_val)
        self._check_row_weights(x_train, row_weight, draw_weight)
        self._row_weight, self._draw_weight = row_weight, draw_weight
        check_validation_options(self.config, 0 if x_val is None else len(x_val))
        train = self.config.train
        if (train.batch_schedule is not None and train.time_budget is not None
                and not train.epochs and not self.config.schedule.step_size_epochs):
            raise ConfigError(
                "`batch_schedule` grows the batch at each third of the run, and under "
                "`time_budget` the run's length is not known when it starts (the thirds of "
                f"the {AUTO_MAX_EPOCHS}-epoch cap would never come). Give step_size_epochs "
                "(--step-size-epochs N: the epochs between growths) or epochs (--epochs N)")
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
        self.patience = self._resolve_patience()
        total_steps = sum(self._epoch_steps)
        self.schedule = Schedule(self.config.schedule, self.config.optim.lr, total_steps,
                                 self.steps_per_epoch)
        # One generator seeded once; a fresh permutation per epoch. Its state at the start of
        # the current epoch is kept so that a resume can replay the epoch's order exactly.
        self.generator = torch.Generator().manual_seed(train.seed)
        self._epoch_rng = self.generator.get_state()
        self._best_val, self._best_state, self._bad_epochs = math.inf, None, 0
        self._best_epoch = 0
        self._resume_batch, self._resume_totals = 0, (0.0, 0, 0)
        self._resumed, self._saved_at = False, None
        self._checkpointers = [cb for cb in self.callbacks if isinstance(cb, Checkpointer)]
        if self._checkpointers:
            self.data_fingerprint = data_fingerprint(x_train, y_train) if isinstance(
                x_train, torch.Tensor) else x_train.fingerprint()
        self.model.train()
        self._events_open = False
        self._callback_states = None
        for cb in self.callbacks:
            cb.on_train_begin(self)  # a Checkpointer may load a saved state here
        self.load_callback_states()  # the callbacks' own saved states, once all have begun
        if not self._resumed:  # a resumed run has its score (and best state) back
            self._score_initial_weights(x_val, y_val)
        self._release_held_events()
        every = self._checkpointers[0].every_steps if self._checkpointers else None
        self._checkpoint_every = every
        self._next_checkpoint = self._checkpoint_after(self.step)
        self._arm_checkpoint_timer()
        t_start = time.perf_counter()
        for epoch in range(self.epoch, self.epochs):
            if self.stop_training:  # a resumed run that had already stopped early
                break
            self._run_epoch(epoch, x_train, x_val, y_train, y_val, n_train)
            if self.stop_training:
                break
        self.epoch = min(len(self.history.epochs), self.epochs)
        if self._checkpointers and self._saved_at != (self.step, self.epoch, 0):
            self._save_checkpoints(self.epoch, 0, (0.0, 0, 0))  # the final state
        self._restore_best()
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
        if self._keeps_best() and math.isfinite(initial):
            self._best_val, self._best_state, self._best_epoch = initial, self.snapshot(), 0

    def _restore_best(self) -> None:
        """Put back the best weights when the last epoch's are worse (or not finite)."""
        if self._best_state is None or not self.history.epochs:
            return
        last = self.history.epochs[-1]["val_loss"]
        if last is None or last <= self._best_val:
            return
        self.restore(self._best_state)
        if any(e["kind"] == "early_stop" for e in self.history.events):
            return  # its event already says so
        if self._best_epoch == 0:
            what = (f"restored the initial weights: no epoch beat their validation loss "
                    f"({self._best_val:.4g}, before training)")
        else:
            what = (f"restored the weights with the lowest validation loss ({self._best_val:.4g}"
                    f", epoch {self._best_epoch})")
        self.log_event("best_weights", f"{what}; the last epoch had {last:.4g}",
                       best_epoch=self._best_epoch, best_val_loss=self._best_val)

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
        self._epoch_rng = self.generator.get_state()
        first = self._resume_batch
        loss_sum, loss_count, samples = self._resume_totals
        self._resume_batch, self._resume_totals = 0, (0.0, 0, 0)
        batches = self._epoch_batches(x_train, y_train, batch_size, n_train, first)
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
            if i < last_batch and self._checkpoint_due():  # at the last batch: the epoch end
                self._save_checkpoints(epoch, i + 1, (loss_sum, loss_count, samples))
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
        self._early_stopping(val_loss)
        if self.world > 1:
            self.stop_training = distributed.any_rank(self.stop_training, self.flat.data.device)
        if self._checkpoint_due():
            self._save_checkpoints(epoch + 1, 0, (0.0, 0, 0))

    def _epoch_batches(self, x_train: Any, y_train: torch.Tensor | None, batch_size: int,
                       n_train: int, first: int
                       ) -> Iterator[tuple[torch.Tensor, torch.Tensor | None,
                                           torch.Tensor | None]]:
        """The epoch's global batches from ``first`` on, as (inputs, targets or None, row
        weights or None): the same slice of a fresh permutation of the training tensor, of its
        target and of its row weights -- or, with draw weights, of ``n_train`` rows drawn with
        replacement in proportion to them -- or, out of core (never with a target or
        weights), batches of shuffled rows of shuffled chunks."""
        train = self.config.train
        row_weight, draw_weight = self._row_weight, self._draw_weight
        if not isinstance(x_train, torch.Tensor):
            for xb in x_train.epoch_batches(self.generator, batch_size, train.shuffle, first,
                                            self._has_batch_norm()):
                yield xb, None, None
            return
        if batch_size == n_train and not train.shuffle and draw_weight is None:
            for _ in range(first, self.steps_per_epoch):
                yield x_train, y_train, row_weight
            return
        if draw_weight is not None:  # class-balanced: rows drawn with replacement
            order = torch.multinomial(draw_weight.cpu().double(), n_train, replacement=True,
                                      generator=self.generator)
        else:
            order = (torch.randperm(n_train, generator=self.generator) if train.shuffle
                     else torch.arange(n_train))
        order = order.to(x_train.device)
        for i in range(first, self.steps_per_epoch):
            # index_select, not x[idx]: ten times faster for a batch of rows on the CPU
            rows = order[i * batch_size:(i + 1) * batch_size]
            yield tuple(None if t is None else t.index_select(0, rows)
                        for t in (x_train, y_train, row_weight))

    def _early_stopping(self, val_loss: float | None) -> None:
        """Keep the best weights (``restore_best_weights`` or early stopping) and stop after
        ``patience`` epochs without a better validation loss (the starting weights' score,
        epoch 0, counts as one: see :meth:`fit`)."""
        patience = self.patience
        if val_loss is None or not self._keeps_best():
            return
        if val_loss < self._best_val:
            self._best_val, self._best_state, self._bad_epochs = val_loss, self.snapshot(), 0
            self._best_epoch = self.epoch + 1
            return
        if patience is None:
            return
        self._bad_epochs += 1
        if self._bad_epochs >= patience:
            which = ("the initial weights, which no epoch beat" if self._best_epoch == 0
                     else f"the best weights (epoch {self._best_epoch})")
            self.log_event("early_stop", f"no better validation loss for {patience} "
                           f"epochs; restoring {which} (val_loss {self._best_val:.4g})",
                           best_epoch=self._best_epoch, best_val_loss=self._best_val)
            self.stop_training = True

    # -- checkpoints --------------------------------------------------------------------------
    def _checkpoint_after(self, step: int) -> float:
        """The next step count at which a checkpoint is due (inf: none by step count)."""
        every = self._checkpoint_every
        return math.inf if not every else (step // every + 1) * every

    def _arm_checkpoint_timer(self) -> None:
        self._checkpoint_deadline = (time.perf_counter() + CHECKPOINT_SECONDS
                                     if self._checkpointers else math.inf)

    def _checkpoint_due(self) -> bool:
        """The step count reached the next multiple of ``every_steps``, or
        :data:`CHECKPOINT_SECONDS` passed since the last checkpoint (one clock read)."""
        return self.step >= self._next_checkpoint or (
            self._checkpoint_deadline != math.inf
            and time.perf_counter() >= self._checkpoint_deadline)

    def _save_checkpoints(self, epoch: int, batch: int, totals: tuple[float, int, int]) -> None:
        """Hand the state to the checkpointers: next ``batch`` of ``epoch`` is to run."""
        self._position = (epoch, batch, totals)
        for cp in self._checkpointers if self.rank == 0 else ():  # rank 0 writes
            cp.save(self)
        self._saved_at = (self.step, epoch, batch)
        self._next_checkpoint = self._checkpoint_after(self.step)
        self._arm_checkpoint_timer()

    def _has_batch_norm(self) -> bool:
        return any(isinstance(m, nn.modules.batchnorm._BatchNorm) for m in self.model.modules())
