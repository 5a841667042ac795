"""``--precision``: the arithmetic of the training step.

- ``fp32``: float32 throughout (matrix products in full float32 on CUDA too).
- ``tf32``: on CUDA, matrix products and convolutions in TensorFloat-32 (float32 range, a
  10-bit mantissa: several times the float32 rate on Ampere and later GPUs); on the CPU it
  changes nothing (the CPU has no TF32 kernels) and is the same as ``fp32``.
- ``bf16``: the forward pass and the loss under ``torch.autocast`` in bfloat16 (matrix
  products in bfloat16, reductions and the loss in float32); weights, gradients and the
  optimizer stay float32. Works on the CPU and on CUDA; the hand-written MLP pass
  (``fastpath``) is float32 only, so a bf16 step takes autograd.
- ``auto`` (the default): ``tf32`` on CUDA, ``fp32`` on the CPU.

Validation, test scoring and everything after training are float32 (TF32 applies while the
trainer runs, validation included). Measured effects: ``docs/guide/training.md``.
"""

from __future__ import annotations

import contextlib
from typing import Iterator

import torch

from aekit.config import PRECISIONS

__all__ = ["PRECISIONS", "autocast_dtype", "matmul_precision", "resolve_precision"]


def resolve_precision(name: str, device: torch.device) -> str:
    """``auto`` as ``tf32`` on CUDA and ``fp32`` elsewhere; the other names as given."""
    if name == "auto":
        return "tf32" if device.type == "cuda" else "fp32"
    return name


def autocast_dtype(precision: str) -> torch.dtype | None:
    """The dtype the step's forward pass is autocast to (None: no autocast)."""
    return torch.bfloat16 if precision == "bf16" else None


@contextlib.contextmanager
def matmul_precision(precision: str, device: torch.device) -> Iterator[None]:
    """TF32 on or off for CUDA matrix products and convolutions while the block runs (the
    process-wide switches are put back after it). Nothing changes on the CPU."""
    if device.type != "cuda":
        yield
        return
    saved = torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32
    tf32 = precision in ("tf32", "bf16")  # bf16: what autocast leaves in float32 uses TF32
    torch.backends.cuda.matmul.allow_tf32 = torch.backends.cudnn.allow_tf32 = tf32
    try:
        yield
    finally:
        torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32 = saved
