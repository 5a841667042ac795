"""Anomaly detection on ADBench's 27 classical tables: aekit's OutlierDetector against PyOD.

Two settings (``--setting``), both on tables over 10,000 rows subsampled to 10,000 (per seed,
stratified) and min-max scaled on the training part:

- ``unsupervised`` (ADBench's default): a stratified 70/30 train/test split; every detector is
  fitted on the training part *with* its anomalies and scores the test part;
- ``novelty`` (ADBench's semi-supervised split): fitted on a random 50% of the normal rows,
  scoring the other normal rows and every anomaly (aekit as ``OutlierDetector(novelty=True)``).

Detectors: aekit and PyOD's IForest, ECOD, COPOD, PCA, MCD, CBLOF, KNN (k = 5), LOF, OCSVM,
AutoEncoder and DeepSVDD, all with their defaults. Metrics: ROC-AUC and average precision
(PR-AUC) of the anomaly scores; time is fit + score seconds, one thread.

The 27 tables are split once, here, into a *design* half (the tables design choices are made
on) and a *confirmation* half (reported, never tuned on): alternately in the order of their
ADBench numbers. Both halves are reported, each with its own mean, median, average rank and
aekit's wins against every other detector.

Every measurement goes into ``--cache`` (JSON, keyed by setting, detector, table and seed) as
soon as it is made: a run that stops resumes where it stopped, and runs split by detector, table
or seed join by naming the same cache (or several, with ``--from-json``).

    pip install -e '.[bench]'        # PyOD
    OMP_NUM_THREADS=1 python benchmarks/anomaly.py --threads 1 --cache results/anomaly/unsup.json
    python benchmarks/anomaly.py --setting novelty --cache results/anomaly/novelty.json
    python benchmarks/anomaly.py --half design --seeds 0,1 --aekit '{"n_neighbors": 20}' \\
        --aekit-name aekit-k20 --detectors aekit-k20 --cache results/anomaly/design.json
    python benchmarks/anomaly.py --from-json a.json,b.json --out results/anomaly/tables
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
ANCHORS = ("IForest", "ECOD", "COPOD", "PCA", "MCD", "CBLOF", "KNN", "LOF", "OCSVM",
           "AutoEncoder", "DeepSVDD")
DETECTORS = ("aekit", *ANCHORS)
SETTINGS = ("unsupervised", "novelty")
# Fixed before any design choice: every other table by ADBench number, from the first.
DESIGN = ("1_ALOI", "6_cardio", "14_glass", "18_Ionosphere", "20_letter", "22_magic.gamma",
          "26_optdigits", "28_pendigits", "31_satimage-2", "37_Stamps", "41_Waveform",
          "43_WDBC", "45_wine", "47_yeast")
CONFIRMATION = ("4_breastw", "12_fault", "15_Hepatitis", "19_landsat", "21_Lymphography",
                "23_mammography", "27_PageBlocks", "29_Pima", "35_SpamBase", "40_vowels",
                "42_WBC", "44_Wilt", "46_WPBC")
HALVES = {"design": DESIGN, "confirmation": CONFIRMATION, "all": DESIGN + CONFIRMATION}


def make_detector(name: str, seed: int, n_features: int, setting: str,
                  aekit_options: dict[str, Any], aekit_name: str) -> Any:
    """A fresh detector with its defaults (PyOD's are PyOD's, aekit's are aekit's)."""
    if name == aekit_name:
        from aekit import OutlierDetector

        return OutlierDetector(random_state=seed, novelty=setting == "novelty",
                               **aekit_options)
    from pyod.models import (auto_encoder, cblof, copod, deep_svdd, ecod, iforest, knn, lof,
                             mcd, ocsvm, pca)

    return {"IForest": lambda: iforest.IForest(random_state=seed),
            "ECOD": ecod.ECOD, "COPOD": copod.COPOD,
            "PCA": lambda: pca.PCA(random_state=seed),
            "MCD": lambda: mcd.MCD(random_state=seed),
            "CBLOF": lambda: cblof.CBLOF(random_state=seed),
            "KNN": knn.KNN, "LOF": lof.LOF, "OCSVM": ocsvm.OCSVM,
            "AutoEncoder": lambda: auto_encoder.AutoEncoder(random_state=seed, verbose=0),
            "DeepSVDD": lambda: deep_svdd.DeepSVDD(n_features=n_features, random_state=seed,
                                                   verbose=0)}[name]()


def anomaly_scores(detector: Any, x_test: np.ndarray) -> np.ndarray:
    """Higher = more anomalous, for aekit and PyOD alike."""
    if hasattr(detector, "anomaly_score"):
        return detector.anomaly_score(x_test)
    return detector.decision_function(x_test)


def split(x: np.ndarray, y: np.ndarray, seed: int, setting: str) -> tuple[np.ndarray, ...]:
    """Subsample to MAX_ROWS; the setting's train/test split; min-max scaling fitted on train.
    Returns x_train, x_test, y_test."""
    from sklearn.model_selection import train_test_split
    from sklearn.preprocessing import MinMaxScaler

    if len(x) > MAX_ROWS:
        x, _, y, _ = train_test_split(x, y, train_size=MAX_ROWS, stratify=y, random_state=seed)
    if setting == "unsupervised":
        x_train, x_test, _, y_test = train_test_split(x, y, test_size=0.3, stratify=y,
                                                      random_state=seed)
    else:  # ADBench's semi-supervised split: half the normal rows train, the rest test
        normal, anomalous = np.flatnonzero(y == 0), np.flatnonzero(y == 1)
        order = np.random.default_rng(seed).permutation(normal)
        train, test = order[:len(order) // 2], np.concatenate([order[len(order) // 2:],
                                                               anomalous])
        x_train, x_test, y_test = x[train], x[test], y[test]
    scaler = MinMaxScaler().fit(x_train)
    return (scaler.transform(x_train).astype(np.float32),
            scaler.transform(x_test).astype(np.float32), y_test)


# PyOD's CBLOF refuses some tables ("Could not form valid cluster separation"): it is then
# fitted again with a looser split of its clusters into large and small ones (alpha, beta),
# the first that works recorded with the result.
CBLOF_RETRIES = ({"alpha": 0.8, "beta": 3}, {"alpha": 0.7, "beta": 2})


def run_one(detector: Any, x_train: np.ndarray, x_test: np.ndarray,
            y_test: np.ndarray) -> dict[str, Any]:
    from sklearn.metrics import average_precision_score, roc_auc_score

    retries = list(CBLOF_RETRIES) if type(detector).__name__ == "CBLOF" else []
    start = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        while True:
            try:
                detector.fit(x_train)
                break
            except ValueError:
                if not retries:
                    raise
                detector.set_params(**retries.pop(0))
        scores = anomaly_scores(detector, x_test)
    seconds = time.perf_counter() - start
    scores = np.asarray(scores, dtype=np.float64)
    # PyOD's PCA (all components) divides by a zero eigenvalue on rank-deficient tables and
    # scores inf: counted here, and ranked as the largest finite value would be.
    nonfinite = int(np.sum(~np.isfinite(scores)))
    scores = np.nan_to_num(scores, nan=0.0, posinf=1e300, neginf=-1e300)
    run = {"roc_auc": float(roc_auc_score(y_test, scores)),
           "ap": float(average_precision_score(y_test, scores)), "seconds": seconds,
           "nonfinite_scores": nonfinite}
    if type(detector).__name__ == "CBLOF" and len(retries) < len(CBLOF_RETRIES):
        run["cblof_params"] = {"alpha": detector.alpha, "beta": detector.beta}
    return run


def tables(only: list[str] | None, half: str) -> list[Path]:
    paths = [DATA_DIR / f"{name}.npz" for name in HALVES[half]]
    if only:
        paths = [p for p in paths if any(o.lower() in p.stem.lower() for o in only)]
    return paths


# -- the cache -------------------------------------------------------------------------------
def key(setting: str, name: str, table: str, seed: int) -> str:
    return f"{setting}|{name}|{table}|{seed}"


def load_cache(paths: list[Path]) -> dict[str, Any]:
    """Measurements of several cache files, a later file's replacing an earlier one's."""
    merged: dict[str, Any] = {}
    for path in paths:
        if path.exists():
            merged.update(json.loads(path.read_text())["results"])
    return merged


def save_cache(path: Path, results: dict[str, Any]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".json.tmp")
    tmp.write_text(json.dumps({"cpu_count": os.cpu_count(), "results": results}, indent=0))
    tmp.replace(path)


# -- the tables ------------------------------------------------------------------------------
def average_ranks(means: dict[str, dict[str, float]], names: list[str]) -> dict[str, float]:
    """Average rank over the tables (1 = best; ties share their mean rank)."""
    from scipy.stats import rankdata

    ranks = [rankdata([-row[n] for n in names]) for row in means.values()]
    return {n: float(np.mean([r[i] for r in ranks])) for i, n in enumerate(names)}


def collect(results: dict[str, Any], setting: str, names: list[str], table_names: list[str],
            seeds: list[int]) -> tuple[dict[str, dict[str, list[dict]]], list[str]]:
    """Per table and detector the runs on ``seeds``; detectors lacking any are left out."""
    complete = [n for n in names if all(key(setting, n, t, s) in results
                                        for t in table_names for s in seeds)]
    runs = {t: {n: [results[key(setting, n, t, s)] for s in seeds] for n in complete}
            for t in table_names}
    return runs, complete


def report(runs: dict[str, dict[str, list[dict]]], names: list[str], metric: str,
           title: str, echo: Callable, aekit_name: str) -> list[str]:
    """A markdown table of ``metric`` per data set, plus mean, median, average rank, seconds
    per fit + score and aekit's wins against each detector."""
    means = {t: {n: float(np.mean([r[metric] for r in row[n]])) for n in names}
             for t, row in runs.items()}
    lines = [f"| {title} | " + " | ".join(names) + " |", "|---|" + "---:|" * len(names)]
    for table, row in means.items():
        best = max(row.values())
        cells = [f"**{row[n]:.3f}**" if row[n] == best else f"{row[n]:.3f}" for n in names]
        lines.append(f"| {table} | " + " | ".join(cells) + " |")
    mean = {n: float(np.mean([row[n] for row in means.values()])) for n in names}
    median = {n: float(np.median([row[n] for row in means.values()])) for n in names}
    ranks = average_ranks(means, names)
    seconds = {n: float(np.mean([r["seconds"] for row in runs.values() for r in row[n]]))
               for n in names}
    top = max(mean.values())
    lines.append("| **mean** | " + " | ".join(f"**{mean[n]:.3f}**" if mean[n] == top
                                              else f"{mean[n]:.3f}" for n in names) + " |")
    lines.append("| **median** | " + " | ".join(f"{median[n]:.3f}" for n in names) + " |")
    lines.append("| **average rank** | " + " | ".join(f"{ranks[n]:.2f}" for n in names) + " |")
    if aekit_name in names:
        def wins(other: str) -> str:
            diff = [row[aekit_name] - row[other] for row in means.values()]
            return f"{sum(d > 0 for d in diff)}-{sum(d < 0 for d in diff)}"
        lines.append(f"| **{aekit_name} wins-losses** | " + " | ".join(
            "" if n == aekit_name else wins(n) for n in names) + " |")
    if metric == "roc_auc":
        lines.append("| **s per fit + score** | " + " | ".join(f"{seconds[n]:.2f}"
                                                            for n in names) + " |")
    if aekit_name in names and len(names) > 1:
        others = {n: mean[n] for n in names if n != aekit_name}
        best = max(others, key=others.get)
        lines += ["", f"{title}: {aekit_name} mean {mean[aekit_name]:.3f}, best other {best} "
                  f"{others[best]:.3f} ({mean[aekit_name] - others[best]:+.3f}); "
                  f"best average rank: {min(ranks, key=ranks.get)}"]
    for line in lines:
        echo(line)
    return lines


def tables_text(results: dict[str, Any], setting: str, names: list[str], seeds: list[int],
                halves: list[str], aekit_name: str) -> list[str]:
    lines = [f"setting {setting}, seeds {seeds}", ""]
    for half in halves:
        table_names = [t for t in HALVES[half]]
        runs, complete = collect(results, setting, names, table_names, seeds)
        missing = [n for n in names if n not in complete]
        lines.append(f"## {half} half ({len(table_names)} tables)" if half != "all"
                     else f"## all {len(table_names)} tables")
        if missing:
            lines.append(f"(not measured on every table and seed, left out: {missing})")
        lines.append("")
        if not complete:
            continue
        for metric, label in (("roc_auc", "ROC-AUC"), ("ap", "PR-AUC")):
            lines += report(runs, complete, metric, f"{label}, {half}", lambda s: None,
                            aekit_name) + [""]
    return lines


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--setting", choices=SETTINGS, default="unsupervised")
    parser.add_argument("--half", choices=tuple(HALVES), default="all",
                        help="the tables to measure (reports show both halves)")
    parser.add_argument("--only", default=None, help="comma-separated parts of table names")
    parser.add_argument("--seeds", default="0,1,2,3,4", help="comma-separated seeds")
    parser.add_argument("--detectors", default=",".join(DETECTORS))
    parser.add_argument("--aekit", default="{}", help="JSON of OutlierDetector options")
    parser.add_argument("--aekit-name", default="aekit",
                        help="the name aekit's results go under (a variant's own name keeps "
                        "it apart from the default's in the cache)")
    parser.add_argument("--threads", type=int, default=None, help="torch threads")
    parser.add_argument("--cache", default=None,
                        help="JSON file of measurements: read first, skipped when already "
                        "there, written after each")
    parser.add_argument("--from-json", default=None,
                        help="comma-separated cache files: join them, print the tables "
                        "(no fitting)")
    parser.add_argument("--out", default=None, help="write the tables to OUT.md")
    args = parser.parse_args(argv)
    seeds = [int(s) for s in args.seeds.split(",")]
    names = args.detectors.split(",")
    aekit_name = args.aekit_name
    halves = ["design", "confirmation", "all"] if args.half == "all" else [args.half]
    if args.from_json:
        results = load_cache([Path(p) for p in args.from_json.split(",")])
    else:
        if args.threads:
            import torch

            torch.set_num_threads(args.threads)
        cache = Path(args.cache) if args.cache else None
        results = load_cache([cache]) if cache else {}
        aekit_options = json.loads(args.aekit)
        for path in tables(args.only.split(",") if args.only else None, args.half):
            with np.load(path) as data:
                x, y = data["X"].astype(np.float64), data["y"].astype(np.int64)
            for seed in seeds:
                todo = [n for n in names if key(args.setting, n, path.stem, seed) not in results]
                if not todo:
                    continue
                x_train, x_test, y_test = split(x, y, seed, args.setting)
                for name in todo:
                    detector = make_detector(name, seed, x.shape[1], args.setting,
                                             aekit_options, aekit_name)
                    run = run_one(detector, x_train, x_test, y_test)
                    if name == aekit_name:
                        run["options"] = aekit_options
                    results[key(args.setting, name, path.stem, seed)] = run
                    if cache:
                        save_cache(cache, results)
                    print(f"{args.setting} {path.stem:16s} seed {seed} {name:12s} "
                          f"ROC-AUC {run['roc_auc']:.3f} AP {run['ap']:.3f} "
                          f"{run['seconds']:.2f}s", flush=True)
        if args.only:  # a part of the tables: its own table, no halves
            HALVES["selected"] = tuple(p.stem for p in tables(args.only.split(","), args.half))
            halves = ["selected"]
    lines = tables_text(results, args.setting, names, seeds, halves, aekit_name)
    print("\n".join(lines))
    if args.out:
        Path(args.out).parent.mkdir(parents=True, exist_ok=True)
        Path(args.out).with_suffix(".md").write_text("\n".join(lines) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
