"""Hand-written forward and backward pass for plain MLP autoencoders.

For a small model most of a PyTorch step is per-operation overhead (autograd bookkeeping,
module calls), not arithmetic. Plain MLP autoencoders (no batch norm, residual or dropout) are
a chain of ``addmm`` and elementwise activations whose gradients are short closed forms, so we
compute them directly into the model's flat gradient buffer. The linear (PCA) path of a
``pca_init`` model is one more ``addmm`` beside the code layer and one beside the output layer.
The result equals autograd's to float rounding; ``tests/test_fastpath.py`` checks it against
autograd for every activation, loss and output, with and without the linear path.
"""

from __future__ import annotations

import math

import torch
from torch import nn
from torch.nn import functional as F

from aekit.models.mlp import Block, MLPAutoencoder

_SUPPORTED = {"relu", "leaky_relu", "elu", "gelu", "tanh", "sigmoid"}


def supports(model: nn.Module) -> bool:
    """True for an MLP autoencoder the hand-written pass covers exactly."""
    if type(model) is not MLPAutoencoder:
        return False
    cfg = model.cfg
    return (not cfg.batch_norm and not cfg.residual and not cfg.dropout
            and cfg.activation in _SUPPORTED
            and not (cfg.loss == "bce" and model.output_activation != "sigmoid"))


def _layers(model: MLPAutoencoder) -> list[tuple[nn.Linear, str | None]]:
    """The linear layers in order with the activation that follows each (None: linear)."""
    out: list[tuple[nn.Linear, str | None]] = []
    for stack, last_act in ((model.encoder, None), (model.decoder, "output")):
        for module in stack:
            if isinstance(module, Block):
                out.append((module.linear, model.cfg.activation))
            else:
                out.append((module, last_act))
    return out


Plan = tuple[torch.Tensor, ...]


def _plan(model: MLPAutoencoder) -> tuple[list[Plan], list[Plan]]:
    """(weight.T, bias, weight, weight grad, bias grad, activation) per layer of the stacks,
    and the same for ``linear_encoder`` and ``linear_decoder`` (an empty list without the
    linear path), cached on the model: module attribute lookups cost as much as the arithmetic
    of a small layer. The cache is rebuilt when the parameters move to other storage (values
    copied in place, as :meth:`MLPAutoencoder.init_from_pca` does, keep it valid)."""
    first = model.encoder[0]
    first_weight = first.linear.weight if isinstance(first, Block) else first.weight
    key = (first_weight.data_ptr(), first_weight.grad.data_ptr()
           if first_weight.grad is not None else 0)
    cached = model.__dict__.get("_aekit_fast_plan")
    if cached is not None and cached[0] == key:
        return cached[1]
    plan = [(lin.weight.t(), lin.bias, lin.weight, lin.weight.grad, lin.bias.grad, act)
            for lin, act in _layers(model)]
    side = [(lin.weight.t(), lin.bias, lin.weight, lin.weight.grad, lin.bias.grad, None)
            for lin in (model.linear_encoder, model.linear_decoder) if lin is not None]
    model.__dict__["_aekit_fast_plan"] = (key, (plan, side))
    return plan, side


def _activate(name: str, u: torch.Tensor) -> torch.Tensor:
    """Apply activation ``name`` in place where possible; returns the output."""
    if name == "relu":
        return u.clamp_(min=0)
    if name == "leaky_relu":
        return F.leaky_relu(u, 0.01, inplace=True)
    if name == "elu":
        return F.elu(u, inplace=True)
    if name == "gelu":
        return F.gelu(u)
    if name == "tanh":
        return u.tanh_()
    return u.sigmoid_()


def _derivative(name: str, h: torch.Tensor, u: torch.Tensor | None) -> torch.Tensor:
    """d activation / d input, from the output ``h`` (or the input ``u`` for GELU)."""
    if name == "relu":
        return h > 0  # only used by callers that need the factor itself
    if name == "leaky_relu":
        return torch.where(h > 0, 1.0, 0.01)
    if name == "elu":
        return torch.where(h > 0, 1.0, h + 1.0)
    if name == "gelu":
        cdf = 0.5 * (1.0 + torch.erf(u * (1.0 / math.sqrt(2.0))))
        pdf = torch.exp(-0.5 * u * u) * (1.0 / math.sqrt(2.0 * math.pi))
        return cdf + u * pdf
    if name == "tanh":
        return 1.0 - h * h
    return h * (1.0 - h)


def _scalar(value: torch.Tensor, host: bool) -> float | torch.Tensor:
    """A 0-dim result as a Python float on the CPU, where reading it costs nothing (and a
    tensor operation on a scalar costs more than the read), else as a float64 scalar left on
    the device: the caller reads it once, with the rest of the step's checks."""
    return float(value) if host else value.double()


def loss_and_grad(model: MLPAutoencoder, x: torch.Tensor,
                  target: torch.Tensor | None = None,
                  row_weight: torch.Tensor | None = None) -> float:
    """:func:`lazy_loss_and_grad` with the loss read as a Python float."""
    return float(lazy_loss_and_grad(model, x, target, row_weight))


@torch.no_grad()
def lazy_loss_and_grad(model: MLPAutoencoder, x: torch.Tensor,
                       target: torch.Tensor | None = None,
                       row_weight: torch.Tensor | None = None,
                       read: bool | None = None) -> float | torch.Tensor:
    """Loss of batch ``x`` (recon + code penalty); writes every parameter's ``.grad`` in place.

    With the linear (PCA) path, ``linear_encoder(x)`` is added to the encoder stack's output
    (the code ``z``) and ``linear_decoder(z)`` to the decoder stack's (the logits); the gradient
    reaching ``z`` is the sum of both decoders' and the code penalty's.

    Args:
        model: a model for which :func:`supports` is True, its grads views of one buffer.
        x: (batch, n_features) batch in the scaled data space.
        target: what the reconstruction is compared with, same shape (default ``x``).
        row_weight: (batch,) weight of each row's loss (default: equal), as
            :func:`aekit.models.base.reconstruction_loss` applies it.
        read: return the loss read as a float (True) or left on the device (False); None:
            read on the CPU only.

    Returns:
        The batch loss: a Python float on the CPU; elsewhere a float64 scalar on ``x``'s
        device, not read, so that the caller reads it once with whatever else it needs (one
        wait for the device per step). The same value either way.
    """
    layers, side = _plan(model)
    host = read if read is not None else x.device.type == "cpu"
    cfg = model.cfg
    t = x if target is None else target
    sigmoid_out = model.output_activation == "sigmoid"
    clip_out = model.output_activation == "clip"
    code_index = len(model.encoder) - 1
    last = len(layers) - 1
    inputs: list[torch.Tensor] = []  # input of each linear layer
    saved: list[tuple[torch.Tensor, torch.Tensor | None]] = []  # (output, pre-activation)
    h = x
    for i, (weight_t, bias, _, _, _, act) in enumerate(layers):
        inputs.append(h)
        if side and i == code_index:  # z += linear_encoder(x), both biases added once
            u = torch.addmm(bias + side[0][1], h, weight_t).addmm_(x, side[0][0])
        elif side and i == last:  # logits += linear_decoder(z)
            u = torch.addmm(bias + side[1][1], h, weight_t)
            u.addmm_(saved[code_index][0], side[1][0])
        else:
            u = torch.addmm(bias, h, weight_t)
        if act is None:
            h, pre = u, None
        elif act == "output":
            h, pre = u, None  # logits; the output activation is folded into the loss below
        else:
            pre = u.clone() if act == "gelu" else None
            h = _activate(act, u)
        saved.append((h, pre))
    logits = h
    n = logits.numel()
    # d loss / d logits, with the output activation folded in
    w = None if row_weight is None else row_weight.reshape(-1, 1).to(logits.dtype)
    if cfg.loss == "bce":
        y = torch.sigmoid(logits)
        loss = _scalar(F.binary_cross_entropy_with_logits(logits, t, weight=w), host)
        d = (y - t).mul_(1.0 / n)
    else:
        if sigmoid_out:
            y = torch.sigmoid(logits)
        elif clip_out:  # the gradient passes straight through the clip (see AEBase.output)
            y = logits.clamp_(0.0, 1.0)
        else:
            y = logits
        diff = y - t
        if w is None:
            loss = _scalar(torch.dot(diff.view(-1), diff.view(-1)), host) / n
        else:
            loss = _scalar(torch.dot((diff * diff).sum(1), w.view(-1)), host) / n
        d = diff.mul_(2.0 / n)
        if sigmoid_out:  # sigmoid' = y - y * y, one pass
            d.mul_(torch.addcmul(y, y, y, value=-1.0))
    if w is not None:
        d.mul_(w)
    l1_codes = model.l1_codes
    z = saved[code_index][0]
    if l1_codes:
        loss = loss + l1_codes * _scalar(z.abs().sum(), host) / z.shape[0]
    if side:  # linear_decoder: its gradients, and its share of d loss / d z (added below)
        _, _, dec_weight, dec_weight_grad, _, _ = side[1]
        torch.mm(d.t(), z, out=dec_weight_grad)
        d_z_linear = torch.mm(d, dec_weight)
    for i in range(last, -1, -1):
        _, _, weight, weight_grad, bias_grad, _ = layers[i]
        torch.mm(d.t(), inputs[i], out=weight_grad)
        torch.sum(d, 0, out=bias_grad)
        if side and i == last:  # the two output biases see the same gradient
            side[1][4].copy_(bias_grad)
        if side and i == code_index:  # d is d loss / d z: linear_encoder's gradients
            _, _, _, enc_weight_grad, enc_bias_grad, _ = side[0]
            torch.mm(d.t(), x, out=enc_weight_grad)
            enc_bias_grad.copy_(bias_grad)
        if i == 0:
            break
        d = torch.mm(d, weight)
        prev_act = layers[i - 1][5]
        if i - 1 == code_index:
            if side:
                d.add_(d_z_linear)
            if l1_codes:
                d.add_(torch.sign(z), alpha=l1_codes / z.shape[0])
        if prev_act == "relu":  # one fused kernel instead of a mask and a multiply, in place
            torch.ops.aten.threshold_backward.grad_input(d, saved[i - 1][0], 0.0, grad_input=d)
        elif prev_act not in (None, "output"):
            h_prev, pre_prev = saved[i - 1]
            d.mul_(_derivative(prev_act, h_prev, pre_prev))
    return loss
