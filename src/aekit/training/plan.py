"""The length and batches of a run when the user leaves them to aekit: epochs, batch size,
early-stopping patience, and the batch of each epoch under ``--batch-schedule``.

These rules depend on the data (its rows, the steps an epoch takes), so they are not fields of
:mod:`aekit.config`; the trainer, the learning-rate range test, the time budget and the run
pipeline's defaults (:func:`aekit.pipeline.decisions.data_defaults`) all ask them here.
"""

from __future__ import annotations

import math

from aekit.config import AUTO_MAX_EPOCHS, AUTO_MIN_EPOCHS, AUTO_STEPS, parse_batch_schedule


def auto_epochs(steps_per_epoch: int) -> int:
    """Epochs for about ``AUTO_STEPS`` optimizer steps, within [AUTO_MIN_EPOCHS, AUTO_MAX_EPOCHS].

    Convergence depends on the number of updates more than on passes over the data: a small
    data set needs many epochs, a large one few.
    """
    wanted = math.ceil(AUTO_STEPS / max(1, steps_per_epoch))
    return max(AUTO_MIN_EPOCHS, min(AUTO_MAX_EPOCHS, wanted))


def auto_batch_size(n_train: int) -> int:
    """Samples per step for ``n_train`` training rows: the power of two nearest ``n_train / 32``
    within [16, 256], so that a small table still gets about 32 steps per epoch and a large data
    set PyTorch-sized batches."""
    if n_train <= 0:
        return 16
    return int(min(256, max(16, 2 ** round(math.log2(max(1.0, n_train / 32))))))


def requested_batch_size(batch_size: int | None, n_train: int) -> int:
    """The batch size a run asks for: ``batch_size``, or :func:`auto_batch_size` of its
    ``n_train`` training rows when it is None (auto). The one rule: the pipeline's defaults,
    the trainer and the learning-rate range test all ask it."""
    return batch_size if batch_size is not None else auto_batch_size(n_train)


def auto_patience(epochs: int) -> int:
    """Early-stopping patience ``auto``: a tenth of the run's epochs, at least 5."""
    return max(5, epochs // 10)


def batch_sizes(spec: str | None, first: int, n_train: int, epochs: int,
                step_size_epochs: int | None) -> list[int]:
    """The batch size of each epoch under ``--batch-schedule step:FACTOR``: ``first``, times
    FACTOR every ``step_size_epochs`` epochs (default: a third of the run, rounded up -- the
    epochs where ``--schedule step`` cuts the learning rate), at most ``n_train``; without a
    schedule, ``first`` throughout."""
    if spec is None:
        return [first] * epochs
    factor = parse_batch_schedule(spec)
    every = step_size_epochs or max(1, math.ceil(epochs / 3))
    return [max(1, min(n_train, int(round(first * factor ** (e // every)))))
            for e in range(epochs)]
