"""Growing the batch against decaying the learning rate, on Fashion-MNIST (Smith, Kindermans,
Ying & Le, "Don't decay the learning rate, increase the batch size", ICLR 2018).

Both runs: ``aekit train --data fashion-mnist --test fashion-mnist:test --latent-dim 30
--epochs E`` (aekit's default model and Adam at its default rate), the same epochs. One cuts
the learning rate by 5 at each third of the run (``--schedule step --gamma 0.2``); the other
keeps the rate and multiplies the batch by 5 at the same epochs (``--schedule constant
--batch-schedule step:5``). From each ``summary.json``: the test error against PCA-30's, the
optimizer steps, and the training time.

    python benchmarks/batch_schedule.py --work /tmp/batch --epochs 15
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
RUNS = {"learning-rate step decay (x0.2 at each third)": ["--schedule", "step", "--gamma", "0.2"],
        "batch growth (x5 at each third, constant rate)": ["--schedule", "constant",
                                                           "--batch-schedule", "step:5"]}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--work", type=Path, required=True)
    parser.add_argument("--epochs", type=int, default=15)
    parser.add_argument("--threads", type=int, default=None)
    args = parser.parse_args(argv)
    args.work.mkdir(parents=True, exist_ok=True)
    print(f"Fashion-MNIST, latent 30, {args.epochs} epochs each")
    print("| run | test error | / PCA-30 | steps | batch sizes | training s |")
    print("|---|---:|---:|---:|---|---:|")
    rows = []
    for i, (name, extra) in enumerate(RUNS.items()):
        out = args.work / f"run{i}"
        cmd = [sys.executable, "-m", "aekit", "train", "--data", "fashion-mnist", "--test",
               "fashion-mnist:test", "--latent-dim", "30", "--epochs", str(args.epochs),
               "--no-progress", "--labels", "none", *extra, "--out", str(out)]
        if args.threads:
            cmd += ["--threads", str(args.threads)]
        proc = subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT)
        if proc.returncode != 0:
            raise SystemExit(f"{' '.join(cmd)} failed:\n{proc.stdout}\n{proc.stderr}")
        s = json.loads((out / "summary.json").read_text())
        epochs = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()
                  if line.startswith('{"type": "epoch"')]
        sizes = sorted({e.get("batch_size", s["batch_size"]) for e in epochs})
        rows.append({"run": name, **{k: s[k] for k in ("test_sse_per_sample", "ratio_to_pca",
                                                        "steps", "train_seconds", "epochs")},
                     "batch_sizes": sizes})
        print(f"| {name} | {s['test_sse_per_sample']:.3f} | {s['ratio_to_pca']:.3f}x | "
              f"{s['steps']} | {', '.join(map(str, sizes))} | {s['train_seconds']:.0f} |",
              flush=True)
    (args.work / "batch_schedule.json").write_text(json.dumps(rows, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
