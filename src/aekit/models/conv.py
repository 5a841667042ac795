"""Convolutional autoencoder for images of any size and channel count (``--kind conv``).

Encoder: for each width of ``conv_channels``, a 3x3 convolution of stride 2 (halving height and
width, rounding up) -> [batch norm] -> activation -> [dropout], with an optional residual skip
(a strided 1x1 convolution); then flatten -> linear to the code. Decoder, the mirror: linear ->
activation -> reshape to the last feature map, then 4x4 transposed convolutions of stride 2
(doubling the size) back to the input's channel count, cropped to the input's height and width.
Samples come in and go out flat, (batch, n_features), like every aekit model.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from aekit.config import ModelConfig, _sizes
from aekit.errors import ConfigError
from aekit.models.base import AEBase
from aekit.models.mlp import _ACTIVATIONS, BlockBase


def image_layout(sample_shape: tuple[int, ...] | None, n_features: int) -> tuple[int, int, int]:
    """(channels, height, width) of one sample: (h, w) is greyscale, (c, h, w) channels first.

    Raises:
        ConfigError: the samples are not images.
    """
    shape = tuple(sample_shape or ())
    if len(shape) == 2:
        shape = (1, *shape)
    if len(shape) != 3 or math.prod(shape) != n_features or min(shape) < 1:
        raise ConfigError("`kind` conv needs image data: samples of shape (height, width) or "
                          f"(channels, height, width). Received: sample_shape={sample_shape!r} "
                          f"({n_features} features); use --kind mlp for tabular data")
    return shape  # type: ignore[return-value]


class ConvBlock(BlockBase):
    """(Transposed) convolution of stride 2 -> [batch norm] -> activation -> [dropout] [+ skip].

    Args:
        n_in: input channels.
        n_out: output channels.
        cfg: activation, batch_norm, residual and dropout are read from it.
        up: a transposed convolution doubling the size, instead of one halving it.
    """

    def __init__(self, n_in: int, n_out: int, cfg: ModelConfig, up: bool = False) -> None:
        super().__init__()
        self.conv = (nn.ConvTranspose2d(n_in, n_out, 4, stride=2, padding=1) if up
                     else nn.Conv2d(n_in, n_out, 3, stride=2, padding=1))
        skip = None
        if cfg.residual:
            skip = (nn.Sequential(nn.Upsample(scale_factor=2.0, mode="nearest"),
                                  nn.Conv2d(n_in, n_out, 1, bias=False)) if up
                    else nn.Conv2d(n_in, n_out, 1, stride=2, bias=False))
        self._init_tail(cfg, nn.BatchNorm2d(n_out) if cfg.batch_norm else None, skip)

    def transform(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv(x)


class ConvAutoencoder(AEBase):
    """Convolutional autoencoder on flat samples of ``n_features`` = channels * height * width.

    Args:
        cfg: ``conv_channels``, ``latent_dim``, ``activation``, ``batch_norm``, ``residual``,
            ``dropout``, ``loss``.
        n_features: values per sample.
        output_activation: ``"sigmoid"``, ``"identity"`` or ``"clip"``.
        l1_codes: weight of the L1 penalty on the codes; 0 for none.
        sample_shape: (height, width) or (channels, height, width).

    Raises:
        ConfigError: the samples are not images, or ``conv_channels`` is malformed.
    """

    def __init__(self, cfg: ModelConfig, n_features: int, output_activation: str,
                 l1_codes: float = 0.0, sample_shape: tuple[int, ...] | None = None) -> None:
        super().__init__()
        self.cfg = cfg
        self.n_features = n_features
        self.output_activation = output_activation
        self.l1_codes = l1_codes
        self.image_shape = image_layout(sample_shape, n_features)
        channels = list(_sizes("conv_channels", getattr(cfg, "conv_channels", (32, 64))))
        c, h, w = self.image_shape
        for _ in channels:  # each stride-2 convolution: ceil(size / 2)
            h, w = (h + 1) // 2, (w + 1) // 2
        self.map_shape = (channels[-1], h, w)  # (C, h', w') of the last feature map
        flat = math.prod(self.map_shape)
        self.encoder = nn.Sequential(
            *[ConvBlock(a, b, cfg) for a, b in zip([c, *channels[:-1]], channels)],
            nn.Flatten(), nn.Linear(flat, cfg.latent_dim))
        self.decoder_input = nn.Sequential(nn.Linear(cfg.latent_dim, flat),
                                           _ACTIVATIONS[cfg.activation]())
        rev = channels[::-1]
        self.decoder = nn.Sequential(
            *[ConvBlock(a, b, cfg, up=True) for a, b in zip(rev[:-1], rev[1:])],
            nn.ConvTranspose2d(rev[-1], c, 4, stride=2, padding=1))

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        """Codes of a batch: (batch, n_features) -> (batch, latent_dim)."""
        return self.encoder(x.reshape(x.shape[0], *self.image_shape))

    def decode_logits(self, z: torch.Tensor) -> torch.Tensor:
        """Decoder output before the output activation: (batch, n_features)."""
        maps = self.decoder_input(z).reshape(z.shape[0], *self.map_shape)
        out = self.decoder(maps)  # (batch, c, >= h, >= w): crop the padding of odd sizes
        _, h, w = self.image_shape
        return out[:, :, :h, :w].reshape(z.shape[0], self.n_features)
