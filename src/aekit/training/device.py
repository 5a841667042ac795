"""The step on a device: ``--precision``, tensors moved to the model's device, and reads of
the device kept to one per step.

``--precision``, the arithmetic of the training step:

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

Tensors given on another device than the model's are moved to it (:func:`on_device`; a
``meta`` tensor, which has no values, is refused). A step reads the device once: on the CPU,
where a read is free, values are read where they arise; on a GPU the loss, the check for
non-finite gradients and the clipping factor (:func:`clip_by_norm`) stay on the device until
that one read (``Trainer.train_step``, ``fastpath.lazy_loss_and_grad``).
"""

from __future__ import annotations

import contextlib
from typing import Any, Iterator

import torch

from aekit.config import PRECISIONS
from aekit.errors import DataError

__all__ = ["PRECISIONS", "autocast_dtype", "clip_by_norm", "matmul_precision", "on_device",
           "resolve_precision"]


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


def on_device(tensor: Any, device: torch.device, name: str) -> Any:
    """``tensor`` on ``device``: moved there when it lives elsewhere (a CPU tensor for a model
    on CUDA, or the reverse); anything that is not a tensor (None, out-of-core data) as given.

    Raises:
        DataError: a tensor on the ``meta`` device, which has a shape but no values.
    """
    if not isinstance(tensor, torch.Tensor):
        return tensor
    if tensor.device.type == "meta":
        raise DataError(f"`{name}` is a tensor on the meta device, which holds no values (only "
                        f"a shape, {tuple(tensor.shape)}). Allowed: a tensor with values on "
                        f"any device (it is moved to the model's, {device}) or a numpy array")
    return tensor.to(device)


def clip_by_norm(grad: torch.Tensor, max_norm: float, read: bool | None = None) -> None:
    """Scale ``grad`` in place to L2 norm ``max_norm`` when its norm is larger (by
    ``max_norm / (norm + 1e-6)``).

    ``read``: read the norm on the host (the CPU's way: free there, and cheaper than tensor
    operations on a scalar) or compute the factor on the device without waiting for it (a
    GPU's way); None: by ``grad``'s device. Both give the same bits.
    """
    norm = torch.linalg.vector_norm(grad)
    if read if read is not None else grad.device.type == "cpu":
        value = float(norm)
        if value > max_norm:
            grad.mul_(max_norm / (value + 1e-6))
        return
    norm = norm.double()  # the factor in double precision, as the host computes it
    grad.mul_(torch.where(norm > max_norm, max_norm / (norm + 1e-6), 1.0))
