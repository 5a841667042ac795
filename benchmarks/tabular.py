"""Tabular defaults against PCA and a plain scikit-learn autoencoder, on 30 real tables.

Every table of ADBench's classical set (``shared/data/adbench/*.npz``, ``X`` only) and
scikit-learn's bundled ``wine``, ``breast_cancer`` and ``diabetes`` is trained the way a new
user would: ``aekit train --data TABLE.npy`` with nothing else (the CLI, in a subprocess, so the
wall time includes starting Python and importing PyTorch). From each run's ``summary.json``:
the latent size aekit chose, the epochs it ran, the test error (squared error per sample, in
the standardized space) of aekit and of PCA at the same size fitted on the same training
split, and their ratio.

The tool a user would otherwise reach for, in the same run: scikit-learn's ``MLPRegressor``
trained to reproduce its input (hidden layers 64-k-64, Adam, early stopping), on the same
training rows (the test rows are those aekit held back, via ``aekit.pipeline.split_plan``),
scaled with the scaler aekit stored, scored on the same test rows.

    python benchmarks/tabular.py                      # all 30 tables
    python benchmarks/tabular.py --only wine,6_cardio --no-sklearn
    python benchmarks/tabular.py --json results.json

Acceptance: ratio <= 1.02 on every table; tables under 10,000 rows in under 20 s of wall time.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
import warnings
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
ADBENCH = ROOT.parent / "shared" / "data" / "adbench"
RATIO_LIMIT = 1.02
SECONDS_LIMIT = 20.0
SMALL_ROWS = 10_000


def tables() -> dict[str, np.ndarray]:
    """name -> raw X (float32), ADBench's files in numeric order, then scikit-learn's three."""
    from sklearn.datasets import load_breast_cancer, load_diabetes, load_wine

    out: dict[str, np.ndarray] = {}
    files = sorted(ADBENCH.glob("*.npz"), key=lambda p: int(p.name.split("_")[0]))
    for path in files:
        with np.load(path) as f:
            out[path.stem] = np.asarray(f["X"], dtype=np.float32)
    for name, loader in (("sk_wine", load_wine), ("sk_breast_cancer", load_breast_cancer),
                         ("sk_diabetes", load_diabetes)):
        out[name] = loader().data.astype(np.float32)
    return out


def run_aekit(x: np.ndarray, work: Path, name: str, threads: int) -> dict:
    """``aekit train --data NAME.npy`` with defaults; the summary plus the wall time."""
    data = work / f"{name}.npy"
    np.save(data, x)
    out = work / f"run-{name}"
    cmd = [sys.executable, "-m", "aekit", "train", "--data", str(data), "--out", str(out),
           "--no-progress", "--threads", str(threads)]
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, capture_output=True, text=True)
    wall = time.perf_counter() - t0
    if proc.returncode != 0:
        raise RuntimeError(f"{name}: aekit train failed ({proc.returncode}):\n{proc.stderr}")
    summary = json.loads((out / "summary.json").read_text())
    summary["wall_seconds"] = wall
    summary["run_dir"] = str(out)
    return summary


def run_sklearn(x: np.ndarray, summary: dict, seed: int = 0) -> dict:
    """MLPRegressor(64, k, 64) trained x -> x on aekit's training rows (validation included,
    as early stopping holds its own 10%), scored on aekit's test rows in aekit's scaled space."""
    from sklearn.exceptions import ConvergenceWarning
    from sklearn.neural_network import MLPRegressor

    from aekit import load
    from aekit.pipeline import split_plan

    ae = load(summary["run_dir"])
    cfg = ae.config
    rest, _, test = split_plan(len(x), cfg.data.test_split, 0.0, cfg.train.seed)
    x_train, x_test = ae.scaler.transform(x[rest]), ae.scaler.transform(x[test])
    k = summary["latent_dim"]
    model = MLPRegressor(hidden_layer_sizes=(64, k, 64), early_stopping=True, max_iter=500,
                         random_state=seed)
    t0 = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        model.fit(x_train, x_train)
    seconds = time.perf_counter() - t0
    err = np.square(model.predict(x_test).astype(np.float64) - x_test).sum(1).mean()
    return {"sk_test_sse_per_sample": float(err), "sk_seconds": seconds,
            "sk_ratio_to_pca": float(err) / summary["pca_test_sse_per_sample"]}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--only", default=None, help="comma-separated table names")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--no-sklearn", action="store_true", help="skip MLPRegressor")
    parser.add_argument("--json", default=None, help="write the rows to this file")
    args = parser.parse_args()
    data = tables()
    if args.only:
        wanted = [n.strip() for n in args.only.split(",") if n.strip()]
        unknown = [n for n in wanted if n not in data]
        if unknown:
            parser.error(f"unknown tables {unknown}; known: {', '.join(data)}")
        data = {n: data[n] for n in wanted}
    rows = []
    header = (f"| table | rows x features | latent | hidden | epochs | aekit test | PCA test | "
              f"aekit / PCA | wall s |{' sklearn MLP / PCA | sklearn s |' * (not args.no_sklearn)}")
    print(header)
    print("|---|---:|---:|---|---:|---:|---:|---:|---:|" + "---:|---:|" * (not args.no_sklearn),
          flush=True)
    with tempfile.TemporaryDirectory() as tmp:
        for name, x in data.items():
            s = run_aekit(x, Path(tmp), name, args.threads)
            row = {"table": name, "rows": x.shape[0], "features": x.shape[1],
                   **{k: s[k] for k in ("latent_dim", "hidden", "epochs", "train_seconds",
                                        "wall_seconds", "test_sse_per_sample",
                                        "pca_test_sse_per_sample", "ratio_to_pca")}}
            line = (f"| {name} | {x.shape[0]} x {x.shape[1]} | {s['latent_dim']} | "
                    f"{','.join(map(str, s['hidden']))} | {s['epochs']} | "
                    f"{s['test_sse_per_sample']:.4g} | {s['pca_test_sse_per_sample']:.4g} | "
                    f"{s['ratio_to_pca']:.3f} | {s['wall_seconds']:.1f} |")
            if not args.no_sklearn:
                row.update(run_sklearn(x, s))
                line += f" {row['sk_ratio_to_pca']:.3f} | {row['sk_seconds']:.1f} |"
            rows.append(row)
            print(line, flush=True)
    ratios = [r["ratio_to_pca"] for r in rows]
    small = [r for r in rows if r["rows"] < SMALL_ROWS]
    slow = [r["table"] for r in small if r["wall_seconds"] >= SECONDS_LIMIT]
    worse = [r["table"] for r in rows if r["ratio_to_pca"] > RATIO_LIMIT]
    print(f"\nmedian aekit / PCA: {statistics.median(ratios):.3f}   worst: {max(ratios):.3f}   "
          f"tables above {RATIO_LIMIT}: {worse or 'none'}")
    if not args.no_sklearn:
        sk = [r["sk_ratio_to_pca"] for r in rows]
        print(f"median sklearn MLPRegressor / PCA: {statistics.median(sk):.3f}   worst: "
              f"{max(sk):.3f}")
    print(f"tables under {SMALL_ROWS} rows: {len(small)}, wall time median "
          f"{statistics.median([r['wall_seconds'] for r in small]) if small else 0:.1f}s, max "
          f"{max([r['wall_seconds'] for r in small], default=0):.1f}s; "
          f"at or over {SECONDS_LIMIT:.0f}s: {slow or 'none'}")
    if args.json:
        Path(args.json).write_text(json.dumps(rows, indent=2))
    return 0 if not worse and not slow else 1


if __name__ == "__main__":
    sys.exit(main())
