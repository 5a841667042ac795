"""Cost of the training doctor's measurements (and of its in-memory snapshots).

Trains the same model on the same data with the same seed under four callback sets -- none,
the doctor alone (snapshots every 200 steps, on by default), diagnostics at the default interval
(every 50 steps), and both -- and prints the training time of each and the overhead relative to
none. Runs are interleaved and repeated, and the fastest repeat counts, to damp the noise of a
shared machine. It also prints the time spent inside the callbacks' own hooks, measured
directly, which is far less noisy than a difference of wall times.

    python benchmarks/diagnostics_overhead.py                 # Fashion-MNIST, 10k images
    python benchmarks/diagnostics_overhead.py --data digits   # seconds, smaller model
"""

from __future__ import annotations

import argparse
import sys
import time

import numpy as np
import torch

from aekit.config import RunConfig, TrainConfig
from aekit.data import load
from aekit.models.mlp import MLPAutoencoder
from aekit.training.diagnostics import Diagnostics
from aekit.training.doctor import Doctor
from aekit.training.trainer import Trainer

DEFAULT_EVERY = TrainConfig().diagnostics_every_steps


class TimedDiagnostics(Diagnostics):
    """Diagnostics that add up the time spent in their own hooks (less noisy than a difference
    of two wall times on a shared machine)."""

    seconds = 0.0

    def on_after_backward(self, trainer, step):
        t0 = time.perf_counter()
        super().on_after_backward(trainer, step)
        TimedDiagnostics.seconds += time.perf_counter() - t0

    def on_step_end(self, trainer, step, loss):
        t0 = time.perf_counter()
        super().on_step_end(trainer, step, loss)
        TimedDiagnostics.seconds += time.perf_counter() - t0


class TimedDoctor(Doctor):
    """The doctor, timing its hooks (snapshots included)."""

    seconds = 0.0

    def on_step_end(self, trainer, step, loss):
        t0 = time.perf_counter()
        super().on_step_end(trainer, step, loss)
        TimedDoctor.seconds += time.perf_counter() - t0

    def on_epoch_end(self, trainer, epoch, logs):
        t0 = time.perf_counter()
        super().on_epoch_end(trainer, epoch, logs)
        TimedDoctor.seconds += time.perf_counter() - t0


def time_run(cfg: RunConfig, x: torch.Tensor, which: str) -> float:
    """Seconds of ``Trainer.fit`` with the callbacks named by ``which``."""
    torch.manual_seed(cfg.train.seed)
    model = MLPAutoencoder(cfg.model, x.shape[1], "sigmoid")
    callbacks = []
    if which in ("doctor", "both"):
        callbacks.append(TimedDoctor())
    if which in ("diagnostics", "both"):
        callbacks.append(TimedDiagnostics(DEFAULT_EVERY, x))
    trainer = Trainer(model, cfg, callbacks)
    t0 = time.perf_counter()
    trainer.fit(x)
    return time.perf_counter() - t0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data", default="fashion-mnist")
    parser.add_argument("--n-train", type=int, default=10_000)
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--hidden", default="512,256,128")
    parser.add_argument("--activation", default="relu")
    parser.add_argument("--optimizer", default="adam")
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    ds = load(args.data)
    x = ds.x[: args.n_train].astype(np.float32)
    x = torch.from_numpy(x / x.max())
    cfg = RunConfig().replace(hidden=args.hidden, latent_dim=32, activation=args.activation,
                              optimizer=args.optimizer, epochs=args.epochs, batch_size=128,
                              progress=False)
    steps = args.epochs * -(-x.shape[0] // 128)
    print(f"{args.data}: {x.shape[0]} x {x.shape[1]}, MLP {args.hidden} ({args.activation}), "
          f"{args.optimizer}, {steps} steps, diagnostics every {DEFAULT_EVERY} steps, "
          f"{args.threads} thread(s), best of {args.repeats}")
    kinds = ("none", "doctor", "diagnostics", "both")
    best = {k: float("inf") for k in kinds}
    for _ in range(args.repeats):
        for kind in kinds:
            best[kind] = min(best[kind], time_run(cfg, x, kind))
    for kind in kinds:
        overhead = best[kind] / best["none"] - 1
        print(f"{kind:12s} {best[kind]:7.2f}s  overhead {overhead:+.1%}")
    runs = args.repeats * 2  # each timed callback ran in two of the four settings
    for name, klass in (("diagnostics", TimedDiagnostics), ("doctor", TimedDoctor)):
        share = klass.seconds / runs / best["none"]
        print(f"time inside the {name} hooks: {klass.seconds / runs:.3f}s per run = "
              f"{share:.2%} of the training time")
    return 0


if __name__ == "__main__":
    sys.exit(main())
