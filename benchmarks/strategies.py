"""The strategy study: a deep sigmoid autoencoder on Fashion-MNIST under the articles' strategies.

The network is Hinton & Salakhutdinov's 784-1000-500-250-30 (decoder mirrored) with sigmoid
hidden units, a sigmoid output and the MSE loss, trained for the same number of epochs under
each strategy. Each strategy is plain mini-batch SGD (lr 0.1, batch 100, constant) plus one
change, except Adam and aekit's recommended recipe. For each run the table gives the test error
(squared error per sample on the Fashion-MNIST test set), its ratio to PCA-30 fitted on the same
training images, the first epoch whose test error is below PCA-30's ("never" if none), the wall
time, the gradient reaching the first layer (``||g||/||W||`` of encoder.0 over that of the
strongest layer, late in training: what the vanishing-gradient detector compares with its 1e-2
threshold) and the findings of the training doctor.

    python benchmarks/strategies.py --quick            # 10k training images, 4 epochs
    python benchmarks/strategies.py                    # 60k images, 20 epochs (about an hour on 2 cores)
    python benchmarks/strategies.py --quick --only sgd,recipe

Writes ``study.json`` and ``study.md`` into ``--out``. Timings on a shared machine are noisy.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

from aekit import Autoencoder
from aekit.baselines.pca import fit_pca, pca_errors
from aekit.data import load
from aekit.training.callbacks import Callback
from aekit.training.findings import find_all, layer_gradients, records_of, split_records

BASE = dict(hidden=(1000, 500, 250), latent_dim=30, activation="sigmoid", loss="mse",
            optimizer="sgd", lr=0.1, schedule="constant", batch_size=100,
            validation_split=0.0, progress=False)
STRATEGIES: dict[str, tuple[str, dict[str, Any]]] = {
    "sgd": ("plain mini-batch SGD", {}),
    "momentum": ("+ momentum 0.9", dict(optimizer="momentum")),
    "exp_decay": ("+ exponential decay (lr 0.5 -> 0.005)",
                  dict(lr=0.5, schedule="exponential")),
    "linear_decay": ("+ linear decay (lr 0.5 -> 0.005)", dict(lr=0.5, schedule="linear")),
    "restarts": ("+ warm restarts (cosine, lr 0.5)", dict(lr=0.5, schedule="cosine_restarts")),
    "l2": ("+ L2 1e-4", dict(l2=1e-4)),
    "clip": ("+ gradient clipping (norm 1)", dict(clip_norm=1.0)),
    "bn": ("+ batch normalization", dict(batch_norm=True)),
    "residual": ("+ residual connections", dict(residual=True)),
    "residual_bn": ("+ residual and batch norm", dict(residual=True, batch_norm=True)),
    "adam": ("Adam (lr 1e-3)", dict(optimizer="adam", lr=1e-3)),
    # The first full run of a peak of 3e-3 without clipping diverged at the peak (epoch 5 of
    # 20) after reaching 0.94x PCA-30; the recipe now peaks at 1e-3, clips the gradient norm
    # and lets the doctor roll back a divergence.
    "recipe": ("aekit recipe: residual + BN + Adam, one-cycle lr 1e-3, clip 1, auto-fix",
               dict(optimizer="adam", lr=1e-3, schedule="one_cycle", residual=True,
                    batch_norm=True, clip_norm=1.0, auto_fix=True)),
}


class TestErrorPerEpoch(Callback):
    """Scores the test set after every epoch (squared error per sample, in the scaled space)."""

    def __init__(self, x_test: torch.Tensor) -> None:
        self.x_test = x_test
        self.sse: list[float] = []

    @torch.inference_mode()
    def on_epoch_end(self, trainer: Any, epoch: int, logs: dict[str, Any]) -> None:
        model = trainer.model
        was_training = model.training
        model.eval()
        total = 0.0
        for i in range(0, self.x_test.shape[0], 4096):
            xb = self.x_test[i:i + 4096]
            total += float((model(xb).x_hat.double() - xb.double()).pow(2).sum())
        model.train(was_training)
        self.sse.append(total / self.x_test.shape[0])


def run_strategy(name: str, x_train: np.ndarray, x_test: np.ndarray, epochs: int,
                 seed: int, threads: int, pca_sse: float) -> dict[str, Any]:
    """Train one strategy; return its row of the table."""
    label, changes = STRATEGIES[name]
    ae = Autoencoder(**{**BASE, **changes}, epochs=epochs, seed=seed, threads=threads)
    scorer = TestErrorPerEpoch(torch.from_numpy(x_test))
    t0 = time.perf_counter()
    ae.fit(x_train, callbacks=[scorer])
    seconds = time.perf_counter() - t0
    records = records_of(ae.trainer)
    findings = [f.to_dict() for f in find_all(records)]
    gradient, _ = layer_gradients(split_records(records)[1])
    top = max(gradient.values(), default=0.0) or 1.0
    reach = next((i + 1 for i, v in enumerate(scorer.sse) if v < pca_sse), None)
    return {"strategy": name, "label": label, "test_sse_per_sample": scorer.sse[-1],
            "ratio_to_pca": scorer.sse[-1] / pca_sse, "epochs_to_pca": reach,
            "seconds": seconds, "test_sse_by_epoch": scorer.sse,
            "findings": [f["kind"] for f in findings],
            "vanishing": next((f["message"] for f in findings
                               if f["kind"] == "vanishing_gradients"), None),
            "gradient_to_strongest": {n: v / top for n, v in gradient.items()}}


def table(rows: list[dict[str, Any]], pca_sse: float) -> str:
    """The study as a Markdown table."""
    lines = [f"PCA-30 test error: {pca_sse:.2f}", "",
             "| strategy | test error | / PCA-30 | epochs to PCA-30 | seconds | "
             "gradient at encoder.0 | findings |",
             "|---|---:|---:|---:|---:|---:|---|"]
    for r in rows:
        first = r["gradient_to_strongest"].get("encoder.0")
        lines.append(f"| {r['label']} | {r['test_sse_per_sample']:.2f} | "
                     f"{r['ratio_to_pca']:.2f} | {r['epochs_to_pca'] or 'never'} | "
                     f"{r['seconds']:.0f} | {'-' if first is None else f'{first:.1e}'} | "
                     f"{', '.join(r['findings']) or '-'} |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="10k training images, 4 epochs")
    parser.add_argument("--epochs", type=int, default=None)
    parser.add_argument("--n-train", type=int, default=None)
    parser.add_argument("--only", default=None, help="comma-separated strategy names")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", default="benchmarks/results/strategies")
    args = parser.parse_args(argv)
    epochs = args.epochs or (4 if args.quick else 20)
    n_train = args.n_train or (10_000 if args.quick else 60_000)
    names = args.only.split(",") if args.only else list(STRATEGIES)
    unknown = [n for n in names if n not in STRATEGIES]
    if unknown:
        parser.error(f"unknown strategies {unknown}; allowed: {', '.join(STRATEGIES)}")
    torch.set_num_threads(args.threads)
    train = load("fashion-mnist")
    test = load("fashion-mnist:test")
    order = np.random.default_rng(args.seed).permutation(train.n_samples)[:n_train]
    x_train = (train.x[np.sort(order)] / 255.0).astype(np.float32) \
        if train.x.max() > 1 else train.x[np.sort(order)]
    x_test = (test.x / 255.0).astype(np.float32) if test.x.max() > 1 else test.x
    pca_sse = pca_errors(fit_pca(x_train, 30, args.seed), x_test)["sse_per_sample"]
    print(f"{n_train} training images, {epochs} epochs, {args.threads} thread(s); "
          f"PCA-30 test error {pca_sse:.2f}", flush=True)
    rows = []
    for name in names:
        row = run_strategy(name, x_train, x_test, epochs, args.seed, args.threads, pca_sse)
        rows.append(row)
        print(f"{name:13s} test {row['test_sse_per_sample']:7.2f}  ratio "
              f"{row['ratio_to_pca']:5.2f}  {row['seconds']:5.0f}s  {row['findings']}",
              flush=True)
        if row["vanishing"]:
            print(f"{'':13s} {row['vanishing']}", flush=True)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "study.json").write_text(json.dumps({"n_train": n_train, "epochs": epochs,
                                                "pca_test_sse_per_sample": pca_sse,
                                                "rows": rows}, indent=2))
    md = table(rows, pca_sse)
    (out / "study.md").write_text(md + "\n")
    print(md)
    return 0


if __name__ == "__main__":
    sys.exit(main())
