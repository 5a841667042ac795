"""The record of a run: :class:`History` (per-epoch logs and notable events) and the
:class:`EventLog` behind :meth:`Trainer.log_event <aekit.training.trainer.Trainer.log_event>`."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from aekit.training.callbacks import Trainer


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


class EventLog:
    """Records a run's notable events in its history and hands each to the callbacks
    (``metrics.jsonl``, the console...).

    An event logged before training starts (before ``fit``, or from a callback's
    ``on_train_begin``, e.g. the run pipeline's ``pca_baseline``) is held until every callback
    has started (the metrics file is open, a checkpoint is loaded) and then recorded; on a
    resumed run it is dropped when the restored history already holds an event of its kind
    (the interrupted run logged it), so ``metrics.jsonl`` has it once.
    """

    def __init__(self) -> None:
        self.is_open = False  # False until every callback has run its on_train_begin
        self.held: list[dict[str, Any]] = []

    def log(self, trainer: Trainer, kind: str, message: str, **data: Any) -> None:
        """Record (or hold, before training starts) an event at the trainer's position."""
        event = {"kind": kind, "step": trainer.step, "epoch": trainer.epoch, "message": message,
                 **data}
        if not self.is_open:
            self.held.append(event)
            return
        self.record(trainer, event)

    @staticmethod
    def record(trainer: Trainer, event: dict[str, Any]) -> None:
        """Append ``event`` to the history and give it to every callback."""
        trainer.history.events.append(event)
        for cb in trainer.callbacks:
            cb.on_event(trainer, event)

    def close(self) -> None:
        """Hold events again (a new ``fit`` starts)."""
        self.is_open = False

    def release(self, trainer: Trainer, resumed: bool) -> None:
        """Open the log and record the held events (see the class doc)."""
        self.is_open = True
        held, self.held = self.held, []
        logged = {e.get("kind") for e in trainer.history.events} if resumed else set()
        for event in held:
            if event["kind"] not in logged:
                event.update(step=trainer.step, epoch=trainer.epoch)  # where training (re)starts
                self.record(trainer, event)
