"""The parts of aekit's anomaly score, alone and summed, from one fit per table and seed.

A design tool for ``OutlierDetector``'s score: on the tables and split of
``benchmarks/anomaly.py`` (``--setting``, ``--half``), it fits the detector once per table and
seed and scores the test rows by each part, every part divided by its median on the training
rows as the detector does:

- ``rw`` the whitened residual, ``rp`` the plain squared residual, ``rf`` each residual over
  its training MAD, squared and summed (feature-wise normalised errors);
- ``cd`` the code's Mahalanobis distance, ``kc`` / ``kc5`` the squared distance to the 10th /
  5th nearest training code;
- ``ki5`` / ``ki10`` the squared distance to the 5th / 10th nearest training row in the
  detector's scaled input space; ``ecod`` and ``if``: PyOD's ECOD and IForest, for reference;

then the ROC-AUC of every part and of sums of them. The parts' test scores are kept in
``OUT-TABLE-SEED.npz`` so that other sums can be tried without fitting again.

    python benchmarks/anomaly_parts.py --setting novelty --half design --seeds 0,1,2 \\
        --out results/anomaly/parts-novelty-design
"""

from __future__ import annotations

import argparse
import itertools
import json
import time
import warnings
from pathlib import Path

import numpy as np

import anomaly as bench
from aekit.detector_scores import kth_neighbour_distance, positive_median

SUMS = [["rw", "cd", "kc"], ["rp", "cd", "kc"], ["rf", "cd", "kc"], ["rw", "cd"],
        ["rw", "cd", "kc", "ecod"], ["rw", "cd", "kc", "if"], ["rw", "cd", "kc", "ki10"],
        ["rw", "cd", "kc", "rp"], ["rw", "cd", "kc", "rf"]] + [
    list(c) for r in (2, 3) for c in itertools.combinations(
        ["rw", "rp", "cd", "kc", "kc5", "ki5", "ki10"], r)]


def parts_of(det, x_train: np.ndarray, x_test: np.ndarray, seed: int) -> dict[str, np.ndarray]:
    """Every part's test scores, each over its median on the training rows."""
    from pyod.models.ecod import ECOD
    from pyod.models.iforest import IForest

    r_tr, c_tr, _ = det._forward(x_train)
    r_te, c_te, _ = det._forward(x_test)
    rw_tr, cd_tr = det._parts(r_tr, c_tr)
    rw_te, cd_te = det._parts(r_te, c_te)
    centre = np.median(r_tr, axis=0)
    mad = np.median(np.abs(r_tr - centre), axis=0) + 1e-6
    rf_tr = np.square((r_tr - centre) / mad).sum(1)
    rf_te = np.square((r_te - centre) / mad).sum(1)
    codes = det.reference_codes_
    s_tr = det.autoencoder_.scaler.transform(x_train).astype(np.float32)
    s_te = det.autoencoder_.scaler.transform(x_test).astype(np.float32)
    ecod = ECOD().fit(x_train)
    forest = IForest(random_state=seed).fit(x_train)
    low = float(np.min(forest.decision_scores_))
    parts = {"rw": rw_te / positive_median(rw_tr),
             "rp": np.square(r_te).sum(1) / positive_median(np.square(r_tr).sum(1)),
             "rf": rf_te / positive_median(rf_tr), "cd": cd_te / positive_median(cd_tr),
             "ecod": ecod.decision_function(x_test) / positive_median(ecod.decision_scores_),
             "if": (forest.decision_function(x_test) - low)
             / positive_median(forest.decision_scores_ - low)}
    # kc as the detector computes it (its k, a training code counting itself); kc5 and the
    # input-space parts with the training rows' k-th *other* row
    parts["kc"] = det._neighbour_part(c_te.astype(np.float32)) / positive_median(
        det._neighbour_part(codes))
    parts["kc5"] = (kth_neighbour_distance(codes, c_te.astype(np.float32), 5)
                    / positive_median(kth_neighbour_distance(codes, codes, 6)))
    for k in (5, 10):
        parts[f"ki{k}"] = (kth_neighbour_distance(s_tr, s_te, k)
                           / positive_median(kth_neighbour_distance(s_tr, s_tr, k + 1)))
    return parts


def main() -> int:
    from sklearn.metrics import roc_auc_score

    from aekit import OutlierDetector

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--setting", choices=bench.SETTINGS, default="unsupervised")
    parser.add_argument("--half", choices=("design", "confirmation", "all"), default="design")
    parser.add_argument("--only", default=None, help="comma-separated parts of table names")
    parser.add_argument("--seeds", default="0,1,2")
    parser.add_argument("--aekit", default="{}", help="JSON of OutlierDetector options")
    parser.add_argument("--out", required=True, help="OUT.json (ROC-AUCs) and OUT-*.npz")
    args = parser.parse_args()
    out = Path(args.out).with_suffix(".json")
    out.parent.mkdir(parents=True, exist_ok=True)
    results = json.loads(out.read_text()) if out.exists() else {}
    options = json.loads(args.aekit)
    for path in bench.tables(args.only.split(",") if args.only else None, args.half):
        with np.load(path) as data:
            x, y = data["X"].astype(np.float64), data["y"].astype(np.int64)
        for seed in (int(s) for s in args.seeds.split(",")):
            key = f"{args.setting}|{path.stem}|{seed}"
            if key in results:
                continue
            x_train, x_test, y_test = bench.split(x, y, seed, args.setting)
            start = time.perf_counter()
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                det = OutlierDetector(random_state=seed, threads=1,
                                      novelty=args.setting == "novelty", **options).fit(x_train)
                parts = parts_of(det, x_train, x_test, seed)
            np.savez(f"{out.with_suffix('')}-{path.stem}-{seed}.npz", y=y_test, **parts)
            row = {"seconds": time.perf_counter() - start}
            for names in [[p] for p in parts] + SUMS:
                score = np.nan_to_num(sum(parts[p] for p in names))
                row["+".join(names)] = float(roc_auc_score(y_test, score))
            results[key] = row
            out.write_text(json.dumps(results, indent=0))
            print(key, " ".join(f"{k}={row[k]:.3f}" for k in ("rw", "cd", "kc", "rw+cd+kc")),
                  flush=True)
    by_table: dict[str, list[dict]] = {}
    for key, row in results.items():
        by_table.setdefault(key.split("|")[1], []).append(row)
    names = [n for n in next(iter(results.values())) if n != "seconds"]
    means = {n: float(np.mean([np.mean([r[n] for r in rows]) for rows in by_table.values()]))
             for n in names}
    print(f"mean ROC-AUC over {len(by_table)} tables:")
    for name in sorted(means, key=means.get, reverse=True):
        print(f"  {name:18s} {means[name]:.4f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
