"""Remedies applied during training (the training doctor's hands).

:class:`Doctor` keeps the last good state of the run in memory (weights, batch-norm buffers,
optimizer state: ``trainer.snapshot()``), refreshed every ``snapshot_every_steps`` healthy steps
and at each healthy epoch end. Then:

- **non-finite loss or gradient** (the trainer skips such a step and reports a NaN loss;
  always on): restore the last good state, multiply the learning rate by ``lr_factor``
  (``trainer.schedule.scale_lr``) and go on;
- **divergence** (``auto_fix`` ``"auto"``, the default, or True): the smoothed batch loss
  rises above ``DIVERGENCE_FACTOR`` times its best value: the same rollback;
- **plateau** (``auto_fix`` True): the epoch loss (validation if any, else train) improved by
  less than ``PLATEAU_REL_IMPROVEMENT`` over ``plateau_epochs`` epochs: a warm restart of the
  learning-rate schedule (``trainer.schedule.restart(step)``), at most ``max_restarts`` times.

After ``max_rollbacks`` rollbacks a further one raises :class:`TrainingError` (the weights are
left at the last good state, so a caller can still save them) -- except a divergence under
``"auto"``: the doctor then logs that it leaves the run alone (``divergence_left``) and stops
acting on divergence, and the run goes on as it would have without it (its best weights are
still kept). Every remedy is logged with ``trainer.log_event`` (console, ``metrics.jsonl``,
``summary.json``'s ``events``).

Its state (rollbacks and restarts spent, the last good state and its step, the smoothed loss
and its best, the epoch losses the plateau rule reads) travels with checkpoints
(:meth:`Doctor.state_dict`): a resumed run has the same remedies left and takes the same
decisions as an uninterrupted one.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any

import torch

from aekit.errors import TrainingError
from aekit.serialization import is_number
from aekit.training.callbacks import Callback

if TYPE_CHECKING:
    from aekit.training.trainer import Trainer

DIVERGENCE_FACTOR = 3.0
EMA_BETA = 0.9
WARMUP_STEPS_BEFORE_DIVERGENCE = 20
PLATEAU_REL_IMPROVEMENT = 0.002


class Doctor(Callback):
    """Rollback on NaN/Inf (always), on divergence (``auto_fix`` ``"auto"`` or True) and a
    warm restart on plateaus (``auto_fix`` True).

    Args:
        auto_fix: ``"auto"``: also roll back a divergence while rollbacks are left; True: that
            (an error once they are spent) and warm restarts on plateaus; False: neither.
        max_rollbacks: rollbacks allowed; one more raises :class:`TrainingError`.
        lr_factor: factor in (0, 1] applied to the learning rate at each rollback.
        snapshot_every_steps: refresh the in-memory good state this often (healthy steps).
        plateau_epochs: epochs without improvement that make a plateau.
        max_restarts: warm restarts allowed.
    """

    def __init__(self, auto_fix: bool | str = "auto", max_rollbacks: int = 3,
                 lr_factor: float = 0.5, snapshot_every_steps: int = 200,
                 plateau_epochs: int = 5, max_restarts: int = 3) -> None:
        if not isinstance(auto_fix, bool) and auto_fix != "auto":
            raise ValueError(f"auto_fix must be True, False or 'auto', got {auto_fix!r}")
        self.auto_fix = auto_fix
        self.divergence_left = False  # "auto": rollbacks spent, divergence no longer acted on
        self.max_rollbacks = max_rollbacks
        self.lr_factor = lr_factor
        self.snapshot_every_steps = snapshot_every_steps
        self.plateau_epochs = plateau_epochs
        self.max_restarts = max_restarts
        self.rollbacks = 0
        self.restarts = 0
        self._good: dict[str, torch.Tensor] | None = None
        self._good_step = 0
        self._ema: float | None = None
        self._best_ema = math.inf
        self._steps_since_reset = 0
        self._epoch_bad = False
        self._epoch_losses: list[float] = []
        self._trainer: Any = None

    def on_train_begin(self, trainer: "Trainer") -> None:
        self._trainer = trainer
        self._save_good(trainer)

    def _save_good(self, trainer: "Trainer") -> None:
        self._good = trainer.snapshot()
        self._good_step = trainer.step

    def on_epoch_begin(self, trainer: "Trainer", epoch: int) -> None:
        self._epoch_bad = False

    def on_step_end(self, trainer: "Trainer", step: int, loss: float) -> None:
        if not math.isfinite(loss):
            self._roll_back(trainer, "non_finite", "the loss or a gradient was NaN/Inf")
            return
        self._ema = loss if self._ema is None else EMA_BETA * self._ema + (1 - EMA_BETA) * loss
        self._steps_since_reset += 1
        if self._steps_since_reset >= WARMUP_STEPS_BEFORE_DIVERGENCE:
            self._best_ema = min(self._best_ema, self._ema)
            if self._watches_divergence() and self._ema > DIVERGENCE_FACTOR * self._best_ema:
                why = (f"the smoothed loss {self._ema:.4g} rose above {DIVERGENCE_FACTOR:g}x "
                       f"its best {self._best_ema:.4g}")
                if self.auto_fix == "auto" and self.rollbacks >= self.max_rollbacks:
                    self.divergence_left = True
                    trainer.log_event("divergence_left", f"{why} at step {trainer.step}; "
                                      f"{self.rollbacks} rollback(s) already spent: the run "
                                      "goes on without further rollbacks on divergence "
                                      "(--auto-fix makes this an error)", reason="divergence")
                else:
                    self._roll_back(trainer, "divergence", why)
                    return
        if step + 1 - self._good_step >= self.snapshot_every_steps and not self._epoch_bad:
            self._save_good(trainer)

    def _watches_divergence(self) -> bool:
        return self.auto_fix is True or (self.auto_fix == "auto" and not self.divergence_left)

    def _roll_back(self, trainer: "Trainer", reason: str, why: str) -> None:
        """Restore the last good state and cut the lr, or raise when no attempt is left."""
        self._epoch_bad = True
        if self.rollbacks >= self.max_rollbacks:
            if self._good is not None:
                trainer.restore(self._good)
            trainer.log_event("gave_up", f"{why} at step {trainer.step}; {self.rollbacks} "
                              "rollback(s) already spent", reason=reason)
            raise TrainingError(
                f"training cannot go on: {why} at step {trainer.step} after {self.rollbacks} "
                f"rollback(s) with the learning rate cut by {self.lr_factor:g} each time "
                f"(--max-rollbacks {self.max_rollbacks}). The weights are those of step "
                f"{self._good_step}. Try a lower --lr (aekit lr-find), --clip-norm 1.0, or "
                "check the data")
        self.rollbacks += 1
        if self._good is not None:
            trainer.restore(self._good)
        old_lr = trainer.lr
        trainer.schedule.scale_lr(self.lr_factor)
        self._ema, self._best_ema, self._steps_since_reset = None, math.inf, 0
        trainer.log_event("rollback", f"{why} at step {trainer.step}: restored the weights of "
                          f"step {self._good_step} and cut the learning rate by "
                          f"{self.lr_factor:g} (attempt {self.rollbacks}/{self.max_rollbacks})",
                          reason=reason, restored_step=self._good_step, lr_before=old_lr,
                          lr_factor=self.lr_factor, attempt=self.rollbacks)

    def on_epoch_end(self, trainer: "Trainer", epoch: int, logs: dict[str, Any]) -> None:
        if not self._epoch_bad:
            self._save_good(trainer)
        loss = logs.get("val_loss")
        loss = logs.get("train_loss") if loss is None else loss
        if loss is None or not math.isfinite(loss):
            return
        self._epoch_losses.append(float(loss))
        if self.auto_fix is True and self._is_plateau() and self.restarts < self.max_restarts \
                and trainer.step < trainer.schedule.total_steps:
            self.restarts += 1
            trainer.schedule.restart(trainer.step)
            trainer.log_event("warm_restart", f"the loss improved by less than "
                              f"{PLATEAU_REL_IMPROVEMENT:.1%} in {self.plateau_epochs} epochs: "
                              f"warm restart of the learning-rate schedule "
                              f"({self.restarts}/{self.max_restarts})", restart=self.restarts)
            self._epoch_losses = [float(loss)]

    def state_dict(self) -> dict[str, Any]:
        """Counters, smoothed loss, epoch losses (JSON) and the last good state for a
        checkpoint: as tensors (``good.<name>``), or, when it equals the trainer's current
        state or its best weights (a snapshot every 200 steps and a checkpoint every 200
        steps often coincide), as ``good_is`` ``"current"`` / ``"best"``, which the checkpoint
        holds already."""
        state: dict[str, Any] = {
            "rollbacks": self.rollbacks, "restarts": self.restarts, "good_step": self._good_step,
            "divergence_left": self.divergence_left,
            "ema": self._ema, "best_ema": self._best_ema,
            "steps_since_reset": self._steps_since_reset, "epoch_bad": self._epoch_bad,
            "epoch_losses": list(self._epoch_losses)}
        same = self._good_is()
        if same is not None:
            state["good_is"] = same
        else:
            for name, tensor in (self._good or {}).items():
                state[f"good.{name}"] = tensor
        return state

    def _good_is(self) -> str | None:
        """``current`` or ``best`` when the good state equals that state of the trainer."""
        trainer, good = self._trainer, self._good
        if trainer is None or good is None:
            return None
        current = {f"model.{k}": v for k, v in trainer.model.state_dict().items()}
        current.update({f"optim.{k}": v for k, v in trainer.optimizer.state_tensors().items()})
        for name, other in (("current", current), ("best", trainer.best_weights.state or {})):
            if other.keys() == good.keys() and all(  # a state on another device differs
                    good[k].device == other[k].device and torch.equal(good[k], other[k])
                    for k in good):
                return name
        return None

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Take back :meth:`state_dict`'s values (a checkpoint without a good state keeps the
        one taken when training began)."""
        ints = {k: state[k] for k in ("rollbacks", "restarts", "good_step", "steps_since_reset")}
        if any(isinstance(v, bool) or not isinstance(v, int) or v < 0 for v in ints.values()):
            raise ValueError(f"counters must be integers >= 0, got {ints}")
        ema, best = state["ema"], state["best_ema"]
        losses = state["epoch_losses"]
        if not (ema is None or is_number(ema)) or not is_number(best) \
                or not isinstance(losses, list) or not all(map(is_number, losses)):
            raise ValueError("ema, best_ema and epoch_losses must be numbers")
        self.rollbacks, self.restarts = ints["rollbacks"], ints["restarts"]
        self._good_step, self._steps_since_reset = ints["good_step"], ints["steps_since_reset"]
        self._ema = None if ema is None else float(ema)
        self._best_ema = float(best)
        self._epoch_bad = bool(state["epoch_bad"])
        self.divergence_left = bool(state.get("divergence_left", False))  # older checkpoints
        self._epoch_losses = [float(v) for v in losses]
        good = {k[5:]: v for k, v in state.items() if k.startswith("good.")}
        same = state.get("good_is")
        if same == "current" and self._trainer is not None:
            good = self._trainer.snapshot()  # the checkpoint's state, loaded by now
        elif same == "best" and self._trainer is not None and self._trainer.best_weights.state:
            good = {k: v.clone() for k, v in self._trainer.best_weights.state.items()}
        elif same is not None:
            raise ValueError(f"good_is must be current or best, got {same!r}")
        if good:
            flat = getattr(self._trainer, "flat", None)  # restored on the training device
            self._good = good if flat is None else {k: v.to(flat.data.device)
                                                    for k, v in good.items()}

    def _is_plateau(self) -> bool:
        losses = self._epoch_losses
        if len(losses) <= self.plateau_epochs:
            return False
        before = min(losses[:-self.plateau_epochs])
        recent = min(losses[-self.plateau_epochs:])
        return (before - recent) < PLATEAU_REL_IMPROVEMENT * abs(before)


def default_callbacks(train_cfg: Any, probe: torch.Tensor | None,
                      existing: list[Callback] = ()) -> list[Callback]:
    """The diagnostics and doctor callbacks a run gets from its :class:`TrainConfig`.

    Args:
        train_cfg: the run's ``TrainConfig`` (``diagnostics_every_steps``, ``auto_fix``,
            ``max_rollbacks``, ``rollback_lr_factor``).
        probe: training samples for the activation statistics.
        existing: callbacks already given by the caller; a kind already present is not added.

    Returns:
        The callbacks to append (diagnostics first, then the doctor).
    """
    from aekit.training.diagnostics import Diagnostics

    out: list[Callback] = []
    every = train_cfg.diagnostics_every_steps
    if every is not None and not any(isinstance(cb, Diagnostics) for cb in existing):
        out.append(Diagnostics(every, probe))
    if not any(isinstance(cb, Doctor) for cb in existing):
        out.append(Doctor(auto_fix=train_cfg.auto_fix, max_rollbacks=train_cfg.max_rollbacks,
                          lr_factor=train_cfg.rollback_lr_factor))
    return out
