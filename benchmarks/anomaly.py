"""Anomaly detection on ADBench's 27 classical tables: aekit's OutlierDetector against PyOD.

The protocol of ``../shared/data/README.md``: per seed a stratified 70/30 train/test split,
min-max scaling fitted on the training part, unsupervised detectors fitted on the training part
*with* its anomalies, ROC-AUC and average precision of the anomaly scores on the test part;
tables over 10,000 rows subsampled to 10,000 (per seed, stratified). Detectors: aekit, PyOD's
IForest, ECOD, PCA, KNN and AutoEncoder, all with their defaults. Time is fit + score seconds.

    pip install -e '.[bench]'        # PyOD
    python benchmarks/anomaly.py --seeds 0,1,2 --out benchmarks/results/anomaly/adbench
    python benchmarks/anomaly.py --only cardio,letter --seeds 0 --detectors aekit,IForest

Prints a table per metric (one row per data set, the mean and the average rank) and writes
``OUT.json`` (every measurement) and ``OUT.md`` (the tables).
"""

from __future__ import annotations

import argparse
import json
import os
import time
import warnings
from pathlib import Path
from typing import Any, Callable

import numpy as np

DATA_DIR = Path(__file__).resolve().parents[2] / "shared" / "data" / "adbench"
MAX_ROWS = 10_000
DETECTORS = ("aekit", "IForest", "ECOD", "PCA", "KNN", "AutoEncoder")


def make_detector(name: str, seed: int, aekit_options: dict[str, Any]) -> Any:
    """A fresh detector with its defaults (PyOD's are PyOD's, aekit's are aekit's)."""
    if name == "aekit":
        from aekit import OutlierDetector

        return OutlierDetector(random_state=seed, **aekit_options)
    from pyod.models.auto_encoder import AutoEncoder
    from pyod.models.ecod import ECOD
    from pyod.models.iforest import IForest
    from pyod.models.knn import KNN
    from pyod.models.pca import PCA

    return {"IForest": lambda: IForest(random_state=seed), "ECOD": ECOD, "PCA":
            lambda: PCA(random_state=seed), "KNN": KNN,
            "AutoEncoder": lambda: AutoEncoder(random_state=seed, verbose=0)}[name]()


def anomaly_scores(detector: Any, x_test: np.ndarray) -> np.ndarray:
    """Higher = more anomalous, for aekit and PyOD alike."""
    if hasattr(detector, "anomaly_score"):
        return detector.anomaly_score(x_test)
    return detector.decision_function(x_test)


def split(x: np.ndarray, y: np.ndarray, seed: int) -> tuple[np.ndarray, ...]:
    """Subsample to MAX_ROWS, stratified 70/30 split, min-max scaling fitted on train."""
    from sklearn.model_selection import train_test_split
    from sklearn.preprocessing import MinMaxScaler

    if len(x) > MAX_ROWS:
        x, _, y, _ = train_test_split(x, y, train_size=MAX_ROWS, stratify=y, random_state=seed)
    x_train, x_test, y_train, y_test = train_test_split(x, y, test_size=0.3, stratify=y,
                                                        random_state=seed)
    scaler = MinMaxScaler().fit(x_train)
    return (scaler.transform(x_train).astype(np.float32),
            scaler.transform(x_test).astype(np.float32), y_train, y_test)


def run_one(name: str, x_train: np.ndarray, x_test: np.ndarray, y_test: np.ndarray,
            seed: int, aekit_options: dict[str, Any]) -> dict[str, float]:
    from sklearn.metrics import average_precision_score, roc_auc_score

    detector = make_detector(name, seed, aekit_options)
    start = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        detector.fit(x_train)
        scores = anomaly_scores(detector, x_test)
    seconds = time.perf_counter() - start
    scores = np.asarray(scores, dtype=np.float64)
    # PyOD's PCA (all components) divides by a zero eigenvalue on rank-deficient tables and
    # scores inf: counted here, and ranked as the largest finite value would be.
    nonfinite = int(np.sum(~np.isfinite(scores)))
    scores = np.nan_to_num(scores, nan=0.0, posinf=1e300, neginf=-1e300)
    return {"roc_auc": float(roc_auc_score(y_test, scores)),
            "ap": float(average_precision_score(y_test, scores)), "seconds": seconds,
            "nonfinite_scores": nonfinite}


def tables(only: list[str] | None) -> list[Path]:
    paths = sorted(DATA_DIR.glob("*.npz"), key=lambda p: int(p.stem.split("_")[0]))
    if only:
        paths = [p for p in paths if any(o.lower() in p.stem.lower() for o in only)]
    return paths


def average_ranks(means: dict[str, dict[str, float]], names: list[str]) -> dict[str, float]:
    """Average rank over the tables (1 = best; ties share their mean rank)."""
    from scipy.stats import rankdata

    ranks = [rankdata([-row[n] for n in names]) for row in means.values()]
    return {n: float(np.mean([r[i] for r in ranks])) for i, n in enumerate(names)}


def report(results: dict[str, Any], names: list[str], metric: str, echo: Callable) -> list[str]:
    """A markdown table of ``metric`` per data set, plus mean, rank and total seconds."""
    means = {t: {n: float(np.mean([r[n][metric] for r in runs])) for n in names}
             for t, runs in results.items()}
    lines = [f"| {metric} | " + " | ".join(names) + " |",
             "|---|" + "---:|" * len(names)]
    for table, row in means.items():
        best = max(row.values())
        cells = [f"**{row[n]:.3f}**" if row[n] == best else f"{row[n]:.3f}" for n in names]
        lines.append(f"| {table} | " + " | ".join(cells) + " |")
    mean = {n: float(np.mean([row[n] for row in means.values()])) for n in names}
    lines.append("| **mean** | " + " | ".join(f"{mean[n]:.3f}" for n in names) + " |")
    ranks = average_ranks(means, names)
    lines.append("| **average rank** | " + " | ".join(f"{ranks[n]:.2f}" for n in names) + " |")
    if metric == "roc_auc":
        seconds = {n: sum(r[n]["seconds"] for runs in results.values() for r in runs)
                   for n in names}
        lines.append("| **fit + score s (total)** | " +
                     " | ".join(f"{seconds[n]:.1f}" for n in names) + " |")
    if metric == "roc_auc" and "aekit" in names and len(names) > 1:
        others = {n: mean[n] for n in names if n != "aekit"}
        best = max(others, key=others.get)
        lines.append("")
        lines.append(f"aekit mean ROC-AUC {mean['aekit']:.3f}; best baseline {best} "
                     f"{others[best]:.3f} ({mean['aekit'] - others[best]:+.3f})")
        if "AutoEncoder" in names:
            lines.append(f"against PyOD AutoEncoder: {mean['aekit'] - mean['AutoEncoder']:+.3f} "
                         f"ROC-AUC, time {seconds['aekit']:.1f}s vs "
                         f"{seconds['AutoEncoder']:.1f}s")
    for line in lines:
        echo(line)
    return lines


def merge(paths: list[Path], out: str | None) -> int:
    """Print (and write) the tables of several runs' JSON files: their seeds pooled, and
    detectors from different files joined per (table, seed) -- a later file's result for a
    detector replaces an earlier one's (e.g. aekit measured again beside saved baselines)."""
    by_seed: dict[str, dict[int, dict[str, Any]]] = {}
    names: list[str] = []
    for path in paths:
        saved = json.loads(path.read_text())
        for table, runs in saved["results"].items():
            for seed, run in zip(saved["seeds"], runs):
                by_seed.setdefault(table, {}).setdefault(seed, {}).update(run)
                names += [n for n in run if n not in names]
    results = {table: [runs[seed] for seed in sorted(runs)] for table, runs in by_seed.items()}
    seeds = sorted(next(iter(by_seed.values())))
    names = [n for n in names if all(n in run for runs in results.values() for run in runs)]
    lines = [f"seeds {seeds}, {len(results)} tables (merged from {', '.join(map(str, paths))})",
             ""]
    for metric in ("roc_auc", "ap"):
        print()
        lines += report(results, names, metric, print) + [""]
    if out:
        Path(out).with_suffix(".md").write_text("\n".join(lines) + "\n")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--only", default=None, help="comma-separated parts of table names")
    parser.add_argument("--seeds", default="0,1,2", help="comma-separated seeds (default 0,1,2)")
    parser.add_argument("--detectors", default=",".join(DETECTORS))
    parser.add_argument("--aekit", default="{}", help="JSON of OutlierDetector options")
    parser.add_argument("--threads", type=int, default=None, help="torch threads")
    parser.add_argument("--out", default=None, help="write OUT.json and OUT.md")
    parser.add_argument("--from-json", default=None,
                        help="comma-separated OUT.json files of earlier runs: pool their seeds, "
                        "join their detectors, print the tables (no fitting)")
    args = parser.parse_args(argv)
    if args.from_json:
        return merge([Path(p) for p in args.from_json.split(",")], args.out)
    if args.threads:
        import torch

        torch.set_num_threads(args.threads)
    seeds = [int(s) for s in args.seeds.split(",")]
    names = args.detectors.split(",")
    aekit_options = json.loads(args.aekit)
    results: dict[str, list[dict[str, Any]]] = {}
    for path in tables(args.only.split(",") if args.only else None):
        with np.load(path) as data:
            x, y = data["X"].astype(np.float64), data["y"].astype(np.int64)
        runs = []
        for seed in seeds:
            x_train, x_test, _, y_test = split(x, y, seed)
            runs.append({n: run_one(n, x_train, x_test, y_test, seed, aekit_options)
                         for n in names})
        results[path.stem] = runs
        row = "  ".join(f"{n} {np.mean([r[n]['roc_auc'] for r in runs]):.3f}"
                        f" ({sum(r[n]['seconds'] for r in runs):.1f}s)" for n in names)
        print(f"{path.stem:18s} {row}", flush=True)
    lines = [f"seeds {seeds}, {len(results)} tables, aekit options {aekit_options}", ""]
    for metric in ("roc_auc", "ap"):
        print()
        lines += report(results, names, metric, print) + [""]
    if args.out:
        out = Path(args.out)
        out.parent.mkdir(parents=True, exist_ok=True)
        out.with_suffix(".json").write_text(json.dumps(
            {"seeds": seeds, "aekit_options": aekit_options, "cpu_count": os.cpu_count(),
             "results": results}, indent=1))
        out.with_suffix(".md").write_text("\n".join(lines) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
