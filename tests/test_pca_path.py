"""The linear (PCA) path of the MLP autoencoder: structure, ``init_from_pca`` against
scikit-learn, training from the PCA start, denoising targets, and how diagnostics see it."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from sklearn.decomposition import PCA

from aekit.config import ModelConfig, RunConfig
from aekit.models import MLPAutoencoder
from aekit.training import fastpath
from aekit.training import findings as F
from aekit.training.diagnostics import Diagnostics, grad_norm_by_layer, layer_name, side_layers
from aekit.training.optim import FlatParams
from aekit.training.trainer import Trainer

LINEAR_NAMES = ["linear_encoder.weight", "linear_encoder.bias", "linear_decoder.weight",
                "linear_decoder.bias"]


def _curved(n: int = 300, d: int = 10, seed: int = 0) -> np.ndarray:
    """Points near a curved 2-D manifold in ``d`` dimensions: PCA-2 cannot fit it exactly."""
    rng = np.random.default_rng(seed)
    t = rng.uniform(-2, 2, size=(n, 2))
    feats = np.concatenate([t, np.sin(2 * t), t[:, :1] * t[:, 1:], t ** 2], axis=1)
    x = feats @ rng.normal(size=(feats.shape[1], d)) + 0.01 * rng.normal(size=(n, d))
    return ((x - x.mean(0)) / x.std(0)).astype(np.float32)


def _model(pca_init: bool = True, n_features: int = 10, output: str = "identity",
           seed: int = 0, **options) -> MLPAutoencoder:
    torch.manual_seed(seed)
    cfg = ModelConfig(**{"hidden": (16, 8), "latent_dim": 4, "pca_init": pca_init, **options})
    return MLPAutoencoder(cfg, n_features, output)


# -- structure ---------------------------------------------------------------------------------
def test_without_pca_init_nothing_changes():
    plain, with_path = _model(False), _model(True)
    assert plain.linear_encoder is None and plain.linear_decoder is None
    names = [n for n, _ in plain.named_parameters()]
    assert not any(n.startswith("linear_") for n in names)
    # the linear path comes after the stacks: the same names, order and initial values before it
    assert [n for n, _ in with_path.named_parameters()] == names + LINEAR_NAMES
    state = with_path.state_dict()
    for name, value in plain.state_dict().items():
        assert torch.equal(state[name], value), name
    x = torch.randn(5, 10)
    torch.testing.assert_close(plain.encode(x), plain.encoder(x))


def test_linear_path_starts_glorot_and_adds_to_the_stacks():
    model = _model()
    for layer in (model.linear_encoder, model.linear_decoder):
        fan_out, fan_in = layer.weight.shape
        bound = math.sqrt(6.0 / (fan_in + fan_out))
        weight = layer.weight.detach()
        assert float(weight.abs().max()) <= bound and float(weight.std()) > 0
        assert torch.equal(layer.bias, torch.zeros_like(layer.bias))
    x = torch.randn(6, 10)
    z = model.encode(x)
    torch.testing.assert_close(z, model.encoder(x) + model.linear_encoder(x))
    torch.testing.assert_close(model.decode_logits(z), model.decoder(z) + model.linear_decoder(z))
    out = model(x)
    torch.testing.assert_close(out.x_hat, model.decode(z))
    torch.testing.assert_close(out.recon_loss, ((out.x_hat - x) ** 2).mean())


def test_builds_on_the_meta_device():
    with torch.device("meta"):
        model = _model()
    assert model.linear_encoder.weight.is_meta


# -- init_from_pca -----------------------------------------------------------------------------
@pytest.mark.parametrize("k", [4, 2])
@pytest.mark.parametrize("options", [{}, {"activation": "tanh", "hidden": (12,)},
                                     {"hidden": (), "decoder_hidden": ()},
                                     {"batch_norm": True, "residual": True, "dropout": 0.2}])
def test_init_from_pca_reconstructs_like_sklearn(k, options):
    x = _curved()
    model = _model(**options)
    pca = PCA(k).fit(x)
    model.init_from_pca(pca.components_, pca.mean_)
    model.eval()
    with torch.no_grad():
        out = model(torch.from_numpy(x))
    expected = pca.inverse_transform(pca.transform(x))
    np.testing.assert_allclose(out.x_hat.numpy(), expected, atol=2e-5 * np.abs(x).max())
    np.testing.assert_allclose(out.z[:, :k].numpy(), pca.transform(x), atol=1e-4)
    assert torch.equal(out.z[:, k:], torch.zeros_like(out.z[:, k:]))
    for stack in (model.encoder, model.decoder):
        assert not stack[-1].weight.any() and not stack[-1].bias.any()


def test_init_from_pca_copies_in_place_and_takes_tensors():
    x = _curved()
    model = _model()
    flat = FlatParams(model)
    params = {n: (p, p.data_ptr()) for n, p in model.named_parameters()}
    pca = PCA(3).fit(x)
    model.init_from_pca(torch.from_numpy(pca.components_), torch.from_numpy(pca.mean_))
    for name, p in model.named_parameters():
        assert p is params[name][0] and p.data_ptr() == params[name][1], name
    views = flat.views(flat.data)
    np.testing.assert_allclose(views["linear_decoder.bias"].numpy(), pca.mean_, rtol=1e-6)


def test_init_from_pca_rejects_what_does_not_fit():
    pca = PCA(3).fit(_curved())
    with pytest.raises(ValueError, match="pca_init=True"):
        _model(False).init_from_pca(pca.components_, pca.mean_)
    with pytest.raises(ValueError, match="components must have shape"):
        _model(latent_dim=2).init_from_pca(pca.components_, pca.mean_)
    with pytest.raises(ValueError, match="components must have shape"):
        _model(n_features=9).init_from_pca(pca.components_, pca.mean_)
    with pytest.raises(ValueError, match="mean must have shape"):
        _model().init_from_pca(pca.components_, pca.mean_[:5])


def test_gradients_flow_into_the_zeroed_layers():
    x = torch.from_numpy(_curved())
    model = _model()
    pca = PCA(4).fit(x.numpy())
    model.init_from_pca(pca.components_, pca.mean_)
    model(x).loss.backward()
    assert model.encoder[-1].weight.grad.abs().sum() > 0
    assert model.decoder[-1].weight.grad.abs().sum() > 0


def test_training_from_the_pca_start_improves_on_pca():
    x = _curved()
    xt = torch.from_numpy(x)
    pca = PCA(2).fit(x)
    pca_mse = float(np.mean((pca.inverse_transform(pca.transform(x)) - x) ** 2))
    model = _model(latent_dim=2, hidden=(32,), activation="elu")
    model.init_from_pca(pca.components_, pca.mean_)
    assert model(xt).loss.item() == pytest.approx(pca_mse, rel=1e-4)
    opt = torch.optim.Adam(model.parameters(), lr=3e-3)
    gen = torch.Generator().manual_seed(0)
    for _ in range(100):
        batch = xt[torch.randint(0, len(xt), (64,), generator=gen)]
        opt.zero_grad()
        model(batch).loss.backward()
        opt.step()
    with torch.no_grad():
        assert model(xt).loss.item() < 0.8 * pca_mse


def test_forward_compares_with_a_target():
    gen = torch.Generator().manual_seed(1)
    clean = torch.randn(8, 10, generator=gen)
    noisy = clean + 0.3 * torch.randn(8, 10, generator=gen)
    model = _model()
    with torch.no_grad():
        out = model(noisy, clean)
        torch.testing.assert_close(out.recon_loss, ((out.x_hat - clean) ** 2).mean())
        assert out.loss.item() != pytest.approx(model(noisy).loss.item(), rel=1e-6)
        torch.testing.assert_close(model(noisy, noisy).loss, model(noisy).loss)


# -- diagnostics -------------------------------------------------------------------------------
def test_diagnostics_name_the_linear_path_and_list_the_side_layers():
    assert layer_name("linear_encoder.weight") == "linear_encoder"
    assert side_layers(_model(False)) == []
    model = _model(hidden=(6, 5), decoder_hidden=(7,))
    assert side_layers(model) == ["linear_encoder", "linear_decoder", "encoder.2", "decoder.1"]
    flat = FlatParams(model)
    fastpath.loss_and_grad(model, torch.randn(9, 10))
    assert list(grad_norm_by_layer(flat)) == ["encoder.0", "encoder.1", "encoder.2", "decoder.0",
                                              "decoder.1", "linear_encoder", "linear_decoder"]


def test_side_layers_stay_out_of_the_depth_comparison():
    layers = {f"l{i}": {"grad_rms": 1.0} for i in range(4)}
    layers.update({"linear_encoder": {"grad_rms": 1e3}, "l1.skip": {"grad_rms": 1e3}})
    record = {"type": "diagnostics", "step": 10, "layers": layers,
              "side_layers": ["linear_encoder", "l3"]}
    sizes, _ = F.layer_gradients([record])
    assert list(sizes) == ["l0", "l1", "l2"]
    del record["side_layers"]  # older records: only the skips are recognised
    assert "linear_encoder" in F.layer_gradients([record])[0]


def test_a_pca_started_run_raises_no_false_alarm():
    """After init_from_pca the stacks' last layers are zero: no update ratio of a zero matrix
    (it would read as an exploding step) and no depth comparison against the layers growing
    from zero (it would read as vanishing gradients)."""
    x = torch.from_numpy(_curved(n=256))
    cfg = RunConfig().replace(hidden=(16, 8), latent_dim=2, activation="relu",
                              progress=False, epochs=3, batch_size=32, diagnostics_every_steps=None)
    torch.manual_seed(0)
    model = MLPAutoencoder(cfg.model, 10, "identity")
    pca = PCA(2).fit(x.numpy())
    model.init_from_pca(pca.components_, pca.mean_)
    diag = Diagnostics(8, x)
    trainer = Trainer(model, cfg, [diag])
    trainer.fit(x)
    first = diag.records[0]
    assert first["step"] == 0 and first["side_layers"] == side_layers(model)
    assert "update_ratio" not in first["layers"]["encoder.2"]
    assert "update_ratio" not in first["layers"]["decoder.2"]
    assert "update_ratio" in first["layers"]["linear_decoder"]
    sizes, _ = F.layer_gradients(diag.records)
    assert list(sizes) == ["encoder.0", "encoder.1", "decoder.0", "decoder.1"]
    assert F.detect_exploding([], diag.records[:1], []) is None
