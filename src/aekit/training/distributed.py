"""Data-parallel training on PyTorch's own engine (``torch.distributed``).

Every rank holds the whole training split and draws the same global permutation (same seed);
each global batch is cut into ``world_size`` contiguous shards, one per rank. After the
backward pass the flat gradient buffer is summed across ranks with ONE ``all_reduce``, each
rank's part weighted by its share of the batch, so the result is the gradient of the global
batch even when the last batch does not divide evenly. Weights therefore stay identical on all
ranks; only rank 0 writes files.

Launch with ``torchrun --nproc_per_node=N -m aekit train ...`` (gloo on CPU, NCCL on CUDA) or
``aekit train --nproc N``, which re-launches itself under ``torch.distributed.run``.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING

import torch
import torch.distributed as dist

if TYPE_CHECKING:
    from aekit.config import RunConfig


def world_size() -> int:
    """Number of processes training together (1 without an initialized process group)."""
    return dist.get_world_size() if dist.is_available() and dist.is_initialized() else 1


def rank() -> int:
    """This process's rank (0 without an initialized process group)."""
    return dist.get_rank() if dist.is_available() and dist.is_initialized() else 0


def is_main_process() -> bool:
    """True on rank 0, the only rank that writes files."""
    return rank() == 0


def launched_by_torchrun() -> bool:
    """True when torchrun's environment asks for more than one process."""
    return int(os.environ.get("WORLD_SIZE", "1")) > 1


def init_from_env(device: str = "auto") -> int:
    """Join the process group described by torchrun's environment variables.

    Uses NCCL when the run is on CUDA (each rank on ``cuda:LOCAL_RANK``), gloo otherwise.

    Args:
        device: the run's ``device`` option (auto, cpu, cuda).

    Returns:
        The world size (1 when not launched by torchrun: nothing is initialized).
    """
    if not launched_by_torchrun() or dist.is_initialized():
        return world_size()
    use_cuda = device == "cuda" or (device == "auto" and torch.cuda.is_available())
    if use_cuda:
        torch.cuda.set_device(int(os.environ.get("LOCAL_RANK", "0")))
    dist.init_process_group("nccl" if use_cuda else "gloo")
    return world_size()


def shutdown() -> None:
    """Leave the process group (a no-op when none is initialized)."""
    if dist.is_available() and dist.is_initialized():
        dist.destroy_process_group()


def shard(batch: torch.Tensor, world: int, this_rank: int,
          min_rows: int = 1) -> tuple[torch.Tensor, float]:
    """This rank's contiguous part of a global batch and its weight (share of the batch).

    A batch of ``n`` rows is cut into ``world`` near-equal parts; when that would give a rank
    a part of fewer than ``min_rows`` rows (but not none), it is cut into fewer parts, as
    many as hold ``min_rows`` each, and the ranks past them get nothing (weight 0). Batch
    normalization needs ``min_rows=2``: it cannot normalise a single row, and a last batch of
    3 rows over 2 ranks would otherwise give one of them one row. Every row is still used.

    Args:
        batch: (batch, ...) the global batch (rows of data, or indices).
        world: number of ranks. this_rank: this rank.
        min_rows: the fewest rows a non-empty part may have.

    Returns:
        A view of this rank's rows (possibly empty) and ``len(shard) / len(batch)``.
    """
    n = batch.shape[0]
    parts = world
    if n < world * min_rows:  # some part would be short: fewer, fuller parts
        parts = max(1, min(world, n // max(1, min_rows)))
    if this_rank >= parts:
        return batch[n:n], 0.0
    start, stop = n * this_rank // parts, n * (this_rank + 1) // parts
    return batch[start:stop], (stop - start) / max(n, 1)


def reduce_gradients(grad: torch.Tensor, loss: float, weight: float) -> float:
    """Sum ``weight * grad`` over ranks in place (one all_reduce); return the global loss."""
    grad.mul_(weight)
    dist.all_reduce(grad)
    loss_t = torch.tensor([loss * weight], dtype=torch.float64, device=grad.device)
    dist.all_reduce(loss_t)
    return float(loss_t)


def any_rank(flag: bool, device: torch.device) -> bool:
    """True on every rank when ``flag`` is true on at least one (a stop decision)."""
    t = torch.tensor([1.0 if flag else 0.0], device=device)
    dist.all_reduce(t, op=dist.ReduceOp.MAX)
    return bool(t.item() > 0)


def from_main(value: float | None, device: torch.device) -> float | None:
    """Rank 0's ``value`` on every rank (None stays None: then it is None on every rank)."""
    t = torch.tensor([float("nan") if value is None else value], dtype=torch.float64,
                     device=device)
    dist.broadcast(t, src=0)
    got = float(t.item())
    return None if value is None else got


def main_string(value: str) -> str:
    """Rank 0's string on every rank (e.g. the default run folder, named after the time)."""
    if world_size() == 1:
        return value
    box = [value]
    dist.broadcast_object_list(box, src=0)
    return str(box[0])


def relaunch(cfg: "RunConfig", out_dir: str) -> int:
    """Run ``aekit train`` again under ``torch.distributed.run`` with ``cfg.train.nproc``.

    The configuration travels as a JSON ``--config`` file; the launcher picks a free port
    (``--standalone``).

    Returns:
        The launcher's exit code.
    """
    values = cfg.to_dict()
    with tempfile.TemporaryDirectory(prefix="aekit-nproc-") as tmp:
        config_path = Path(tmp) / "config.json"
        config_path.write_text(json.dumps(values), encoding="utf-8")
        command = [sys.executable, "-m", "torch.distributed.run", "--standalone",
                   f"--nproc_per_node={cfg.train.nproc}", "-m", "aekit", "train",
                   "--config", str(config_path), "--out", out_dir]
        return subprocess.run(command, check=False).returncode
