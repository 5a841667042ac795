"""The training loop: mini-batches drawn by indexing one contiguous tensor, one flat optimizer.

Speed by design: no DataLoader and no per-sample Python; the whole training split is one
``float32`` tensor and each step indexes it with a slice of the epoch's permutation. Plain MLPs
take a hand-written backward pass (``fastpath``), other models autograd. Work that is not the
step (validation, callbacks' measurements) runs per epoch or every N steps.

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

from aekit.config import RunConfig, auto_epochs
from aekit.errors import TrainingError
from aekit.training import distributed, fastpath
from aekit.training.callbacks import Callback
from aekit.training.checkpoint import Checkpointer, data_fingerprint
from aekit.training.optim import FlatOptimizer, FlatParams
from aekit.training.resume import Resumable
from aekit.training.schedules import Schedule

EVAL_BATCH = 4096


@dataclass
class History:
    """Per-epoch logs of a run (``history.epochs[i]["val_loss"]``) and its notable events."""

    epochs: list[dict[str, Any]] = field(default_factory=list)
    events: list[dict[str, Any]] = field(default_factory=list)

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
def mean_loss(model: nn.Module, x: torch.Tensor) -> float:
    """Mean of ``forward(...).loss`` over ``x``, in large batches, weighted by batch size."""
    was_training = model.training
    model.eval()
    total = 0.0
    for start in range(0, x.shape[0], EVAL_BATCH):
        xb = x[start:start + EVAL_BATCH]
        total += float(model(xb).loss) * xb.shape[0]
    model.train(was_training)
    return total / max(1, x.shape[0])


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
        self.steps_per_epoch = 1
        self.stop_training = False
        self.skipped_steps = 0
        self.history = History()
        self.schedule: Schedule | None = None
        self.generator = torch.Generator()
        self.data_fingerprint: dict[str, Any] = {}
        self._epoch_rng = self.generator.get_state()
        self._checkpointers: list[Checkpointer] = []
        self._checkpoint_every: int | None = None
        self._next_checkpoint: float = math.inf
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
        """Record a notable event (in the history, ``metrics.jsonl`` and on the console)."""
        event = {"kind": kind, "step": self.step, "epoch": self.epoch, "message": message, **data}
        self.history.events.append(event)
        for cb in self.callbacks:
            cb.on_event(self, event)

    # -- state for rollback and early stopping ----------------------------------------------
    def snapshot(self) -> dict[str, torch.Tensor]:
        """A copy of the weights, buffers (batch-norm statistics) and optimizer state."""
        state = {f"model.{k}": v.detach().clone() for k, v in self.model.state_dict().items()}
        state.update({f"optim.{k}": v.detach().clone()
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

    def train_step(self, xb: torch.Tensor, weight: float = 1.0) -> float:
        """One optimizer step on batch ``xb``; returns the batch loss (NaN when skipped).

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
            loss = fastpath.loss_and_grad(self.model, xb)
        else:
            self.flat.zero_grad()
            loss = self._autograd_step(xb)
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

    def _autograd_step(self, xb: torch.Tensor) -> float:
        out = self.model(xb)
        out.loss.backward()
        return out.loss.item()

    # -- the loop -----------------------------------------------------------------------------
    def _batch_size(self, n_train: int) -> int:
        if self.config.optim.optimizer == "gd":
            return n_train
        return min(self.config.train.batch_size, n_train)

    def fit(self, x_train: torch.Tensor, x_val: torch.Tensor | None = None) -> History:
        """Train for ``config.train.epochs`` epochs (or until early stopping).

        A :class:`~aekit.training.checkpoint.Checkpointer` among the callbacks gets the full
        state every ``every_steps`` steps and at each epoch end, and may resume a run (in its
        ``on_train_begin``) through :meth:`load_training_state`.

        Args:
            x_train: (n, n_features) float32 tensor on the model's device.
            x_val: optional validation tensor, scored after every epoch.

        Returns:
            The history of per-epoch logs and events.
        """
        train = self.config.train
        n_train = x_train.shape[0]
        batch_size = self._batch_size(n_train)
        self.steps_per_epoch = math.ceil(n_train / batch_size)
        drop_single = self._has_batch_norm() and n_train % batch_size == 1
        if drop_single:  # batch norm cannot normalise a batch of one sample
            self.steps_per_epoch -= 1
        if not isinstance(x_train, torch.Tensor):  # out of core: batches inside chunks
            self.steps_per_epoch = x_train.steps_per_epoch(batch_size, self._has_batch_norm())
        self.epochs = train.epochs or auto_epochs(self.steps_per_epoch)
        total_steps = self.steps_per_epoch * self.epochs
        self.schedule = Schedule(self.config.schedule, self.config.optim.lr, total_steps,
                                 self.steps_per_epoch)
        # One generator seeded once; a fresh permutation per epoch. Its state at the start of
        # the current epoch is kept so that a resume can replay the epoch's order exactly.
        self.generator = torch.Generator().manual_seed(train.seed)
        self._epoch_rng = self.generator.get_state()
        self._best_val, self._best_state, self._bad_epochs = math.inf, None, 0
        self._best_epoch = 0
        self._resume_batch, self._resume_totals = 0, (0.0, 0, 0)
        self._checkpointers = [cb for cb in self.callbacks if isinstance(cb, Checkpointer)]
        if self._checkpointers:
            self.data_fingerprint = data_fingerprint(x_train) if isinstance(
                x_train, torch.Tensor) else x_train.fingerprint()
        self.model.train()
        for cb in self.callbacks:
            cb.on_train_begin(self)  # a Checkpointer may load a saved state here
        every = self._checkpointers[0].every_steps if self._checkpointers else None
        self._checkpoint_every = every
        self._next_checkpoint = self._checkpoint_after(self.step)
        t_start = time.perf_counter()
        for epoch in range(self.epoch, self.epochs):
            if self.stop_training:  # a resumed run that had already stopped early
                break
            self._run_epoch(epoch, x_train, x_val, batch_size, n_train)
            if self.stop_training:
                break
        self.epoch = min(len(self.history.epochs), self.epochs)
        if self._best_state is not None and self.history.epochs[-1]["val_loss"] > self._best_val:
            self.restore(self._best_state)
            if not any(e["kind"] == "early_stop" for e in self.history.events):
                self.log_event("best_weights", "restored the weights with the lowest validation "
                               f"loss ({self._best_val:.4g}, epoch {self._best_epoch}); the last "
                               f"epoch had {self.history.epochs[-1]['val_loss']:.4g}",
                               best_epoch=self._best_epoch)
        if self.skipped_steps and self.skipped_steps >= self.step:
            raise TrainingError(f"every one of the {self.step} steps had a non-finite loss or "
                                "gradient; lower --lr, set --clip-norm, or check the data")
        self.model.eval()
        logs = {"train_seconds": time.perf_counter() - t_start, "steps": self.step}
        for cb in self.callbacks:
            cb.on_train_end(self, logs)
        return self.history

    def _run_epoch(self, epoch: int, x_train: torch.Tensor, x_val: torch.Tensor | None,
                   batch_size: int, n_train: int) -> None:
        """One epoch (or the rest of one, after a resume), then its logs and checkpoint."""
        self.epoch = epoch
        for cb in self.callbacks:
            cb.on_epoch_begin(self, epoch)
        t0 = time.perf_counter()
        self._epoch_rng = self.generator.get_state()
        first = self._resume_batch
        loss_sum, loss_count, samples = self._resume_totals
        self._resume_batch, self._resume_totals = 0, (0.0, 0, 0)
        batches = self._epoch_batches(x_train, batch_size, n_train, first)
        for i, xb in zip(range(first, self.steps_per_epoch), batches):
            n_batch = xb.shape[0]  # the global batch
            self.lr = self.schedule.lr(self.step)
            if self.world > 1:
                part, weight = distributed.shard(xb, self.world, self.rank)  # a view
                loss = self.train_step(part, weight)
            else:
                loss = self.train_step(xb)
            if math.isfinite(loss):
                loss_sum += loss * n_batch
                loss_count += n_batch
            samples += n_batch
            for cb in self.callbacks:
                cb.on_step_end(self, self.step, loss)
            self.step += 1
            if self.step >= self._next_checkpoint and i + 1 < self.steps_per_epoch:
                self._save_checkpoints(epoch, i + 1, (loss_sum, loss_count, samples))
            if self.world > 1:  # a callback's stop on one rank stops them all
                self.stop_training = distributed.any_rank(self.stop_training,
                                                          self.flat.data.device)
            if self.stop_training:
                break
        seconds = time.perf_counter() - t0
        val_loss = mean_loss(self.model, x_val) if x_val is not None and len(x_val) else None
        if self.world > 1:  # decisions on it (lr cut, early stopping) are rank 0's
            val_loss = distributed.from_main(val_loss, self.flat.data.device)
        logs = {"epoch": epoch + 1, "step": self.step, "lr": self.lr,
                "train_loss": loss_sum / loss_count if loss_count else None,
                "val_loss": val_loss, "seconds": seconds,
                "samples_per_second": samples / max(seconds, 1e-9),
                "skipped_steps": self.skipped_steps}
        self.history.epochs.append(logs)
        if self.schedule.on_epoch_end(val_loss):
            self.log_event("lr_cut", f"validation loss stalled: lr now {self.schedule.lr(self.step):.3g}")
        for cb in self.callbacks:
            cb.on_epoch_end(self, epoch, logs)
        self._early_stopping(val_loss)
        if self.world > 1:
            self.stop_training = distributed.any_rank(self.stop_training, self.flat.data.device)
        if self._checkpointers:
            self._save_checkpoints(epoch + 1, 0, (0.0, 0, 0))

    def _epoch_batches(self, x_train: Any, batch_size: int, n_train: int,
                       first: int) -> Iterator[torch.Tensor]:
        """The epoch's global batches from ``first`` on: slices of a fresh permutation of the
        training tensor, or, out of core, batches of shuffled rows of shuffled chunks."""
        train = self.config.train
        if not isinstance(x_train, torch.Tensor):
            yield from x_train.epoch_batches(self.generator, batch_size, train.shuffle, first,
                                             self._has_batch_norm())
            return
        order = (torch.randperm(n_train, generator=self.generator) if train.shuffle
                 else torch.arange(n_train)).to(x_train.device)
        for i in range(first, self.steps_per_epoch):
            if batch_size == n_train and not train.shuffle:
                yield x_train
            else:
                # index_select, not x[idx]: ten times faster for a batch of rows on the CPU
                yield x_train.index_select(0, order[i * batch_size:(i + 1) * batch_size])

    def _early_stopping(self, val_loss: float | None) -> None:
        """Keep the best weights (``restore_best_weights``) and stop after ``patience``."""
        train = self.config.train
        patience = train.early_stopping_patience
        if val_loss is None or (patience is None and not train.restore_best_weights):
            return
        if val_loss < self._best_val:
            self._best_val, self._best_state, self._bad_epochs = val_loss, self.snapshot(), 0
            self._best_epoch = self.epoch + 1
            return
        if patience is None:
            return
        self._bad_epochs += 1
        if self._bad_epochs >= patience:
            self.log_event("early_stop", f"no better validation loss for {patience} "
                           f"epochs; restoring the best weights (val_loss {self._best_val:.4g})",
                           best_epoch=self._best_epoch)
            self.stop_training = True

    # -- checkpoints --------------------------------------------------------------------------
    def _checkpoint_after(self, step: int) -> float:
        """The next step count at which a mid-epoch checkpoint is due (inf: never)."""
        every = self._checkpoint_every
        return math.inf if not every else (step // every + 1) * every

    def _save_checkpoints(self, epoch: int, batch: int, totals: tuple[float, int, int]) -> None:
        """Hand the state to the checkpointers: next ``batch`` of ``epoch`` is to run."""
        self._position = (epoch, batch, totals)
        for cp in self._checkpointers if self.rank == 0 else ():  # rank 0 writes
            cp.save(self)
        self._next_checkpoint = self._checkpoint_after(self.step)

    def _has_batch_norm(self) -> bool:
        return any(isinstance(m, nn.modules.batchnorm._BatchNorm) for m in self.model.modules())
