"""What the model kinds share: :class:`AEOutput`, the reconstruction loss, and
:class:`AEBase`'s ``decode`` and ``forward``.

A model kind provides ``encode``, ``decode_logits`` (the decoder before the output
activation) and, where it differs from the L1 code penalty, ``training_codes`` and
``penalty`` (the VAE samples its codes and adds a KL term).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
from torch import nn
from torch.nn import functional as F


@dataclass(frozen=True)
class AEOutput:
    """What a forward pass returns: the named loss parts and the tensors they came from.

    ``recon_loss`` is the mean reconstruction loss per element; ``reg_loss`` the penalty the model
    itself adds (the code penalty of a sparse autoencoder, a KL term); ``loss`` their sum.
    """

    x_hat: torch.Tensor  # (batch, n_features), in the scaled data space
    z: torch.Tensor  # (batch, latent_dim)
    recon_loss: torch.Tensor
    reg_loss: torch.Tensor
    loss: torch.Tensor


class AEBase(nn.Module):
    """An autoencoder: ``encode``, ``decode``, ``forward -> AEOutput``.

    Subclasses set ``cfg`` (the :class:`~aekit.config.ModelConfig`), ``n_features``,
    ``output_activation`` and ``l1_codes``, and define ``encode`` and ``decode_logits``.
    """

    cfg: Any
    n_features: int
    output_activation: str
    l1_codes: float = 0.0

    def encode(self, x: torch.Tensor) -> torch.Tensor:  # pragma: no cover - abstract
        """Codes of a batch: (batch, n_features) -> (batch, latent_dim)."""
        raise NotImplementedError

    def decode_logits(self, z: torch.Tensor) -> torch.Tensor:  # pragma: no cover - abstract
        """Decoder output before the output activation: (batch, n_features)."""
        raise NotImplementedError

    def output(self, logits: torch.Tensor) -> torch.Tensor:
        """The output activation applied to the decoder's logits.

        ``clip`` clips to [0, 1]; its gradient is passed straight through (that of the
        clipped output's error), so an output beyond the range is still pulled back towards a
        target inside it: the loss is the clipped reconstruction's, and no output unit is
        ever stuck where the clip's own derivative would be zero."""
        if self.output_activation == "sigmoid":
            return torch.sigmoid(logits)
        if self.output_activation == "clip":
            clipped = logits.clamp(0.0, 1.0)
            return clipped if not logits.requires_grad else logits + (clipped - logits).detach()
        return logits

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        """Reconstructions in the scaled data space: (batch, latent_dim) -> (batch, n_features)."""
        return self.output(self.decode_logits(z))

    def training_codes(self, x: torch.Tensor) -> tuple[torch.Tensor, Any]:
        """The codes ``forward`` decodes, and what :meth:`penalty` needs beside them."""
        return self.encode(x), None

    def penalty(self, z: torch.Tensor, extra: Any, recon: torch.Tensor) -> torch.Tensor:
        """The loss the model adds to the reconstruction's: the L1 penalty on the codes."""
        return self.l1_codes * z.abs().sum(dim=1).mean() if self.l1_codes else recon.new_zeros(())

    def forward(self, x: torch.Tensor, target: torch.Tensor | None = None,
                weight: torch.Tensor | None = None) -> AEOutput:
        """Reconstruct ``x``; the reconstruction loss compares with ``target`` (default ``x``;
        a clean batch when ``x`` is its noisy version: denoising), each row's loss weighted by
        ``weight`` (one per row; default: equal)."""
        z, extra = self.training_codes(x)
        logits = self.decode_logits(z)
        x_hat = self.output(logits)
        recon = reconstruction_loss(self.cfg.loss, logits, x_hat, x if target is None else target,
                                    self.output_activation, weight)
        reg = self.penalty(z, extra, recon)
        return AEOutput(x_hat=x_hat, z=z, recon_loss=recon, reg_loss=reg, loss=recon + reg)


def reconstruction_loss(kind: str, logits: torch.Tensor, x_hat: torch.Tensor, x: torch.Tensor,
                        output_activation: str, weight: torch.Tensor | None = None
                        ) -> torch.Tensor:
    """Mean per-element loss; BCE is computed from logits when the output is a sigmoid (stable).

    ``weight`` (one per row) weights each row's elements: the result is the mean over the
    batch of ``weight[i]`` times row ``i``'s mean loss (weights of mean 1 over the training
    rows keep the loss's scale)."""
    if weight is None:
        if kind == "mse":
            return F.mse_loss(x_hat, x)
        if output_activation == "sigmoid":
            return F.binary_cross_entropy_with_logits(logits, x)
        return F.binary_cross_entropy(x_hat.clamp(1e-7, 1 - 1e-7), x)
    w = weight.reshape(-1, *([1] * (x.dim() - 1))).to(x_hat.dtype)
    if kind == "mse":
        per = F.mse_loss(x_hat, x, reduction="none")
    elif output_activation == "sigmoid":
        per = F.binary_cross_entropy_with_logits(logits, x, reduction="none")
    else:
        per = F.binary_cross_entropy(x_hat.clamp(1e-7, 1 - 1e-7), x, reduction="none")
    return (per * w).mean()
