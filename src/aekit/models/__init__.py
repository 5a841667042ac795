"""Autoencoder models. ``build_model`` is the one place that maps a config to a module."""

from __future__ import annotations

from torch import nn

from aekit.config import ModelConfig
from aekit.models.base import AEBase, AEOutput
from aekit.models.mlp import MLPAutoencoder

__all__ = ["AEBase", "AEOutput", "MLPAutoencoder", "build_model"]


def build_model(cfg: ModelConfig, n_features: int, output_activation: str,
                l1_codes: float = 0.0, sample_shape: tuple[int, ...] | None = None) -> nn.Module:
    """Build the autoencoder ``cfg.kind`` names.

    Args:
        cfg: architecture.
        n_features: values per (flattened) sample.
        output_activation: ``sigmoid`` or ``identity``.
        l1_codes: L1 penalty weight on the codes (0: none).
        sample_shape: shape of one sample, e.g. (28, 28) or (3, 32, 32); models that need the
            spatial layout (convolutional) use it.
    """
    if cfg.kind == "vae":
        from aekit.models.vae import VAE

        return VAE(cfg, n_features, output_activation)
    if cfg.kind == "conv":
        from aekit.models.conv import ConvAutoencoder

        return ConvAutoencoder(cfg, n_features, output_activation, l1_codes, sample_shape)
    return MLPAutoencoder(cfg, n_features, output_activation, l1_codes)
