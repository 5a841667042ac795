"""Exact resume: a training subprocess killed with SIGKILL (mid-epoch, during a checkpoint
write) and resumed ends with the same weights, bit for bit, as an uninterrupted run, and its
metrics.jsonl has no gap and no duplicate. Refusals of a resume under other options or data."""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from safetensors.torch import load_file

from aekit.config import RunConfig
from aekit.errors import ConfigError
from aekit.runner import train_run
from aekit.training.callbacks import Callback
from aekit.training.checkpoint import SLOW_ENV, list_checkpoints

ROOT = Path(__file__).resolve().parents[1]
ARGS = ["--data", "digits", "--hidden", "24", "--latent-dim", "6", "--epochs", "4",
        "--batch-size", "64", "--checkpoint-every-steps", "7", "--threads", "1",
        "--no-progress", "--seed", "3"]


def _env(**extra: str) -> dict[str, str]:
    env = dict(os.environ, PYTHONPATH=str(ROOT / "src"), OMP_NUM_THREADS="1", **extra)
    env.pop(SLOW_ENV, None)
    env.update(extra)
    return env


def _train(out: Path, *extra: str, env: dict[str, str] | None = None) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "aekit", "train", *ARGS, "--out", str(out),
                             *extra], env=env or _env(), stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)


def _wait_for(predicate, timeout: float = 120.0) -> bool:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if predicate():
            return True
        time.sleep(0.01)
    return False


def _kill(proc: subprocess.Popen) -> None:
    proc.send_signal(signal.SIGKILL)
    proc.communicate()


def _kill_mid_run(proc: subprocess.Popen, out: Path) -> None:
    """SIGKILL a run that is still training: a kill that arrives after the run ended would
    make the resume that follows a no-op, and the test would prove nothing."""
    assert proc.poll() is None, "the run ended before it could be killed"
    _kill(proc)
    assert proc.returncode == -signal.SIGKILL
    assert not (out / "summary.json").exists(), "the run finished before the kill"


def _newest_step(out: Path) -> int:
    newest = list_checkpoints(out)
    return int(newest[0].name[11:21]) if newest else -1


def _epoch_steps(path: Path) -> list[tuple[int, int]]:
    records = [json.loads(line) for line in path.read_text().splitlines()]
    return [(r["epoch"], r["step"]) for r in records if r.get("type") == "epoch"]


@pytest.fixture(scope="module")
def baseline(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("baseline")
    proc = _train(out)
    _, err = proc.communicate(timeout=300)
    assert proc.returncode == 0, err
    return out


def test_sigkill_at_random_moments_and_during_a_write_resumes_bitwise(baseline, tmp_path):
    rng = random.Random(5)
    out = tmp_path / "run"
    # 1) killed at a random moment in the first half of the run (92 steps)
    proc = _train(out)
    target = rng.randrange(1, 46)
    assert _wait_for(lambda: _newest_step(out) >= target or proc.poll() is not None)
    time.sleep(rng.uniform(0.0, 0.02))
    _kill_mid_run(proc, out)
    # 2) resumed, then killed while a checkpoint sits written but not yet renamed
    proc = _train(out, "--resume", env=_env(**{SLOW_ENV: "30"}))
    assert _wait_for(lambda: any(out.glob(".checkpoint-*.tmp")) or proc.poll() is not None)
    assert proc.poll() is None, "the run ended before its checkpoint write could be interrupted"
    _kill(proc)
    assert any(out.glob(".checkpoint-*.tmp"))
    # 3) resumed, killed again at a random moment after it wrote a new checkpoint (each write
    # takes 0.5 s here: the final checkpoint still lies ahead, so the run is alive at the kill)
    before = list_checkpoints(out)[0]
    proc = _train(out, "--resume", env=_env(**{SLOW_ENV: "0.5"}))
    assert _wait_for(lambda: list_checkpoints(out)[0] != before or proc.poll() is not None)
    assert _newest_step(out) < 92
    time.sleep(rng.uniform(0.0, 0.3))
    _kill_mid_run(proc, out)
    # 4) resumed to the end
    proc = _train(out, "--resume")
    _, err = proc.communicate(timeout=300)
    assert proc.returncode == 0, err
    assert not any(out.glob(".checkpoint-*.tmp"))
    want, got = load_file(baseline / "model.safetensors"), load_file(out / "model.safetensors")
    assert want.keys() == got.keys()
    for key in want:
        assert want[key].dtype == got[key].dtype
        assert want[key].numpy().tobytes() == got[key].numpy().tobytes(), key
    assert _epoch_steps(out / "metrics.jsonl") == _epoch_steps(baseline / "metrics.jsonl")
    assert [e for e, _ in _epoch_steps(out / "metrics.jsonl")] == [1, 2, 3, 4]
    assert len(list_checkpoints(out)) == 2


def _cfg(data: str, **changes) -> RunConfig:
    options = dict(data=data, hidden=(8,), latent_dim=2, epochs=2, batch_size=16, threads=1,
                   progress=False, diagnostics_every_steps=None, checkpoint_every_steps=3)
    return RunConfig().replace(**{**options, **changes})


def test_resume_refuses_other_options_naming_them(tmp_path):
    data = tmp_path / "x.npy"
    np.save(data, np.random.default_rng(0).normal(size=(60, 5)).astype(np.float32))
    train_run(_cfg(str(data)), tmp_path / "run")
    with pytest.raises(ConfigError, match=r"lr: 0\.002 in the checkpoint, 0\.01 now"):
        train_run(_cfg(str(data), lr=0.01, resume=True), tmp_path / "run")
    # options that do not change the numbers may differ
    train_run(_cfg(str(data), resume=True, checkpoint_every_steps=5), tmp_path / "run")


def test_resume_refuses_other_data(tmp_path):
    data = tmp_path / "x.npy"
    x = np.random.default_rng(0).normal(size=(60, 5)).astype(np.float32)
    np.save(data, x)
    train_run(_cfg(str(data)), tmp_path / "run")
    x[:10, 2] += 1.0  # some of these rows are training rows (others test or validation rows)
    np.save(data, x)
    with pytest.raises(ConfigError, match="other data: the training split differs in its values"):
        train_run(_cfg(str(data), resume=True), tmp_path / "run")


def test_resume_without_checkpoint_starts_over(tmp_path, capsys):
    data = tmp_path / "x.npy"
    np.save(data, np.random.default_rng(0).normal(size=(40, 5)).astype(np.float32))
    summary = train_run(_cfg(str(data), resume=True), tmp_path / "run")
    assert summary["steps"] == 4
    assert "no checkpoint" in capsys.readouterr().err


class _Crash(Callback):
    """Raises at a given step, as a crash would (the checkpoints written so far remain)."""

    def __init__(self, at_step: int) -> None:
        self.at_step = at_step

    def on_step_end(self, trainer, step: int, loss: float) -> None:
        if step == self.at_step:
            raise KeyboardInterrupt


@pytest.mark.parametrize("options, crash_at", [
    ({"dropout": 0.2, "optimizer": "adam"}, 9),  # autograd path, dropout draws global RNG
    ({"batch_norm": True, "optimizer": "momentum", "early_stopping_patience": 2,
      "schedule": "plateau", "plateau_patience_epochs": 1}, 7),  # it stops after epoch 2
    ({"optimizer": "nesterov", "l2": 1e-3, "clip_norm": 0.5, "schedule": "cosine"}, 4),
    ({"noise": "gaussian:0.3"}, 9),  # fresh noise every step, the same after a resume
    ({"noise": "mask:0.3", "dropout": 0.1}, 5),
    ({"batch_schedule": "step:2", "step_size_epochs": 1}, 7),  # 6, 3, 2, 1 steps an epoch
])
def test_in_process_crash_and_resume_is_bitwise(tmp_path, options, crash_at):
    data = tmp_path / "x.npy"
    np.save(data, np.random.default_rng(1).normal(size=(90, 6)).astype(np.float32))
    cfg = _cfg(str(data), epochs=4, diagnostics_every_steps=2, **options)
    whole = train_run(cfg, tmp_path / "whole")
    with pytest.raises(KeyboardInterrupt):
        train_run(cfg, tmp_path / "crashed", callbacks=[_Crash(crash_at)])
    assert list_checkpoints(tmp_path / "crashed")
    resumed = train_run(cfg.replace(resume=True), tmp_path / "crashed")
    # the run pipeline's PCA baseline (at the start only) and gate (at the end) included
    kinds = [kind for kind, _ in _outcome(whole)[1]]
    assert kinds[0] == "pca_baseline" and "pca_check" in kinds
    assert _outcome(resumed) == _outcome(whole)
    want = load_file(tmp_path / "whole" / "model.safetensors")
    got = load_file(tmp_path / "crashed" / "model.safetensors")
    for key in want:
        assert want[key].numpy().tobytes() == got[key].numpy().tobytes(), key
    assert _epoch_steps(tmp_path / "crashed" / "metrics.jsonl") == \
        _epoch_steps(tmp_path / "whole" / "metrics.jsonl")


# -- the Trainer itself: best weights (possibly the starting ones), targets ---------------------
class _Worsen(Callback):
    """Pushes every weight up after each step: no epoch beats the starting weights."""

    def on_step_end(self, trainer, step: int, loss: float) -> None:
        for p in trainer.model.parameters():
            p.data.add_(0.05)


def _fit_trainer(folder: Path, cfg: RunConfig, data: dict, callbacks=(), resume: bool = False):
    import torch

    from aekit.models import MLPAutoencoder
    from aekit.training.checkpoint import Checkpointer, load_latest
    from aekit.training.trainer import Trainer

    torch.manual_seed(0)
    model = MLPAutoencoder(cfg.model, 5, "sigmoid")
    state = load_latest(folder) if resume else None
    checkpointer = Checkpointer(folder, cfg.train.checkpoint_every_steps, resume_from=state)
    trainer = Trainer(model, cfg, [checkpointer, *callbacks])
    trainer.fit(**data)
    return trainer


def _data(with_target: bool) -> dict:
    import torch

    g = torch.Generator().manual_seed(2)
    x = torch.rand(40, 5, generator=g)
    data = {"x_train": x[:30], "x_val": x[30:]}
    if with_target:  # denoising: noisy inputs, clean targets
        noisy = (x + 0.1 * torch.randn(40, 5, generator=g)).clamp(0, 1)
        data = {"x_train": noisy[:30], "x_val": noisy[30:], "y_train": x[:30], "y_val": x[30:]}
    return data


@pytest.mark.parametrize("options, worsen, target, crash_at", [
    # no epoch beats the start: the starting weights (best epoch 0) and the early-stopping
    # counters must survive the crash; it stops after 3 epochs and puts them back
    ({"early_stopping_patience": 3}, True, False, 5),
    ({"early_stopping_patience": None}, True, True, 11),
    # ordinary training toward a target (denoising), crash mid-epoch
    ({"optimizer": "adam", "lr": 0.01}, False, True, 7),
])
def test_trainer_crash_and_resume_keeps_best_state_and_target(tmp_path, options, worsen, target,
                                                              crash_at):
    cfg = RunConfig().replace(hidden=(6,), latent_dim=2, epochs=5, batch_size=8,
                              checkpoint_every_steps=3, progress=False, **options)
    data = _data(target)
    extra = [_Worsen()] if worsen else []
    whole = _fit_trainer(tmp_path / "whole", cfg, data, extra)
    with pytest.raises(KeyboardInterrupt):
        _fit_trainer(tmp_path / "crashed", cfg, data, [*extra, _Crash(crash_at)])
    resumed = _fit_trainer(tmp_path / "crashed", cfg, data, extra, resume=True)
    assert resumed.resumed
    assert whole.flat.data.numpy().tobytes() == resumed.flat.data.numpy().tobytes()
    assert resumed.history.initial_val_loss == whole.history.initial_val_loss is not None

    def timeless(epochs):
        return [{k: v for k, v in e.items() if k not in ("seconds", "samples_per_second")}
                for e in epochs]

    assert timeless(resumed.history.epochs) == timeless(whole.history.epochs)
    assert [e["kind"] for e in resumed.history.events] == [e["kind"] for e in
                                                           whole.history.events]
    if worsen:
        assert whole.history.events[-1]["best_epoch"] == 0


def test_resume_refuses_another_target(tmp_path):
    cfg = RunConfig().replace(hidden=(6,), latent_dim=2, epochs=2, batch_size=8,
                              checkpoint_every_steps=3, progress=False)
    data = _data(True)
    _fit_trainer(tmp_path / "run", cfg, data)
    other = dict(data, y_train=data["y_train"].flip(0).contiguous())
    with pytest.raises(ConfigError, match="differs in its reconstruction target"):
        _fit_trainer(tmp_path / "run", cfg, other, resume=True)
    no_target = {"x_train": data["x_train"], "x_val": data["x_val"]}
    with pytest.raises(ConfigError, match="reconstruction target"):
        _fit_trainer(tmp_path / "run", cfg, no_target, resume=True)


def test_an_event_logged_at_the_start_is_not_repeated_on_resume(tmp_path):
    class Baseline(Callback):
        def on_train_begin(self, trainer) -> None:  # as the run pipeline's PCABaseline
            trainer.log_event("pca_baseline", "PCA-2 validation mse 0.05", val_mse=0.05,
                              latent_dim=2)

    class Seen(Callback):
        def __init__(self) -> None:
            self.kinds: list[str] = []

        def on_event(self, trainer, event) -> None:
            self.kinds.append(event["kind"])

    cfg = RunConfig().replace(hidden=(6,), latent_dim=2, epochs=3, batch_size=8,
                              checkpoint_every_steps=2, progress=False)
    with pytest.raises(KeyboardInterrupt):
        _fit_trainer(tmp_path, cfg, _data(False), [Baseline(), _Crash(6)])
    seen = Seen()
    trainer = _fit_trainer(tmp_path, cfg, _data(False), [Baseline(), seen], resume=True)
    assert "pca_baseline" not in seen.kinds
    assert [e["kind"] for e in trainer.history.events].count("pca_baseline") == 1


# -- the outcome, not only the weights: findings, events, the doctor's budget ------------------
DEEP = dict(data="digits", hidden=(64, 48, 32, 24), latent_dim=8, activation="sigmoid",
            optimizer="sgd", lr=0.1, schedule="constant", batch_size=32, epochs=6, threads=1,
            progress=False, diagnostics_every_steps=20, pca_init=False,
            checkpoint_every_steps=25, seed=1)  # 270 steps; vanishing gradients, worse than PCA


def _outcome(summary: dict) -> tuple:
    """What a resume must reproduce: the findings whole, the events' kinds and steps."""
    return summary["findings"], [(e["kind"], e["step"]) for e in summary["events"]]


@pytest.mark.parametrize("crash_at", [30, 255])
def test_crash_and_resume_ends_with_the_same_findings_and_events(tmp_path, crash_at):
    # 255: resumed from step 250, after which the run takes a single diagnostics sample; the
    # findings must still come from all 14 samples (the last quarter of them for vanishing
    # gradients), and the doctor's smoothed loss must not start over
    cfg = RunConfig().replace(**DEEP, auto_fix=True)
    whole = train_run(cfg, tmp_path / "whole")
    assert {f["kind"] for f in whole["findings"]} >= {"vanishing_gradients"}
    with pytest.raises(KeyboardInterrupt):
        train_run(cfg, tmp_path / "crashed", callbacks=[_Crash(crash_at)])
    resumed = train_run(cfg.replace(resume=True), tmp_path / "crashed")
    assert _outcome(resumed) == _outcome(whole)
    want = load_file(tmp_path / "whole" / "model.safetensors")
    got = load_file(tmp_path / "crashed" / "model.safetensors")
    assert all(want[k].numpy().tobytes() == got[k].numpy().tobytes() for k in want)

    def diagnostics(run: Path) -> list[dict]:
        lines = (run / "metrics.jsonl").read_text().splitlines()
        return [r for r in map(json.loads, lines) if r.get("type") == "diagnostics"]

    assert diagnostics(tmp_path / "crashed") == diagnostics(tmp_path / "whole")


class _NaNAt(Callback):
    """A NaN gradient at the given steps: the doctor rolls back (and counts it)."""

    def __init__(self, steps: set[int]) -> None:
        self.steps = steps

    def on_after_backward(self, trainer, step: int) -> None:
        if step in self.steps:
            trainer.flat.grad[0] = float("nan")


def test_the_doctors_rollback_budget_survives_a_resume(tmp_path):
    from aekit.errors import TrainingError

    data = tmp_path / "x.npy"
    np.save(data, np.random.default_rng(1).normal(size=(90, 6)).astype(np.float32))
    cfg = _cfg(str(data), epochs=6, max_rollbacks=1, checkpoint_every_steps=5)
    nans = _NaNAt({3, 17})  # one rollback allowed: the second NaN ends the run
    with pytest.raises(TrainingError, match=r"after 1 rollback"):
        train_run(cfg, tmp_path / "whole", callbacks=[nans])
    with pytest.raises(KeyboardInterrupt):
        train_run(cfg, tmp_path / "crashed", callbacks=[nans, _Crash(12)])
    with pytest.raises(TrainingError, match=r"after 1 rollback"):
        train_run(cfg.replace(resume=True), tmp_path / "crashed", callbacks=[nans])


class _Peek(Callback):
    """Copies the doctor's good state when the (resumed) run's first epoch begins, then stops."""

    def __init__(self, doctor) -> None:
        self.doctor = doctor

    def on_epoch_begin(self, trainer, epoch: int) -> None:
        self.good_step = self.doctor._good_step
        self.good = {k: v.clone() for k, v in self.doctor._good.items()}
        raise KeyboardInterrupt


@pytest.mark.parametrize("doctor_first", [True, False])
@pytest.mark.parametrize("keep_best", [True, False])
def test_a_callbacks_saved_state_wins_over_its_on_train_begin(tmp_path, doctor_first,
                                                              keep_best):
    """The doctor takes a first good state in on_train_begin; on resume the saved one (an
    older step's) replaces it, whether the doctor comes before or after the checkpointer. The
    checkpoint holds it as tensors, or, when it equals the best weights kept for
    restore_best_weights, as a reference to them."""
    import torch

    from aekit.models import MLPAutoencoder
    from aekit.training.checkpoint import Checkpointer, load_latest
    from aekit.training.doctor import Doctor
    from aekit.training.trainer import Trainer

    # 6 steps per epoch, checkpoints at steps 4 and 8; the doctor's good state at step 8 is
    # that of step 6 (the epoch end, where the best weights are taken too), not step 8's
    cfg = RunConfig().replace(hidden=(6,), latent_dim=2, epochs=3, batch_size=5,
                              checkpoint_every_steps=4, progress=False, optimizer="adam",
                              lr=0.01, restore_best_weights=keep_best,
                              early_stopping_patience=None)
    with pytest.raises(KeyboardInterrupt):
        _fit_trainer(tmp_path, cfg, _data(False), [Doctor(snapshot_every_steps=3), _Crash(9)])
    saved = load_latest(tmp_path)
    doctor_state = saved.meta["callbacks"]["Doctor"]
    assert saved.step == 8 and doctor_state["good_step"] == 6
    prefix = "callback.Doctor.good." if not keep_best else "best."
    good = {k[len(prefix):]: v for k, v in saved.tensors.items() if k.startswith(prefix)}
    assert doctor_state.get("good_is") == ("best" if keep_best else None) and good
    torch.manual_seed(0)
    doctor = Doctor(snapshot_every_steps=3)
    checkpointer = Checkpointer(tmp_path, 4, resume_from=saved)
    peek = _Peek(doctor)
    callbacks = [doctor, checkpointer] if doctor_first else [checkpointer, doctor]
    trainer = Trainer(MLPAutoencoder(cfg.model, 5, "sigmoid"), cfg, [*callbacks, peek])
    with pytest.raises(KeyboardInterrupt):
        trainer.fit(**_data(False))
    assert trainer.resumed and trainer.step == 8 and peek.good_step == 6
    assert good.keys() == peek.good.keys()
    assert all(torch.equal(good[k], peek.good[k]) for k in good)
    assert not torch.equal(good["model.encoder.0.linear.weight"],
                           trainer.model.state_dict()["encoder.0.linear.weight"])


def test_every_cuda_devices_random_state_is_saved_and_restored(tmp_path, monkeypatch):
    """The plumbing, on any machine: with CUDA in use, the checkpoint holds each device's
    generator state and a resume puts each back on its device (dropout and a VAE's sampling
    on CUDA draw from them). The real thing runs in the CUDA test below."""
    import torch

    from aekit.models import MLPAutoencoder
    from aekit.training.trainer import Trainer

    states = [torch.arange(16, dtype=torch.uint8), torch.arange(16, 32, dtype=torch.uint8)]
    restored: list[tuple[int, list[int]]] = []
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "is_initialized", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 2)
    monkeypatch.setattr(torch.cuda, "get_rng_state_all", lambda: [s.clone() for s in states])
    monkeypatch.setattr(torch.cuda, "set_rng_state",
                        lambda state, device: restored.append((device, state.tolist())))
    cfg = RunConfig().replace(hidden=(6,), latent_dim=2, epochs=1, batch_size=8,
                              progress=False)
    trainer = Trainer(MLPAutoencoder(cfg.model, 5, "sigmoid"), cfg)
    trainer.fit(_data(False)["x_train"])
    state = trainer.training_state()
    assert [state.tensors[f"rng.cuda.{i}"].tolist() for i in range(2)] == \
        [s.tolist() for s in states]
    other = Trainer(MLPAutoencoder(cfg.model, 5, "sigmoid"), cfg)
    other.fit(_data(False)["x_train"])  # sets epochs and steps as the saved run's
    other._load_tensors(state)
    assert restored == [(0, states[0].tolist()), (1, states[1].tolist())]


@pytest.mark.skipif(not __import__("torch").cuda.is_available(), reason="needs a CUDA device")
def test_dropout_on_cuda_resumes_bitwise(tmp_path):
    cfg = RunConfig().replace(hidden=(16,), latent_dim=2, epochs=4, batch_size=8,
                              checkpoint_every_steps=3, progress=False, dropout=0.3,
                              optimizer="adam", device="cuda", diagnostics_every_steps=2)
    data = {k: v.cuda() for k, v in _data(False).items()}

    def fit(folder, callbacks=(), resume=False):
        import torch

        from aekit.models import MLPAutoencoder
        from aekit.training.checkpoint import Checkpointer, load_latest
        from aekit.training.diagnostics import Diagnostics
        from aekit.training.trainer import Trainer

        torch.manual_seed(0)
        torch.cuda.manual_seed_all(0)
        model = MLPAutoencoder(cfg.model, 5, "sigmoid").cuda()
        state = load_latest(folder) if resume else None
        trainer = Trainer(model, cfg, [Checkpointer(folder, 3, resume_from=state),
                                       Diagnostics(2, data["x_train"]), *callbacks])
        trainer.fit(**data)
        return trainer

    whole = fit(tmp_path / "whole")
    with pytest.raises(KeyboardInterrupt):
        fit(tmp_path / "crashed", [_Crash(10)])
    resumed = fit(tmp_path / "crashed", resume=True)
    assert resumed.resumed
    assert whole.flat.data.cpu().numpy().tobytes() == resumed.flat.data.cpu().numpy().tobytes()


def test_the_tensorboard_writer_resumes_past_the_samples_it_wrote(tmp_path):
    pytest.importorskip("tensorboard")
    from aekit.training.checkpoint import load_latest
    from aekit.training.diagnostics import Diagnostics
    from aekit.training.tensorboard import TensorBoardWriter

    cfg = RunConfig().replace(hidden=(6,), latent_dim=2, epochs=3, batch_size=8,
                              checkpoint_every_steps=4, progress=False,
                              diagnostics_every_steps=2, tensorboard=str(tmp_path / "tb"))
    with pytest.raises(KeyboardInterrupt):
        _fit_trainer(tmp_path / "run", cfg, _data(False),
                     [Diagnostics(2), TensorBoardWriter(tmp_path / "tb"), _Crash(9)])
    saved = load_latest(tmp_path / "run")
    assert saved.meta["callbacks"]["TensorBoardWriter"] == {"diag_seen": 4}  # after epoch 2
    writer = TensorBoardWriter(tmp_path / "tb")
    resumed = _fit_trainer(tmp_path / "run", cfg, _data(False), [Diagnostics(2), writer],
                           resume=True)
    assert resumed.resumed and writer._diag_seen == 6  # 12 steps, a sample every 2


def test_a_malformed_callback_state_is_refused_naming_the_callback(tmp_path):
    from aekit.errors import FormatError
    from aekit.training.checkpoint import load_latest
    from aekit.training.doctor import Doctor

    cfg = RunConfig().replace(hidden=(6,), latent_dim=2, epochs=2, batch_size=8,
                              checkpoint_every_steps=3, progress=False)
    _fit_trainer(tmp_path / "run", cfg, _data(False), [Doctor()])
    state = load_latest(tmp_path / "run")
    state.meta["callbacks"]["Doctor"]["rollbacks"] = -1
    from aekit.models import MLPAutoencoder
    from aekit.training.checkpoint import Checkpointer
    from aekit.training.trainer import Trainer

    trainer = Trainer(MLPAutoencoder(cfg.model, 5, "sigmoid"), cfg,
                      [Checkpointer(tmp_path / "run", 3, resume_from=state), Doctor()])
    with pytest.raises(FormatError, match="state of callback Doctor is malformed"):
        trainer.fit(**_data(False))


def test_a_good_state_equal_to_the_weights_is_not_written_twice(tmp_path):
    import torch

    from aekit.training.checkpoint import load_latest
    from aekit.training.doctor import Doctor

    cfg = RunConfig().replace(hidden=(6,), latent_dim=2, epochs=2, batch_size=8,
                              checkpoint_every_steps=None, progress=False,
                              restore_best_weights=False, early_stopping_patience=None)
    _fit_trainer(tmp_path, cfg, _data(False), [Doctor()])
    final = load_latest(tmp_path)  # the final state: the doctor's good state is the same
    assert final.meta["callbacks"]["Doctor"]["good_is"] == "current"
    assert not [k for k in final.tensors if k.startswith("callback.Doctor.")]
    doctor = Doctor()
    resumed = _fit_trainer(tmp_path, cfg, _data(False), [doctor], resume=True)
    assert resumed.resumed and doctor._good_step == final.meta["callbacks"]["Doctor"][
        "good_step"]
    assert all(torch.equal(doctor._good[f"model.{k}"], v)
               for k, v in resumed.model.state_dict().items())
