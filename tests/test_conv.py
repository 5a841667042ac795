"""The convolutional autoencoder (``--kind conv``) on tiny images of any size."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from torch import nn

import aekit
from aekit.config import ModelConfig
from aekit.errors import ConfigError
from aekit.models import AEOutput, build_model
from aekit.models.conv import ConvAutoencoder


@pytest.mark.parametrize("shape", [(8, 8), (5, 7), (1, 1), (3, 9, 13), (4, 6, 6)])
@pytest.mark.parametrize("bn_res", [(False, False), (True, True)])
def test_any_image_size_round_trips(shape: tuple[int, ...], bn_res: tuple[bool, bool]) -> None:
    torch.manual_seed(0)
    n = math.prod(shape)
    cfg = ModelConfig(kind="conv", latent_dim=3, conv_channels=(4, 8), batch_norm=bn_res[0],
                      residual=bn_res[1])
    model = build_model(cfg, n, "sigmoid", 0.0, shape)
    assert isinstance(model, ConvAutoencoder)
    with torch.no_grad():
        out = model(torch.rand(5, n))
    assert isinstance(out, AEOutput)
    assert out.x_hat.shape == (5, n) and out.z.shape == (5, 3)
    assert float(out.x_hat.min()) >= 0 and float(out.x_hat.max()) <= 1
    assert torch.isfinite(out.loss)
    has_bn = any(isinstance(m, nn.BatchNorm2d) for m in model.modules())
    assert has_bn == bn_res[0]
    assert all((blk.skip is not None) == bn_res[1] for blk in model.encoder[:2])


def test_loss_matches_naive_reference_and_l1_codes() -> None:
    torch.manual_seed(0)
    cfg = ModelConfig(kind="conv", latent_dim=2, conv_channels=(3,))
    model = build_model(cfg, 36, "identity", 0.1, (6, 6)).eval()
    x = torch.rand(4, 36)
    out = model(x)
    z = model.encode(x)
    x_hat = model.decode(z)
    torch.testing.assert_close(out.recon_loss, ((x_hat - x) ** 2).mean())
    torch.testing.assert_close(out.reg_loss, 0.1 * z.abs().sum(1).mean())


def test_conv_needs_images() -> None:
    cfg = ModelConfig(kind="conv", latent_dim=2)
    with pytest.raises(ConfigError, match=r"`kind` conv needs image data.*sample_shape=\(10,\)"):
        build_model(cfg, 10, "identity", 0.0, (10,))
    with pytest.raises(ConfigError, match="conv_channels"):
        ModelConfig(kind="conv", conv_channels="4,x")


def test_conv_trains_saves_and_loads(tmp_path) -> None:
    rng = np.random.default_rng(0)
    # 60 blurry blobs on 3-channel 10x12 images
    yy, xx = np.mgrid[:10, :12]
    centres = rng.uniform(2, 9, size=(60, 2))
    blobs = np.exp(-((yy - centres[:, :1, None]) ** 2 + (xx - centres[:, 1:, None]) ** 2) / 6)
    images = (np.stack([blobs, blobs * .5, 1 - blobs], axis=-1) * 255).astype(np.uint8)
    ae = aekit.Autoencoder(latent_dim=4, kind="conv", conv_channels=(8, 16), epochs=30,
                           batch_size=16, lr=5e-3, progress=False, seed=0, threads=1,
                           diagnostics_every_steps=None, batch_norm=True)
    history = ae.fit(images)
    losses = history["loss"]
    assert losses[-1] < 0.5 * losses[0]
    ae.save(tmp_path)
    again = aekit.load(tmp_path, device=ae.device.type)
    x = images[:5]
    np.testing.assert_allclose(again.reconstruct(x), ae.reconstruct(x), atol=1e-4)
    assert again.sample_shape == (3, 10, 12)


def test_forward_compares_with_a_target() -> None:
    torch.manual_seed(0)
    cfg = ModelConfig(kind="conv", latent_dim=2, conv_channels=(3,))
    model = build_model(cfg, 36, "sigmoid", 0.1, (6, 6)).eval()
    clean = torch.rand(4, 36)
    noisy = (clean + 0.3 * torch.randn(4, 36)).clamp(0, 1)
    with torch.no_grad():
        out = model(noisy, clean)
        torch.testing.assert_close(out.recon_loss, ((out.x_hat - clean) ** 2).mean())
        assert out.loss.item() != pytest.approx(model(noisy).loss.item(), rel=1e-6)
        torch.testing.assert_close(model(noisy, noisy).loss, model(noisy).loss)
