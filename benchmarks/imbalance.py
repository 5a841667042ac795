"""Imbalanced classes and codes judged downstream, with aekit's CLI.

Part 1, **imbalance**: Fashion-MNIST with 2,000 training images per class except class 0
(T-shirt/top), cut to 20 (1% of the others) -- 18,020 images, drawn with a fixed seed and
saved as ``WORK/skewed.npy`` with its labels in ``WORK/skewed-labels.npy``. Trained with
``aekit train --latent-dim 16 --test fashion-mnist:test --balance none|weights|sampler``;
from each ``summary.json``: the rare class's test error, the all-class test error, and PCA's.

Part 2, **probe**: the codes of aekit and of PCA at 2, 8 and 32 dimensions, on digits and on
a Fashion-MNIST training subsample (``--probe-rows``, default 10,000, with its full test set):
linear-probe accuracy (logistic regression on the codes, scored on the test set) and k-means
adjusted Rand index, from the ``probe`` block of ``summary.json``.

    python benchmarks/imbalance.py --work /tmp/imbalance
    python benchmarks/imbalance.py --work /tmp/imbalance --part imbalance

Acceptance (the imbalance part): with ``--balance weights`` the rare class's test error is
<= 0.9x the unbalanced run's, and the all-class error no more than 5% worse.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
RARE_CLASS = 0
PER_CLASS = 2000
RARE_ROWS = 20


def skewed_fashion_mnist(work: Path, rare_rows: int = RARE_ROWS, seed: int = 0
                         ) -> tuple[Path, Path]:
    """WORK/skewed.npy (uint8 images) and WORK/skewed-labels.npy: 2,000 training images per
    class, ``rare_rows`` of class 0 (WORK/balanced*.npy when that is 2,000 too)."""
    from aekit.data.sources import load_fashion_mnist

    name = "skewed" if rare_rows == RARE_ROWS else f"class0-{rare_rows}"
    data_path, label_path = work / f"{name}.npy", work / f"{name}-labels.npy"
    if data_path.is_file() and label_path.is_file():
        return data_path, label_path
    data = load_fashion_mnist("train")
    rng = np.random.default_rng(seed)
    pick = np.sort(np.concatenate([
        rng.choice(np.flatnonzero(data.labels == c), rare_rows if c == RARE_CLASS else PER_CLASS,
                   replace=False) for c in range(10)]))
    np.save(data_path, np.rint(data.x[pick]).astype(np.uint8).reshape(-1, 28, 28))
    np.save(label_path, data.labels[pick])
    return data_path, label_path


def fashion_subsample(work: Path, rows: int, seed: int = 0) -> tuple[Path, Path]:
    """WORK/fm-sub.npy and its labels: ``rows`` training images drawn with ``seed``."""
    from aekit.data.sources import load_fashion_mnist

    data_path, label_path = work / f"fm-{rows}.npy", work / f"fm-{rows}-labels.npy"
    if not data_path.is_file():
        data = load_fashion_mnist("train")
        pick = np.sort(np.random.default_rng(seed).choice(data.n_samples, rows, replace=False))
        np.save(data_path, np.rint(data.x[pick]).astype(np.uint8).reshape(-1, 28, 28))
        np.save(label_path, data.labels[pick])
    return data_path, label_path


def train(args: list[str], out: Path, threads: int) -> tuple[dict, float]:
    """``aekit train ARGS --out OUT`` in a subprocess; its summary and the wall time."""
    cmd = [sys.executable, "-m", "aekit", "train", *args, "--no-progress",
           "--threads", str(threads), "--out", str(out)]
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT)
    wall = time.perf_counter() - t0
    if proc.returncode != 0:
        raise SystemExit(f"{' '.join(cmd)} failed:\n{proc.stdout}\n{proc.stderr}")
    return json.loads((out / "summary.json").read_text()), wall


def part_imbalance(work: Path, threads: int, seed: int) -> list[dict]:
    data, labels = skewed_fashion_mnist(work)
    rows = []
    print(f"Fashion-MNIST, {PER_CLASS} training images per class except {RARE_ROWS} of class "
          f"{RARE_CLASS}; test: the 10,000 test images; latent 16; seed {seed}", flush=True)
    print("| --balance | class-0 test error | vs none | all-class test error | vs none | "
          "PCA-16 class 0 | PCA-16 all | epochs | wall s |", flush=True)
    print("|---|---:|---:|---:|---:|---:|---:|---:|---:|", flush=True)
    base = None
    for balance in ("none", "weights", "sampler"):
        s, wall = train(["--data", str(data), "--labels", str(labels), "--test",
                         "fashion-mnist:test", "--latent-dim", "16", "--balance", balance,
                         "--seed", str(seed)], work / f"run-{balance}-{seed}", threads)
        rare = s["per_class_test_sse"][str(RARE_CLASS)]
        overall = s["test_sse_per_sample"]
        base = base or (rare, overall)
        row = {"balance": balance, "rare": rare, "overall": overall,
               "rare_vs_none": rare / base[0], "overall_vs_none": overall / base[1],
               "pca_rare": s["pca_per_class_test_sse"][str(RARE_CLASS)],
               "pca_overall": s["pca_test_sse_per_sample"], "epochs": s["epochs"],
               "wall": wall}
        rows.append(row)
        print(f"| {balance} | {rare:.2f} | {row['rare_vs_none']:.3f}x | {overall:.2f} | "
              f"{row['overall_vs_none']:.3f}x | {row['pca_rare']:.2f} | "
              f"{row['pca_overall']:.2f} | {row['epochs']} | {wall:.0f} |", flush=True)
    # the reference: what 2,000 real images of class 0 give (no balancing needed)
    full, full_labels = skewed_fashion_mnist(work, PER_CLASS)
    s, wall = train(["--data", str(full), "--labels", str(full_labels), "--test",
                     "fashion-mnist:test", "--latent-dim", "16", "--seed", str(seed)],
                    work / f"run-reference-{seed}", threads)
    rare, overall = s["per_class_test_sse"][str(RARE_CLASS)], s["test_sse_per_sample"]
    print(f"| none, {PER_CLASS} of class {RARE_CLASS} (reference) | {rare:.2f} | "
          f"{rare / base[0]:.3f}x | {overall:.2f} | {overall / base[1]:.3f}x | "
          f"{s['pca_per_class_test_sse'][str(RARE_CLASS)]:.2f} | "
          f"{s['pca_test_sse_per_sample']:.2f} | {s['epochs']} | {wall:.0f} |", flush=True)
    weights = rows[1]
    ok = weights["rare_vs_none"] <= 0.9 and weights["overall_vs_none"] <= 1.05
    print(f"acceptance (weights: class 0 <= 0.9x, all classes <= 1.05x): "
          f"{'met' if ok else 'NOT met'}", flush=True)
    return rows


def part_probe(work: Path, threads: int, probe_rows: int) -> list[dict]:
    fm, fm_labels = fashion_subsample(work, probe_rows)
    sets = {"digits": ["--data", "digits"],
            f"Fashion-MNIST {probe_rows // 1000}k": ["--data", str(fm), "--labels",
                                                      str(fm_labels), "--test",
                                                      "fashion-mnist:test"]}
    rows = []
    print("| data | latent | linear probe: aekit | PCA | k-means ARI: aekit | PCA | "
          "test error / PCA | wall s |", flush=True)
    print("|---|---:|---:|---:|---:|---:|---:|---:|", flush=True)
    for name, args in sets.items():
        for k in (2, 8, 32):
            s, wall = train([*args, "--latent-dim", str(k)],
                            work / f"probe-{name.split()[0]}-{k}", threads)
            p = s["probe"]
            rows.append({"data": name, "latent": k, **p, "ratio_to_pca": s["ratio_to_pca"],
                         "wall": wall})
            print(f"| {name} | {k} | {p['linear_probe_accuracy']:.3f} | "
                  f"{p['pca_linear_probe_accuracy']:.3f} | {p['kmeans_ari']:.3f} | "
                  f"{p['pca_kmeans_ari']:.3f} | {s['ratio_to_pca']:.3f} | {wall:.0f} |",
                  flush=True)
    return rows


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--work", type=Path, required=True)
    parser.add_argument("--part", choices=("all", "imbalance", "probe"), default="all")
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--probe-rows", type=int, default=10_000)
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args(argv)
    args.work.mkdir(parents=True, exist_ok=True)
    threads = args.threads or max(1, __import__("os").cpu_count() or 1)
    out: dict[str, list] = {}
    if args.part in ("all", "imbalance"):
        out["imbalance"] = part_imbalance(args.work, threads, args.seed)
    if args.part in ("all", "probe"):
        out["probe"] = part_probe(args.work, threads, args.probe_rows)
    if args.json:
        args.json.write_text(json.dumps(out, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
