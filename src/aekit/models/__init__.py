"""Autoencoder models. ``build_model`` is the one place that maps a config to a module."""

from __future__ import annotations

from torch import nn

from aekit.config import ModelConfig
from aekit.models.mlp import AEOutput, MLPAutoencoder

__all__ = ["AEOutput", "MLPAutoencoder", "build_model"]


def build_model(cfg: ModelConfig, n_features: int, output_activation: str,
                l1_codes: float = 0.0) -> nn.Module:
    """Build the autoencoder ``cfg.kind`` names for samples of ``n_features`` values."""
    return MLPAutoencoder(cfg, n_features, output_activation, l1_codes)
