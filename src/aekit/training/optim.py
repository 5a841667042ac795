"""Optimizers over one flat parameter buffer.

All parameters of a model are packed into one contiguous tensor (and their gradients into
another), so that the update is a handful of vectorised operations whatever the number of
layers: PyTorch's default CPU Adam loops over tensors and costs as much as the forward pass of a
small model. Parameters stay ordinary ``nn.Parameter`` objects, viewing the buffer.
"""

from __future__ import annotations

import torch
from torch import nn

from aekit.config import OptimConfig
from aekit.training.device import clip_by_norm


class FlatParams:
    """A model's parameters and gradients as views of two contiguous buffers.

    Every parameter starts on a 64-byte boundary (a cache line), with zeros in the few slots
    between: matrix-multiply kernels read and write misaligned operands markedly slower (the
    weight gradients of a 784-1000-500-250 model took 25-30% longer written at the offsets a
    packed layout gives). The gaps stay zero in values, gradients and optimizer state, so sums
    and norms over a buffer are those of the parameters; what is saved is the packed layout
    (:meth:`pack`), the same whatever the alignment.

    Attributes:
        data: all parameter values, one 1-D tensor.
        grad: all gradients, same layout; zeroed by :meth:`zero_grad`.
        weight_mask: 1.0 on weight-matrix entries, 0.0 on biases, norm parameters and gaps (the
            L1/L2 penalties apply to weights only, as Keras' kernel regularizers do).
        names: parameter names in buffer order, with their (start, stop) offsets.
        packed_numel: the number of parameter values (the buffer without its gaps).
    """

    ALIGN_BYTES = 64

    def __init__(self, model: nn.Module) -> None:
        params = [(n, p) for n, p in model.named_parameters() if p.requires_grad]
        first = params[0][1]
        align = max(1, self.ALIGN_BYTES // first.element_size())
        self.names: list[tuple[str, int, int]] = []
        offset = 0
        for name, p in params:
            offset = -(-offset // align) * align
            self.names.append((name, offset, offset + p.numel()))
            offset += p.numel()
        self.data = torch.zeros(offset, dtype=first.dtype, device=first.device)
        self.grad = torch.zeros_like(self.data)
        self.weight_mask = torch.zeros_like(self.data)
        for (name, a, b), (_, p) in zip(self.names, params):
            self.data[a:b].copy_(p.data.reshape(-1))
            p.data = self.data[a:b].view_as(p)
            p.grad = self.grad[a:b].view_as(p)
            if p.dim() >= 2:
                self.weight_mask[a:b] = 1.0
        self.packed_numel = sum(b - a for _, a, b in self.names)
        self._dense = self.packed_numel == offset
        self.param = nn.Parameter(self.data)
        self.param.grad = self.grad
        self.has_penalty_mask = bool(self.weight_mask.any())

    def zero_grad(self) -> None:
        self.grad.zero_()

    def views(self, tensor: torch.Tensor) -> dict[str, torch.Tensor]:
        """Per-parameter slices of a buffer with this layout (flat, 1-D)."""
        return {name: tensor[a:b] for name, a, b in self.names}

    def pack(self, tensor: torch.Tensor) -> torch.Tensor:
        """A new 1-D tensor of the parameter slots of ``tensor`` (this layout), gaps dropped."""
        if self._dense:
            return tensor.clone()
        return torch.cat([tensor[a:b] for _, a, b in self.names])

    def unpack_into(self, packed: torch.Tensor, tensor: torch.Tensor) -> None:
        """Write what :meth:`pack` returned back into ``tensor`` (this layout); gaps get 0.

        Raises:
            ValueError: ``packed`` does not hold :attr:`packed_numel` values.
        """
        packed = packed.reshape(-1)
        if packed.numel() != self.packed_numel:
            raise ValueError(f"packed buffer has {packed.numel()} values, the parameters "
                             f"{self.packed_numel}")
        if self._dense:
            tensor.copy_(packed)
            return
        tensor.zero_()
        start = 0
        for _, a, b in self.names:
            tensor[a:b].copy_(packed[start:start + b - a])
            start += b - a


class FlatOptimizer:
    """Gradient descent family and Adam on a :class:`FlatParams` buffer.

    ``gd`` and ``sgd`` are the plain update ``w <- w - lr * dL/dw`` (the articles' rule; they
    differ in batch size only), ``momentum`` the heavy ball, ``nesterov`` Nesterov momentum,
    ``adam``/``adamw`` call PyTorch's fused AdamW kernel on the single buffer directly (the
    ``torch.optim`` wrapper around it costs more than the kernel for small models). Weight decay
    is decoupled for every optimizer: ``w <- w * (1 - lr * wd)`` before the gradient step.
    """

    def __init__(self, flat: FlatParams, cfg: OptimConfig) -> None:
        self.flat = flat
        self.cfg = cfg
        self.weight_decay = cfg.decoupled_weight_decay
        self.momentum_buf: torch.Tensor | None = None
        self.adam_state: dict[str, torch.Tensor] | None = None
        if cfg.optimizer in ("adam", "adamw"):
            self.adam_state = {"exp_avg": torch.zeros_like(flat.data),
                               "exp_avg_sq": torch.zeros_like(flat.data),
                               "step": torch.zeros((), dtype=torch.float32,
                                                   device=flat.data.device)}
        elif cfg.optimizer in ("momentum", "nesterov"):
            self.momentum_buf = torch.zeros_like(flat.data)

    def step(self, lr: float) -> None:
        """Apply one update with learning rate ``lr`` from the gradients in ``flat.grad``."""
        data, grad = self.flat.data, self.flat.grad
        if self.adam_state is not None:
            self._adam_step(lr)
            return
        if self.weight_decay:
            data.mul_(1.0 - lr * self.weight_decay)
        if self.momentum_buf is None:
            data.add_(grad, alpha=-lr)
            return
        buf = self.momentum_buf
        buf.mul_(self.cfg.momentum).add_(grad)
        if self.cfg.optimizer == "nesterov":
            data.add_(grad, alpha=-lr).add_(buf, alpha=-lr * self.cfg.momentum)
        else:
            data.add_(buf, alpha=-lr)

    def _adam_step(self, lr: float) -> None:
        state, cfg = self.adam_state, self.cfg
        state["step"] += 1
        try:
            torch._fused_adamw_([self.flat.data], [self.flat.grad], [state["exp_avg"]],
                                [state["exp_avg_sq"]], [], [state["step"]], lr=lr,
                                beta1=cfg.beta1, beta2=cfg.beta2,
                                weight_decay=self.weight_decay, eps=cfg.eps, amsgrad=False,
                                maximize=False)
        except (RuntimeError, NotImplementedError, AttributeError):  # no fused kernel here
            _adamw_reference(self.flat.data, self.flat.grad, state, lr, cfg, self.weight_decay)

    def state_tensors(self) -> dict[str, torch.Tensor]:
        """Optimizer state as named tensors (for checkpoints): new tensors, the per-parameter
        buffers in the packed layout (:meth:`FlatParams.pack`)."""
        if self.momentum_buf is not None:
            return {"momentum": self.flat.pack(self.momentum_buf)}
        if self.adam_state is None:
            return {}
        return {"exp_avg": self.flat.pack(self.adam_state["exp_avg"]),
                "exp_avg_sq": self.flat.pack(self.adam_state["exp_avg_sq"]),
                "step": self.adam_state["step"].clone()}

    def load_state_tensors(self, tensors: dict[str, torch.Tensor]) -> None:
        """Restore what :meth:`state_tensors` returned."""
        if self.momentum_buf is not None and "momentum" in tensors:
            self.flat.unpack_into(tensors["momentum"], self.momentum_buf)
        if self.adam_state is not None and "exp_avg" in tensors:
            for key in ("exp_avg", "exp_avg_sq"):
                self.flat.unpack_into(tensors[key], self.adam_state[key])
            self.adam_state["step"].copy_(tensors["step"].reshape(()))


def weight_penalty(flat: FlatParams, l1: float, l2: float) -> float:
    """Add the L1/L2 weight penalties' gradients to ``flat.grad``; return their value."""
    if not (l1 or l2) or not flat.has_penalty_mask:
        return 0.0
    w, g, mask = flat.data, flat.grad, flat.weight_mask
    value = 0.0
    if l2:
        g.addcmul_(w, mask, value=2.0 * l2)
        value += l2 * float(torch.dot(w * mask, w))
    if l1:
        g.addcmul_(torch.sign(w), mask, value=l1)
        value += l1 * float(torch.dot(w.abs(), mask))
    return value


def clip_gradients(flat: FlatParams, clip_value: float | None, clip_norm: float | None) -> None:
    """Clip ``flat.grad`` in place: each value to ``clip_value``, then the norm to
    ``clip_norm`` (None: no clipping of that kind)."""
    if clip_value is not None:
        flat.grad.clamp_(-clip_value, clip_value)
    if clip_norm is not None:
        clip_by_norm(flat.grad, clip_norm)


def _adamw_reference(data: torch.Tensor, grad: torch.Tensor, state: dict[str, torch.Tensor],
                     lr: float, cfg: OptimConfig, weight_decay: float) -> None:
    """AdamW in plain tensor operations (devices without the fused kernel)."""
    step = float(state["step"])
    data.mul_(1.0 - lr * weight_decay)
    state["exp_avg"].lerp_(grad, 1.0 - cfg.beta1)
    state["exp_avg_sq"].mul_(cfg.beta2).addcmul_(grad, grad, value=1.0 - cfg.beta2)
    bias1 = 1.0 - cfg.beta1 ** step
    bias2 = 1.0 - cfg.beta2 ** step
    denom = (state["exp_avg_sq"] / bias2).sqrt_().add_(cfg.eps)
    data.addcdiv_(state["exp_avg"], denom, value=-lr / bias1)
