"""Variational autoencoder (beta-VAE) on flat samples.

The encoder outputs a mean and a log-variance per code dimension; training samples the code with
the reparameterisation trick and adds ``beta * KL(q(z|x) || N(0, I))`` (averaged over the batch,
divided by the number of features so that it is on the same per-element scale as the
reconstruction loss). ``encode`` returns the mean, so a trained VAE reduces and compresses like a
plain autoencoder; its prior is sampled directly to generate.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from aekit.config import ModelConfig
from aekit.models.base import AEBase
from aekit.models.mlp import _stack, init_linear, resolve_init


class VAE(AEBase):
    """Beta-VAE with MLP encoder and decoder.

    Args:
        cfg: architecture (hidden widths, latent size, activation...) and ``beta``.
        n_features: values per sample.
        output_activation: ``"sigmoid"``, ``"identity"`` or ``"clip"``.
    """

    def __init__(self, cfg: ModelConfig, n_features: int, output_activation: str) -> None:
        super().__init__()
        self.cfg = cfg
        self.n_features = n_features
        self.output_activation = output_activation
        self.beta = float(cfg.beta)
        # The encoder's head has 2 * latent_dim units: (mean, log-variance).
        self.encoder = _stack([n_features, *cfg.hidden], cfg, 2 * cfg.latent_dim)
        self.decoder = _stack([cfg.latent_dim, *cfg.decoder_widths], cfg, n_features)
        scheme = resolve_init(cfg)
        for module in self.modules():
            if isinstance(module, nn.Linear) and module.bias is not None:
                init_linear(module, scheme, cfg.activation)
            elif isinstance(module, nn.Linear):
                nn.init.xavier_uniform_(module.weight)

    def posterior(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Mean and log-variance of q(z|x), each (batch, latent_dim)."""
        mean, log_var = self.encoder(x).chunk(2, dim=1)
        return mean, log_var.clamp(-30.0, 20.0)

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        """The posterior mean: (batch, n_features) -> (batch, latent_dim)."""
        return self.posterior(x)[0]

    def decode_logits(self, z: torch.Tensor) -> torch.Tensor:
        """Decoder output before the output activation: (batch, n_features)."""
        return self.decoder(z)

    def sample_prior(self, n: int, generator: torch.Generator | None = None) -> torch.Tensor:
        """``n`` codes drawn from the prior N(0, I): (n, latent_dim)."""
        return torch.randn(n, self.cfg.latent_dim, generator=generator)

    def training_codes(self, x: torch.Tensor) -> tuple[torch.Tensor, Any]:
        """Codes sampled from q(z|x) in training (the mean in evaluation), with the
        posterior's mean and log-variance for the KL term."""
        mean, log_var = self.posterior(x)
        if self.training:  # reparameterisation: z = mean + sigma * eps
            z = mean + torch.exp(0.5 * log_var) * torch.randn_like(mean)
        else:
            z = mean
        return z, (mean, log_var)

    def penalty(self, z: torch.Tensor, extra: Any, recon: torch.Tensor) -> torch.Tensor:
        """``beta`` times the KL divergence to the prior, per feature."""
        mean, log_var = extra
        kl = kl_to_standard_normal(mean, log_var) / self.n_features
        return self.beta * kl


def kl_to_standard_normal(mean: torch.Tensor, log_var: torch.Tensor) -> torch.Tensor:
    """KL(N(mean, exp(log_var)) || N(0, I)) summed over code dimensions, averaged over the batch."""
    per_sample = 0.5 * (mean.square() + log_var.exp() - 1.0 - log_var).sum(dim=1)
    return per_sample.mean()
