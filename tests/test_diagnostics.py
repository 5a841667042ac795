"""Measurements (aekit.training.diagnostics) and detectors (aekit.training.findings)."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
import torch
from torch import nn

from aekit import Autoencoder
from aekit.config import ModelConfig
from aekit.errors import TrainingError
from aekit.models.mlp import MLPAutoencoder
from aekit.training import findings as F
from aekit.training.callbacks import Callback, MetricsWriter
from aekit.training.diagnostics import (Diagnostics, activation_stats, clipped_norm,
                                        grad_norm_by_layer, layer_name)
from aekit.training.optim import FlatParams

TINY = dict(hidden=(16, 8), latent_dim=3, progress=False, seed=0, threads=1, pca_init=False)


def _fit(x: np.ndarray, every: int = 5, **options) -> tuple[Autoencoder, Diagnostics]:
    diag = Diagnostics(every, torch.from_numpy(x))
    ae = Autoencoder(**{**TINY, **options})
    ae.fit(x, callbacks=[diag])
    return ae, diag


# -- measurements ------------------------------------------------------------------------------
def test_layer_name_strips_linear_and_weight():
    assert layer_name("encoder.0.linear.weight") == "encoder.0"
    assert layer_name("decoder.3.weight") == "decoder.3"
    assert layer_name("encoder.1.skip.weight") == "encoder.1.skip"


def test_grad_norm_by_layer_matches_per_parameter_norms():
    torch.manual_seed(0)
    model = MLPAutoencoder(ModelConfig(hidden=(6, 5), latent_dim=2), 7, "identity")
    flat = FlatParams(model)
    model(torch.randn(9, 7)).loss.backward()
    got = grad_norm_by_layer(flat)
    expected = {layer_name(n): float(p.grad.norm()) for n, p in model.named_parameters()
                if p.dim() == 2}
    assert list(got) == list(expected)  # input side first
    for name, norm in expected.items():
        assert got[name]["grad_norm"] == pytest.approx(norm, rel=1e-5)


def test_clipped_norm_follows_the_trainer_rules():
    g = torch.tensor([3.0, -4.0, 0.5])
    norm = float(g.norm())
    assert clipped_norm(g, None, None, norm) == norm
    assert clipped_norm(g, None, 1.0, norm) == 1.0
    assert clipped_norm(g, 1.0, None, norm) == pytest.approx(float(torch.tensor([1.0, 1, .5]).norm()))


def test_activation_stats_dead_and_saturated_units():
    relu = nn.Sequential(nn.Linear(2, 4), nn.ReLU())
    with torch.no_grad():
        relu[0].weight.zero_()
        relu[0].bias.copy_(torch.tensor([-1.0, -1.0, 1.0, 1.0]))  # two units never positive
    assert activation_stats(relu, torch.randn(8, 2))["1"]["dead"] == 0.5
    sig = nn.Sequential(nn.Linear(2, 4), nn.Sigmoid())
    with torch.no_grad():
        sig[0].weight.zero_()
        sig[0].bias.copy_(torch.tensor([20.0, -20.0, 0.0, 0.1]))
    stats = activation_stats(sig, torch.randn(8, 2))["1"]
    assert stats["saturated"] == 0.5
    assert stats["act_mean"] == pytest.approx(float(torch.sigmoid(sig[0].bias.detach()).mean()), rel=1e-5)


def test_activation_stats_leave_batch_norm_statistics_unchanged():
    model = nn.Sequential(nn.Linear(3, 4), nn.BatchNorm1d(4), nn.ReLU())
    before = {k: v.clone() for k, v in model.state_dict().items()}
    activation_stats(model, torch.randn(16, 3) * 5 + 2)
    for key, value in model.state_dict().items():
        assert torch.equal(value, before[key]), key


def test_activation_stats_shift_no_random_stream():
    # dropout draws random numbers in the probe pass; the run's stream must not move
    model = nn.Sequential(nn.Linear(3, 4), nn.Dropout(0.5), nn.ReLU()).train()
    torch.manual_seed(5)
    activation_stats(model, torch.randn(16, 3))
    after = torch.rand(3)
    torch.manual_seed(5)
    torch.randn(16, 3)
    assert torch.equal(torch.rand(3), after)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_activation_stats_shift_no_cuda_random_stream():
    from aekit.training.diagnostics import _cuda_devices

    model = nn.Sequential(nn.Linear(3, 4), nn.Dropout(0.5), nn.ReLU()).cuda().train()
    probe = torch.randn(16, 3, device="cuda")
    assert _cuda_devices(model, probe) == [torch.cuda.current_device()]
    before = torch.cuda.get_rng_state()
    activation_stats(model, probe)
    assert torch.equal(torch.cuda.get_rng_state(), before)


def test_diagnostics_samples_round_trip_through_a_state_dict(blobs):
    ae, diag = _fit(blobs, every=4, optimizer="sgd", lr=0.05, schedule="constant",
                    batch_size=30, epochs=2)
    state = diag.state_dict()
    assert all(isinstance(v, torch.Tensor) for v in state.values())  # not in the JSON header
    fresh = Diagnostics(4)
    fresh.load_state_dict(state)
    assert fresh.records == json.loads(json.dumps(diag.records)) and len(fresh.records) > 1


def test_sampling_interval_and_plain_sgd_update_ratio(blobs):
    ae, diag = _fit(blobs, every=4, optimizer="sgd", lr=0.05, schedule="constant",
                    batch_size=30, epochs=3)
    steps = [r["step"] for r in diag.records]
    assert steps == list(range(0, ae.trainer.step, 4))
    first = diag.records[0]
    assert first["lr"] == 0.05 and math.isfinite(first["loss"])
    assert set(first["layers"]) == {"encoder.0", "encoder.1", "encoder.2", "decoder.0",
                                    "decoder.1", "decoder.2"}
    enc = first["layers"]["encoder.0"]
    # plain SGD moves w by lr * g, so the update ratio is lr * |g| / |w|
    assert enc["update_ratio"] == pytest.approx(0.05 * enc["grad_norm"] / enc["weight_norm"],
                                                rel=1e-3)
    assert 0.0 <= enc["dead"] <= 1.0 and "act_std" in enc
    assert "act_mean" not in first["layers"]["encoder.2"]  # the code layer is linear


def test_layer_gradients_leave_out_the_l2_penalty(blobs):
    # with a huge L2 the total gradient is mostly 2 * l2 * w; the measurement must not be
    _, plain = _fit(blobs, every=1, epochs=1, optimizer="sgd", lr=1e-9, schedule="constant")
    _, with_l2 = _fit(blobs, every=1, epochs=1, optimizer="sgd", lr=1e-9, schedule="constant",
                      l2=10.0)
    a = plain.records[0]["layers"]["encoder.0"]["grad_norm"]
    b = with_l2.records[0]["layers"]["encoder.0"]["grad_norm"]
    assert b == pytest.approx(a, rel=1e-3)
    assert with_l2.records[0]["grad_norm"] > 100 * plain.records[0]["grad_norm"]


def test_diagnostics_go_to_metrics_jsonl(blobs, tmp_path):
    path = tmp_path / "metrics.jsonl"
    writer = MetricsWriter(path)
    diag = Diagnostics(3, torch.from_numpy(blobs))
    Autoencoder(**TINY, epochs=2, batch_size=40).fit(blobs, callbacks=[writer, diag])
    lines = [json.loads(line) for line in path.read_text().splitlines()]
    written = [r for r in lines if r["type"] == "diagnostics"]
    assert len(written) == len(diag.records) > 0
    assert written[0]["layers"]["encoder.0"]["grad_norm"] > 0


def test_measuring_does_not_change_the_run(blobs):
    # dropout draws random numbers; the probe pass must not shift the training's random stream
    options = dict(dropout=0.2, batch_norm=True, epochs=2, batch_size=30)
    plain = Autoencoder(**TINY, **options, diagnostics_every_steps=None)
    plain.fit(blobs)
    measured, _ = _fit(blobs, every=1, **options)
    for a, b in zip(plain.model.state_dict().values(), measured.model.state_dict().values()):
        assert torch.equal(a, b)


def test_the_probe_batch_does_not_keep_the_training_tensor_alive():
    x = torch.zeros(10_000, 8)
    diag = Diagnostics(5, x)
    assert diag.probe.shape[0] == 256
    assert diag.probe.untyped_storage().nbytes() == 256 * 8 * 4  # a copy, not a view of x


def test_interval_must_be_positive():
    with pytest.raises(ValueError, match="every_steps.*Received: 0"):
        Diagnostics(0)


# -- detectors on synthetic histories ----------------------------------------------------------
def _epochs(train, val=None, lr=None, skipped=0):
    val = val or [None] * len(train)
    lr = lr or [0.01] * len(train)
    return [{"type": "epoch", "epoch": i + 1, "step": 10 * (i + 1), "train_loss": t,
             "val_loss": v, "lr": r, "skipped_steps": skipped}
            for i, (t, v, r) in enumerate(zip(train, val, lr))]


def _diag(step=100, grad_norm=1.0, **layers):
    return {"type": "diagnostics", "step": step, "grad_norm": grad_norm, "layers": layers}


HEALTHY_LOSSES = [1.0, 0.6, 0.4, 0.3, 0.25, 0.21, 0.18, 0.16, 0.145, 0.13]
HEALTHY_LAYERS = {f"l{i}": {"grad_rms": 1e-3 * (i + 1), "update_ratio": 1e-3, "dead": 0.05}
                  for i in range(4)}


def _kinds(records) -> list[str]:
    return [f.kind for f in F.find_all(records)]


def test_synthetic_healthy_history_has_no_finding():
    records = _epochs(HEALTHY_LOSSES, [v * 1.1 for v in HEALTHY_LOSSES]) + [
        _diag(**HEALTHY_LAYERS)]
    assert _kinds(records) == []


@pytest.mark.parametrize("kind, records", [
    ("vanishing_gradients", _epochs(HEALTHY_LOSSES) + [_diag(
        l0={"grad_rms": 1e-9}, l1={"grad_rms": 1e-7}, l2={"grad_rms": 1e-5},
        l3={"grad_rms": 1e-3})]),
    ("exploding_gradients", _epochs(HEALTHY_LOSSES) + [_diag(grad_norm=5e4, **HEALTHY_LAYERS)]),
    ("dead_units", _epochs(HEALTHY_LOSSES) + [_diag(l0={"dead": 0.9})]),
    ("saturated_units", _epochs(HEALTHY_LOSSES) + [_diag(l0={"saturated": 0.7})]),
    ("plateau", _epochs([1.0, 0.5, 0.3] + [0.29999] * 7)),
    ("divergence", _epochs([1.0, 0.5, 0.3, 0.6, 2.0])),
    ("oscillation", _epochs([1.0, 0.5, 0.6, 0.5, 0.6, 0.5, 0.6, 0.5, 0.6], lr=[0.1] * 9)),
    ("non_finite", _epochs(HEALTHY_LOSSES, skipped=3)),
    ("overfitting", _epochs(HEALTHY_LOSSES, [1.0, 0.7, 0.5, 0.45, 0.44, 0.46, 0.5, 0.55, 0.6,
                                             0.65])),
    ("worse_than_pca", _epochs(HEALTHY_LOSSES, [v * 1.1 for v in HEALTHY_LOSSES]) + [
        {"type": "event", "kind": "pca_baseline", "step": 0, "val_mse": 0.1, "latent_dim": 3}]),
])
def test_each_detector_fires_on_a_history_built_for_it(kind, records):
    found = F.find_all(records)
    assert kind in [f.kind for f in found]
    finding = next(f for f in found if f.kind == kind)
    assert finding.advice and finding.evidence and finding.severity in F.SEVERITY_RANK


def test_vanishing_names_the_layers_and_the_ratio():
    records = [_diag(l0={"grad_rms": 1e-9}, l1={"grad_rms": 1e-7}, l2={"grad_rms": 1e-6},
                     l3={"grad_rms": 1e-3})]
    finding = F.detect_vanishing(*F.split_records(records))
    assert finding.evidence["weak_layers"] == ["l0", "l1", "l2"]
    assert finding.evidence["ratio"] == pytest.approx(1e-6)
    assert finding.severity == "critical" and "l0" in finding.message


def test_gradients_growing_toward_the_input_are_not_vanishing():
    records = [_diag(l0={"grad_rms": 1e-3}, l1={"grad_rms": 1e-5}, l2={"grad_rms": 1e-7},
                     l3={"grad_rms": 1e-9})]
    assert F.detect_vanishing(*F.split_records(records)) is None


def test_residual_projections_are_not_the_depth_path():
    # A shortcut's projection gets the block's output gradient directly; it must not be the
    # yardstick that makes the main-path layers look vanishing.
    main = {f"l{i}": {"grad_rms": 1e-3} for i in range(4)}
    records = [_diag(**main, **{"l2.skip": {"grad_rms": 1.0}})]
    assert F.detect_vanishing(*F.split_records(records)) is None
    assert "l2.skip" not in F.layer_gradients(F.split_records(records)[1])[0]
    records = [_diag(l0={"grad_rms": 1e-9}, l1={"grad_rms": 1e-7}, l2={"grad_rms": 1e-5},
                     l3={"grad_rms": 1e-3}, **{"l1.skip": {"grad_rms": 1.0}})]
    finding = F.detect_vanishing(*F.split_records(records))
    assert finding.evidence["strongest_layer"] == "l3"
    assert finding.evidence["ratio"] == pytest.approx(1e-6)


def test_vanishing_compares_gradients_relative_to_the_weights():
    # Per weight, l0's gradient is 1e-4 of l3's, but l0's weights are as small: relative to
    # them (what a step changes, what batch norm sees) it learns as fast. And the other way.
    def layer(g, w):
        return {"grad_rms": g, "grad_norm": g, "weight_norm": w}
    small_weights = [_diag(l0=layer(1e-7, 1e-4), l1=layer(1e-5, 1e-2), l2=layer(1e-4, 1e-1),
                           l3=layer(1e-3, 1.0))]
    assert F.detect_vanishing(*F.split_records(small_weights)) is None
    starved = [_diag(l0=layer(1e-3, 1e3), l1=layer(1e-3, 10.0), l2=layer(1e-3, 1.0),
                     l3=layer(1e-3, 1.0))]
    finding = F.detect_vanishing(*F.split_records(starved))
    assert finding.evidence["measure"] == "grad_norm/weight_norm"
    assert finding.evidence["weak_layers"] == ["l0"]
    assert finding.evidence["ratio"] == pytest.approx(1e-3)
    assert "||g||/||W||" in finding.message


def test_plateau_at_the_end_of_an_annealed_schedule_is_convergence():
    lrs = [0.01] * 3 + [1e-5] * 7
    assert "plateau" not in _kinds(_epochs([1.0, 0.5, 0.3] + [0.29999] * 7, lr=lrs))


def test_overfitting_with_the_best_weights_kept_is_a_low_finding():
    records = _epochs(HEALTHY_LOSSES, [1.0, 0.7, 0.5, 0.45, 0.44, 0.46, 0.5, 0.55, 0.6, 0.65])
    plain = F.detect_overfitting(*F.split_records(records))
    assert plain.severity == "medium" and not plain.evidence["best_weights_kept"]
    kept = F.detect_overfitting(*F.split_records(records + [
        {"type": "event", "kind": "best_weights", "step": 100, "best_epoch": 5}]))
    assert kept.severity == "low" and kept.evidence["best_weights_kept"]
    assert "best epoch were kept" in kept.message and "not harmed" in kept.advice


def _pca(val_mse, k=3):
    return {"type": "event", "kind": "pca_baseline", "step": 0, "epoch": 0, "val_mse": val_mse,
            "latent_dim": k, "message": f"PCA-{k} validation mse {val_mse}"}


def test_worse_than_pca_needs_the_baseline_and_a_margin():
    val = [v * 1.1 for v in HEALTHY_LOSSES]  # ends at 0.143
    healthy = _epochs(HEALTHY_LOSSES, val)
    assert F.detect_worse_than_pca(*F.split_records(healthy)) is None  # no event, no finding
    for pca in (0.2, 0.143, 0.1425):  # better than PCA, equal, within 1%
        assert F.detect_worse_than_pca(*F.split_records(healthy + [_pca(pca)])) is None, pca
    finding = F.detect_worse_than_pca(*F.split_records(healthy + [_pca(0.11)]))
    assert finding.severity == "high" and finding.kind == "worse_than_pca"
    assert finding.evidence["ratio"] == pytest.approx(0.143 / 0.11)
    assert "0.143" in finding.message and "0.11" in finding.message and "1.3x" in finding.message
    assert "PCA-3" in finding.message and "--pca-init" in finding.advice
    assert "--latent-dim is not the fix" in finding.advice
    no_val = _epochs(HEALTHY_LOSSES)  # no validation loss: nothing to compare
    assert F.detect_worse_than_pca(*F.split_records(no_val + [_pca(0.01)])) is None


def test_worse_than_pca_judges_the_weights_the_run_kept():
    val = [1.0, 0.7, 0.5, 0.45, 0.44, 0.46, 0.5, 0.55, 0.6, 0.65]
    records = _epochs(HEALTHY_LOSSES, val) + [_pca(0.445)]
    assert F.detect_worse_than_pca(*F.split_records(records)).evidence["epoch"] == 10
    kept = records + [{"type": "event", "kind": "best_weights", "step": 100, "best_epoch": 5}]
    assert F.detect_worse_than_pca(*F.split_records(kept)) is None  # epoch 5: 0.44
    stopped = records + [{"type": "event", "kind": "early_stop", "step": 100, "best_epoch": 4,
                          "best_val_loss": 0.45}]
    finding = F.detect_worse_than_pca(*F.split_records(stopped))
    assert finding.evidence["val_loss"] == 0.45 and finding.evidence["best_weights_kept"]
    # the starting weights put back (best epoch 0): their score is the first epoch's
    # initial_val_loss, or the event's best_val_loss
    records[0]["initial_val_loss"] = 0.446
    start = records + [{"type": "event", "kind": "best_weights", "step": 100, "best_epoch": 0}]
    assert F.saved_val_loss(*F.split_records(start)[::2]) == (0.446, 0)
    assert F.detect_worse_than_pca(*F.split_records(start)) is None


def test_worse_than_pca_cannot_fire_when_the_start_is_pca_and_the_best_is_kept():
    # A run whose starting weights are PCA's solution, scored before training and kept as the
    # best candidate: it ends at PCA's validation loss or below, so the finding cannot fire
    import torch

    from aekit.config import RunConfig
    from aekit.training.trainer import Trainer, mean_loss

    class Worsen(Callback):
        def on_step_end(self, trainer, step, loss):
            trainer.flat.data.add_(0.05)

    def run(**options):
        torch.manual_seed(0)
        cfg = RunConfig().replace(hidden=(6,), latent_dim=2, epochs=4, batch_size=8,
                                  progress=False, **options)
        model = MLPAutoencoder(cfg.model, 5, "sigmoid")
        x = torch.rand(32, 5, generator=torch.Generator().manual_seed(1))
        trainer = Trainer(model, cfg, [Worsen()])
        # stands for PCA's validation error: the starting weights' (a pca_init model's)
        trainer.log_event("pca_baseline", "baseline", val_mse=mean_loss(model, x[24:]),
                          latent_dim=2)
        trainer.fit(x[:24], x[24:])
        return [f["kind"] for f in F.findings_of(trainer)]

    assert "worse_than_pca" not in run()
    assert "worse_than_pca" in run(restore_best_weights=False, early_stopping_patience=None)


def test_overfitting_states_the_train_validation_gap():
    records = _epochs(HEALTHY_LOSSES, [1.0, 0.7, 0.5, 0.45, 0.44, 0.46, 0.5, 0.55, 0.6, 0.65])
    for extra in ([], [{"type": "event", "kind": "best_weights", "step": 100, "best_epoch": 5}]):
        finding = F.detect_overfitting(*F.split_records(records + extra))
        assert "validation 0.65 vs train 0.13 (5.00x, gap 0.52)" in finding.message
        assert finding.evidence["train_val_gap"] == pytest.approx(0.52)
        assert finding.evidence["val_train_ratio"] == pytest.approx(5.0)


def test_steps_relative_to_layers_grown_from_zero_are_not_exploding():
    # a pca_init MLP's hidden-path output layers start at zero: early steps move them by many
    # times their (tiny) norm; the linear PCA path's layers still count
    layers = {**HEALTHY_LAYERS, "encoder.2": {"grad_rms": 1e-3, "update_ratio": 2.4}}
    side = ["linear_encoder", "linear_decoder", "encoder.2", "decoder.1"]
    sample = {**_diag(**layers), "side_layers": side}
    assert F.detect_exploding(*F.split_records([sample])) is None
    layers["linear_encoder"] = {"grad_rms": 1e-3, "update_ratio": 0.5}
    sample = {**_diag(**layers), "side_layers": side}
    finding = F.detect_exploding(*F.split_records([sample]))
    assert finding.evidence["layer"] == "linear_encoder"
    assert F.detect_exploding(*F.split_records([_diag(**layers)])).evidence["layer"] == \
        "encoder.2"  # without side_layers every layer counts


def test_findings_are_sorted_most_important_first():
    records = _epochs([1.0, 0.5, 0.3, 0.6, 2.0], skipped=2) + [_diag(l0={"dead": 0.6})]
    severities = [f.severity for f in F.find_all(records)]
    assert severities == sorted(severities, key=F.SEVERITY_RANK.__getitem__)
    assert severities[0] == "critical"


# -- detectors on real runs --------------------------------------------------------------------
def test_real_run_deep_sigmoid_sgd_has_vanishing_gradients():
    rng = np.random.default_rng(0)
    x = rng.random((200, 32)).astype(np.float32)
    ae, diag = _fit(x, every=5, hidden=(64, 64, 64, 64, 64), activation="sigmoid",
                    optimizer="sgd", lr=0.05, schedule="constant", epochs=2, batch_size=50)
    kinds = [f["kind"] for f in F.findings_of(ae.trainer)]
    assert "vanishing_gradients" in kinds
    finding = next(f for f in F.findings_of(ae.trainer) if f["kind"] == "vanishing_gradients")
    assert finding["evidence"]["weak_layers"][0] == "encoder.0"


class NegativeBias(Callback):
    """Sets the first layer's biases far below zero before training: its ReLU units output
    zero for every input and get no gradient (what one bad, huge update does)."""

    def on_train_begin(self, trainer):
        with torch.no_grad():
            trainer.model.encoder[0].linear.bias.fill_(-20.0)


class KickEveryOtherEpoch(Callback):
    """Adds noise to every weight at the start of every other epoch: that epoch's loss jumps,
    the next one recovers (an epoch-to-epoch zigzag)."""

    def on_epoch_begin(self, trainer, epoch):
        if epoch % 2 == 0:
            gen = torch.Generator().manual_seed(epoch)
            kick = 0.3 * torch.randn(trainer.flat.data.shape, generator=gen)
            trainer.flat.data.add_(kick.to(trainer.flat.data.device))


class InjectNaN(Callback):
    def on_after_backward(self, trainer, step):
        if step == 13:
            trainer.flat.grad[0] = float("nan")


def _blobs() -> np.ndarray:
    rng = np.random.default_rng(0)
    x = 1.0 / (1.0 + np.exp(-(rng.normal(size=(120, 3)) @ rng.normal(size=(3, 10)))))
    return (x + 0.01 * rng.normal(size=x.shape)).clip(0, 1).astype(np.float32)


def _few_noisy_samples() -> np.ndarray:
    """30 samples of 50 features near a 2-D curve, with strong noise: too few to learn the
    curve from, enough for an 8-D code to memorise the training half's noise."""
    rng = np.random.default_rng(4)
    x = 1.0 / (1.0 + np.exp(-(rng.normal(size=(30, 2)) @ rng.normal(size=(2, 50)))))
    return (x + 0.2 * rng.normal(size=x.shape)).clip(0, 1).astype(np.float32)


SGD = dict(optimizer="sgd", schedule="constant")
# The runs built to go wrong start from random weights (not PCA's solution) and run to the end
# (no early stopping), as a plain MLP would
PLAIN = dict(pca_init=False, early_stopping_patience=None, auto_fix=False)
REAL_RUNS = {
    # plain SGD at a learning rate that moves weights by a fifth of their norm in one step
    "exploding_gradients": (_blobs, [], dict(**SGD, lr=0.5, batch_size=20, epochs=5,
                                             output_activation="identity")),
    "dead_units": (_blobs, [NegativeBias()], dict(activation="relu", epochs=5, batch_size=20)),
    # unscaled inputs in the hundreds push sigmoid units against their bounds
    "saturated_units": (lambda: _blobs() * 200 - 100, [],
                        dict(activation="sigmoid", scaling="none", output_activation="identity",
                             epochs=5, batch_size=20)),
    "plateau": (_blobs, [], dict(**SGD, lr=1e-6, epochs=12, batch_size=20)),
    # full-batch heavy-ball momentum at a learning rate far above the stable one
    "divergence": (_blobs, [], dict(optimizer="momentum", schedule="constant", lr=0.35,
                                    epochs=20, batch_size=120, output_activation="identity",
                                    seed=1)),
    "oscillation": (_blobs, [KickEveryOtherEpoch()], dict(epochs=12, batch_size=20)),
    "non_finite": (_blobs, [InjectNaN()], dict(**SGD, lr=0.05, epochs=6, batch_size=20)),
    "overfitting": (_few_noisy_samples, [],
                    dict(hidden=(128, 128), latent_dim=8, epochs=150, batch_size=10, lr=3e-3,
                         schedule="exponential", validation_split=0.5,
                         restore_best_weights=False)),
    # far too few steps at a small learning rate from random weights: PCA reconstructs better
    "worse_than_pca": (_blobs, [], dict(**SGD, lr=1e-3, epochs=3, batch_size=20)),
}


@pytest.mark.parametrize("kind", sorted(REAL_RUNS))
def test_each_detector_fires_on_a_real_run_built_for_it(kind):
    make_data, callbacks, options = REAL_RUNS[kind]
    x = np.asarray(make_data(), dtype=np.float32)
    diag = Diagnostics(5, torch.from_numpy(x))
    ae = Autoencoder(**{**TINY, **PLAIN, **options})
    ae.fit(x, callbacks=[diag, *callbacks])
    found = {f["kind"]: f for f in ae.findings()}
    assert kind in found, f"{kind} not raised; found {sorted(found)}"
    assert found[kind]["advice"] and found[kind]["evidence"]


def test_real_healthy_run_has_no_finding(blobs):
    ae, _ = _fit(blobs, every=5, epochs=15, batch_size=32, lr=5e-3, validation_split=0.2,
                 pca_init=True)
    assert F.findings_of(ae.trainer) == [] and ae.findings() == []


def test_findings_need_a_trained_model():
    with pytest.raises(TrainingError, match="call fit"):
        Autoencoder(**TINY).findings()


# -- ended at PCA, early stop at the peak lr -------------------------------------------------
def _check(kept_model):
    return {"type": "event", "kind": "pca_check", "step": 100, "kept_model": kept_model,
            "message": "kept PCA's solution" if not kept_model else "kept the trained model"}


def test_ended_at_pca_needs_pca_kept_or_near_and_a_falling_train_loss():
    # the train loss falls 19% over 3 epochs, the validation loss to its best at the end
    falling = _epochs(HEALTHY_LOSSES, [0.11] * 9 + [0.1])
    found = F.detect_ended_at_pca(*F.split_records(falling + [_pca(0.1), _check(False)]))
    assert found is not None and found.kind == "ended_at_pca"
    assert found.evidence["kept_pca"] and "--no-pca-init" in found.advice
    assert "still falling" in found.message
    # within 2% of PCA without a check event: at PCA too
    assert F.detect_ended_at_pca(*F.split_records(falling + [_pca(0.0985)])) is not None
    # clearly better than PCA and kept: nothing to say
    assert F.detect_ended_at_pca(*F.split_records(falling + [_pca(0.2), _check(True)])) is None
    # at PCA but the train loss had stopped falling: the model could not do better
    flat = _epochs([1.0, 0.5, 0.3] + [0.2999] * 7, [0.1] * 10)
    assert F.detect_ended_at_pca(*F.split_records(flat + [_pca(0.1), _check(False)])) is None
    # the train loss falls but the validation loss is long past its best: overfitting
    past = _epochs(HEALTHY_LOSSES, [0.09, 0.095] + [0.1] * 8)
    assert F.detect_ended_at_pca(*F.split_records(past + [_pca(0.1), _check(False)])) is None


def test_early_stop_at_peak_lr_fires_only_before_the_decay():
    stop = {"type": "event", "kind": "early_stop", "step": 60, "best_epoch": 3,
            "best_val_loss": 0.3}
    rising = _epochs(HEALTHY_LOSSES[:6], lr=[0.1, 0.3, 0.6, 0.9, 1.0, 0.95])
    found = F.detect_early_stop_at_peak_lr(*F.split_records(rising + [stop]))
    assert found is not None and found.evidence["lr_share_of_peak"] == pytest.approx(0.95)
    assert "--early-stopping-patience" in found.advice
    decayed = _epochs(HEALTHY_LOSSES, lr=[0.5, 1.0, 0.9, 0.7, 0.5, 0.3, 0.2, 0.1, 0.05, 0.02])
    assert F.detect_early_stop_at_peak_lr(*F.split_records(decayed + [stop])) is None
    assert F.detect_early_stop_at_peak_lr(*F.split_records(rising)) is None  # no early stop
