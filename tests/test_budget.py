"""--time-budget: the run plans its length from its own speed, anneals the learning rate as
the time runs out, and counts the time of earlier sessions after a resume. (No assertion on
wall times: the machine's speed varies; the benchmark measures them.)"""

from __future__ import annotations

import json

import pytest

from aekit.config import RunConfig
from aekit.errors import ConfigError, FormatError
from aekit.runner import train_run
from aekit.training.budget import TimeBudget, reserve_seconds

QUICK = dict(threads=1, progress=False, diagnostics_every_steps=None)


def _events(run):
    return [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()
            if '"event"' in line]


def test_a_budget_plans_the_run_and_anneals_the_rate_to_its_end(tmp_path):
    cfg = RunConfig().replace(data="digits", latent_dim=8, time_budget=4.0,
                              early_stopping_patience=None, **QUICK)
    summary = train_run(cfg, tmp_path / "run")
    planned = [e for e in _events(tmp_path / "run") if e["kind"] == "time_budget"]
    assert len(planned) == 1 and planned[0]["planned_epochs"] >= 1
    epochs = [json.loads(line) for line in (tmp_path / "run/metrics.jsonl").read_text()
              .splitlines() if line.startswith('{"type": "epoch"')]
    assert 1 <= summary["epochs"] < 1000  # ended by the budget, not by the epoch cap
    peak = max(e["lr"] for e in epochs)
    assert epochs[-1]["lr"] < 0.2 * peak  # one-cycle spans the planned horizon


def test_epochs_cap_a_budgeted_run_and_bad_budgets_are_refused(tmp_path):
    summary = train_run(RunConfig().replace(data="digits", latent_dim=8, time_budget=600.0,
                                            epochs=3, **QUICK), tmp_path / "run")
    assert summary["epochs"] == 3
    for bad in (0, -5, "soon"):
        with pytest.raises(ConfigError, match=r"time_budget"):
            RunConfig().replace(time_budget=bad)


def test_the_time_already_spent_travels_with_the_checkpoint():
    budget = TimeBudget(100.0)
    budget.load_state_dict({"spent": 40.0, "planned_epochs": 12, "horizon": 540})
    budget._t0 = __import__("time").perf_counter()
    assert 40.0 <= budget.elapsed() < 41.0
    assert budget._left() == pytest.approx(100.0 - reserve_seconds(100.0) - 40.0, abs=1.0)
    with pytest.raises(FormatError, match=r"`spent` seconds"):
        budget.load_state_dict({"spent": -1})


def test_a_budgeted_run_resumes_counting_the_time_spent(tmp_path):
    from aekit.training.callbacks import Callback

    class Crash(Callback):
        def on_step_end(self, trainer, step, loss):
            if step == 60:
                raise KeyboardInterrupt

    cfg = RunConfig().replace(data="digits", latent_dim=8, time_budget=5.0,
                              checkpoint_every_steps=20, **QUICK)
    with pytest.raises(KeyboardInterrupt):
        train_run(cfg, tmp_path / "run", callbacks=[Crash()])
    summary = train_run(cfg.replace(resume=True), tmp_path / "run")
    assert summary["epochs"] >= 2
    plans = [e for e in _events(tmp_path / "run") if e["kind"] == "time_budget"]
    assert len(plans) == 2 and plans[0]["spent_before"] == 0  # one plan per session
    assert plans[1]["spent_before"] > 0 and "resumed with" in plans[1]["message"]


def test_one_slow_epoch_moves_the_plan_by_its_share_of_the_window(monkeypatch):
    """The plan follows the step time of the last three epochs: a slow epoch (15 s among 10 s
    ones) shrinks the horizon by a third of its excess, not all of it (from the last epoch
    alone the run would lose a third of its steps), and once the window holds normal epochs
    again the horizon grows back."""
    from types import SimpleNamespace

    from aekit.training import budget as budget_module

    now = [0.0]
    monkeypatch.setattr(budget_module, "time", SimpleNamespace(perf_counter=lambda: now[0]))
    trainer = SimpleNamespace(
        schedule=SimpleNamespace(total_steps=10**6), step=0, steps_per_epoch=100, epochs=1000,
        world=1, stop_training=False, patience=None, steps_in_epoch=lambda epoch: 100,
        config=SimpleNamespace(train=SimpleNamespace(early_stopping_patience=None)),
        log_event=lambda *args, **kwargs: None)
    budget = TimeBudget(1000.0)
    budget.on_train_begin(trainer)
    horizons = []
    for epoch, seconds in enumerate([10, 10, 10, 15, 10, 10, 10]):
        budget.on_epoch_begin(trainer, epoch)
        now[0] += seconds
        trainer.step += 100
        budget.on_epoch_end(trainer, epoch, {})
        horizons.append(trainer.schedule.total_steps)
    # 980 s to spend (2% reserve) at 0.1 s a step, minus the final validation pass
    assert abs(horizons[2] - (300 + (980 - 30 - 0.5) / 0.1)) <= 1
    assert 8_300 < horizons[3] < 8_500  # 35 s for the window's 300 steps; last epoch alone: 6,628
    assert horizons[4] == horizons[5] == horizons[3]  # within 1%: the rate is left alone
    assert horizons[6] > 9_700  # the slow epoch has left the window


def test_a_batch_schedule_under_a_budget_needs_its_step_in_epochs(tmp_path):
    """The batch grows at each third of the run, which a budgeted run does not know at its
    start: without --step-size-epochs (or --epochs) it is refused before any training; with
    it, the batch grows."""
    cfg = RunConfig().replace(data="digits", latent_dim=8, time_budget=3.0,
                              batch_schedule="step:2", early_stopping_patience=None, **QUICK)
    with pytest.raises(ConfigError, match=r"batch_schedule.*--step-size-epochs"):
        train_run(cfg, tmp_path / "refused")
    assert not (tmp_path / "refused" / "model.safetensors").exists()
    train_run(cfg.replace(step_size_epochs=2), tmp_path / "run")
    epochs = [json.loads(line) for line in (tmp_path / "run/metrics.jsonl").read_text()
              .splitlines() if line.startswith('{"type": "epoch"')]
    sizes = [e["batch_size"] for e in epochs]
    assert len(epochs) >= 3 and sizes[2] == 2 * sizes[0]
