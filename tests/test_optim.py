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


# name -> (aekit's options, PyTorch's optimizer doing the same). aekit's weight decay is
# decoupled for every optimizer: AdamW's rule for adam, and for plain SGD the same update as
# PyTorch's coupled weight_decay (w - lr * (g + wd * w) = w * (1 - lr * wd) - lr * g).
REFERENCES = {
    "sgd": ({}, lambda p: torch.optim.SGD(p, lr=0.1)),
    "sgd_weight_decay": ({"weight_decay": 0.2},
                         lambda p: torch.optim.SGD(p, lr=0.1, weight_decay=0.2)),
    "gd": ({}, lambda p: torch.optim.SGD(p, lr=0.1)),
    "momentum": ({}, lambda p: torch.optim.SGD(p, lr=0.1, momentum=0.9)),
    "nesterov": ({}, lambda p: torch.optim.SGD(p, lr=0.1, momentum=0.9, nesterov=True)),
    "adam": ({}, lambda p: torch.optim.Adam(p, lr=0.1)),
    "adam_weight_decay": ({"weight_decay": 0.3},
                          lambda p: torch.optim.AdamW(p, lr=0.1, weight_decay=0.3)),
    "adamw": ({}, lambda p: torch.optim.AdamW(p, lr=0.1, weight_decay=0.01)),
}


@pytest.mark.parametrize("name", sorted(REFERENCES))
def test_flat_optimizer_matches_torch(name):
    options, reference = REFERENCES[name]
    ours, ref = _net(0), _net(0)
    flat = FlatParams(ours)
    opt = FlatOptimizer(flat, OptimConfig(optimizer=name.split("_")[0], lr=0.1, **options))
    ref_opt = reference(ref.parameters())
    start = [p.detach().clone() for p in ours.parameters()]
    for step in range(6):
        flat.zero_grad()
        _loss(ours, step).backward()
        opt.step(0.1)
        ref_opt.zero_grad()
        _loss(ref, step).backward()
        ref_opt.step()
    for p, q, p0 in zip(ours.parameters(), ref.parameters(), start):
        assert not torch.equal(p, p0)  # it moved
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
    assert flat.packed_numel == sum(p.numel() for p in net.parameters())
    net[0].weight.data.fill_(3.0)
    assert (flat.data[: 20] == 3.0).all()
    for p in net.parameters():  # every parameter starts on a cache line, its grad too
        assert p.data.data_ptr() % FlatParams.ALIGN_BYTES == 0
        assert p.grad.data_ptr() % FlatParams.ALIGN_BYTES == 0
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
    assert state["exp_avg"].numel() == flat.packed_numel < flat.data.numel()  # gaps dropped
    other = FlatOptimizer(FlatParams(_net(3)), OptimConfig(optimizer="adam"))
    other.load_state_tensors(state)
    for k, v in other.state_tensors().items():
        torch.testing.assert_close(v, state[k])
    with pytest.raises(ValueError, match="packed buffer has 3 values"):
        other.load_state_tensors({**state, "exp_avg": torch.zeros(3)})


def test_gaps_between_parameters_stay_zero_through_training():
    net = _net(5)
    flat = FlatParams(net)
    gaps = torch.ones_like(flat.data, dtype=torch.bool)
    for _, a, b in flat.names:
        gaps[a:b] = False
    assert gaps.any()  # the test net's shapes leave gaps
    opt = FlatOptimizer(flat, OptimConfig(optimizer="adamw", weight_decay=0.1))
    for step in range(3):
        flat.zero_grad()
        _loss(net, step).backward()
        opt.step(0.05)
    for buf in (flat.data, flat.grad, flat.weight_mask, opt.adam_state["exp_avg"],
                opt.adam_state["exp_avg_sq"]):
        assert not buf[gaps].any()
    packed = flat.pack(flat.data)
    torch.testing.assert_close(packed, torch.cat([p.detach().reshape(-1)
                                                  for p in net.parameters()]))
    restored = torch.full_like(flat.data, 7.0)
    flat.unpack_into(packed, restored)
    torch.testing.assert_close(restored, flat.data)


def _adamw_runs(step_fn, cfg: OptimConfig, lr: float = 0.05) -> torch.Tensor:
    """The weights after 5 steps of ``step_fn(data, grad, state, lr)`` from _net(4)."""
    net = _net(4)
    flat = FlatParams(net)
    state = {"exp_avg": torch.zeros_like(flat.data), "exp_avg_sq": torch.zeros_like(flat.data),
             "step": torch.zeros(())}
    for step in range(5):
        flat.zero_grad()
        _loss(net, step).backward()
        state["step"] += 1
        step_fn(flat.data, flat.grad, state, lr)
    return flat.data.clone()


ADAMW = OptimConfig(optimizer="adamw", weight_decay=0.2)  # a decay large enough to matter


def test_reference_adamw_matches_torch_adamw():
    """The fallback of builds without the fused kernel, against torch.optim.AdamW itself (the
    single-tensor loop, not the fused kernel: an independent implementation)."""
    from aekit.training.optim import _adamw_reference

    ref = _adamw_runs(lambda d, g, s, lr: _adamw_reference(d, g, s, lr, ADAMW, 0.2), ADAMW)
    net = _net(4)
    opt = torch.optim.AdamW(net.parameters(), lr=0.05, weight_decay=0.2, foreach=False,
                            fused=False)
    for step in range(5):
        opt.zero_grad()
        _loss(net, step).backward()
        opt.step()
    torch.testing.assert_close(ref, FlatParams(net).data, rtol=1e-5, atol=1e-6)
    no_decay = _adamw_runs(lambda d, g, s, lr: _adamw_reference(d, g, s, lr, ADAMW, 0.0), ADAMW)
    assert not torch.allclose(ref, no_decay, rtol=1e-5, atol=1e-6)  # the decay is applied


def test_reference_adamw_matches_the_fused_kernel():
    """The fallback against the fused kernel itself, called directly (FlatOptimizer would
    fall back to the reference where the kernel is missing, comparing it with itself)."""
    from aekit.training.optim import _adamw_reference

    def fused(data, grad, state, lr):
        torch._fused_adamw_([data], [grad], [state["exp_avg"]], [state["exp_avg_sq"]], [],
                            [state["step"]], lr=lr, beta1=ADAMW.beta1, beta2=ADAMW.beta2,
                            weight_decay=0.2, eps=ADAMW.eps, amsgrad=False, maximize=False)

    try:
        kernel = _adamw_runs(fused, ADAMW)
    except (RuntimeError, NotImplementedError, AttributeError) as exc:
        pytest.skip(f"no fused AdamW kernel on this build's CPU: {exc}")
    ref = _adamw_runs(lambda d, g, s, lr: _adamw_reference(d, g, s, lr, ADAMW, 0.2), ADAMW)
    torch.testing.assert_close(kernel, ref, rtol=1e-5, atol=1e-6)
