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
