"""``aekit tune`` against aekit's defaults on a 10,000-image Fashion-MNIST subsample.

The subsample is 10,000 training images drawn with a fixed seed (``--sample-seed``) and saved
as ``fm10k.npy`` (uint8, 28x28) in the work folder, so every trial and the default run see the
same rows; the test set is Fashion-MNIST's own 10,000 test images (``fashion-mnist:test``),
never seen by the search. The search is an ordinary ``aekit tune`` call (the CLI, in a
subprocess): trial 0 is aekit's defaults, the others are Optuna's, hopeless ones pruned on
their per-epoch validation loss. Its console output (the table, the defaults line, the best
line) is printed as it comes and kept in ``WORK/tune.log``; the numbers are in
``WORK/tune/tune.json``.

    python benchmarks/tune.py --work /tmp/tune-fm            # 30 trials, latent 30
    python benchmarks/tune.py --work /tmp/tune-fm --trials 5  # a quick look

A second call with the same ``--work`` continues the same Optuna study up to ``--trials``.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]


def subsample(work: Path, rows: int, seed: int) -> Path:
    """Write ``rows`` training images of Fashion-MNIST, drawn with ``seed``, to WORK/fm10k.npy."""
    from aekit.data.sources import load_fashion_mnist

    path = work / "fm10k.npy"
    if path.is_file():
        return path
    data = load_fashion_mnist("train")
    pick = np.sort(np.random.default_rng(seed).choice(data.x.shape[0], rows, replace=False))
    images = np.asarray(data.x[pick]).reshape(rows, 28, 28)
    np.save(path, np.clip(np.rint(images), 0, 255).astype(np.uint8))
    return path


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--work", type=Path, required=True, help="folder for the data and runs")
    parser.add_argument("--trials", type=int, default=30)
    parser.add_argument("--rows", type=int, default=10_000)
    parser.add_argument("--sample-seed", type=int, default=0)
    parser.add_argument("--latent-dim", type=int, default=30)
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args(argv)
    args.work.mkdir(parents=True, exist_ok=True)
    data = subsample(args.work, args.rows, args.sample_seed)
    cmd = [sys.executable, "-m", "aekit", "tune", "--data", str(data),
           "--test", "fashion-mnist:test", "--latent-dim", str(args.latent_dim),
           "--trials", str(args.trials), "--threads", str(args.threads),
           "--out", str(args.work / "tune")]
    print("$", " ".join(cmd[2:]), flush=True)
    start = time.perf_counter()
    with open(args.work / "tune.log", "a", encoding="utf-8") as log:
        proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                                cwd=ROOT)
        assert proc.stdout is not None
        for line in proc.stdout:
            sys.stdout.write(line)
            log.write(line)
            log.flush()
        rc = proc.wait()
    print(f"aekit tune exited {rc} after {time.perf_counter() - start:.0f} s", flush=True)
    return rc


if __name__ == "__main__":
    raise SystemExit(main())
