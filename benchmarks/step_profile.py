"""The deep case's training step against the model's products alone, in alternation.

Where `train_speed.py` times whole epochs, this times the trainer's step itself (the
hand-written forward and backward pass, the non-finite check, fused AdamW) for a block of
steps, then the same number of steps of the model's matrix products alone
(`train_speed.ModelGemms`), over and over, so that both see the machine in the same state;
and the same step with the parameters packed end to end in the flat buffer (the layout before
they were aligned to 64 bytes), to show what the alignment is worth.

    python benchmarks/step_profile.py [--threads N] [--blocks 6] [--steps 79]
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import torch

import aekit
from aekit.data import load
from aekit.training.optim import FlatParams
from train_speed import CASES, ModelGemms


def trainer_for(x: np.ndarray, align_bytes: int):
    """A trainer of the deep case, its parameters aligned to ``align_bytes`` (4: packed)."""
    hidden, latent, batch = CASES["deep"]
    default = FlatParams.ALIGN_BYTES
    FlatParams.ALIGN_BYTES = align_bytes
    try:
        ae = aekit.Autoencoder(latent_dim=latent, hidden=hidden, batch_size=batch, epochs=1,
                               validation_split=0.0, schedule="constant", lr=1e-3,
                               progress=False, scaling="none")
        ae.fit(x[:2000])
    finally:
        FlatParams.ALIGN_BYTES = default
    return ae.trainer


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=None, help="torch threads (default all)")
    parser.add_argument("--blocks", type=int, default=6, help="blocks of steps per contender")
    parser.add_argument("--steps", type=int, default=79, help="steps per block (79: an epoch "
                        "of 20,000 images)")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    hidden, latent, batch = CASES["deep"]
    ds = load("fashion-mnist")
    x = np.ascontiguousarray(ds.x[:20000] / 255.0, dtype=np.float32)
    xt = torch.from_numpy(x)
    trainers = {"aligned": trainer_for(x, FlatParams.ALIGN_BYTES), "packed": trainer_for(x, 4)}
    gemms = ModelGemms([784, *hidden, latent, *hidden[::-1], 784], batch)
    ms: dict[str, list[float]] = {"aligned": [], "packed": [], "products alone": []}
    generator = torch.Generator().manual_seed(0)
    for _ in range(args.blocks):
        order = torch.randperm(len(x), generator=generator)
        for name, trainer in trainers.items():
            t0 = time.perf_counter()
            for i in range(args.steps):
                rows = order[(i * batch) % (len(x) - batch):][:batch]
                trainer.train_step(xt.index_select(0, rows))
            ms[name].append((time.perf_counter() - t0) / args.steps * 1e3)
        ms["products alone"].append(gemms.epoch_seconds(args.steps) / args.steps * 1e3)
    print(f"{torch.get_num_threads()} torch threads, {args.blocks} blocks of {args.steps} steps "
          f"(784-{'-'.join(map(str, hidden))}-{latent} mirrored, batch {batch})")
    print(f"{'':<15} {'min ms/step':>12} {'median':>8}")
    for name, values in ms.items():
        print(f"{name:<15} {min(values):>12.1f} {np.median(values):>8.1f}")
    ceiling, aligned = np.array(ms["products alone"]), np.array(ms["aligned"])
    print(f"products alone / aligned step: median of the blocks' ratios "
          f"{np.median(ceiling / aligned):.0%}, best against best {ceiling.min() / aligned.min():.0%}")
    print(f"aligned / packed step: median of the blocks' ratios "
          f"{np.median(aligned / np.array(ms['packed'])):.3f}")


if __name__ == "__main__":
    main()
