"""Fully connected (MLP) autoencoder: encoder, linear code, decoder mirroring the encoder."""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import nn
from torch.nn import functional as F

from aekit.config import ModelConfig

_ACTIVATIONS = {
    "relu": nn.ReLU,
    "leaky_relu": lambda: nn.LeakyReLU(0.01),
    "elu": nn.ELU,
    "gelu": nn.GELU,
    "tanh": nn.Tanh,
    "sigmoid": nn.Sigmoid,
}


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


def resolve_init(cfg: ModelConfig) -> str:
    """The initialisation ``auto`` stands for: Glorot for saturating units, He for the ReLU family."""
    if cfg.init != "auto":
        return cfg.init
    return "glorot_uniform" if cfg.activation in ("tanh", "sigmoid") else "he_uniform"


def init_linear(layer: nn.Linear, scheme: str, activation: str) -> None:
    """Initialise one linear layer in place; biases start at zero (except scheme ``torch``)."""
    if scheme == "torch":
        layer.reset_parameters()
        return
    gain_name = {"leaky_relu": "leaky_relu", "relu": "relu", "tanh": "tanh"}.get(activation,
                                                                              "linear")
    weight = layer.weight
    if scheme == "glorot_uniform":
        nn.init.xavier_uniform_(weight)
    elif scheme == "glorot_normal":
        nn.init.xavier_normal_(weight)
    elif scheme == "he_uniform":
        nn.init.kaiming_uniform_(weight, nonlinearity=gain_name if gain_name != "tanh" else "relu")
    elif scheme == "he_normal":
        nn.init.kaiming_normal_(weight, nonlinearity=gain_name if gain_name != "tanh" else "relu")
    elif scheme == "lecun_normal":
        nn.init.normal_(weight, std=1.0 / math.sqrt(weight.shape[1]))
    elif scheme == "orthogonal":
        nn.init.orthogonal_(weight, gain=nn.init.calculate_gain(gain_name))
    nn.init.zeros_(layer.bias)


class BlockBase(nn.Module):
    """main layer -> [batch norm] -> activation -> [dropout], with an optional residual skip.

    Subclasses create the main layer (registered first, so parameter names and order stay
    ``<block>.linear.weight`` etc.) and call :meth:`_init_tail`; ``transform`` applies it.
    """

    def _init_tail(self, cfg: ModelConfig, norm: nn.Module | None,
                   skip: nn.Module | None) -> None:
        self.norm = norm
        self.act = _ACTIVATIONS[cfg.activation]()
        self.dropout = nn.Dropout(cfg.dropout) if cfg.dropout else None
        self.skip = skip

    def transform(self, x: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.transform(x)
        if self.norm is not None:
            h = self.norm(h)
        h = self.act(h)
        if self.dropout is not None:
            h = self.dropout(h)
        if self.skip is not None:
            h = h + self.skip(x)
        return h


class Block(BlockBase):
    """Linear -> [batch norm] -> activation -> [dropout], with an optional residual skip.

    The skip is the identity where widths match and a bias-free linear projection elsewhere.
    """

    def __init__(self, n_in: int, n_out: int, cfg: ModelConfig) -> None:
        super().__init__()
        self.linear = nn.Linear(n_in, n_out)
        skip = None
        if cfg.residual:
            skip = nn.Identity() if n_in == n_out else nn.Linear(n_in, n_out, bias=False)
        self._init_tail(cfg, nn.BatchNorm1d(n_out) if cfg.batch_norm else None, skip)

    def transform(self, x: torch.Tensor) -> torch.Tensor:
        return self.linear(x)


def _stack(widths: list[int], cfg: ModelConfig, head: int) -> nn.Sequential:
    """Hidden blocks through ``widths`` then a plain linear layer to ``head`` units."""
    blocks: list[nn.Module] = [Block(a, b, cfg) for a, b in zip(widths[:-1], widths[1:])]
    blocks.append(nn.Linear(widths[-1], head))
    return nn.Sequential(*blocks)


class MLPAutoencoder(nn.Module):
    """MLP autoencoder on flat samples of ``n_features`` values.

    Args:
        cfg: architecture (hidden widths, latent size, activation, batch norm, residual...).
        n_features: values per sample.
        output_activation: ``"sigmoid"`` or ``"identity"`` (``auto`` already resolved).
        l1_codes: weight of the L1 penalty on the codes (sparse autoencoder); 0 for none.
    """

    def __init__(self, cfg: ModelConfig, n_features: int, output_activation: str,
                 l1_codes: float = 0.0) -> None:
        super().__init__()
        self.cfg = cfg
        self.n_features = n_features
        self.output_activation = output_activation
        self.l1_codes = l1_codes
        self.encoder = _stack([n_features, *cfg.hidden], cfg, cfg.latent_dim)
        self.decoder = _stack([cfg.latent_dim, *cfg.decoder_widths], cfg, n_features)
        scheme = resolve_init(cfg)
        for module in self.modules():
            if isinstance(module, nn.Linear) and module.bias is not None:
                init_linear(module, scheme, cfg.activation)
            elif isinstance(module, nn.Linear):  # residual projection
                nn.init.xavier_uniform_(module.weight)

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        """Codes of a batch: (batch, n_features) -> (batch, latent_dim)."""
        return self.encoder(x)

    def decode_logits(self, z: torch.Tensor) -> torch.Tensor:
        """Decoder output before the output activation."""
        return self.decoder(z)

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        """Reconstructions in the scaled data space: (batch, latent_dim) -> (batch, n_features)."""
        out = self.decoder(z)
        return torch.sigmoid(out) if self.output_activation == "sigmoid" else out

    def forward(self, x: torch.Tensor) -> AEOutput:
        z = self.encode(x)
        logits = self.decode_logits(z)
        if self.output_activation == "sigmoid":
            x_hat = torch.sigmoid(logits)
        else:
            x_hat = logits
        recon = reconstruction_loss(self.cfg.loss, logits, x_hat, x, self.output_activation)
        reg = self.l1_codes * z.abs().sum(dim=1).mean() if self.l1_codes else recon.new_zeros(())
        return AEOutput(x_hat=x_hat, z=z, recon_loss=recon, reg_loss=reg, loss=recon + reg)


def reconstruction_loss(kind: str, logits: torch.Tensor, x_hat: torch.Tensor, x: torch.Tensor,
                        output_activation: str) -> torch.Tensor:
    """Mean per-element loss; BCE is computed from logits when the output is a sigmoid (stable)."""
    if kind == "mse":
        return F.mse_loss(x_hat, x)
    if output_activation == "sigmoid":
        return F.binary_cross_entropy_with_logits(logits, x)
    return F.binary_cross_entropy(x_hat.clamp(1e-7, 1 - 1e-7), x)
