"""``--time-budget SECONDS``: the best model in the time there is.

Users think in wall time, not in epochs. With a budget, the run plans its length from its
own speed instead of from a step count:

1. It starts with the longest run allowed (``--epochs``, else ``AUTO_MAX_EPOCHS``) as the
   schedule's provisional horizon.
2. After :data:`PLAN_AFTER_STEPS` steps (the first :data:`WARM_STEPS` not timed: they pay for
   warm-up and allocation) it measures the step time, adds an allowance for the validation
   passes, and sets the horizon to the steps that fit in what is left of the budget after a
   reserve for the end (:func:`reserve_seconds`, and one more validation pass: the check
   against PCA, putting back the best weights). The learning-rate schedule (one-cycle by
   default) then spans exactly that horizon, so it anneals as the time runs out.
3. At every epoch end it plans again from the measured time per step of the last
   :data:`PLAN_WINDOW_EPOCHS` epochs (validation included; a window, so that one slow or fast
   epoch moves the plan little): a horizon that no longer fits shrinks at once, one that grew
   by more than :data:`REPLAN_TOLERANCE` grows. The run ends at the horizon, mid-epoch if it
   falls there, or at once when the budget is spent.

Early stopping, best weights and the doctor work as in any run (an ``auto`` patience follows
the planned epochs). The time spent so far travels in checkpoints: a resumed run counts it
against the budget. Under torchrun rank 0's clock decides for every rank.
"""

from __future__ import annotations

import math
import time
from collections import deque
from typing import TYPE_CHECKING, Any

from aekit.errors import FormatError
from aekit.training import distributed
from aekit.training.callbacks import Callback
from aekit.training.plan import auto_patience

if TYPE_CHECKING:
    from aekit.training.trainer import Trainer

WARM_STEPS = 3
PLAN_AFTER_STEPS = 20
REPLAN_TOLERANCE = 0.01
PLAN_WINDOW_EPOCHS = 3
VALIDATION_ALLOWANCE = 0.05  # share of an epoch's time guessed for its validation pass


def reserve_seconds(budget: float) -> float:
    """Time kept for the end of the run: 2% of the budget, at least 1 s."""
    return max(1.0, 0.02 * budget)


class TimeBudget(Callback):
    """Plans and ends a run so that it fits ``seconds`` of training time (see the module)."""

    def __init__(self, seconds: float) -> None:
        self.seconds = float(seconds)
        self.spent_before = 0.0  # training time of earlier sessions of a resumed run
        self._t0 = self._t_warm = 0.0
        self._steps_seen = 0
        self._epoch_start = 0.0
        # (seconds, steps) of the last epochs
        self._recent: deque[tuple[float, int]] = deque(maxlen=PLAN_WINDOW_EPOCHS)
        self.planned_epochs: int | None = None
        self.horizon = 0  # the planned steps (the schedule's horizon); 0: not planned yet
        self._restored_horizon = 0

    # -- time --------------------------------------------------------------------------------
    def elapsed(self) -> float:
        """Training seconds spent against the budget (earlier sessions included)."""
        return self.spent_before + (time.perf_counter() - self._t0)

    def _left(self) -> float:
        return self.seconds - reserve_seconds(self.seconds) - self.elapsed()

    # -- hooks -------------------------------------------------------------------------------
    def on_train_begin(self, trainer: "Trainer") -> None:
        self._t0 = time.perf_counter()
        self._steps_seen = 0
        self._recent.clear()

    def on_epoch_begin(self, trainer: "Trainer", epoch: int) -> None:
        self._epoch_start = time.perf_counter()
        if self._restored_horizon:  # a resumed run continues on its saved plan
            trainer.schedule.total_steps = self.horizon = self._restored_horizon
            self._restored_horizon = 0

    def on_step_end(self, trainer: "Trainer", step: int, loss: float) -> None:
        self._steps_seen += 1
        if self._steps_seen == WARM_STEPS:
            self._t_warm = time.perf_counter()
        elif self._steps_seen == PLAN_AFTER_STEPS:
            per_step = (time.perf_counter() - self._t_warm) / (PLAN_AFTER_STEPS - WARM_STEPS)
            self._plan(trainer, per_step * (1 + VALIDATION_ALLOWANCE), first=True)
        # the planned horizon reached, or the budget spent: end now, mid-epoch if need be
        if step + 1 >= trainer.schedule.total_steps or self._left() <= 0:
            trainer.stop_training = True

    def on_epoch_end(self, trainer: "Trainer", epoch: int, logs: dict[str, Any]) -> None:
        # this epoch, validation included, with the epochs before it in the window
        self._recent.append((time.perf_counter() - self._epoch_start,
                             trainer.steps_in_epoch(epoch)))
        seconds, steps = (sum(part) for part in zip(*self._recent))
        self._plan(trainer, seconds / max(1, steps), first=self.planned_epochs is None)
        if trainer.step >= trainer.schedule.total_steps:
            trainer.stop_training = True

    # -- planning ----------------------------------------------------------------------------
    def _plan(self, trainer: "Trainer", per_step: float, first: bool) -> None:
        """Set the schedule's horizon to the steps that fit in the time left (``per_step``:
        seconds a step, its share of the validation passes included), keeping one more
        validation pass for the end. The horizon may fall mid-epoch: the run then ends there,
        with the learning rate annealed."""
        val_pass = VALIDATION_ALLOWANCE * per_step * trainer.steps_per_epoch
        left = self._left() - val_pass
        cap = sum(trainer.steps_in_epoch(e) for e in range(trainer.epochs))
        horizon = min(cap, trainer.step + max(0, math.floor(left / max(per_step, 1e-12))))
        if trainer.world > 1:  # rank 0's clock decides for every rank
            horizon = int(distributed.from_main(float(horizon), trainer.flat.data.device))
        horizon = max(horizon, trainer.step + int(first), 1)
        old = trainer.schedule.total_steps
        # shrink at once (never overrun the budget); grow only past the tolerance (the rate
        # then moves little)
        if first or horizon < old or horizon > old * (1 + REPLAN_TOLERANCE):
            trainer.schedule.total_steps = self.horizon = horizon
        epochs, steps = 0, 0
        while steps < trainer.schedule.total_steps and epochs < trainer.epochs:
            steps += trainer.steps_in_epoch(epochs)
            epochs += 1
        if first or epochs != self.planned_epochs:
            self.planned_epochs = epochs
            if trainer.config.train.early_stopping_patience == "auto":
                trainer.patience = auto_patience(max(1, epochs))
        if first:
            resumed = (f"resumed with {self.spent_before:.1f} s of it spent: "
                       if self.spent_before else "")
            trainer.log_event("time_budget", f"{self.seconds:g} s budget: {resumed}about "
                              f"{per_step * 1000:.1f} ms a step, planned "
                              f"{trainer.schedule.total_steps} steps (about {epochs} epochs)",
                              planned_epochs=epochs, seconds_per_step=per_step,
                              total_steps=trainer.schedule.total_steps,
                              spent_before=self.spent_before)

    # -- resume ------------------------------------------------------------------------------
    def state_dict(self) -> dict[str, Any]:
        return {"spent": self.elapsed(), "planned_epochs": self.planned_epochs or 0,
                "horizon": self.horizon}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        spent = state.get("spent") if isinstance(state, dict) else None
        if not isinstance(spent, (int, float)) or isinstance(spent, bool) or spent < 0:
            raise FormatError(f"TimeBudget state must hold `spent` seconds >= 0. Received: "
                              f"{state!r}")
        self.spent_before = float(spent)
        self._t0 = time.perf_counter()
        self.planned_epochs = int(state.get("planned_epochs") or 0) or None
        self._restored_horizon = int(state.get("horizon") or 0)
