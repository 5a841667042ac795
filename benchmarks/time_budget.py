"""The best model in a given time: aekit's ``--time-budget`` against a plain PyTorch loop and
scikit-learn's ``MLPRegressor`` given the same wall time, on Fashion-MNIST (latent 30).

- **aekit**: ``aekit train --data fashion-mnist --test fashion-mnist:test --latent-dim 30
  --time-budget B`` (the CLI, in a subprocess; its ``summary.json``'s test error and training
  time).
- **plain PyTorch**: what a PyTorch user writes (``train_speed.py``'s loop): the same widths as
  the model aekit trained for that budget (its ``summary.json``'s ``hidden``: the image default
  784-512-256-128-30, or 784-1000-500-250-30 where the budget is long enough for aekit's
  long-budget rule; mirrored, ReLU, sigmoid output), Adam at 1e-3, batch 256,
  ``DataLoader(shuffle=True)``, trained until the budget is spent (checked after every batch).
- **scikit-learn**: ``MLPRegressor`` with the same hidden widths (encoder and decoder), Adam,
  batch 256, ``partial_fit`` on shuffled batches until the budget is spent.

Every tool gets the same budget of training time (data loading and PCA excluded) and is
scored on the 10,000 test images: squared error per image, pixels in [0, 1], divided by
PCA-30's (fitted on the 60,000 training images).

    python benchmarks/time_budget.py --budgets 30,60,120,300,600 [--threads 2]
    python benchmarks/time_budget.py --from-json A.json,B.json --plot docs/images/time-budget.png
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
import warnings
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
HIDDEN = (512, 256, 128)
LATENT = 30


def fashion() -> tuple[np.ndarray, np.ndarray]:
    from aekit.data import load

    return (load("fashion-mnist").x / 255.0).astype(np.float32), \
        (load("fashion-mnist:test").x / 255.0).astype(np.float32)


def sse(x: np.ndarray, x_hat: np.ndarray) -> float:
    return float(np.square(x_hat.astype(np.float64) - x).sum(axis=1).mean())


def run_aekit(budget: float, threads: int | None) -> tuple[float, float, tuple[int, ...]]:
    """aekit's test error, training seconds and the hidden widths it chose."""
    with tempfile.TemporaryDirectory() as tmp:
        cmd = [sys.executable, "-m", "aekit", "train", "--data", "fashion-mnist", "--test",
               "fashion-mnist:test", "--latent-dim", str(LATENT), "--time-budget", str(budget),
               "--no-progress", "--labels", "none", "--out", tmp]
        if threads:
            cmd += ["--threads", str(threads)]
        proc = subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT)
        if proc.returncode != 0:
            raise SystemExit(f"aekit failed:\n{proc.stdout}\n{proc.stderr}")
        s = json.loads((Path(tmp) / "summary.json").read_text())
    return s["test_sse_per_sample"], s["train_seconds"], tuple(s["hidden"])


def run_torch(x: np.ndarray, x_test: np.ndarray, budget: float,
              hidden: tuple[int, ...] = HIDDEN) -> tuple[float, float]:
    import torch
    from torch import nn
    from torch.utils.data import DataLoader, TensorDataset

    torch.manual_seed(0)
    widths = [x.shape[1], *hidden, LATENT, *hidden[::-1], x.shape[1]]
    layers: list[nn.Module] = []
    for i in range(len(widths) - 1):
        layers.append(nn.Linear(widths[i], widths[i + 1]))
        if i + 1 == len(widths) - 1:
            layers.append(nn.Sigmoid())
        elif widths[i + 1] != LATENT:
            layers.append(nn.ReLU())
    model = nn.Sequential(*layers)
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    loader = DataLoader(TensorDataset(torch.from_numpy(x)), batch_size=256, shuffle=True)
    t0 = time.perf_counter()
    done = False
    while not done:
        for (xb,) in loader:
            opt.zero_grad()
            loss = nn.functional.mse_loss(model(xb), xb)
            loss.backward()
            opt.step()
            if time.perf_counter() - t0 >= budget:
                done = True
                break
    seconds = time.perf_counter() - t0
    with torch.no_grad():
        x_hat = model(torch.from_numpy(x_test)).numpy()
    return sse(x_test, x_hat), seconds


def run_sklearn(x: np.ndarray, x_test: np.ndarray, budget: float,
                hidden: tuple[int, ...] = HIDDEN) -> tuple[float, float]:
    from sklearn.exceptions import ConvergenceWarning
    from sklearn.neural_network import MLPRegressor

    model = MLPRegressor(hidden_layer_sizes=(*hidden, LATENT, *hidden[::-1]), batch_size=256,
                         learning_rate_init=1e-3, random_state=0)
    rng = np.random.default_rng(0)
    t0 = time.perf_counter()
    done = False
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        warnings.filterwarnings("ignore", message="Got `batch_size`")  # the last, short batch
        while not done:
            order = rng.permutation(len(x))
            for i in range(0, len(x), 256):
                rows = x[order[i:i + 256]]
                model.partial_fit(rows, rows)
                if time.perf_counter() - t0 >= budget:
                    done = True
                    break
    seconds = time.perf_counter() - t0
    return sse(x_test, np.clip(model.predict(x_test), 0, 1)), seconds


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--budgets", default="30,60,120,300,600")
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--json", type=Path, default=None)
    parser.add_argument("--plot", type=Path, default=None, help="a PNG of error against budget")
    parser.add_argument("--from-json", default=None, help="comma-separated --json files of "
                        "earlier runs: print their rows together and plot them (no training)")
    args = parser.parse_args(argv)
    if args.from_json:
        rows = sorted((row for path in args.from_json.split(",")
                       for row in json.loads(Path(path).read_text())),
                      key=lambda row: row["budget"])
        print_rows(rows)
        if args.plot:
            plot(rows, args.plot)
        return 0
    budgets = [float(b) for b in args.budgets.split(",")]
    import torch
    from sklearn.decomposition import PCA

    if args.threads:
        torch.set_num_threads(args.threads)
    x, x_test = fashion()
    pca = PCA(LATENT, random_state=0).fit(x)
    pca_sse = sse(x_test, pca.inverse_transform(pca.transform(x_test)))
    print(f"Fashion-MNIST, latent {LATENT}; PCA-30 test error {pca_sse:.3f}; test error / "
          "PCA-30's (training seconds)", flush=True)
    print_rows([])
    rows = []
    for budget in budgets:
        a = run_aekit(budget, args.threads)
        t = run_torch(x, x_test, budget, a[2])
        s = run_sklearn(x, x_test, budget, a[2])
        rows.append({"budget": budget, "hidden": list(a[2]), "aekit": a[0] / pca_sse,
                     "aekit_seconds": a[1],
                     "torch": t[0] / pca_sse, "torch_seconds": t[1],
                     "sklearn": s[0] / pca_sse, "sklearn_seconds": s[1]})
        print_rows(rows[-1:], header=False)
    if args.json:
        args.json.write_text(json.dumps(rows, indent=2))
    if args.plot:
        plot(rows, args.plot)
    return 0


def print_rows(rows: list[dict], header: bool = True) -> None:
    """The markdown table (its header, then one line per budget)."""
    if header:
        print("| budget s | hidden widths | aekit --time-budget | plain PyTorch | "
              "scikit-learn MLPRegressor |")
        print("|---:|---|---:|---:|---:|", flush=True)
    for r in rows:
        widths = "-".join(str(w) for w in r.get("hidden", HIDDEN))  # older files: the default
        print(f"| {r['budget']:g} | {widths} | {r['aekit']:.3f}x ({r['aekit_seconds']:.0f}) | "
              f"{r['torch']:.3f}x ({r['torch_seconds']:.0f}) | {r['sklearn']:.3f}x "
              f"({r['sklearn_seconds']:.0f}) |", flush=True)


def plot(rows: list[dict], path: Path) -> None:
    """Test error / PCA-30's against the budget, one line per tool (a PNG)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 3.6))
    for key, label in (("aekit", "aekit --time-budget"), ("torch", "plain PyTorch"),
                       ("sklearn", "scikit-learn MLPRegressor")):
        ax.plot([r["budget"] for r in rows], [r[key] for r in rows], marker="o",
                label=label)
    ax.axhline(1.0, color="gray", lw=0.8, ls="--")
    ax.set(xscale="log", xlabel="training budget (s)", ylabel="test error / PCA-30's",
           title="Fashion-MNIST, latent 30")
    budgets = [r["budget"] for r in rows]
    ax.set_xticks(budgets, [f"{b:g}" for b in budgets])
    ax.minorticks_off()
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=90)


if __name__ == "__main__":
    raise SystemExit(main())
