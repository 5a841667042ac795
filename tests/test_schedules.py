"""Schedules against naive references: plain loops that accumulate, and PyTorch's schedulers."""

from __future__ import annotations

import json
import math

import pytest
import torch

from aekit.config import SCHEDULES, ScheduleConfig
from aekit.errors import ConfigError, FormatError
from aekit.training.schedules import Schedule, cycle_of, lr_at

BASE_LR = 0.1
TOTAL = 100
PER_EPOCH = 10


def schedule_values(cfg: ScheduleConfig, total: int = TOTAL, base_lr: float = BASE_LR,
                    per_epoch: int = PER_EPOCH) -> list[float]:
    return [lr_at(step, cfg, base_lr, total, per_epoch) for step in range(total)]


def assert_close(actual: list[float], expected: list[float], rel: float = 1e-9) -> None:
    assert len(actual) == len(expected)
    for step, (a, e) in enumerate(zip(actual, expected)):
        assert a == pytest.approx(e, rel=rel, abs=1e-15), f"step {step}: {a} != {e}"


def torch_lrs(make_scheduler, steps: int, base_lr: float = BASE_LR) -> list[float]:
    """The lr PyTorch's scheduler gives each of ``steps`` optimizer steps."""
    optimizer = torch.optim.SGD([torch.zeros(1, requires_grad=True)], lr=base_lr)
    scheduler = make_scheduler(optimizer)
    lrs = [optimizer.param_groups[0]["lr"]]
    for _ in range(steps - 1):
        optimizer.step()
        scheduler.step()
        lrs.append(optimizer.param_groups[0]["lr"])
    return lrs


# --- references, written as loops -------------------------------------------------------------

def warmup_reference(warmup: int, base_lr: float = BASE_LR) -> list[float]:
    lrs, lr = [], 0.0
    for _ in range(warmup):
        lr += base_lr / (warmup + 1)
        lrs.append(lr)
    return lrs


def step_reference(total: int, step_size: int, gamma: float, warmup: int = 0) -> list[float]:
    lrs, lr = warmup_reference(warmup), BASE_LR
    for since_warmup in range(total - warmup):
        if since_warmup > 0 and since_warmup % step_size == 0:  # a boundary passes
            lr *= gamma
        lrs.append(lr)
    return lrs


def exponential_reference(total: int, final: float, warmup: int = 0) -> list[float]:
    lrs, lr = warmup_reference(warmup), BASE_LR
    per_step = final ** (1.0 / (total - warmup))
    for _ in range(total - warmup):
        lrs.append(lr)
        lr *= per_step
    return lrs


def linear_reference(total: int, final: float, warmup: int = 0) -> list[float]:
    lrs, lr = warmup_reference(warmup), BASE_LR
    per_step = BASE_LR * (1.0 - final) / (total - warmup)
    for _ in range(total - warmup):
        lrs.append(lr)
        lr -= per_step
    return lrs


def sgdr_reference(total: int, first: float, mult: float, decay: float, final: float,
                   warmup: int = 0) -> tuple[list[float], list[tuple[int, int, int]]]:
    """SGDR tracking cycle start and length; real-valued boundaries rounded half up."""
    lrs, cycles = warmup_reference(warmup), [(0, 0, math.floor(first + 0.5))] * warmup
    cycle, start_real, length_real = 0, 0.0, first
    start, end = 0, math.floor(first + 0.5)
    for t in range(total - warmup):
        while t >= end:  # the cycle is over: the next one is mult times longer
            cycle += 1
            start_real += length_real
            length_real *= mult
            start, end = end, math.floor(start_real + length_real + 0.5)
        peak = BASE_LR * decay**cycle
        cosine = 0.5 * (1 + math.cos(math.pi * (t - start) / (end - start)))
        lrs.append(peak * final + (peak - peak * final) * cosine)
        cycles.append((cycle, t - start, end - start))
    return lrs, cycles


# --- each schedule at every step --------------------------------------------------------------

def test_constant():
    assert schedule_values(ScheduleConfig(schedule="constant")) == [BASE_LR] * TOTAL


@pytest.mark.parametrize("warmup", [0, 7])
@pytest.mark.parametrize("step_size_epochs,gamma", [(2, 0.5), (3, 0.1), (20, 0.3)])
def test_step_every_n_epochs(warmup, step_size_epochs, gamma):
    cfg = ScheduleConfig(schedule="step", step_size_epochs=step_size_epochs, gamma=gamma,
                         warmup_steps=warmup)
    expected = step_reference(TOTAL, step_size_epochs * PER_EPOCH, gamma, warmup)
    assert_close(schedule_values(cfg), expected)


@pytest.mark.parametrize("total", [3, *range(5, 40), 100, 101, 102])
def test_step_default_drops_exactly_twice_at_thirds(total):
    cfg = ScheduleConfig(schedule="step", gamma=0.5)
    lrs = schedule_values(cfg, total=total)
    drops = [s for s in range(1, total) if lrs[s] < lrs[s - 1]]
    assert len(drops) == 2
    assert drops[0] == math.ceil(total / 3) and drops[1] == 2 * drops[0]
    assert_close(lrs, step_reference(total, drops[0], 0.5))


@pytest.mark.parametrize("warmup", [0, 10])
@pytest.mark.parametrize("final", [0.01, 0.5, 1.0])
def test_exponential(warmup, final):
    cfg = ScheduleConfig(schedule="exponential", final_lr_fraction=final, warmup_steps=warmup)
    assert_close(schedule_values(cfg), exponential_reference(TOTAL, final, warmup))


@pytest.mark.parametrize("warmup", [0, 10])
@pytest.mark.parametrize("final", [0.0, 0.01, 0.5])
def test_linear(warmup, final):
    cfg = ScheduleConfig(schedule="linear", final_lr_fraction=final, warmup_steps=warmup)
    assert_close(schedule_values(cfg), linear_reference(TOTAL, final, warmup))


@pytest.mark.parametrize("warmup", [0, 10])
@pytest.mark.parametrize("final", [0.0, 0.01, 0.3])
def test_cosine_matches_torch_cosine_annealing(warmup, final):
    cfg = ScheduleConfig(schedule="cosine", final_lr_fraction=final, warmup_steps=warmup)
    decay = TOTAL - warmup
    expected = warmup_reference(warmup) + torch_lrs(
        lambda opt: torch.optim.lr_scheduler.CosineAnnealingLR(
            opt, T_max=decay, eta_min=BASE_LR * final), decay)
    assert_close(schedule_values(cfg), expected)


@pytest.mark.parametrize("total,warmup,first_epochs,mult,decay,final", [
    (100, 0, 1, 2.0, 1.0, 0.01),   # cycles of 10, 20, 40, then 30 of an 80
    (100, 0, 1, 2.0, 0.5, 0.01),   # peaks halve at each restart
    (100, 5, 2, 1.0, 0.7, 0.0),    # equal cycles after a warm-up
    (100, 0, 1, 1.5, 0.8, 0.1),    # fractional lengths, boundaries rounded
    (80, 10, None, 2.0, 0.6, 0.05),  # default: 3 cycles of 10, 20, 40 fill the 70 steps
    (100, 0, None, 3.0, 0.9, 0.0),   # default, T=100 not a multiple of 1+3+9
    (2, 0, None, 2.0, 0.5, 0.0),     # tiny run: the first cycle is 1 step, not 0
])
def test_cosine_restarts(total, warmup, first_epochs, mult, decay, final):
    cfg = ScheduleConfig(schedule="cosine_restarts", warmup_steps=warmup,
                         first_cycle_epochs=first_epochs, cycle_mult=mult, restart_decay=decay,
                         final_lr_fraction=final)
    first = (first_epochs * PER_EPOCH if first_epochs is not None
             else max(1.0, (total - warmup) / (1 + mult + mult * mult)))
    expected, cycles = sgdr_reference(total, first, mult, decay, final, warmup)
    assert_close(schedule_values(cfg, total=total), expected)
    assert [cycle_of(s, cfg, total, PER_EPOCH) for s in range(total)] == cycles
    if first_epochs is None and total - warmup >= 1 + mult + mult * mult:
        assert cycles[-1] == (2, cycles[-1][2] - 1, cycles[-1][2])  # 3 cycles end with the run


def test_cosine_restarts_matches_torch_warm_restarts():
    cfg = ScheduleConfig(schedule="cosine_restarts", first_cycle_epochs=1, cycle_mult=2.0,
                         restart_decay=1.0, final_lr_fraction=0.05)
    expected = torch_lrs(lambda opt: torch.optim.lr_scheduler.CosineAnnealingWarmRestarts(
        opt, T_0=PER_EPOCH, T_mult=2, eta_min=0.05 * BASE_LR), TOTAL)
    assert_close(schedule_values(cfg), expected)


def test_cycle_of_other_schedules_is_the_whole_run():
    cfg = ScheduleConfig(schedule="cosine", warmup_steps=10)
    assert cycle_of(4, cfg, TOTAL, PER_EPOCH) == (0, 0, 90)
    assert cycle_of(55, cfg, TOTAL, PER_EPOCH) == (0, 45, 90)
    assert cycle_of(30, ScheduleConfig(schedule="one_cycle"), TOTAL,
                    PER_EPOCH) == (0, 30, TOTAL)


def test_warmup_steps_with_one_cycle_is_refused():
    with pytest.raises(ConfigError, match=r"`warmup_steps` does not apply to the one_cycle "
                       r"schedule.*--pct-start.*Received: warmup_steps=10"):
        ScheduleConfig(schedule="one_cycle", warmup_steps=10)


@pytest.mark.parametrize("total,pct_start,div,final_div", [
    (100, 0.25, 25.0, 1e3), (100, 0.3, 10.0, 1e4), (7, 0.25, 25.0, 1e3), (37, 0.5, 5.0, 10.0),
    (10, 0.15, 25.0, 1e3), (50, 0.01, 25.0, 1e3), (20, 1.0, 25.0, 1e3), (1, 0.3, 25.0, 1e3),
])
def test_one_cycle_matches_torch(total, pct_start, div, final_div):
    cfg = ScheduleConfig(schedule="one_cycle", pct_start=pct_start, div_factor=div,
                         final_div_factor=final_div)
    expected = torch_lrs(lambda opt: torch.optim.lr_scheduler.OneCycleLR(
        opt, max_lr=BASE_LR, total_steps=total, pct_start=pct_start, div_factor=div,
        final_div_factor=final_div, anneal_strategy="cos", cycle_momentum=False), total)
    assert_close(schedule_values(cfg, total=total), expected)


def test_one_cycle_rise_of_zero_length_starts_at_the_peak():
    # pct_start * total_steps == 1: the rise ends at step 0 (PyTorch divides by zero there)
    cfg = ScheduleConfig(schedule="one_cycle", pct_start=0.1)
    lrs = schedule_values(cfg, total=10)
    assert lrs[0] == BASE_LR
    assert lrs[-1] == pytest.approx(BASE_LR / 25 / 1e3)


@pytest.mark.parametrize("schedule", [s for s in SCHEDULES if s != "one_cycle"])
def test_warmup_ramps_linearly_then_schedule_starts_at_base_lr(schedule):
    cfg = ScheduleConfig(schedule=schedule, warmup_steps=9)
    lrs = schedule_values(cfg)
    assert_close(lrs[:9], warmup_reference(9))
    assert lrs[0] == pytest.approx(BASE_LR / 10) and lrs[8] == pytest.approx(0.9 * BASE_LR)
    assert lrs[9] == pytest.approx(BASE_LR)


def test_steps_past_the_run_keep_the_last_lr():
    cfg = ScheduleConfig(schedule="cosine")
    last = lr_at(TOTAL - 1, cfg, BASE_LR, TOTAL, PER_EPOCH)
    assert lr_at(TOTAL, cfg, BASE_LR, TOTAL, PER_EPOCH) == last
    assert lr_at(10 * TOTAL, cfg, BASE_LR, TOTAL, PER_EPOCH) == last


# --- the stateful wrapper ---------------------------------------------------------------------

def plateau(**changes) -> Schedule:
    cfg = ScheduleConfig(**{"schedule": "plateau", "plateau_factor": 0.1,
                            "plateau_patience_epochs": 3, "min_lr": 0.0, **changes})
    return Schedule(cfg, BASE_LR, TOTAL, PER_EPOCH)


def test_plateau_cuts_after_exactly_patience_epochs():
    schedule = plateau()
    cuts = [schedule.on_epoch_end(loss) for loss in [1.0, 0.5, 0.5, 0.5, 0.5, 0.5, 0.5, 0.5]]
    assert cuts == [False, False, False, False, True, False, False, True]
    assert schedule.lr(50) == pytest.approx(BASE_LR * 0.01)


def test_plateau_relative_threshold_and_reset_on_improvement():
    schedule = plateau()
    # 1.0 * (1 - 1e-4) is not reached by 0.99995: no improvement; 0.9 is one and resets the count
    cuts = [schedule.on_epoch_end(loss) for loss in [1.0, 0.99995, 0.99995, 0.9, 0.9, 0.9, 0.9]]
    assert cuts == [False, False, False, False, False, False, True]


def test_plateau_none_loss_and_other_schedules_are_no_ops():
    schedule = plateau(plateau_patience_epochs=1)
    assert [schedule.on_epoch_end(None) for _ in range(5)] == [False] * 5
    other = Schedule(ScheduleConfig(schedule="cosine"), BASE_LR, TOTAL, PER_EPOCH)
    assert [other.on_epoch_end(1.0) for _ in range(5)] == [False] * 5
    assert other.lr(30) == lr_at(30, ScheduleConfig(schedule="cosine"), BASE_LR, TOTAL, PER_EPOCH)


def test_plateau_respects_min_lr():
    schedule = plateau(plateau_patience_epochs=1, min_lr=2e-4)
    cuts = [schedule.on_epoch_end(1.0) for _ in range(5)]
    assert cuts == [False, True, True, True, False]  # 1e-2, 1e-3, 1e-4 (floored), then no cut
    assert schedule.lr(60) == 2e-4


def test_restart_replays_the_schedule_over_the_remaining_steps():
    cfg = ScheduleConfig(schedule="cosine", final_lr_fraction=0.0, warmup_steps=10)
    schedule = Schedule(cfg, BASE_LR, TOTAL, PER_EPOCH)
    before = [schedule.lr(s) for s in range(40)]
    schedule.restart(40)
    assert [schedule.lr(s) for s in range(40, TOTAL)] == pytest.approx(torch_lrs(
        lambda opt: torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=60), 60), rel=1e-9)
    assert schedule.lr(40) == BASE_LR  # a warm restart: back to the peak, no second warm-up
    assert before == schedule_values(cfg)[:40]


@pytest.mark.parametrize("schedule_name", ["constant", "plateau"])
def test_restart_of_flat_schedules_resets_the_scale(schedule_name):
    schedule = plateau(schedule=schedule_name, plateau_patience_epochs=1)
    schedule.scale_lr(0.5)
    schedule.on_epoch_end(1.0)
    schedule.on_epoch_end(1.0)
    assert schedule.lr(20) < BASE_LR
    schedule.restart(20)
    assert schedule.lr(20) == BASE_LR and schedule.lr(99) == BASE_LR


@pytest.mark.parametrize("name", SCHEDULES)
def test_scale_lr_multiplies_every_future_lr(name):
    cfg = ScheduleConfig(schedule=name, min_lr=0.0)
    schedule = Schedule(cfg, BASE_LR, TOTAL, PER_EPOCH)
    schedule.scale_lr(0.5)
    schedule.scale_lr(0.5)
    assert [schedule.lr(s) for s in range(TOTAL)] == pytest.approx(
        [0.25 * lr for lr in schedule_values(cfg)], rel=1e-12)


def test_state_dict_round_trip_through_json_gives_identical_lrs():
    cfg = ScheduleConfig(schedule="plateau", plateau_patience_epochs=2, plateau_factor=0.3)
    first = Schedule(cfg, BASE_LR, TOTAL, PER_EPOCH)
    for loss in [1.0, 0.9, 0.95, 0.95, 0.97]:
        first.on_epoch_end(loss)
    first.scale_lr(1 / 3)
    second = Schedule(cfg, BASE_LR, TOTAL, PER_EPOCH)
    second.load_state_dict(json.loads(json.dumps(first.state_dict())))
    assert [second.lr(s) for s in range(TOTAL)] == [first.lr(s) for s in range(TOTAL)]
    losses = [0.95, 0.95, 0.5, 0.6, 0.6]
    assert [second.on_epoch_end(x) for x in losses] == [first.on_epoch_end(x) for x in losses]
    assert second.state_dict() == first.state_dict()

    restarted = Schedule(ScheduleConfig(schedule="cosine_restarts"), BASE_LR, TOTAL, PER_EPOCH)
    restarted.restart(33)
    resumed = Schedule(ScheduleConfig(schedule="cosine_restarts"), BASE_LR, TOTAL, PER_EPOCH)
    resumed.load_state_dict(json.loads(json.dumps(restarted.state_dict())))
    assert [resumed.lr(s) for s in range(TOTAL)] == [restarted.lr(s) for s in range(TOTAL)]


@pytest.mark.parametrize("state,match", [
    ([1.0], "mapping"),
    ({"scale": 1.0}, "mapping"),
    ({"scale": -1.0, "restart_offset": 0, "best_val_loss": None, "bad_epochs": 0}, "scale"),
    ({"scale": "1", "restart_offset": 0, "best_val_loss": None, "bad_epochs": 0}, "scale"),
    ({"scale": 1.0, "restart_offset": 1.5, "best_val_loss": None, "bad_epochs": 0},
     "restart_offset"),
    ({"scale": 1.0, "restart_offset": TOTAL, "best_val_loss": None, "bad_epochs": 0},
     "restart_offset"),
    ({"scale": 1.0, "restart_offset": 0, "best_val_loss": "x", "bad_epochs": 0}, "best_val_loss"),
    ({"scale": 1.0, "restart_offset": 0, "best_val_loss": None, "bad_epochs": -1}, "bad_epochs"),
])
def test_load_state_dict_rejects_malformed_state(state, match):
    schedule = Schedule(ScheduleConfig(), BASE_LR, TOTAL, PER_EPOCH)
    with pytest.raises(FormatError, match=match):
        schedule.load_state_dict(state)


# --- bad inputs -------------------------------------------------------------------------------

@pytest.mark.parametrize("step,cfg,base_lr,total,per_epoch,match", [
    (0, ScheduleConfig(schedule="cosine", warmup_steps=100), 0.1, 100, 10,
     "`warmup_steps` must be smaller than .* 100.*warmup_steps=100"),
    (0, ScheduleConfig(schedule="linear", warmup_steps=150), 0.1, 100, 10, "warmup_steps=150"),
    (0, ScheduleConfig(), 0.1, 0, 10, "total_steps=0"),
    (-1, ScheduleConfig(), 0.1, 100, 10, "step=-1"),
    (0, ScheduleConfig(), 0.1, 100, 0, "steps_per_epoch=0"),
    (0, ScheduleConfig(), 0.0, 100, 10, "base_lr=0.0"),
    (0, ScheduleConfig(), float("nan"), 100, 10, "base_lr=nan"),
    (0, {"schedule": "cosine"}, 0.1, 100, 10, "ScheduleConfig"),
])
def test_bad_inputs_raise_config_error(step, cfg, base_lr, total, per_epoch, match):
    with pytest.raises(ConfigError, match=match):
        lr_at(step, cfg, base_lr, total, per_epoch)
    if step == 0:
        with pytest.raises(ConfigError, match=match):
            Schedule(cfg, base_lr, total, per_epoch)


def test_bad_restart_and_scale_raise_config_error():
    schedule = Schedule(ScheduleConfig(schedule="cosine"), BASE_LR, TOTAL, PER_EPOCH)
    with pytest.raises(ConfigError, match="step=100"):
        schedule.restart(TOTAL)
    with pytest.raises(ConfigError, match="factor=0"):
        schedule.scale_lr(0)


def test_rising_covers_one_cycles_climb_and_the_warm_up_only():
    one = Schedule(ScheduleConfig(schedule="one_cycle", pct_start=0.25), 1e-2, 100, 10)
    assert [one.rising(s) for s in (0, 24, 25, 99)] == [True, True, False, False]
    assert max(range(100), key=one.lr) in (24, 25)  # the peak is where the climb ends
    warm = Schedule(ScheduleConfig(schedule="cosine", warmup_steps=10), 1e-2, 100, 10)
    assert [warm.rising(s) for s in (0, 9, 10)] == [True, True, False]
    assert not Schedule(ScheduleConfig(schedule="cosine"), 1e-2, 100, 10).rising(0)
    one.restart(50)  # a warm restart jumps to the peak: nothing climbs
    assert not one.rising(51)
