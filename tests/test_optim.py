"""The flat-buffer optimizers against PyTorch's own, step by step."""

import pytest
import torch
from torch import nn

from aekit.config import OptimConfig
from aekit.training.optim import FlatOptimizer, FlatParams


def _net(seed: int) -> nn.Module:
    torch.manual_seed(seed)
    return nn.Sequential(nn.Linear(5, 4), nn.Tanh(), nn.Linear(4, 3))


def _loss(net: nn.Module, step: int) -> torch.Tensor:
    x = torch.randn(8, 5, generator=torch.Generator().manual_seed(step))
    return net(x).pow(2).mean()


REFERENCES = {
    "sgd": lambda p: torch.optim.SGD(p, lr=0.1),
    "gd": lambda p: torch.optim.SGD(p, lr=0.1),
    "momentum": lambda p: torch.optim.SGD(p, lr=0.1, momentum=0.9),
    "nesterov": lambda p: torch.optim.SGD(p, lr=0.1, momentum=0.9, nesterov=True),
    "adam": lambda p: torch.optim.Adam(p, lr=0.1),
    "adamw": lambda p: torch.optim.AdamW(p, lr=0.1, weight_decay=0.01),
}


@pytest.mark.parametrize("name", sorted(REFERENCES))
def test_flat_optimizer_matches_torch(name):
    ours, ref = _net(0), _net(0)
    flat = FlatParams(ours)
    opt = FlatOptimizer(flat, OptimConfig(optimizer=name, lr=0.1))
    ref_opt = REFERENCES[name](ref.parameters())
    for step in range(6):
        flat.zero_grad()
        _loss(ours, step).backward()
        opt.step(0.1)
        ref_opt.zero_grad()
        _loss(ref, step).backward()
        ref_opt.step()
    for p, q in zip(ours.parameters(), ref.parameters()):
        torch.testing.assert_close(p, q, rtol=1e-5, atol=1e-6)


def test_decoupled_weight_decay_for_sgd_shrinks_weights_by_lr_times_decay():
    net = _net(1)
    flat = FlatParams(net)
    before = flat.data.clone()
    opt = FlatOptimizer(flat, OptimConfig(optimizer="sgd", weight_decay=0.5))
    flat.zero_grad()
    opt.step(0.1)
    torch.testing.assert_close(flat.data, before * (1 - 0.1 * 0.5))


def test_parameters_are_views_of_one_buffer_and_only_weights_are_penalised():
    net = _net(2)
    flat = FlatParams(net)
    assert flat.data.numel() == sum(p.numel() for p in net.parameters())
    net[0].weight.data.fill_(3.0)
    assert (flat.data[: 20] == 3.0).all()
    views = flat.views(flat.weight_mask)
    assert views["0.weight"].eq(1).all() and views["0.bias"].eq(0).all()


def test_state_tensors_round_trip():
    net = _net(3)
    flat = FlatParams(net)
    opt = FlatOptimizer(flat, OptimConfig(optimizer="adam"))
    flat.zero_grad()
    _loss(net, 0).backward()
    opt.step(0.01)
    state = {k: v.clone() for k, v in opt.state_tensors().items()}
    assert set(state) == {"exp_avg", "exp_avg_sq", "step"} and float(state["step"]) == 1
    other = FlatOptimizer(FlatParams(_net(3)), OptimConfig(optimizer="adam"))
    other.load_state_tensors(state)
    for k, v in other.state_tensors().items():
        torch.testing.assert_close(v, state[k])


def test_reference_adamw_matches_the_fused_kernel():
    from aekit.training.optim import _adamw_reference

    fused, ref = _net(4), _net(4)
    flat_f, flat_r = FlatParams(fused), FlatParams(ref)
    cfg = OptimConfig(optimizer="adamw")
    opt_f, opt_r = FlatOptimizer(flat_f, cfg), FlatOptimizer(flat_r, cfg)
    for step in range(5):
        for net, flat in ((fused, flat_f), (ref, flat_r)):
            flat.zero_grad()
            _loss(net, step).backward()
        opt_f.step(0.05)
        opt_r.adam_state["step"] += 1
        _adamw_reference(flat_r.data, flat_r.grad, opt_r.adam_state, 0.05, cfg, 0.01)
    torch.testing.assert_close(flat_f.data, flat_r.data, rtol=1e-5, atol=1e-6)
