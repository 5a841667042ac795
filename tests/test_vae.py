"""The variational autoencoder: KL against a naive formula, beta, registration, training."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from sklearn.datasets import load_digits

import aekit
from aekit.config import ModelConfig
from aekit.errors import ConfigError
from aekit.models import build_model
from aekit.models.vae import VAE, kl_to_standard_normal
from aekit.training import fastpath


def test_kl_matches_naive_formula():
    torch.manual_seed(0)
    mean, log_var = torch.randn(5, 3), torch.randn(5, 3)
    naive = 0.0
    for i in range(5):
        for j in range(3):
            m, v = mean[i, j].item(), math.exp(log_var[i, j].item())
            # KL(N(m, v) || N(0, 1)) = 0.5 * (v + m^2 - 1 - log v)
            naive += 0.5 * (v + m * m - 1 - math.log(v))
    assert kl_to_standard_normal(mean, log_var).item() == pytest.approx(naive / 5, rel=1e-5)
    assert kl_to_standard_normal(torch.zeros(2, 4), torch.zeros(2, 4)).item() == 0.0


def test_build_forward_and_beta():
    cfg = ModelConfig(kind="vae", hidden=(16,), latent_dim=3, beta=2.5)
    model = build_model(cfg, 10, "sigmoid")
    assert isinstance(model, VAE) and not fastpath.supports(model)
    torch.manual_seed(0)
    x = torch.rand(7, 10)
    model.eval()
    out = model(x)
    mean, log_var = model.posterior(x)
    assert torch.equal(out.z, mean) and torch.equal(model.encode(x), mean)
    expected_reg = 2.5 * kl_to_standard_normal(mean, log_var) / 10
    assert out.reg_loss.item() == pytest.approx(expected_reg.item(), rel=1e-6)
    assert out.loss.item() == pytest.approx(out.recon_loss.item() + out.reg_loss.item(), rel=1e-6)
    model.train()
    assert not torch.equal(model(x).z, mean)  # training samples around the mean
    assert model.sample_prior(4).shape == (4, 3)


def test_beta_must_be_non_negative():
    with pytest.raises(ConfigError, match="`beta` must be >= 0. Received: beta=-1"):
        ModelConfig(kind="vae", beta=-1.0)
    with pytest.raises(ConfigError, match="`kind` must be one of mlp, vae"):
        ModelConfig(kind="gan")


def test_vae_trains_saves_loads_and_generates(tmp_path):
    x = load_digits().data.astype(np.float32)
    ae = aekit.Autoencoder(latent_dim=4, hidden=(32,), kind="vae", beta=0.5, loss="bce",
                           epochs=15, progress=False, seed=0, threads=1, scaling="minmax")
    history = ae.fit(x)
    assert history.epochs[-1]["train_loss"] < history.epochs[0]["train_loss"]
    ae.save(tmp_path / "vae")
    back = aekit.load(tmp_path / "vae", device=ae.device.type)
    assert back.config.model.beta == 0.5 and isinstance(back.model, VAE)
    np.testing.assert_allclose(back.encode(x[:5]), ae.encode(x[:5]), rtol=1e-5)
    result = aekit.generate(back, 16, data=x, seed=0)
    assert result.method == "VAE prior N(0, I)" and result.samples.shape == (16, 64)
    assert result.novelty.sample_min > 0


def test_forward_compares_with_a_target():
    cfg = ModelConfig(kind="vae", hidden=(16,), latent_dim=3, loss="bce")
    torch.manual_seed(0)
    model = build_model(cfg, 10, "sigmoid").eval()
    clean = torch.rand(7, 10)
    noisy = (clean + 0.3 * torch.randn(7, 10)).clamp(0, 1)
    with torch.no_grad():
        out = model(noisy, clean)
        expected = torch.nn.functional.binary_cross_entropy(out.x_hat, clean)
        torch.testing.assert_close(out.recon_loss, expected, rtol=1e-5, atol=1e-6)
        assert out.loss.item() != pytest.approx(model(noisy).loss.item(), rel=1e-6)
        torch.testing.assert_close(model(noisy, noisy).loss, model(noisy).loss)
