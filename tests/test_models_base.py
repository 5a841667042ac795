"""What the model kinds share lives in ``models/base.py``: one ``AEOutput``, one ``decode``
and one ``forward`` for the MLP, the convolutional autoencoder and the VAE."""

from __future__ import annotations

import pytest
import torch

from aekit.config import RunConfig
from aekit.models import AEBase, AEOutput, build_model
from aekit.models.base import reconstruction_loss


@pytest.mark.parametrize("kind, extra", [("mlp", {"l1_codes": 0.01}), ("conv", {}),
                                         ("vae", {})])
def test_every_kind_decodes_and_forwards_through_the_base(kind, extra):
    cfg = RunConfig().replace(kind=kind, latent_dim=3, hidden=(8,) if kind != "conv" else (4,),
                              pca_init=False)
    torch.manual_seed(0)
    model = build_model(cfg.model, 64, "sigmoid", extra.get("l1_codes", 0.0), (8, 8)).eval()
    for name in ("decode", "forward"):
        assert name not in type(model).__dict__, f"{kind} copies {name}"
    assert isinstance(model, AEBase)
    x = torch.rand(5, 64)
    out = model(x)
    assert isinstance(out, AEOutput)
    z = model.encode(x)
    logits = model.decode_logits(z)
    torch.testing.assert_close(out.z, z)
    torch.testing.assert_close(model.decode(z), torch.sigmoid(logits))
    torch.testing.assert_close(out.recon_loss, reconstruction_loss("mse", logits,
                                                                   torch.sigmoid(logits), x,
                                                                   "sigmoid"))
    torch.testing.assert_close(out.loss, out.recon_loss + out.reg_loss)
    if kind == "mlp":
        torch.testing.assert_close(out.reg_loss, 0.01 * z.abs().sum(dim=1).mean())
