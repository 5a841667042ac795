"""Measurements of a training run, sampled every N steps (the training doctor's eyes).

Every ``every_steps`` optimizer steps :class:`Diagnostics` records, per layer (one weight
matrix = one layer, named as the module that holds it: ``encoder.0``, ``decoder.3``):

- ``grad_norm`` (L2 norm of the weight gradient of the loss, without the L1/L2 penalties
  share, before clipping) and
  ``grad_rms`` (the same divided by ``sqrt(numel)``, comparable across layer sizes);
- ``weight_norm`` and ``update_ratio`` = ``||w_after - w_before|| / ||w_before||`` of that step;
- activation statistics of each hidden activation on a fixed probe batch: ``act_mean``,
  ``act_std``, ``dead`` (share of ReLU-family units that are never positive on the probe batch)
  and ``saturated`` (share of sigmoid/tanh units within 0.01 of their bounds on at least 90% of
  the probe samples);

plus the batch ``loss``, the ``lr`` and the global gradient norm before and after clipping.
The linear (PCA) path of a ``pca_init`` MLP is named like any layer, ``linear_encoder`` and
``linear_decoder``; a record of such a model also lists ``side_layers`` (see
:func:`side_layers`), the layers that gradient comparisons across the depth leave out, as they
leave out residual projections (``*.skip``). A layer whose weights are all zero before the step
(the hidden path's output layers right after ``init_from_pca``) has no ``update_ratio``: a
relative change of nothing is not a measure of step size.
Each sample is one ``{"type": "diagnostics", ...}`` line of ``metrics.jsonl`` (through the
run's :class:`MetricsWriter`) and an entry of :attr:`Diagnostics.records`; the records travel
with checkpoints (:meth:`Diagnostics.state_dict`), so that the findings of a resumed run are
computed from every sample, not only those after the resume.

Cost: plain MLPs train through ``fastpath``, which calls no module forward hook, so activation
statistics come from a separate forward pass of the probe batch under ``torch.no_grad()`` with
temporary hooks on the activation modules; batch-norm running statistics and the random
streams (CPU and CUDA) are put back after it.
The update ratio needs one copy of the weights on sampled steps only. Between samples the
callback costs two integer comparisons per step. ``benchmarks/diagnostics_overhead.py``
measures the total.
"""

from __future__ import annotations

import json
import math
from typing import TYPE_CHECKING, Any

import torch
from torch import nn

from aekit.errors import ConfigError
from aekit.training.callbacks import Callback, MetricsWriter

if TYPE_CHECKING:
    from aekit.training.trainer import Trainer

PROBE_SAMPLES = 256
SATURATION_MARGIN = 0.01  # sigmoid output below 0.01 or above 0.99; |tanh| above 0.99
SATURATED_SHARE_OF_SAMPLES = 0.9
RELU_FAMILY = (nn.ReLU, nn.LeakyReLU, nn.ELU, nn.GELU)
SATURATING = (nn.Sigmoid, nn.Tanh)


def layer_name(param_name: str) -> str:
    """``encoder.0.linear.weight`` -> ``encoder.0``; ``decoder.3.weight`` -> ``decoder.3``."""
    name = param_name.rsplit(".", 1)[0]
    return name[: -len(".linear")] if name.endswith(".linear") else name


def side_layers(model: nn.Module) -> list[str]:
    """Layers outside the main path's chain through the depth, by :func:`layer_name`.

    For an MLP with the linear (PCA) path: ``linear_encoder`` and ``linear_decoder``, a
    shortcut from input to code and from code to output like a residual projection, and the
    last linear layers of the ``encoder`` and ``decoder`` stacks, which start at zero beside
    it (``init_from_pca``): their ``||g|| / ||W||`` measures how far they have grown from zero,
    not how the gradient fades through the depth. Empty for other models.
    """
    if getattr(model, "linear_encoder", None) is None:
        return []
    names = ["linear_encoder", "linear_decoder"]
    for stack in ("encoder", "decoder"):
        heads = [n for n, m in getattr(model, stack).named_modules() if isinstance(m, nn.Linear)]
        if heads:
            names.append(layer_name(f"{stack}.{heads[-1]}.weight"))
    return names


def weight_layers(flat: Any) -> list[tuple[str, int, int]]:
    """(layer name, start, stop) of every weight matrix of a :class:`FlatParams`, input first."""
    return [(layer_name(n), a, b) for n, a, b in flat.names
            if n.endswith("weight") and bool(flat.weight_mask[a])]


def grad_norm_by_layer(flat: Any, grad: torch.Tensor | None = None) -> dict[str, dict[str, float]]:
    """Per-layer gradient norm and RMS of the weight gradients.

    Args:
        flat: the model's :class:`FlatParams`.
        grad: a buffer with the same layout; default ``flat.grad``.

    Returns:
        ``{layer: {"grad_norm": ..., "grad_rms": ...}}`` in the order of the flat buffer.
    """
    grad = flat.grad if grad is None else grad
    out: dict[str, dict[str, float]] = {}
    for name, a, b in weight_layers(flat):
        norm = float(torch.linalg.vector_norm(grad[a:b]))
        out[name] = {"grad_norm": norm, "grad_rms": norm / math.sqrt(max(1, b - a))}
    return out


def clipped_norm(grad: torch.Tensor, clip_value: float | None, clip_norm: float | None,
                 norm_before: float) -> float:
    """The global gradient norm the optimizer will see after the trainer's clipping."""
    norm = norm_before
    if clip_value is not None:
        norm = float(torch.linalg.vector_norm(grad.clamp(-clip_value, clip_value)))
    if clip_norm is not None and norm > clip_norm:
        norm = clip_norm
    return norm


def activation_stats(model: nn.Module, probe: torch.Tensor) -> dict[str, dict[str, float]]:
    """Statistics of every hidden activation module's output on ``probe``.

    The forward pass runs under ``torch.no_grad()`` in the model's current mode; buffers
    (batch-norm running statistics) and the random states (the CPU's and those of the CUDA
    devices in use) are restored afterwards, so the measurement changes nothing in the run.

    Returns:
        ``{layer: {"act_mean", "act_std", "dead" or "saturated"}}``; the layer is the name of
        the module holding the activation (``encoder.0`` for ``encoder.0.act``).
    """
    stats: dict[str, dict[str, float]] = {}
    handles = []
    for name, module in model.named_modules():
        if isinstance(module, RELU_FAMILY + SATURATING):
            owner = name[: -len(".act")] if name.endswith(".act") else name
            handles.append(module.register_forward_hook(_stats_hook(owner, module, stats)))
    if not handles:
        return stats
    buffers = {k: v.clone() for k, v in model.named_buffers()}
    try:  # fork the RNG: dropout or a VAE's sampling must not shift the run's random stream
        with torch.no_grad(), torch.random.fork_rng(devices=_cuda_devices(model, probe)):
            model(probe)
    finally:
        for handle in handles:
            handle.remove()
        with torch.no_grad():
            for k, v in model.named_buffers():
                v.copy_(buffers[k])
    return stats


def _cuda_devices(model: nn.Module, probe: torch.Tensor) -> list[int]:
    """The CUDA devices whose random streams a forward pass of ``model`` on ``probe`` may draw
    from (empty on the CPU): ``fork_rng`` saves and restores exactly these, so that the probe
    pass shifts no stream, CPU or CUDA."""
    tensors = [probe, *model.parameters(), *model.buffers()]
    return sorted({t.device.index or 0 for t in tensors if t.is_cuda})


def _stats_hook(owner: str, module: nn.Module, stats: dict[str, dict[str, float]]) -> Any:
    def hook(_module: nn.Module, _inputs: Any, output: torch.Tensor) -> None:
        h = output.detach().reshape(output.shape[0], -1).float()  # (batch, units)
        entry = {"act_mean": float(h.mean()), "act_std": float(h.std()) if h.numel() > 1 else 0.0}
        if isinstance(module, SATURATING):
            low = 0.0 if isinstance(module, nn.Sigmoid) else -1.0
            near = (h <= low + SATURATION_MARGIN) | (h >= 1.0 - SATURATION_MARGIN)
            share = near.float().mean(dim=0)  # per unit: share of samples saturated
            entry["saturated"] = float((share >= SATURATED_SHARE_OF_SAMPLES).float().mean())
        else:
            entry["dead"] = float((h.max(dim=0).values <= 0).float().mean())
        stats[owner] = entry
    return hook


def loss_gradient(trainer: "Trainer") -> torch.Tensor:
    """The gradient of the loss alone: ``flat.grad`` minus the L1/L2 penalties' gradients.

    The per-layer norms measure how much signal reaches each layer from the data; a penalty's
    gradient (``2 * l2 * w``) would hide vanishing gradients behind weight shrinkage.
    """
    flat, opt = trainer.flat, trainer.config.optim
    if not (opt.l1 or opt.l2) or not flat.has_penalty_mask:
        return flat.grad
    grad = flat.grad.clone()
    if opt.l2:
        grad.addcmul_(flat.data, flat.weight_mask, value=-2.0 * opt.l2)
    if opt.l1:
        grad.addcmul_(torch.sign(flat.data), flat.weight_mask, value=-opt.l1)
    return grad


class Diagnostics(Callback):
    """Samples the measurements every ``every_steps`` steps (see the module docstring).

    Args:
        every_steps: sampling interval in optimizer steps (step 0 is sampled).
        probe: a fixed batch of training samples for the activation statistics (at most
            ``PROBE_SAMPLES`` rows are used); None skips activation statistics.
        activations: measure activations at all (False for the cheapest measurements).
    """

    def __init__(self, every_steps: int = 50, probe: torch.Tensor | None = None,
                 activations: bool = True) -> None:
        if isinstance(every_steps, bool) or not isinstance(every_steps, int) or every_steps < 1:
            raise ConfigError(f"`every_steps` must be an integer >= 1. Received: {every_steps!r}")
        self.every_steps = every_steps
        # a copy: a view would keep the whole training tensor alive as long as the callback
        self.probe = probe[:PROBE_SAMPLES].clone() if probe is not None else None
        self.activations = activations
        self.records: list[dict[str, Any]] = []
        self._pending: dict[str, Any] | None = None
        self._weights_before: torch.Tensor | None = None
        self._writer: MetricsWriter | None = None
        self._side_layers: list[str] = []

    def on_train_begin(self, trainer: "Trainer") -> None:
        if self.probe is not None:  # a probe given on another device than the model's
            self.probe = self.probe.to(trainer.flat.data.device)
        self._writer = next((cb for cb in trainer.callbacks if isinstance(cb, MetricsWriter)),
                            None)
        self._side_layers = side_layers(trainer.model)

    def _sampled(self, step: int) -> bool:
        return step % self.every_steps == 0

    def on_after_backward(self, trainer: "Trainer", step: int) -> None:
        if not self._sampled(step):
            return
        flat, train = trainer.flat, trainer.config.train
        norm = float(torch.linalg.vector_norm(flat.grad))
        layers = grad_norm_by_layer(flat, loss_gradient(trainer))
        record: dict[str, Any] = {
            "type": "diagnostics", "step": step, "epoch": trainer.epoch + 1, "lr": trainer.lr,
            "grad_norm": norm,
            "grad_norm_clipped": (clipped_norm(flat.grad, train.clip_value, train.clip_norm, norm)
                                  if math.isfinite(norm) else norm),
            "layers": layers,
        }
        if self._side_layers:
            record["side_layers"] = list(self._side_layers)
        self._weights_before = flat.data.clone()
        self._pending = record

    def on_step_end(self, trainer: "Trainer", step: int, loss: float) -> None:
        record = self._pending
        if record is None or record["step"] != step:
            return
        self._pending = None
        record["loss"] = loss
        data, before = trainer.flat.data, self._weights_before
        for name, a, b in weight_layers(trainer.flat):
            w_norm = float(torch.linalg.vector_norm(before[a:b]))
            update = float(torch.linalg.vector_norm(data[a:b] - before[a:b]))
            entry = record["layers"].setdefault(name, {})
            entry["weight_norm"] = w_norm
            if w_norm > 0:  # a zero matrix (just initialised to zero) has no relative change
                entry["update_ratio"] = update / w_norm
        self._weights_before = None
        if self.activations and self.probe is not None:
            for name, entry in activation_stats(trainer.model, self.probe).items():
                record["layers"].setdefault(name, {}).update(entry)
        self.records.append(record)
        if self._writer is not None:
            self._writer.write(record)

    def state_dict(self) -> dict[str, Any]:
        """The samples so far, as one tensor of JSON text (a long run's samples can outgrow
        a checkpoint's JSON header)."""
        text = json.dumps(self.records, allow_nan=True).encode("utf-8")
        return {"records_json": torch.frombuffer(bytearray(text), dtype=torch.uint8)}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Take back the samples of :meth:`state_dict`."""
        raw = state["records_json"]
        if not isinstance(raw, torch.Tensor) or raw.dtype != torch.uint8:
            raise ValueError("records_json must be a uint8 tensor")
        records = json.loads(bytes(raw.cpu().numpy().tobytes()).decode("utf-8"))
        if not isinstance(records, list) or not all(isinstance(r, dict) for r in records):
            raise ValueError("the records must be a list of objects")
        self.records = records
