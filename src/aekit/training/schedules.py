"""Learning-rate schedules: a pure function of the step, plus a small stateful wrapper.

:func:`lr_at` is the math: the learning rate of optimizer step ``step`` (0-based) of a run of
``total_steps`` steps, with each regime numbered in a comment (nanoGPT's ``get_lr``).
:class:`Schedule` wraps it for the trainer and adds what depends on the history of the run:
reduction on a plateau of the validation loss, warm restarts requested from outside and a
global scale (used when rolling back after divergence). This module does not import torch.

Warm-up (every schedule but ``one_cycle``, which has its own): for ``step < warmup_steps`` the lr
is ``base_lr * (step + 1) / (warmup_steps + 1)`` (nanoGPT's definition: it never is 0 and the
next step, the first after warm-up, gets ``base_lr``). The schedule proper then starts at
``t = step - warmup_steps = 0`` and runs over ``T = total_steps - warmup_steps`` steps; every
schedule starts at ``base_lr`` at ``t = 0``, so the ramp joins it without a jump.
"""

from __future__ import annotations

import dataclasses
import math
from typing import Any

from aekit.config import SCHEDULES, ScheduleConfig
from aekit.errors import ConfigError, FormatError
from aekit.serialization import is_number

# ReduceLROnPlateau's default: a loss improves when it is below best * (1 - 1e-4).
PLATEAU_REL_THRESHOLD = 1e-4
# Cycle boundaries beyond this are "never" (a huge cycle_mult overflows floats).
_FAR_AWAY = float(2**62)


def _check_int(name: str, value: Any, low: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < low:
        raise ConfigError(f"`{name}` must be an integer >= {low}. Received: {name}={value!r}")


def _check_run(cfg: ScheduleConfig, base_lr: float, total_steps: int,
               steps_per_epoch: int) -> None:
    """Validate the arguments shared by :func:`lr_at` and :func:`cycle_of`."""
    if not isinstance(cfg, ScheduleConfig):
        raise ConfigError(f"`cfg` must be a ScheduleConfig. Received: cfg={cfg!r}")
    if isinstance(base_lr, bool) or not isinstance(base_lr, (int, float)) \
            or not math.isfinite(base_lr) or base_lr <= 0:
        raise ConfigError(f"`base_lr` must be a finite number > 0. Received: base_lr={base_lr!r}")
    _check_int("total_steps", total_steps, 1)
    _check_int("steps_per_epoch", steps_per_epoch, 1)
    if cfg.schedule != "one_cycle" and cfg.warmup_steps >= total_steps:
        raise ConfigError(
            f"`warmup_steps` must be smaller than the number of training steps, which is "
            f"{total_steps}; lower --warmup-steps or train for more epochs. Received: "
            f"warmup_steps={cfg.warmup_steps}")


def _round_half_up(x: float) -> float:
    """Round to the nearest integer, halves up (not to even), as a float; inf stays far away."""
    return math.floor(x + 0.5) if x < _FAR_AWAY else _FAR_AWAY


def _first_cycle_steps(cfg: ScheduleConfig, decay_steps: int, steps_per_epoch: int) -> float:
    """Length of the first SGDR cycle in steps (may be fractional when it is derived)."""
    if cfg.first_cycle_epochs is not None:
        return float(cfg.first_cycle_epochs * steps_per_epoch)
    m = cfg.cycle_mult
    # L1 * (1 + m + m^2) = T: three cycles fill the run; at least 1 step so no cycle is empty.
    return max(1.0, decay_steps / (1.0 + m + m * m))


def _cycle_start(index: int, first_steps: float, mult: float) -> float:
    """Step (after warm-up) at which cycle ``index`` starts: round(L1 * (1 + m + ... + m^(i-1)))."""
    if mult == 1.0:
        return _round_half_up(first_steps * index)
    try:
        return _round_half_up(first_steps * (mult**index - 1.0) / (mult - 1.0))
    except OverflowError:
        return _FAR_AWAY


def _sgdr_cycle(t: int, first_steps: float, mult: float) -> tuple[int, int, int]:
    """(cycle index, position in cycle, cycle length) of post-warm-up step ``t``."""
    # Closed form as in Keras' CosineDecayRestarts, then a fix-up for the rounding of boundaries.
    if mult == 1.0:
        index = int(t // first_steps)
    else:
        index = int(math.log1p(t * (mult - 1.0) / first_steps) // math.log(mult))
    while index > 0 and _cycle_start(index, first_steps, mult) > t:
        index -= 1
    while _cycle_start(index + 1, first_steps, mult) <= t:
        index += 1
    start = _cycle_start(index, first_steps, mult)
    return index, int(t - start), int(_cycle_start(index + 1, first_steps, mult) - start)


def _cosine(fraction: float, final_fraction: float) -> float:
    """Cosine from 1 (fraction 0) down to ``final_fraction`` (fraction 1)."""
    return final_fraction + (1.0 - final_fraction) * 0.5 * (1.0 + math.cos(math.pi * fraction))


def _one_cycle(step: int, cfg: ScheduleConfig, base_lr: float, total_steps: int) -> float:
    """OneCycleLR (anneal_strategy='cos', three_phase=False), same arithmetic as PyTorch."""
    initial_lr = base_lr / cfg.div_factor
    min_lr = initial_lr / cfg.final_div_factor
    # Phase ends are the steps at which the phase's end lr is reached (PyTorch's end_step).
    rise_end = float(cfg.pct_start * total_steps) - 1
    if step <= rise_end:
        start_step, end_step, start_lr, end_lr = 0.0, rise_end, initial_lr, base_lr
    else:
        start_step, end_step, start_lr, end_lr = rise_end, total_steps - 1, base_lr, min_lr
    # A phase of zero length (PyTorch divides by zero there) is at its end.
    pct = (step - start_step) / (end_step - start_step) if end_step != start_step else 1.0
    return end_lr + (start_lr - end_lr) / 2.0 * (math.cos(math.pi * pct) + 1)


def lr_at(step: int, cfg: ScheduleConfig, base_lr: float, total_steps: int,
          steps_per_epoch: int) -> float:
    """Learning rate of optimizer step ``step`` (0-based) of a run of ``total_steps`` steps.

    With ``t = step - warmup_steps`` and ``T = total_steps - warmup_steps``, ``f`` the
    ``final_lr_fraction``: constant ``base_lr``; step ``base_lr * gamma ** (t // S)`` with ``S``
    = ``step_size_epochs * steps_per_epoch`` or ``ceil(T / 3)`` (two drops in the run);
    exponential ``base_lr * f ** (t / T)``; linear ``base_lr * (1 - (1 - f) * t / T)``; cosine
    ``base_lr * (f + (1 - f) * (1 + cos(pi t / T)) / 2)`` (so ``f * base_lr`` is reached at
    ``t = T``, one step after the last); cosine_restarts the same cosine within each cycle of
    :func:`cycle_of`, from the peak ``base_lr * restart_decay ** i`` of cycle ``i`` down to
    ``f`` times that peak; one_cycle PyTorch's ``OneCycleLR`` (cos, two phases), which ignores
    ``warmup_steps``; plateau ``base_lr`` (the cuts live in :class:`Schedule`). Warm-up: see the
    module docstring. Steps at or past ``total_steps`` get the lr of the last step.

    Args:
        step: optimizer step, 0-based.
        cfg: the schedule configuration.
        base_lr: peak learning rate (``--lr``).
        total_steps: optimizer steps in the whole run.
        steps_per_epoch: optimizer steps per epoch (converts the ``*_epochs`` fields).

    Returns:
        The learning rate to use for that step.

    Raises:
        ConfigError: ``step < 0``, ``total_steps < 1``, ``warmup_steps >= total_steps`` (but for
            one_cycle) or another argument out of range.
    """
    _check_run(cfg, base_lr, total_steps, steps_per_epoch)
    _check_int("step", step, 0)
    step = min(step, total_steps - 1)
    # 1) one_cycle has its own warm-up (the rise from base_lr / div_factor)
    if cfg.schedule == "one_cycle":
        return _one_cycle(step, cfg, base_lr, total_steps)
    # 2) linear warm-up towards base_lr
    warmup = cfg.warmup_steps
    if step < warmup:
        return base_lr * (step + 1) / (warmup + 1)
    t, decay_steps = step - warmup, total_steps - warmup
    f = cfg.final_lr_fraction
    # 3) constant, and plateau whose cuts are stateful
    if cfg.schedule in ("constant", "plateau"):
        return base_lr
    # 4) step: multiply by gamma every step_size steps
    if cfg.schedule == "step":
        if cfg.step_size_epochs is not None:
            step_size = cfg.step_size_epochs * steps_per_epoch
        else:
            step_size = max(1, -(-decay_steps // 3))  # ceil(T / 3): drops at T/3 and 2T/3
        return base_lr * cfg.gamma ** (t // step_size)
    # 5) exponential, linear and cosine decay from base_lr to f * base_lr over T steps
    if cfg.schedule == "exponential":
        return base_lr * f ** (t / decay_steps)
    if cfg.schedule == "linear":
        return base_lr * (1.0 - (1.0 - f) * t / decay_steps)
    if cfg.schedule == "cosine":
        return base_lr * _cosine(t / decay_steps, f)
    # 6) cosine with warm restarts (SGDR): a cosine per cycle, each peak restart_decay lower
    if cfg.schedule == "cosine_restarts":
        first_steps = _first_cycle_steps(cfg, decay_steps, steps_per_epoch)
        index, position, length = _sgdr_cycle(t, first_steps, cfg.cycle_mult)
        return base_lr * cfg.restart_decay**index * _cosine(position / length, f)
    raise ConfigError(f"`schedule` must be one of {', '.join(SCHEDULES)}. "
                      f"Received: schedule={cfg.schedule!r}")


def cycle_of(step: int, cfg: ScheduleConfig, total_steps: int,
             steps_per_epoch: int) -> tuple[int, int, int]:
    """The cycle that step ``step`` belongs to.

    For cosine_restarts, cycle ``i`` (0-based) covers post-warm-up steps
    ``[round(L1 * (m^i - 1) / (m - 1)), round(L1 * (m^(i+1) - 1) / (m - 1)))`` with ``m`` the
    ``cycle_mult`` and ``L1`` the first cycle's length: ``first_cycle_epochs * steps_per_epoch``,
    or ``max(1, T / (1 + m + m^2))`` so that three cycles fill the run exactly. Every other
    schedule is one cycle: the post-warm-up run (the whole run for one_cycle). Warm-up steps
    report ``(0, 0, length of cycle 0)``; steps past the run count as the last step.

    Args:
        step: optimizer step, 0-based.
        cfg: the schedule configuration.
        total_steps: optimizer steps in the whole run.
        steps_per_epoch: optimizer steps per epoch.

    Returns:
        ``(cycle index, position of the step in its cycle, cycle length)``, all in steps.

    Raises:
        ConfigError: as :func:`lr_at`.
    """
    _check_run(cfg, 1.0, total_steps, steps_per_epoch)
    _check_int("step", step, 0)
    step = min(step, total_steps - 1)
    if cfg.schedule == "one_cycle":
        return 0, step, total_steps
    t, decay_steps = max(0, step - cfg.warmup_steps), total_steps - cfg.warmup_steps
    if cfg.schedule != "cosine_restarts":
        return 0, t, decay_steps
    first_steps = _first_cycle_steps(cfg, decay_steps, steps_per_epoch)
    return _sgdr_cycle(t, first_steps, cfg.cycle_mult)


class Schedule:
    """Stateful wrapper the trainer uses: lr(step) plus plateau reduction and warm restarts.

    ``lr(step) = lr_at(step - restart_offset, ..., total_steps - restart_offset, ...) * scale``,
    floored at ``cfg.min_lr`` for the plateau schedule. ``scale`` starts at 1 and is multiplied
    by :meth:`scale_lr` and by plateau cuts.

    Args:
        cfg: the schedule configuration.
        base_lr: peak learning rate.
        total_steps: optimizer steps in the whole run.
        steps_per_epoch: optimizer steps per epoch.

    Raises:
        ConfigError: the arguments do not describe a valid schedule (checked here, before the
            first step).
    """

    def __init__(self, cfg: ScheduleConfig, base_lr: float, total_steps: int,
                 steps_per_epoch: int) -> None:
        lr_at(0, cfg, base_lr, total_steps, steps_per_epoch)  # fail before the first step
        self.cfg = cfg
        self.base_lr = float(base_lr)
        self.total_steps = total_steps
        self.steps_per_epoch = steps_per_epoch
        self.scale = 1.0
        self.restart_offset = 0
        self.best_val_loss: float | None = None
        self.bad_epochs = 0
        # A restarted run skips warm-up: a warm restart jumps back to the peak (SGDR).
        self._restart_cfg = _without_warmup(cfg)

    def lr(self, step: int) -> float:
        """Learning rate for optimizer step ``step`` (0-based).

        Steps before the latest restart (after a rollback) get the restarted schedule's first
        value.
        """
        if self.restart_offset == 0:
            value = lr_at(step, self.cfg, self.base_lr, self.total_steps, self.steps_per_epoch)
        else:
            _check_int("step", step, 0)
            value = lr_at(max(0, step - self.restart_offset), self._restart_cfg, self.base_lr,
                          self.total_steps - self.restart_offset, self.steps_per_epoch)
        value *= self.scale
        if self.cfg.schedule == "plateau":
            value = max(value, self.cfg.min_lr)
        return value

    def rising(self, step: int) -> bool:
        """True while the lr still climbs to its peak: one_cycle's first phase (``pct_start``
        of the run) or the linear warm-up. A validation loss that stalls there says little --
        the steps grow -- so early stopping does not count those epochs (a restarted schedule
        does not climb)."""
        if self.restart_offset:
            return False
        if self.cfg.schedule == "one_cycle":
            return step < self.cfg.pct_start * self.total_steps
        return step < self.cfg.warmup_steps

    def on_epoch_end(self, val_loss: float | None) -> bool:
        """Record an epoch's validation loss; for plateau, cut the lr when it stalls.

        A loss improves when it is below ``best * (1 - 1e-4)``. After
        ``plateau_patience_epochs`` epochs in a row without improvement (at least one), the
        scale is multiplied by ``plateau_factor`` and the count starts again. No cut happens
        once ``base_lr * scale`` is at ``min_lr`` or below.

        Returns:
            True when the learning rate was cut; always False for other schedules and for a
            ``None`` loss.
        """
        if self.cfg.schedule != "plateau" or val_loss is None:
            return False
        val_loss = float(val_loss)
        if self.best_val_loss is None or val_loss < self.best_val_loss * (
                1.0 - PLATEAU_REL_THRESHOLD):
            self.best_val_loss = val_loss
            self.bad_epochs = 0
            return False
        self.bad_epochs += 1
        if self.bad_epochs < max(1, self.cfg.plateau_patience_epochs):
            return False
        self.bad_epochs = 0
        if self.base_lr * self.scale <= self.cfg.min_lr:
            return False
        self.scale *= self.cfg.plateau_factor
        return True

    def restart(self, step: int) -> None:
        """Warm restart at ``step``: the schedule replays from its start over the remaining steps.

        For constant and plateau (flat schedules) this resets the scale to 1 instead (and the
        plateau's count of bad epochs). The replay has no warm-up.

        Raises:
            ConfigError: ``step`` is not in ``[0, total_steps)``.
        """
        _check_int("step", step, 0)
        if step >= self.total_steps:
            raise ConfigError(f"`step` must be smaller than total_steps={self.total_steps} to "
                              f"restart. Received: step={step}")
        if self.cfg.schedule in ("constant", "plateau"):
            self.scale = 1.0
            self.bad_epochs = 0
        else:
            self.restart_offset = step

    def scale_lr(self, factor: float) -> None:
        """Multiply every future learning rate by ``factor`` (> 0)."""
        if isinstance(factor, bool) or not isinstance(factor, (int, float)) \
                or not math.isfinite(factor) or factor <= 0:
            raise ConfigError(f"`factor` must be a finite number > 0. Received: factor={factor!r}")
        self.scale *= float(factor)

    def state_dict(self) -> dict[str, Any]:
        """Everything needed for an exact resume, as plain JSON values."""
        return {"scale": self.scale, "restart_offset": self.restart_offset,
                "best_val_loss": self.best_val_loss, "bad_epochs": self.bad_epochs}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore what :meth:`state_dict` returned.

        Raises:
            FormatError: ``state`` is not such a dictionary.
        """
        expected = {"scale", "restart_offset", "best_val_loss", "bad_epochs"}
        if not isinstance(state, dict) or set(state) != expected:
            keys = sorted(state) if isinstance(state, dict) else type(state).__name__
            raise FormatError(f"A schedule state must be a mapping with keys "
                              f"{', '.join(sorted(expected))}. Received: {keys}")
        scale, offset = state["scale"], state["restart_offset"]
        best, bad = state["best_val_loss"], state["bad_epochs"]
        if not is_number(scale) or not math.isfinite(scale) or scale <= 0:
            raise FormatError(f"Schedule state `scale` must be a finite number > 0. "
                              f"Received: scale={scale!r}")
        for name, value in (("restart_offset", offset), ("bad_epochs", bad)):
            if isinstance(value, bool) or not isinstance(value, int) or value < 0:
                raise FormatError(f"Schedule state `{name}` must be an integer >= 0. "
                                  f"Received: {name}={value!r}")
        if offset >= self.total_steps:
            raise FormatError(f"Schedule state `restart_offset` must be smaller than "
                              f"total_steps={self.total_steps}. Received: restart_offset={offset}")
        if best is not None and not is_number(best):
            raise FormatError(f"Schedule state `best_val_loss` must be a number or null. "
                              f"Received: best_val_loss={best!r}")
        self.scale = float(scale)
        self.restart_offset = offset
        self.best_val_loss = None if best is None else float(best)
        self.bad_epochs = bad


def _without_warmup(cfg: ScheduleConfig) -> ScheduleConfig:
    return dataclasses.replace(cfg, warmup_steps=0) if cfg.warmup_steps else cfg
