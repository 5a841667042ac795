"""The batches of one epoch: slices of a fresh permutation of the training tensor (no
DataLoader, no per-sample Python), class-balanced draws, or an out-of-core file's chunks."""

from __future__ import annotations

from typing import Any, Iterator

import torch

Batch = tuple[torch.Tensor, "torch.Tensor | None", "torch.Tensor | None"]


def epoch_batches(x_train: Any, y_train: torch.Tensor | None, row_weight: torch.Tensor | None,
                  draw_weight: torch.Tensor | None, generator: torch.Generator,
                  batch_size: int, n_train: int, first: int, steps: int, shuffle: bool,
                  batch_norm: bool) -> Iterator[Batch]:
    """The epoch's global batches ``first`` to ``steps - 1``, as (inputs, targets or None, row
    weights or None): the same slice of a fresh permutation of the training tensor, of its
    target and of its row weights -- or, with draw weights, of ``n_train`` rows drawn with
    replacement in proportion to them -- or, out of core (never with a target or
    weights), batches of shuffled rows of shuffled chunks.

    Args:
        generator: the run's epoch generator (one permutation per epoch is drawn from it).
        batch_norm: the model has batch normalization (out of core: no batch of one row).
    """
    if not isinstance(x_train, torch.Tensor):
        for xb in x_train.epoch_batches(generator, batch_size, shuffle, first, batch_norm):
            yield xb, None, None
        return
    if batch_size == n_train and not shuffle and draw_weight is None:
        for _ in range(first, steps):
            yield x_train, y_train, row_weight
        return
    if draw_weight is not None:  # class-balanced: rows drawn with replacement
        order = torch.multinomial(draw_weight.cpu().double(), n_train, replacement=True,
                                  generator=generator)
    else:
        order = (torch.randperm(n_train, generator=generator) if shuffle
                 else torch.arange(n_train))
    order = order.to(x_train.device)
    for i in range(first, steps):
        # index_select, not x[idx]: ten times faster for a batch of rows on the CPU
        rows = order[i * batch_size:(i + 1) * batch_size]
        yield tuple(None if t is None else t.index_select(0, rows)
                    for t in (x_train, y_train, row_weight))
