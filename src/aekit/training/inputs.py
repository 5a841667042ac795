"""The trainer's input checks: options that need validation rows, reconstruction targets and
row weights of the right shapes (out-of-core data takes neither)."""

from __future__ import annotations

from typing import Any

import torch

from aekit.config import AUTO_MAX_EPOCHS, RunConfig
from aekit.errors import ConfigError


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


def check_batch_schedule(config: RunConfig) -> None:
    """Refuse a batch schedule whose thirds cannot be known: under ``time_budget`` without
    ``step_size_epochs`` or ``epochs``.

    Raises:
        ConfigError: such a batch schedule.
    """
    train = config.train
    if (train.batch_schedule is not None and train.time_budget is not None
            and not train.epochs and not config.schedule.step_size_epochs):
        raise ConfigError(
            "`batch_schedule` grows the batch at each third of the run, and under "
            "`time_budget` the run's length is not known when it starts (the thirds of "
            f"the {AUTO_MAX_EPOCHS}-epoch cap would never come). Give step_size_epochs "
            "(--step-size-epochs N: the epochs between growths) or epochs (--epochs N)")


def check_row_weights(x_train: Any, row_weight: torch.Tensor | None,
                      draw_weight: torch.Tensor | None) -> None:
    """Row weights: one tensor weight per in-memory training row."""
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


def check_targets(x_train: Any, x_val: torch.Tensor | None, y_train: torch.Tensor | None,
                  y_val: torch.Tensor | None) -> None:
    """Reconstruction targets: tensors of their inputs' shapes, in memory."""
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
