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


class FlatParams:
    """A model's parameters and gradients as views of two contiguous buffers.

    Attributes:
        data: all parameter values, one 1-D tensor.
        grad: all gradients, same layout; zeroed by :meth:`zero_grad`.
        weight_mask: 1.0 on weight-matrix entries, 0.0 on biases and norm parameters (the L1/L2
            penalties apply to weights only, as Keras' kernel regularizers do).
        names: parameter names in buffer order, with their (start, stop) offsets.
    """

    def __init__(self, model: nn.Module) -> None:
        params = [(n, p) for n, p in model.named_parameters() if p.requires_grad]
        total = sum(p.numel() for _, p in params)
        first = params[0][1]
        self.data = torch.empty(total, dtype=first.dtype, device=first.device)
        self.grad = torch.zeros_like(self.data)
        self.weight_mask = torch.zeros_like(self.data)
        self.names: list[tuple[str, int, int]] = []
        offset = 0
        for name, p in params:
            n = p.numel()
            self.data[offset:offset + n].copy_(p.data.reshape(-1))
            p.data = self.data[offset:offset + n].view_as(p)
            p.grad = self.grad[offset:offset + n].view_as(p)
            if p.dim() >= 2:
                self.weight_mask[offset:offset + n] = 1.0
            self.names.append((name, offset, offset + n))
            offset += n
        self.param = nn.Parameter(self.data)
        self.param.grad = self.grad
        self.has_penalty_mask = bool(self.weight_mask.any())

    def zero_grad(self) -> None:
        self.grad.zero_()

    def views(self, tensor: torch.Tensor) -> dict[str, torch.Tensor]:
        """Per-parameter slices of a buffer with this layout (flat, 1-D)."""
        return {name: tensor[a:b] for name, a, b in self.names}


class FlatOptimizer:
    """Gradient descent family and Adam on a :class:`FlatParams` buffer.

    ``gd`` and ``sgd`` are the plain update ``w <- w - lr * dL/dw`` (the articles' rule; they
    differ in batch size only), ``momentum`` the heavy ball, ``nesterov`` Nesterov momentum,
    ``adam``/``adamw`` use PyTorch's fused Adam(W) kernel on the single buffer. Weight decay is
    decoupled for every optimizer: ``w <- w * (1 - lr * wd)`` before the gradient step.
    """

    def __init__(self, flat: FlatParams, cfg: OptimConfig) -> None:
        self.flat = flat
        self.cfg = cfg
        self.weight_decay = cfg.decoupled_weight_decay
        self.momentum_buf: torch.Tensor | None = None
        self.adam: torch.optim.Optimizer | None = None
        if cfg.optimizer in ("adam", "adamw"):
            kwargs = dict(lr=cfg.lr, betas=(cfg.beta1, cfg.beta2), eps=cfg.eps,
                          weight_decay=self.weight_decay)
            try:
                self.adam = torch.optim.AdamW([flat.param], fused=True, **kwargs)
            except (RuntimeError, TypeError):  # a device without a fused kernel
                self.adam = torch.optim.AdamW([flat.param], foreach=False, **kwargs)
        elif cfg.optimizer in ("momentum", "nesterov"):
            self.momentum_buf = torch.zeros_like(flat.data)

    def step(self, lr: float) -> None:
        """Apply one update with learning rate ``lr`` from the gradients in ``flat.grad``."""
        data, grad = self.flat.data, self.flat.grad
        if self.adam is not None:
            self.adam.param_groups[0]["lr"] = lr
            self.adam.step()
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

    def state_tensors(self) -> dict[str, torch.Tensor]:
        """Optimizer state as named tensors (for checkpoints)."""
        out: dict[str, torch.Tensor] = {}
        if self.momentum_buf is not None:
            out["momentum"] = self.momentum_buf
        if self.adam is not None:
            state = self.adam.state.get(self.flat.param, {})
            for key in ("exp_avg", "exp_avg_sq", "step"):
                if key in state:
                    out[key] = state[key]
        return out

    def load_state_tensors(self, tensors: dict[str, torch.Tensor]) -> None:
        """Restore what :meth:`state_tensors` returned."""
        if self.momentum_buf is not None and "momentum" in tensors:
            self.momentum_buf.copy_(tensors["momentum"])
        if self.adam is not None and "exp_avg" in tensors:
            state = self.adam.state[self.flat.param]
            state["exp_avg"] = tensors["exp_avg"].clone()
            state["exp_avg_sq"] = tensors["exp_avg_sq"].clone()
            state["step"] = tensors["step"].clone()
