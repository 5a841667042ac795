"""When checkpoints are written: by step count and by time, never merely because an epoch
ended, so that a run of hundreds of 10 ms epochs is not dominated by them.

A :class:`~aekit.training.checkpoint.Checkpointer` among the trainer's callbacks gets the full
state once the step count reaches the next multiple of its ``every_steps`` (mid-epoch, or at the
epoch end when that step is the epoch's last) and whenever :data:`CHECKPOINT_SECONDS` of
training have passed since the last one (checked after every step and at every epoch end); the
final state is written when the loop ends, before the best weights are put back, so that a
resume of a finished run ends the same way.
"""

from __future__ import annotations

import math
import time
from typing import Any

import torch

from aekit.training.callbacks import Callback, Trainer
from aekit.training.checkpoint import Checkpointer, data_fingerprint

CHECKPOINT_SECONDS = 60.0  # at most this much training between two checkpoints
NO_TOTALS = (0.0, 0, 0)  # (loss sum, loss count, samples) of an epoch not started


class CheckpointTimer(Callback):
    """Decides when the trainer's Checkpointers save, and hands them the state.

    Attributes:
        checkpointers: the Checkpointers among the trainer's callbacks.
        position: ``(epoch, batch, totals)`` of the last save: the next batch to run.
        saved_at: ``(step, epoch, batch)`` of the last save, or None.
    """

    def __init__(self) -> None:
        self.checkpointers: list[Checkpointer] = []
        self.every: int | None = None
        self.next_step: float = math.inf
        self.deadline: float = math.inf  # perf_counter time of the next timed one
        self.saved_at: tuple[int, int, int] | None = None
        self.position: tuple[int, int, tuple[float, int, int]] = (0, 0, NO_TOTALS)

    def find(self, callbacks: list[Callback], x_train: Any,
             y_train: torch.Tensor | None) -> dict[str, Any]:
        """Take the Checkpointers among ``callbacks`` (a new ``fit`` starts); returns the
        data's fingerprint a checkpoint records (empty without Checkpointers)."""
        self.checkpointers = [cb for cb in callbacks if isinstance(cb, Checkpointer)]
        self.saved_at = None
        if not self.checkpointers:
            return {}
        return (data_fingerprint(x_train, y_train) if isinstance(x_train, torch.Tensor)
                else x_train.fingerprint())

    def on_train_begin(self, trainer: Trainer) -> None:
        """Start counting steps and time (after a resume: from where the run is)."""
        self.every = self.checkpointers[0].every_steps if self.checkpointers else None
        self.next_step = self._after(trainer.step)
        self._arm()

    def _after(self, step: int) -> float:
        """The next step count at which a checkpoint is due (inf: none by step count)."""
        return math.inf if not self.every else (step // self.every + 1) * self.every

    def _arm(self) -> None:
        self.deadline = (time.perf_counter() + CHECKPOINT_SECONDS if self.checkpointers
                         else math.inf)

    def due(self, step: int) -> bool:
        """The step count reached the next multiple of ``every_steps``, or
        :data:`CHECKPOINT_SECONDS` passed since the last checkpoint (one clock read)."""
        return step >= self.next_step or (
            self.deadline != math.inf and time.perf_counter() >= self.deadline)

    def on_epoch_end(self, trainer: Trainer, epoch: int, logs: dict[str, Any]) -> None:
        """A checkpoint at the epoch end when one is due: the next epoch is to run."""
        if self.due(trainer.step):
            self.save(trainer, epoch + 1, 0, NO_TOTALS)

    def on_loop_end(self, trainer: Trainer) -> None:
        """The final state, unless it was just written."""
        if self.checkpointers and self.saved_at != (trainer.step, trainer.epoch, 0):
            self.save(trainer, trainer.epoch, 0, NO_TOTALS)

    def save(self, trainer: Trainer, epoch: int, batch: int,
             totals: tuple[float, int, int]) -> None:
        """Hand the state to the checkpointers: next ``batch`` of ``epoch`` is to run."""
        self.position = (epoch, batch, totals)
        for cp in self.checkpointers if trainer.rank == 0 else ():  # rank 0 writes
            cp.save(trainer)
        self.saved_at = (trainer.step, epoch, batch)
        self.next_step = self._after(trainer.step)
        self._arm()
