"""The hand-written backward pass against autograd, for every activation, loss and output,
with and without the linear (PCA) path, and with a target other than the input."""

import numpy as np
import pytest
import torch

from aekit.config import ModelConfig
from aekit.models import MLPAutoencoder
from aekit.training import fastpath
from aekit.training.optim import FlatParams


def _grads_both_ways(cfg: ModelConfig, output: str, l1_codes: float, x: torch.Tensor,
                     target: torch.Tensor | None = None, model: MLPAutoencoder | None = None):
    if model is None:
        torch.manual_seed(0)
        model = MLPAutoencoder(cfg, x.shape[1], output, l1_codes)
    flat = FlatParams(model)
    assert fastpath.supports(model)
    loss_fast = fastpath.loss_and_grad(model, x, target)
    grad_fast = flat.grad.clone()
    flat.zero_grad()
    out = model(x, target)
    out.loss.backward()
    return loss_fast, out.loss.item(), grad_fast, flat.grad.clone()


def _check(result) -> None:
    loss_fast, loss_ref, grad_fast, grad_ref = result
    assert loss_fast == pytest.approx(loss_ref, rel=1e-5)
    torch.testing.assert_close(grad_fast, grad_ref, rtol=1e-4, atol=1e-7)


@pytest.mark.parametrize("pca_init", [False, True])
@pytest.mark.parametrize("activation", ["relu", "leaky_relu", "elu", "gelu", "tanh", "sigmoid"])
@pytest.mark.parametrize("loss,output", [("mse", "sigmoid"), ("mse", "identity"),
                                         ("mse", "clip"), ("bce", "sigmoid")])
def test_fastpath_matches_autograd(activation, loss, output, pca_init):
    gen = torch.Generator().manual_seed(1)
    x = torch.rand(17, 12, generator=gen, dtype=torch.float64).float()
    cfg = ModelConfig(hidden=(9, 7), latent_dim=3, activation=activation, loss=loss,
                      pca_init=pca_init)
    _check(_grads_both_ways(cfg, output, 0.0, x))


@pytest.mark.parametrize("pca_init", [False, True])
def test_fastpath_clipped_output_matches_autograd_beyond_both_bounds(pca_init):
    gen = torch.Generator().manual_seed(5)
    x = torch.rand(16, 10, generator=gen)
    cfg = ModelConfig(hidden=(8,), latent_dim=3, activation="relu", pca_init=pca_init)
    torch.manual_seed(0)
    model = MLPAutoencoder(cfg, 10, "clip")
    with torch.no_grad():  # outputs well beyond [0, 1] on both sides
        last = model.decoder[-1]
        last.weight.mul_(8.0)
        last.bias.copy_(torch.linspace(-2.0, 3.0, 10))
        logits = model.decode_logits(model.encode(x))
    assert (logits < 0).float().mean() > 0.1 and (logits > 1).float().mean() > 0.1
    _check(_grads_both_ways(cfg, "clip", 0.0, x, model=model))
    # the reconstruction is clipped, and outputs beyond the range still get a gradient
    model.eval()
    assert model(x).x_hat.min() >= 0 and model(x).x_hat.max() <= 1
    flat = FlatParams(model)
    fastpath.loss_and_grad(model, x)
    assert flat.grad.abs().sum() > 0


@pytest.mark.parametrize("pca_init", [False, True])
def test_fastpath_sparse_code_penalty_matches_autograd(pca_init):
    x = torch.rand(8, 10, generator=torch.Generator().manual_seed(2))
    cfg = ModelConfig(hidden=(6,), latent_dim=4, decoder_hidden=(5, 7), pca_init=pca_init)
    _check(_grads_both_ways(cfg, "sigmoid", 0.05, x))


@pytest.mark.parametrize("pca_init", [False, True])
@pytest.mark.parametrize("hidden,decoder_hidden", [((), ()), ((6,), ()), ((), (5,))])
def test_fastpath_single_layer_stacks_match_autograd(hidden, decoder_hidden, pca_init):
    x = torch.rand(9, 7, generator=torch.Generator().manual_seed(3))
    cfg = ModelConfig(hidden=hidden, decoder_hidden=decoder_hidden, latent_dim=3,
                      activation="tanh", pca_init=pca_init)
    _check(_grads_both_ways(cfg, "identity", 0.02, x))


@pytest.mark.parametrize("pca_init", [False, True])
@pytest.mark.parametrize("loss,output", [("mse", "sigmoid"), ("mse", "identity"),
                                         ("mse", "clip"), ("bce", "sigmoid")])
def test_fastpath_with_a_target_matches_autograd(loss, output, pca_init):
    gen = torch.Generator().manual_seed(4)
    clean = torch.rand(11, 10, generator=gen)
    noisy = (clean + 0.2 * torch.randn(11, 10, generator=gen)).clamp(0, 1)
    cfg = ModelConfig(hidden=(8,), latent_dim=3, activation="elu", loss=loss,
                      pca_init=pca_init)
    _check(_grads_both_ways(cfg, output, 0.01, noisy, clean))
    torch.manual_seed(0)
    model = MLPAutoencoder(cfg, 10, output, 0.01)
    FlatParams(model)
    with_target = fastpath.loss_and_grad(model, noisy, clean)
    assert with_target != pytest.approx(fastpath.loss_and_grad(model, noisy), rel=1e-6)
    assert fastpath.loss_and_grad(model, noisy, noisy) == fastpath.loss_and_grad(model, noisy)


@pytest.mark.parametrize("activation", ["relu", "tanh"])
def test_fastpath_after_init_from_pca_matches_autograd(activation):
    gen = torch.Generator().manual_seed(5)
    x = torch.randn(40, 12, generator=gen) @ torch.randn(12, 12, generator=gen)
    torch.manual_seed(0)
    cfg = ModelConfig(hidden=(9, 7), latent_dim=4, activation=activation)
    model = MLPAutoencoder(cfg, 12, "identity", 0.01)
    flat = FlatParams(model)
    fastpath.loss_and_grad(model, x)  # builds the plan cache before the init
    mean = x.mean(0)
    components = torch.linalg.svd(x - mean, full_matrices=False).Vh[:3].numpy()
    model.init_from_pca(components, mean.numpy())
    assert all(p.data_ptr() == flat.data.data_ptr() + 4 * a  # still views of the flat buffer
               for p, (_, a, _) in zip(model.parameters(), flat.names))
    _check(_grads_both_ways(cfg, "identity", 0.01, x, model=model))
    w = np.zeros((4, 12), dtype=np.float32)
    w[:3] = components
    np.testing.assert_allclose(model.linear_encoder.weight.detach().numpy(), w)
    # the stacks' last layers start at zero but their gradient does not
    grads = flat.views(flat.grad)
    assert float(grads["encoder.2.weight"].abs().sum()) > 0
    assert float(grads["decoder.2.weight"].abs().sum()) > 0


@pytest.mark.parametrize("option", [{"batch_norm": True}, {"residual": True}, {"dropout": 0.1}])
def test_fastpath_declines_models_it_does_not_cover(option):
    model = MLPAutoencoder(ModelConfig(hidden=(6,), latent_dim=2, **option), 5, "identity")
    assert not fastpath.supports(model)


def test_fastpath_supports_pca_init_models():
    for pca_init in (False, True):
        model = MLPAutoencoder(ModelConfig(hidden=(6,), latent_dim=2, pca_init=pca_init), 5,
                               "identity")
        assert fastpath.supports(model)
        assert (model.linear_encoder is not None) == pca_init
