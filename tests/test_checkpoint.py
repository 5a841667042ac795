"""Checkpoint files (round trip, the last two kept, damaged ones refused or skipped) and
numerical faults (a non-finite step never reaches the weights; repeated faults stop the run
with exit code 1 and the last good checkpoint kept)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from aekit.config import RunConfig
from aekit.errors import FormatError
from aekit.models import build_model
from aekit.training.checkpoint import (TrainingState, list_checkpoints, load_checkpoint,
                                       load_latest, save_checkpoint)
from aekit.training.trainer import Trainer

ROOT = Path(__file__).resolve().parents[1]


def _state(step: int) -> TrainingState:
    g = torch.Generator().manual_seed(step)
    tensors = {"model.w": torch.randn(3, 4, generator=g), "rng.torch_global": torch.get_rng_state()}
    meta = {"format": "aekit-checkpoint", "format_version": 1, "step": step, "epoch": 1,
            "batch_in_epoch": 2, "skipped_steps": 0, "schedule": {}, "checksum": "",
            "history": {"epochs": [{"epoch": 1, "step": 3, "train_loss": 0.1 + 3e-17}],
                        "events": []},
            "epoch_totals": {"loss_sum": 1.25, "loss_count": 3, "samples": 3},
            "early_stopping": {}, "config": {"lr": 0.1}, "data": {}, "metrics_bytes": 7}
    return TrainingState(tensors, meta)


def test_round_trip_and_only_the_last_two_are_kept(tmp_path):
    for step in (5, 10, 15):
        save_checkpoint(tmp_path, _state(step))
    assert [p.name for p in list_checkpoints(tmp_path)] == [
        "checkpoint-0000000015.safetensors", "checkpoint-0000000010.safetensors"]
    loaded = load_latest(tmp_path)
    want = _state(15)
    assert loaded.step == 15 and torch.equal(loaded.tensors["model.w"], want.tensors["model.w"])
    assert loaded.meta["history"] == want.meta["history"]  # floats round-trip exactly
    assert not list(tmp_path.glob("*.tmp"))


def _flip_last_byte(path: Path) -> None:
    data = bytearray(path.read_bytes())
    data[-1] ^= 0xFF
    path.write_bytes(bytes(data))


def test_damaged_newest_falls_back_to_previous_with_a_warning(tmp_path):
    save_checkpoint(tmp_path, _state(5))
    newest = save_checkpoint(tmp_path, _state(10))
    _flip_last_byte(newest)
    with pytest.raises(FormatError, match="damaged"):
        load_checkpoint(newest)
    with pytest.warns(RuntimeWarning, match="checkpoint-0000000010.*damaged"):
        assert load_latest(tmp_path).step == 5


@pytest.mark.parametrize("damage", ["truncate", "empty", "garbage", "not_json_state"])
def test_every_damaged_checkpoint_raises_format_error(tmp_path, damage):
    path = save_checkpoint(tmp_path, _state(5))
    data = path.read_bytes()
    if damage == "truncate":
        path.write_bytes(data[: len(data) // 2])
    elif damage == "empty":
        path.write_bytes(b"")
    elif damage == "garbage":
        path.write_bytes(os.urandom(300))
    else:
        path.write_bytes(data.replace(b'"state":"{', b'"state":"[', 1))
    with pytest.raises(FormatError, match=str(path.name)):
        load_checkpoint(path)
    with pytest.warns(RuntimeWarning), pytest.raises(FormatError, match="no valid checkpoint"):
        load_latest(tmp_path)


def test_missing_field_is_named(tmp_path):
    state = _state(5)
    del state.meta["epoch_totals"]
    path = save_checkpoint(tmp_path, state)
    with pytest.raises(FormatError, match="epoch_totals"):
        load_checkpoint(path)


def test_no_checkpoint_is_none(tmp_path):
    assert load_latest(tmp_path) is None and load_latest(tmp_path / "absent") is None


# -- numerical faults --------------------------------------------------------------------------
def _trainer(**changes) -> Trainer:
    torch.manual_seed(0)
    cfg = RunConfig().replace(hidden=(6,), latent_dim=2, optimizer="adam", epochs=1,
                              batch_size=4, progress=False, **changes)
    model = build_model(cfg.model, 5, "identity", 0.0, (5,))
    return Trainer(model, cfg)


def test_non_finite_step_touches_neither_weights_nor_optimizer_state():
    trainer = _trainer()
    x = torch.randn(8, 5)
    trainer.train_step(x)  # creates Adam's state
    weights = trainer.flat.data.clone()
    optim = {k: v.clone() for k, v in trainer.optimizer.state_tensors().items()}
    bad = x.clone()
    bad[0, 0] = float("nan")
    assert np.isnan(trainer.train_step(bad))
    assert trainer.skipped_steps == 1
    assert torch.equal(trainer.flat.data, weights)
    for key, value in trainer.optimizer.state_tensors().items():
        assert torch.equal(value, optim[key]), key


def test_repeated_faults_stop_with_exit_1_and_keep_the_last_good_checkpoint(tmp_path):
    data = tmp_path / "x.npy"
    np.save(data, np.random.default_rng(0).normal(size=(200, 6)).astype(np.float32))
    out = tmp_path / "run"
    cmd = [sys.executable, "-m", "aekit", "train", "--data", str(data), "--out", str(out),
           "--hidden", "8", "--latent-dim", "2", "--optimizer", "sgd", "--lr", "3",
           "--schedule", "constant", "--epochs", "30", "--batch-size", "16", "--threads", "1",
           "--no-progress", "--checkpoint-every-steps", "2", "--max-rollbacks", "2"]
    env = dict(os.environ, PYTHONPATH=str(ROOT / "src"))
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 1, proc.stderr
    errors = [line for line in proc.stderr.splitlines() if "error" in line]
    assert len(errors) == 1 and "training cannot go on" in errors[0]
    assert "Traceback" not in proc.stderr
    checkpoints = list_checkpoints(out)
    assert checkpoints
    state = load_checkpoint(checkpoints[0])
    assert all(bool(torch.isfinite(v).all()) for k, v in state.tensors.items()
               if k.startswith("model."))
    events = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    assert sum(e.get("kind") == "rollback" for e in events) == 2
