"""Scoring a model on a whole tensor outside the training step (validation, a test split),
and choosing the device a run trains on."""

from __future__ import annotations

import torch
from torch import nn

from aekit.training.device import on_device

EVAL_BATCH = 4096


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
def mean_loss(model: nn.Module, x: torch.Tensor, y: torch.Tensor | None = None) -> float:
    """Mean of ``forward(...).loss`` over ``x``, in large batches, weighted by batch size.

    Args:
        model: the autoencoder (put in eval mode for the pass, then back).
        x: (n, ...) inputs.
        y: optional reconstruction targets of the same shape (None: the inputs themselves).
    """
    was_training = model.training
    model.eval()
    total = 0.0
    device = next(model.parameters()).device
    x, y = on_device(x, device, "x"), on_device(y, device, "y")
    for start in range(0, x.shape[0], EVAL_BATCH):
        xb = x[start:start + EVAL_BATCH]
        out = model(xb) if y is None else model(xb, y[start:start + EVAL_BATCH])
        total += float(out.loss) * xb.shape[0]
    model.train(was_training)
    return total / max(1, x.shape[0])
