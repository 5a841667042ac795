"""The strategy study: a deep sigmoid autoencoder on Fashion-MNIST under the articles' strategies.

The study itself is :mod:`aekit.apps.study` (also ``aekit study``); this script runs its
reference configuration and writes ``study.json`` and ``study.md`` into ``--out``.

    python benchmarks/strategies.py --quick            # 10k training images, 4 epochs
    python benchmarks/strategies.py                    # 60k images, 20 epochs (about 46 min on 2 cores)
    python benchmarks/strategies.py --quick --only sgd,recipe

Timings on a shared machine are noisy.
"""

from __future__ import annotations

import argparse
import sys

import torch

from aekit.apps.study import STRATEGIES, budget, study
from aekit.errors import ConfigError


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="10k training images, 4 epochs")
    parser.add_argument("--epochs", type=int, default=None)
    parser.add_argument("--n-train", type=int, default=None)
    parser.add_argument("--only", default=None,
                        help=f"comma-separated strategy names: {', '.join(STRATEGIES)}")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", default="benchmarks/results/strategies")
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    epochs, n_train = budget(args.quick, args.epochs, args.n_train)
    try:
        result = study("fashion-mnist", "fashion-mnist:test",
                       strategies=args.only.split(",") if args.only is not None else None,
                       epochs=epochs, max_train_samples=n_train, seed=args.seed,
                       threads=args.threads,
                       out_dir=args.out, log=lambda line: print(line, flush=True))
    except ConfigError as exc:
        parser.error(str(exc))
    print(result["table"])
    return 0


if __name__ == "__main__":
    sys.exit(main())
