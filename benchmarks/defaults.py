"""aekit's defaults on a fixed panel of images and tables, against PCA, in two halves.

A default is only as good as the data it was never tuned on. This script trains what a new
user would train -- ``aekit train --data X [--test Y] [--latent-dim 30 for Fashion-MNIST]``,
nothing else, in a subprocess -- on every entry of a fixed panel and prints the test error
against PCA's at the same latent size (fitted on the same training rows):

- images: scikit-learn's digits (the quickstart, 10% held back); Fashion-MNIST with 1,000,
  5,000 and 60,000 training images (rows ``default_rng(1).permutation(60000)[:n]``, as
  ``(n, 28, 28)`` uint8 ``.npy`` files), scored on the 10,000 test images;
- tables: the 27 ADBench tables in ``shared/data/adbench/`` (``X`` only, 10% held back).

The panel is split once, here, into a *tuning* half and a *confirmation* half
(:data:`TUNING`, :data:`CONFIRMATION`). A default changes only when a candidate helps the
tuning half and the confirmation half agrees: ``--compare "ARGS"`` runs each entry with the
defaults and with the defaults plus ``ARGS`` and prints both, half by half. ``--base "ARGS"``
adds options to both runs, to see what a default does to a given recipe (an architecture, a
strategy) rather than to the bare defaults.

    python benchmarks/defaults.py                          # the whole panel, both halves
    python benchmarks/defaults.py --half tuning            # one half
    python benchmarks/defaults.py --only digits,fmnist-5k  # some entries
    python benchmarks/defaults.py --compare "--weight-decay 0.5" --half tuning
    python benchmarks/defaults.py --base="--batch-norm --residual" --compare=--no-pca-init
    python benchmarks/defaults.py --json panel.json

Acceptance: every table at or below 1.02x PCA; tables' median at or below 0.79x;
Fashion-MNIST 5,000 at or below 0.74x; Fashion-MNIST 60,000 and digits at or below 0.54x.
"""

from __future__ import annotations

import argparse
import json
import shlex
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
ADBENCH = ROOT.parent / "shared" / "data" / "adbench"
FMNIST_SIZES = {"fmnist-1k": 1_000, "fmnist-5k": 5_000, "fmnist-60k": 60_000}
FMNIST_SEED = 1  # rows default_rng(1).permutation(60000)[:n]

# The halves: fixed lists, chosen once by alternating rows within each kind (images by size,
# tables by ADBench's number) so that each half has small and large, images and tables.
TUNING = ["digits", "fmnist-5k",
          "1_ALOI", "6_cardio", "14_glass", "18_Ionosphere", "20_letter", "22_magic.gamma",
          "26_optdigits", "28_pendigits", "31_satimage-2", "37_Stamps", "41_Waveform",
          "43_WDBC", "45_wine", "47_yeast"]
CONFIRMATION = ["fmnist-1k", "fmnist-60k",
                "4_breastw", "12_fault", "15_Hepatitis", "19_landsat", "21_Lymphography",
                "23_mammography", "27_PageBlocks", "29_Pima", "35_SpamBase", "40_vowels",
                "42_WBC", "44_Wilt", "46_WPBC"]
LIMITS = {"table": 1.02, "fmnist-5k": 0.74, "fmnist-60k": 0.54, "digits": 0.54}


def entry_args(name: str, work: Path) -> list[str]:
    """The ``aekit train`` data arguments of a panel entry (files written into ``work``)."""
    if name == "digits":
        return []
    if name in FMNIST_SIZES:
        from aekit.data import load

        path = work / f"{name}.npy"
        if not path.exists():
            x = load("fashion-mnist").x
            rows = np.random.default_rng(FMNIST_SEED).permutation(len(x))[:FMNIST_SIZES[name]]
            np.save(path, np.asarray(x[rows]).reshape(-1, 28, 28).astype(np.uint8))
        return ["--data", str(path), "--test", "fashion-mnist:test", "--latent-dim", "30"]
    path = work / f"{name}.npy"
    if not path.exists():
        with np.load(ADBENCH / f"{name}.npz") as f:
            np.save(path, np.asarray(f["X"], dtype=np.float32))
    return ["--data", str(path)]


def train(name: str, work: Path, extra: list[str], threads: int, tag: str) -> dict:
    """One ``aekit train`` run of a panel entry: its summary plus wall time."""
    out = work / f"run-{name}-{tag}"
    cmd = [sys.executable, "-m", "aekit", "train", *entry_args(name, work), "--out", str(out),
           "--no-progress", "--threads", str(threads), *extra]
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, capture_output=True, text=True)
    wall = time.perf_counter() - t0
    if proc.returncode != 0:
        raise RuntimeError(f"{name}: {shlex.join(cmd)} failed ({proc.returncode}):\n"
                           f"{proc.stderr[-2000:]}")
    s = json.loads((out / "summary.json").read_text())
    check = [e.get("message", "") for e in s.get("events", []) if e.get("kind") == "pca_check"]
    return {"ratio": s["test_sse_per_sample"] / s["pca_test_sse_per_sample"],
            "test": s["test_sse_per_sample"], "pca": s["pca_test_sse_per_sample"],
            "epochs": s["epochs"], "train_seconds": s["train_seconds"], "wall_seconds": wall,
            "hidden": s.get("hidden"), "latent_dim": s["latent_dim"],
            "kept_pca": bool(check and check[-1].startswith("kept PCA"))}


def is_image(name: str) -> bool:
    return name == "digits" or name in FMNIST_SIZES


def limit_of(name: str) -> float | None:
    """The ratio to PCA an entry must stay at or below (None: no limit, Fashion-MNIST 1k)."""
    return LIMITS.get(name, None if is_image(name) else LIMITS["table"])


def summarize(label: str, rows: list[dict], key: str) -> str:
    """One line: median and worst ratio of the tables, and each image entry."""
    tables = [r[key]["ratio"] for r in rows if not is_image(r["name"])]
    images = [f"{r['name']} {r[key]['ratio']:.3f}" for r in rows if is_image(r["name"])]
    over = [r["name"] for r in rows if limit_of(r["name"]) is not None
            and r[key]["ratio"] > limit_of(r["name"])]
    table_part = (f"tables: median {statistics.median(tables):.3f}, worst {max(tables):.3f}"
                  if tables else "tables: none")
    return (f"{label}: {table_part}; {', '.join(images) or 'no images'}; "
            f"over their limit: {over or 'none'}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--half", choices=("tuning", "confirmation", "both"), default="both")
    parser.add_argument("--only", default=None, help="comma-separated entry names")
    parser.add_argument("--compare", default=None,
                        help="extra `aekit train` options of a candidate default, run beside "
                             "the defaults on every entry, e.g. \"--weight-decay 0.5\"")
    parser.add_argument("--base", default=None,
                        help="extra `aekit train` options of both runs (the recipe a "
                             "candidate is compared within), e.g. \"--batch-norm --residual\"")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--json", default=None, help="write every row to this file")
    args = parser.parse_args()
    halves = {"tuning": TUNING, "confirmation": CONFIRMATION}
    if args.half != "both":
        halves = {args.half: halves[args.half]}
    if args.only:
        wanted = {n.strip() for n in args.only.split(",") if n.strip()}
        unknown = wanted - set(TUNING) - set(CONFIRMATION)
        if unknown:
            parser.error(f"unknown entries {sorted(unknown)}; known: "
                         f"{', '.join(TUNING + CONFIRMATION)}")
        halves = {h: [n for n in names if n in wanted] for h, names in halves.items()}
    extra = shlex.split(args.compare) if args.compare else []
    base = shlex.split(args.base) if args.base else []
    results: dict[str, list[dict]] = {}
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        for half, names in halves.items():
            print(f"\n## {half} half\n")
            head = "| entry | latent | hidden | epochs | train s | aekit | PCA | aekit / PCA |"
            rule = "|---|---:|---|---:|---:|---:|---:|---:|"
            if extra:
                head += " with the candidate | change |"
                rule += "---:|---:|"
            print(head + "\n" + rule, flush=True)
            rows = results[half] = []
            for name in names:
                row = {"name": name, "defaults": train(name, work, base, args.threads, "d")}
                d = row["defaults"]
                line = (f"| {name} | {d['latent_dim']} | "
                        f"{','.join(map(str, d['hidden'] or []))} | {d['epochs']} | "
                        f"{d['train_seconds']:.1f} | {d['test']:.4g} | {d['pca']:.4g} | "
                        f"{d['ratio']:.3f}{' (PCA kept)' if d['kept_pca'] else ''} |")
                if extra:
                    c = row["candidate"] = train(name, work, base + extra, args.threads, "c")
                    line += f" {c['ratio']:.3f} | {c['ratio'] / d['ratio'] - 1:+.1%} |"
                rows.append(row)
                print(line, flush=True)
    print()
    for half, rows in results.items():
        if rows:
            label = f"{half}, defaults" + (f" with {args.base}" if base else "")
            print(summarize(label, rows, "defaults"))
            if extra:
                print(summarize(f"{label}, with {args.compare}", rows, "candidate"))
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=2))
    over = [r["name"] for rows in results.values() for r in rows
            if limit_of(r["name"]) is not None and r["defaults"]["ratio"] > limit_of(r["name"])]
    return 1 if over else 0


if __name__ == "__main__":
    sys.exit(main())
