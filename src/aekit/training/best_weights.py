"""Best weights and early stopping, as a callback the trainer runs after every other one.

With ``restore_best_weights`` or early stopping (``early_stopping_patience``), the weights with
the lowest validation loss are kept -- the starting weights count, as epoch 0 -- and put back
when the last epoch's are worse; early stopping ends the run after ``patience`` epochs without
a better validation loss. The state (best loss, its epoch, the epochs without improvement and
the weights) travels with checkpoints under the keys ``early_stopping`` and ``best.*``.
"""

from __future__ import annotations

import math
from typing import Any

import torch

from aekit.training.callbacks import Callback, Trainer


class BestWeights(Callback):
    """Keeps the best weights and stops early; reads ``trainer.patience`` (None: no early
    stopping) at each epoch end, so that a time budget may change it during the run.

    Attributes:
        best_val: the lowest validation loss so far (inf: none yet).
        best_epoch: its epoch (0: the starting weights).
        bad_epochs: epochs since the last improvement.
        state: the best weights (a :meth:`Trainer.snapshot`), or None.
    """

    def __init__(self) -> None:
        self.reset()

    def reset(self) -> None:
        """Forget the best weights (a new ``fit`` starts)."""
        self.best_val, self.state, self.bad_epochs, self.best_epoch = math.inf, None, 0, 0

    @staticmethod
    def keeps_best(trainer: Trainer) -> bool:
        """True when the run ends with its best weights (restore_best_weights or early stop)."""
        return trainer.patience is not None or trainer.config.train.restore_best_weights

    def score_initial(self, trainer: Trainer, initial: float) -> None:
        """The starting weights' validation loss: the best so far (epoch 0) when kept."""
        if self.keeps_best(trainer) and math.isfinite(initial):
            self.best_val, self.state, self.best_epoch = initial, trainer.snapshot(), 0

    def on_epoch_end(self, trainer: Trainer, epoch: int, logs: dict[str, Any]) -> None:
        """Keep better weights; stop after ``patience`` epochs without them."""
        val_loss, patience = logs["val_loss"], trainer.patience
        if val_loss is None or not self.keeps_best(trainer):
            return
        if val_loss < self.best_val:
            self.best_val, self.state, self.bad_epochs = val_loss, trainer.snapshot(), 0
            self.best_epoch = trainer.epoch + 1
            return
        if patience is None or trainer.schedule.rising(trainer.step):
            return  # the lr still climbs: a stall there is no sign of the end
        self.bad_epochs += 1
        if self.bad_epochs >= patience:
            which = ("the initial weights, which no epoch beat" if self.best_epoch == 0
                     else f"the best weights (epoch {self.best_epoch})")
            trainer.log_event("early_stop", f"no better validation loss for {patience} "
                              f"epochs; restoring {which} (val_loss {self.best_val:.4g})",
                              best_epoch=self.best_epoch, best_val_loss=self.best_val)
            trainer.stop_training = True

    def restore(self, trainer: Trainer) -> None:
        """Put back the best weights when the last epoch's are worse (or not finite)."""
        if self.state is None or not trainer.history.epochs:
            return
        last = trainer.history.epochs[-1]["val_loss"]
        if last is None or last <= self.best_val:
            return
        trainer.restore(self.state)
        if any(e["kind"] == "early_stop" for e in trainer.history.events):
            return  # its event already says so
        if self.best_epoch == 0:
            what = (f"restored the initial weights: no epoch beat their validation loss "
                    f"({self.best_val:.4g}, before training)")
        else:
            what = (f"restored the weights with the lowest validation loss ({self.best_val:.4g}"
                    f", epoch {self.best_epoch})")
        trainer.log_event("best_weights", f"{what}; the last epoch had {last:.4g}",
                          best_epoch=self.best_epoch, best_val_loss=self.best_val)

    # -- checkpoints --------------------------------------------------------------------------
    def checkpoint_meta(self) -> dict[str, Any]:
        """The counters a checkpoint's ``early_stopping`` entry holds."""
        return {"best_val": None if math.isinf(self.best_val) else self.best_val,
                "bad_epochs": self.bad_epochs, "best_epoch": self.best_epoch}

    def checkpoint_tensors(self) -> dict[str, torch.Tensor]:
        """The best weights as a checkpoint's ``best.*`` tensors."""
        return {f"best.{k}": v for k, v in (self.state or {}).items()}

    def load_checkpoint(self, meta: dict[str, Any], tensors: dict[str, torch.Tensor],
                        device: torch.device | str = "cpu") -> None:
        """Take back :meth:`checkpoint_meta` and :meth:`checkpoint_tensors`, the weights on
        ``device`` (the training device: the doctor compares them with the live ones)."""
        best = meta.get("best_val")
        self.best_val = math.inf if best is None else float(best)
        self.bad_epochs = int(meta.get("bad_epochs", 0))
        self.best_epoch = int(meta.get("best_epoch", 0))
        self.state = {k[5:]: v.to(device) for k, v in tensors.items()
                      if k.startswith("best.")} or None
