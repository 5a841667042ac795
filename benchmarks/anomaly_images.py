"""Anomaly detection on images: Fashion-MNIST one-class, aekit's MLP and conv detectors against
PyOD.

The standard one-class protocol: for each class c, the detectors train on images of class c
only (``--train-per-class`` of them, drawn with the seed from the 6,000 training images of
that class) and score the 10,000 test images; the 1,000 test images of class c are normal, the
9,000 others are anomalies. Pixels are scaled to [0, 1] (aekit takes raw pixels and scales
them itself, as for every image). ROC-AUC and average precision per class, the mean, and fit +
score seconds. Detectors: aekit's ``OutlierDetector`` with the image model (MLP) and with the
convolutional one (``kind="conv"``), PyOD's AutoEncoder, IForest, ECOD, PCA and KNN with their
defaults.

    pip install -e '.[bench]'                      # PyOD
    python benchmarks/anomaly_images.py --out benchmarks/results/anomaly/fashion-one-class
    python benchmarks/anomaly_images.py --classes 0,7 --detectors aekit-mlp,IForest
    python benchmarks/anomaly_images.py --from-json A.json,B.json --out JOINED   # no fitting

Needs Fashion-MNIST (``apt-get install dataset-fashion-mnist``).
"""

from __future__ import annotations

import argparse
import json
import time
import warnings
from pathlib import Path
from typing import Any

import numpy as np

from anomaly import average_ranks, make_detector

DETECTORS = ("aekit-mlp", "aekit-conv", "AutoEncoder", "IForest", "ECOD", "PCA", "KNN")
CLASSES = ("T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker",
           "Bag", "Ankle boot")


def detector(name: str, seed: int) -> Any:
    """aekit's detector for images (raw pixels, the conv model on request), or PyOD's."""
    if name.startswith("aekit"):
        from aekit import OutlierDetector, RunConfig

        config = RunConfig().replace(kind="conv") if name == "aekit-conv" else None
        return OutlierDetector(random_state=seed, image_shape=(28, 28), scaling="auto",
                               config=config)
    return make_detector(name, seed, {})


def run(name: str, x_train: np.ndarray, x_test: np.ndarray, y_test: np.ndarray,
        seed: int) -> dict[str, float]:
    """Fit on the normal class, score the test set: ROC-AUC, AP and seconds."""
    from sklearn.metrics import average_precision_score, roc_auc_score

    det = detector(name, seed)
    raw = name.startswith("aekit")  # aekit scales pixels itself
    train, test = (x_train, x_test) if raw else (x_train / 255.0, x_test / 255.0)
    start = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        det.fit(train)
        scores = det.anomaly_score(test) if raw else det.decision_function(test)
    seconds = time.perf_counter() - start
    scores = np.nan_to_num(np.asarray(scores, dtype=np.float64), posinf=1e300, neginf=-1e300)
    return {"roc_auc": float(roc_auc_score(y_test, scores)),
            "ap": float(average_precision_score(y_test, scores)), "seconds": seconds}


def main(argv: list[str] | None = None) -> int:
    from aekit.data import load

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--classes", default="0,1,2,3,4,5,6,7,8,9")
    parser.add_argument("--detectors", default=",".join(DETECTORS))
    parser.add_argument("--train-per-class", type=int, default=2000,
                        help="training images of the normal class (at most 6,000)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=None, help="torch threads")
    parser.add_argument("--out", default=None, help="write OUT.json and OUT.md")
    parser.add_argument("--from-json", default=None, help="comma-separated OUT.json files of "
                        "earlier runs (same seed): join their detectors per class, a later "
                        "file's result replacing an earlier one's; print the tables")
    args = parser.parse_args(argv)
    if args.from_json:
        results: dict[str, dict[str, dict[str, float]]] = {}
        for path in args.from_json.split(","):
            saved = json.loads(Path(path).read_text())
            for label, runs in saved["results"].items():
                results.setdefault(label, {}).update(runs)
        names = [n for n in DETECTORS if all(n in r for r in results.values())]
        write_tables(results, names, saved["seed"], saved["train_per_class"], args.out)
        return 0
    if args.threads:
        import torch

        torch.set_num_threads(args.threads)
    train, test = load("fashion-mnist"), load("fashion-mnist:test")
    x_all = train.x.reshape(len(train.x), -1).astype(np.float32)
    x_test = test.x.reshape(len(test.x), -1).astype(np.float32)
    names = args.detectors.split(",")
    rng = np.random.default_rng(args.seed)
    results: dict[str, dict[str, dict[str, float]]] = {}
    for c in (int(v) for v in args.classes.split(",")):
        rows = np.flatnonzero(train.labels == c)
        rows = np.sort(rng.choice(rows, min(args.train_per_class, len(rows)), replace=False))
        y_test = (test.labels != c).astype(np.int64)  # 1 = anomaly
        label = f"{c} {CLASSES[c]}"
        results[label] = {n: run(n, x_all[rows], x_test, y_test, args.seed) for n in names}
        print(f"{label:14s} " + "  ".join(f"{n} {r['roc_auc']:.3f} ({r['seconds']:.1f}s)"
                                         for n, r in results[label].items()), flush=True)
    write_tables(results, names, args.seed, args.train_per_class, args.out)
    return 0


def write_tables(results: dict[str, dict[str, dict[str, float]]], names: list[str], seed: int,
                 train_per_class: int, out: str | None) -> None:
    """Print (and write to OUT.md / OUT.json) a table per metric: a row per class, the mean,
    the average rank and, for ROC-AUC, the total seconds."""
    lines = [f"Fashion-MNIST one-class, seed {seed}, {train_per_class} training "
             f"images of the normal class, 10,000 test images", ""]
    for metric in ("roc_auc", "ap"):
        means = {n: float(np.mean([r[n][metric] for r in results.values()])) for n in names}
        ranks = average_ranks({t: {n: r[n][metric] for n in names} for t, r in results.items()},
                              names)
        lines += [f"| {metric} | " + " | ".join(names) + " |",
                  "|---|" + "---:|" * len(names)]
        for label, r in results.items():
            best = max(r[n][metric] for n in names)
            lines.append(f"| {label} | " + " | ".join(
                (f"**{r[n][metric]:.3f}**" if r[n][metric] == best else f"{r[n][metric]:.3f}")
                for n in names) + " |")
        lines.append("| **mean** | " + " | ".join(f"{means[n]:.3f}" for n in names) + " |")
        lines.append("| **average rank** | " + " | ".join(f"{ranks[n]:.2f}" for n in names)
                     + " |")
        if metric == "roc_auc":
            lines.append("| **fit + score s (total)** | " + " | ".join(
                f"{sum(r[n]['seconds'] for r in results.values()):.1f}" for n in names) + " |")
        lines.append("")
    print("\n".join(lines))
    if out:
        path = Path(out)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.with_suffix(".json").write_text(json.dumps(
            {"seed": seed, "train_per_class": train_per_class, "results": results}, indent=1))
        path.with_suffix(".md").write_text("\n".join(lines) + "\n")


if __name__ == "__main__":
    raise SystemExit(main())
