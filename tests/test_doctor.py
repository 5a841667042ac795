"""Remedies (aekit.training.doctor) and the ``aekit diagnose`` verb."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
import torch

from aekit import Autoencoder
from aekit.cli import main
from aekit.config import RunConfig, ScheduleConfig
from aekit.errors import ConfigError, TrainingError
from aekit.runner import train_run
from aekit.training.callbacks import Callback, MetricsWriter
from aekit.training.doctor import Doctor
from aekit.training.schedules import Schedule

TINY = dict(hidden=(16, 8), latent_dim=3, progress=False, seed=0, threads=1, batch_size=20,
            optimizer="sgd", lr=0.05, schedule="constant", early_stopping_patience=None)


class InjectNaN(Callback):
    """Puts a NaN into the gradient at the given steps (the trainer then skips the step and
    reports a NaN loss, exactly as for a NaN loss)."""

    def __init__(self, steps: set[int]) -> None:
        self.steps = steps

    def on_after_backward(self, trainer, step):
        if step in self.steps:
            trainer.flat.grad[0] = float("nan")


class Blowup(Callback):
    """Multiplies the weights by a large factor at one step, so the loss jumps (divergence)."""

    def __init__(self, step: int) -> None:
        self.step = step

    def on_step_end(self, trainer, step, loss):
        if step == self.step:
            trainer.flat.data.mul_(30.0)


def test_nan_mid_run_rolls_back_cuts_lr_and_finishes(blobs, tmp_path):
    path = tmp_path / "metrics.jsonl"
    ae = Autoencoder(**TINY, epochs=6)
    ae.fit(blobs, callbacks=[MetricsWriter(path), InjectNaN({13})])
    trainer = ae.trainer
    rollbacks = [e for e in trainer.history.events if e["kind"] == "rollback"]
    assert len(rollbacks) == 1 and rollbacks[0]["reason"] == "non_finite"
    assert rollbacks[0]["step"] == 13 and rollbacks[0]["lr_before"] == 0.05
    assert trainer.schedule.scale == 0.5
    assert trainer.history.epochs[-1]["lr"] == pytest.approx(0.025)
    assert all(torch.isfinite(p).all() for p in ae.model.parameters())
    assert trainer.step == 6 * trainer.steps_per_epoch  # it went on to the end
    events = [json.loads(line) for line in path.read_text().splitlines()
              if json.loads(line)["type"] == "event"]
    # the file holds the history's events once each: PCA's baseline (logged before the first
    # step), the rollback, maybe a best-weights restore at the end
    assert [e["kind"] for e in events] == [e["kind"] for e in trainer.history.events]
    assert [e["kind"] for e in events].count("rollback") == 1


def test_rollback_restores_the_last_good_weights(blobs):
    # snapshot at the start of training only: a NaN at step 3 restores the initial weights
    class Capture(Callback):
        def on_train_begin(self, trainer):
            self.initial = trainer.flat.data.clone()

        def on_event(self, trainer, event):
            self.after = trainer.flat.data.clone()

    capture = Capture()
    ae = Autoencoder(**TINY, epochs=1)
    ae.fit(blobs, callbacks=[capture, InjectNaN({3}),
                             Doctor(snapshot_every_steps=1000)])
    assert torch.equal(capture.after, capture.initial)


def test_persistent_nan_stops_with_a_clear_error_and_saves_weights(blobs, tmp_path):
    np.save(tmp_path / "x.npy", blobs)
    cfg = RunConfig().replace(data=str(tmp_path / "x.npy"), max_rollbacks=2, **TINY,
                              epochs=3)
    out = tmp_path / "run"
    with pytest.raises(TrainingError, match=r"after 2 rollback\(s\).*max-rollbacks 2.*saved in"):
        train_run(cfg, out, callbacks=[InjectNaN(set(range(5, 1000)))])
    assert (out / "model.safetensors").is_file()
    kinds = [json.loads(line).get("kind") for line in (out / "metrics.jsonl").read_text()
             .splitlines()]
    assert kinds.count("rollback") == 2 and "gave_up" in kinds


def test_divergence_rolls_back_unless_auto_fix_is_off(blobs):
    ae = Autoencoder(**TINY, epochs=8, auto_fix=False)
    ae.fit(blobs, callbacks=[Blowup(30)])
    # (a NaN after the blow-up is rolled back without auto_fix too: that is not a divergence)
    assert not [e for e in ae.trainer.history.events if e["kind"] == "rollback"
                and e["reason"] == "divergence"]
    for auto_fix in ("auto", True):
        ae = Autoencoder(**TINY, epochs=8, auto_fix=auto_fix)
        ae.fit(blobs, callbacks=[Blowup(30)])
        rollbacks = [e for e in ae.trainer.history.events if e["kind"] == "rollback"]
        assert rollbacks and rollbacks[0]["reason"] == "divergence"
        assert all(torch.isfinite(p).all() for p in ae.model.parameters())


class ShiftOutputAt(Callback):
    """Moves the output layer's bias by 2 at some steps: the loss jumps, nothing overflows."""

    def __init__(self, steps: set[int]) -> None:
        self.steps = steps

    def on_step_end(self, trainer, step, loss):
        if step in self.steps:
            with torch.no_grad():
                trainer.model.decoder[-1].bias.add_(2.0)


def test_spent_rollbacks_on_divergence_leave_the_run_alone_by_default(blobs):
    # "auto": once the rollbacks are spent the doctor says so and the run finishes
    ae = Autoencoder(**TINY, epochs=12, max_rollbacks=1)
    ae.fit(blobs, callbacks=[ShiftOutputAt({25, 55})])
    kinds = [e["kind"] for e in ae.trainer.history.events]
    assert kinds.count("rollback") == 1 and "divergence_left" in kinds
    assert ae.trainer.step == 12 * ae.trainer.steps_per_epoch
    # --auto-fix: the same run stops with an error that names the remedy spent
    with pytest.raises(TrainingError, match=r"after 1 rollback\(s\)"):
        Autoencoder(**TINY, epochs=12, max_rollbacks=1, auto_fix=True).fit(
            blobs, callbacks=[ShiftOutputAt({25, 55})])


def test_auto_fix_takes_true_false_or_auto():
    with pytest.raises(ConfigError, match="auto_fix.*true, false or"):
        RunConfig().replace(auto_fix="yes")
    with pytest.raises(ValueError, match="auto_fix"):
        Doctor(auto_fix="sometimes")


class FakeTrainer:
    """Just what the doctor's plateau logic touches."""

    def __init__(self) -> None:
        self.schedule = Schedule(ScheduleConfig(schedule="cosine"), 0.1, 1000, 10)
        self.step = 0
        self.events: list[dict] = []

    def snapshot(self):
        return {}

    def log_event(self, kind, message, **data):
        self.events.append({"kind": kind, "step": self.step, **data})


def test_plateau_triggers_a_warm_restart_with_auto_fix():
    trainer, doctor = FakeTrainer(), Doctor(auto_fix=True, plateau_epochs=3)
    losses = [1.0, 0.5, 0.3, 0.3, 0.3, 0.3, 0.3]
    for epoch, loss in enumerate(losses):
        trainer.step = 10 * (epoch + 1)
        doctor.on_epoch_end(trainer, epoch, {"train_loss": loss, "val_loss": None})
    assert [e["kind"] for e in trainer.events] == ["warm_restart"]
    assert trainer.schedule.restart_offset == 60  # restarted after the 6th epoch
    assert trainer.schedule.lr(60) == pytest.approx(0.1)


def test_plateau_warm_restart_in_a_real_run_brings_the_lr_back_to_its_peak(blobs):
    # a learning rate too small to move the loss: a plateau after the doctor's 5 epochs
    ae = Autoencoder(**{**TINY, "lr": 1e-7, "schedule": "cosine"}, epochs=10, auto_fix=True,
                     validation_split=0.0)
    ae.fit(blobs)
    trainer = ae.trainer
    per_epoch = trainer.steps_per_epoch
    restarts = [e for e in trainer.history.events if e["kind"] == "warm_restart"]
    assert restarts and restarts[0]["step"] == 6 * per_epoch  # after the 6th epoch
    assert trainer.schedule.restart_offset == restarts[-1]["step"]
    lrs = [e["lr"] for e in trainer.history.epochs]
    # cosine decays over the run; the restart replays it from its peak
    assert lrs[5] < lrs[0] and lrs[6] > lrs[5]
    assert lrs[6] == pytest.approx(trainer.schedule.lr(7 * per_epoch - 1))
    assert trainer.schedule.lr(6 * per_epoch) == pytest.approx(1e-7)
    without = Autoencoder(**{**TINY, "lr": 1e-7, "schedule": "cosine"}, epochs=10,
                          validation_split=0.0)
    without.fit(blobs)
    assert not [e for e in without.trainer.history.events if e["kind"] == "warm_restart"]
    assert [e["lr"] for e in without.trainer.history.epochs][6] < lrs[5]


@pytest.mark.parametrize("auto_fix", [False, "auto"])
def test_no_restart_without_auto_fix_or_while_improving(auto_fix):
    trainer, doctor = FakeTrainer(), Doctor(auto_fix=auto_fix, plateau_epochs=3)
    for epoch in range(8):
        doctor.on_epoch_end(trainer, epoch, {"train_loss": 0.3, "val_loss": None})
    trainer2, doctor2 = FakeTrainer(), Doctor(auto_fix=True, plateau_epochs=3)
    for epoch in range(8):
        doctor2.on_epoch_end(trainer2, epoch, {"train_loss": 1.0 / (epoch + 1), "val_loss": None})
    assert trainer.events == [] and trainer2.events == []


# -- aekit diagnose ----------------------------------------------------------------------------
def test_diagnose_prints_findings_most_important_first(tmp_path, capsys):
    run = tmp_path / "run"
    run.mkdir()
    records = [{"type": "epoch", "epoch": i + 1, "step": 10 * (i + 1), "train_loss": t,
                "val_loss": None, "lr": 0.1, "skipped_steps": 2}
               for i, t in enumerate([1.0, 0.5, 0.3] + [0.29999] * 7)]
    records.append({"type": "diagnostics", "step": 90, "grad_norm": 1.0, "layers": {
        "encoder.0": {"grad_rms": 1e-9}, "encoder.1": {"grad_rms": 1e-7},
        "decoder.0": {"grad_rms": 1e-5}, "decoder.1": {"grad_rms": 1e-3}}})
    (run / "metrics.jsonl").write_text("\n".join(json.dumps(r) for r in records) + "\n")
    assert main(["diagnose", str(run)]) == 0
    out = capsys.readouterr().out
    order = [out.index(k) for k in ("non-finite", "vanishing gradients", "plateau")]
    assert order == sorted(order)
    assert "encoder.0" in out and "advice:" in out
    assert main(["diagnose", str(run), "--json"]) == 0
    kinds = [f["kind"] for f in json.loads(capsys.readouterr().out)]
    assert kinds == ["non_finite", "vanishing_gradients", "plateau"]


def test_diagnose_a_real_run_and_summary_has_findings(blobs, tmp_path, capsys):
    np.save(tmp_path / "x.npy", blobs)
    out = tmp_path / "run"
    assert main(["train", "--data", str(tmp_path / "x.npy"), "--out", str(out), "--epochs", "3",
                 "--hidden", "16,8", "--latent-dim", "3", "--threads", "1", "--no-progress",
                 "--diagnostics-every-steps", "2"]) == 0
    summary = json.loads((out / "summary.json").read_text())
    assert summary["findings"] == []
    kinds = [e["kind"] for e in summary["events"]]
    assert kinds[0] == "pca_baseline" and kinds[-1] == "pca_check"
    assert set(kinds[1:-1]) <= {"best_weights", "early_stop"}
    assert "doctor: no problem found" in capsys.readouterr().out
    assert main(["diagnose", str(out)]) == 0
    text = capsys.readouterr().out
    assert "diagnostics samples" in text and "no problem found" in text


def test_train_prints_what_the_doctor_found_and_where_to_read_more(blobs, tmp_path, capsys):
    np.save(tmp_path / "x.npy", blobs)
    out = tmp_path / "hot"
    assert main(["train", "--data", str(tmp_path / "x.npy"), "--out", str(out), "--epochs", "5",
                 "--hidden", "16,8", "--latent-dim", "3", "--threads", "1", "--no-progress",
                 "--optimizer", "sgd", "--lr", "0.5", "--schedule", "constant",
                 "--batch-size", "20", "--output-activation", "identity",
                 "--no-pca-init"]) == 0  # from PCA's solution the best weights would be kept
    lines = capsys.readouterr().out.splitlines()
    findings = json.loads((out / "summary.json").read_text())["findings"]
    assert findings, "this learning rate should alarm the doctor"
    doctor = [line for line in lines if line.startswith("doctor: ")]
    assert doctor == [f"doctor: [{f['severity'].upper()}] {f['message']}" for f in findings[:3]]
    assert f"evidence and advice: aekit diagnose {out}" in lines[lines.index(doctor[-1]) + 1]


def test_doctor_lines_name_at_most_three_findings_and_count_the_rest():
    from aekit.runner import doctor_lines

    findings = [{"severity": "high", "message": f"problem {i}"} for i in range(5)]
    lines = doctor_lines(findings, "runs/x")
    assert lines == ["doctor: [HIGH] problem 0", "doctor: [HIGH] problem 1",
                     "doctor: [HIGH] problem 2",
                     "  (2 more, evidence and advice: aekit diagnose runs/x)"]
    assert doctor_lines(None, "runs/x") == []  # a summary without findings (not examined)


def test_diagnose_missing_run_folder_exits_2(tmp_path, capsys):
    assert main(["diagnose", str(tmp_path / "nope")]) == 2
    assert "metrics.jsonl: no such file" in capsys.readouterr().err


def test_diagnose_rejects_a_corrupt_metrics_file(tmp_path, capsys):
    (tmp_path / "metrics.jsonl").write_text('{"type": "epoch"}\nnot json\n')
    assert main(["diagnose", str(tmp_path)]) == 2
    assert "line 2: not JSON" in capsys.readouterr().err


@pytest.mark.parametrize("option, value, match", [
    ("max_rollbacks", -1, "max_rollbacks.*>= 0"),
    ("rollback_lr_factor", 1.5, "rollback_lr_factor.*<= 1"),
    ("diagnostics_every_steps", 0, "diagnostics_every_steps.*>= 1"),
])
def test_doctor_options_are_validated(option, value, match):
    from aekit.errors import ConfigError

    with pytest.raises(ConfigError, match=match):
        RunConfig().replace(**{option: value})


def test_nan_loss_without_rollbacks_left_is_not_silent(blobs):
    ae = Autoencoder(**TINY, epochs=2, max_rollbacks=0)
    with pytest.raises(TrainingError, match="after 0 rollback"):
        ae.fit(blobs, callbacks=[InjectNaN({2})])
    assert math.isfinite(float(ae.model.encoder[0].linear.weight.detach().sum()))


def test_a_rising_train_loss_is_not_called_a_plateau():
    from aekit.training.findings import detect_plateau

    flat = [{"train_loss": 1.0, "lr": 0.01, "step": i} for i in range(12)]
    assert detect_plateau(flat, [], []).kind == "plateau"
    rising = [{"train_loss": 1.0 + 0.05 * i, "lr": 0.01, "step": i} for i in range(12)]
    finding = detect_plateau(rising, [], [])
    assert finding.kind == "rising_loss" and "rose by" in finding.message
    assert "improved by -" not in finding.message
