"""Data-parallel training: 2 processes on CPU (gloo) match one process with the same global
batch, only rank 0 writes, and a 2-process run resumes from its checkpoint."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors.numpy import load_file

from aekit.errors import ConfigError
from aekit.config import TrainConfig
from aekit.training.distributed import shard

# batch 31 does not divide the 165 training rows, and every global batch splits 15/16 (the
# last, of 10 rows, 5/5): the weighting of uneven shards is exercised on every step.
# --no-pca-init: the PCA start's zero-initialised last layers give the hidden layers gradients
# near zero in the first steps, which Adam scales up to full-size updates; the order in which
# ranks sum such gradients then shows in the weights far above rounding (6% on a few biases).
# What this test checks is the all-reduce, on a model whose updates do not amplify rounding.
OPTIONS = ["--hidden", "16", "--latent-dim", "4", "--epochs", "3", "--batch-size", "31",
           "--threads", "1", "--no-progress", "--checkpoint-every-steps", "7", "--no-pca-init"]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("localhost", 0))
        return s.getsockname()[1]


def _run(args: list[str], cwd: Path) -> subprocess.CompletedProcess:
    proc = subprocess.run([sys.executable, *args], cwd=cwd, capture_output=True, text=True,
                          timeout=120)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return proc


def _torchrun(train_args: list[str], cwd: Path) -> subprocess.CompletedProcess:
    return _run(["-m", "torch.distributed.run", "--nproc_per_node=2", "--master_addr=localhost",
                 f"--master_port={_free_port()}", "-m", "aekit", "train", *train_args], cwd)


def _weights(run_dir: Path) -> dict[str, np.ndarray]:
    return load_file(str(run_dir / "model.safetensors"))


def _assert_close(a: dict[str, np.ndarray], b: dict[str, np.ndarray]) -> None:
    assert a.keys() == b.keys()
    for key in a:
        np.testing.assert_allclose(a[key], b[key], rtol=1e-4, atol=1e-6, err_msg=key)


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("ddp")
    x = np.random.default_rng(0).normal(size=(203, 12)).astype(np.float32)
    np.save(root / "tiny.npy", x)
    base = ["--data", "tiny.npy", *OPTIONS]
    _run(["-m", "aekit", "train", *base, "--out", "single"], root)
    _torchrun([*base, "--out", "ddp"], root)
    return root


def test_two_processes_match_one_process(runs: Path) -> None:
    _assert_close(_weights(runs / "single"), _weights(runs / "ddp"))
    single = [json.loads(line) for line in (runs / "single/metrics.jsonl").open()]
    ddp = [json.loads(line) for line in (runs / "ddp/metrics.jsonl").open()]
    losses = [[r["train_loss"] for r in recs if r.get("type") == "epoch"]
              for recs in (single, ddp)]
    assert len(losses[1]) == 3  # one record per epoch: one writer
    np.testing.assert_allclose(losses[0], losses[1], rtol=1e-4)


def test_only_rank_zero_writes(runs: Path) -> None:
    written = sorted(p.name for p in runs.rglob("*") if p.is_file() and p.parent.name != "single")
    assert written.count("metrics.jsonl") == 1 and written.count("model.safetensors") == 1
    assert written.count("summary.json") == 1
    assert not list(runs.glob(".checkpoint-*.tmp"))


def test_resume_under_torchrun_with_nproc(runs: Path) -> None:
    """Cut the run back to its step-14 checkpoint; `--nproc 2 --resume` finishes it."""
    import shutil

    shutil.copytree(runs / "ddp", runs / "resumed")
    checkpoints = sorted((runs / "resumed").glob("checkpoint-*.safetensors"))
    assert len(checkpoints) == 2
    checkpoints[-1].unlink()  # the newest left is mid-run
    (runs / "resumed/model.safetensors").unlink()
    proc = _run(["-m", "aekit", "train", "--data", "tiny.npy", *OPTIONS, "--nproc", "2",
                 "--resume", "--out", "resumed"], runs)
    assert "resuming from" in proc.stderr
    _assert_close(_weights(runs / "ddp"), _weights(runs / "resumed"))


def test_shard_splits_a_batch_into_contiguous_weighted_parts() -> None:
    batch = torch.arange(31)
    parts = [shard(batch, 2, r) for r in range(2)]
    assert torch.equal(torch.cat([p for p, _ in parts]), batch)
    assert [len(p) for p, _ in parts] == [15, 16]
    assert sum(w for _, w in parts) == pytest.approx(1.0)
    assert [len(p) for p, _ in (shard(torch.arange(1), 2, r) for r in range(2))] == [1, 0]


@pytest.mark.parametrize("n, world, sizes", [
    (3, 2, [3, 0]),  # 1/2 would leave one rank a single row: one part of 3
    (5, 4, [2, 3, 0, 0]),
    (7, 3, [2, 2, 3]),
    (8, 4, [2, 2, 2, 2]),
    (100, 2, [50, 50]),
])
def test_shard_for_batch_norm_never_gives_a_rank_a_single_row(n, world, sizes) -> None:
    parts = [shard(torch.arange(n), world, r, min_rows=2) for r in range(world)]
    assert [len(p) for p, _ in parts] == sizes
    assert torch.equal(torch.cat([p for p, _ in parts]), torch.arange(n))  # every row, once
    assert sum(w for _, w in parts) == pytest.approx(1.0)
    assert [w for _, w in parts] == pytest.approx([k / n for k in sizes])


def test_batch_norm_last_batch_of_3_rows_and_lr_auto_under_torchrun(tmp_path: Path) -> None:
    """203 training rows in batches of 100: the last global batch has 3 rows, which cut in
    two would give one rank a single row (batch norm cannot normalise it). And --lr auto
    must pick the rate one process picks (the range test must not sum gradients over ranks)."""
    x = np.random.default_rng(2).normal(size=(203, 12)).astype(np.float32)
    np.save(tmp_path / "rows.npy", x)
    args = ["--data", "rows.npy", "--test-split", "0", "--validation-split", "0",
            "--batch-size", "100", "--batch-norm", "--hidden", "16", "--latent-dim", "4",
            "--epochs", "2", "--threads", "1", "--no-progress", "--optimizer", "momentum",
            "--lr", "auto"]
    _run(["-m", "aekit", "train", *args, "--out", "single"], tmp_path)
    proc = _torchrun([*args, "--out", "ddp"], tmp_path)
    assert "Traceback" not in proc.stderr
    summaries = [json.loads((tmp_path / run / "summary.json").read_text())
                 for run in ("single", "ddp")]
    assert [s["n_train"] for s in summaries] == [203, 203]
    assert [s["steps"] for s in summaries] == [6, 6]  # 3 steps per epoch, the 3-row one too
    lrs = [json.loads((tmp_path / run / "config.json").read_text())["config"]["optim"]["lr"]
           for run in ("single", "ddp")]
    # each rank runs the range test as one process does, on the same batches: the same curve,
    # the same rate (summed gradients would make momentum's rate about 2x off)
    assert lrs[1] == pytest.approx(lrs[0], rel=1e-6), lrs


def test_nproc_must_be_a_positive_integer() -> None:
    with pytest.raises(ConfigError, match="nproc"):
        TrainConfig(nproc=0)


def test_bad_input_under_torchrun_is_reported_once(tmp_path: Path) -> None:
    proc = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--nproc_per_node=2",
                           "--master_addr=localhost", f"--master_port={_free_port()}", "-m",
                           "aekit", "train", "--data", "missing.npy", "--out", "run",
                           "--threads", "1"], cwd=tmp_path, capture_output=True, text=True,
                          timeout=120)
    assert proc.returncode != 0
    errors = [line for line in proc.stderr.splitlines() if "aekit train: error:" in line]
    assert len(errors) == 1 and "missing.npy: no such file" in errors[0]
    assert not (tmp_path / "run").exists()
