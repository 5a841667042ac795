"""The hand-written backward pass against autograd, for every activation, loss and output."""

import pytest
import torch

from aekit.config import ModelConfig
from aekit.models import MLPAutoencoder
from aekit.training import fastpath
from aekit.training.optim import FlatParams


def _grads_both_ways(cfg: ModelConfig, output: str, l1_codes: float, x: torch.Tensor):
    torch.manual_seed(0)
    model = MLPAutoencoder(cfg, x.shape[1], output, l1_codes)
    flat = FlatParams(model)
    assert fastpath.supports(model)
    loss_fast = fastpath.loss_and_grad(model, x)
    grad_fast = flat.grad.clone()
    flat.zero_grad()
    out = model(x)
    out.loss.backward()
    return loss_fast, out.loss.item(), grad_fast, flat.grad.clone()


@pytest.mark.parametrize("activation", ["relu", "leaky_relu", "elu", "gelu", "tanh", "sigmoid"])
@pytest.mark.parametrize("loss,output", [("mse", "sigmoid"), ("mse", "identity"),
                                         ("bce", "sigmoid")])
def test_fastpath_matches_autograd(activation, loss, output):
    gen = torch.Generator().manual_seed(1)
    x = torch.rand(17, 12, generator=gen, dtype=torch.float64).float()
    cfg = ModelConfig(hidden=(9, 7), latent_dim=3, activation=activation, loss=loss)
    loss_fast, loss_ref, grad_fast, grad_ref = _grads_both_ways(cfg, output, 0.0, x)
    assert loss_fast == pytest.approx(loss_ref, rel=1e-5)
    torch.testing.assert_close(grad_fast, grad_ref, rtol=1e-4, atol=1e-7)


def test_fastpath_sparse_code_penalty_matches_autograd():
    x = torch.rand(8, 10, generator=torch.Generator().manual_seed(2))
    cfg = ModelConfig(hidden=(6,), latent_dim=4, decoder_hidden=(5, 7))
    loss_fast, loss_ref, grad_fast, grad_ref = _grads_both_ways(cfg, "sigmoid", 0.05, x)
    assert loss_fast == pytest.approx(loss_ref, rel=1e-5)
    torch.testing.assert_close(grad_fast, grad_ref, rtol=1e-4, atol=1e-7)


@pytest.mark.parametrize("option", [{"batch_norm": True}, {"residual": True}, {"dropout": 0.1}])
def test_fastpath_declines_models_it_does_not_cover(option):
    model = MLPAutoencoder(ModelConfig(hidden=(6,), latent_dim=2, **option), 5, "identity")
    assert not fastpath.supports(model)
