"""Training speed on a GPU: aekit against three plain PyTorch loops, side by side, in one run.

Fashion-MNIST (60,000 training images, the 10,000 test images scored), three cases:
  deep-256:  784-1000-500-250-30, mirrored, batch 256 (Hinton & Salakhutdinov)
  deep-1024: the same model at batch 1024
  default:   aekit's default model and batch for the data (``aekit train --latent-dim 30``);
             the plain loops train the same widths (without aekit's linear PCA path)
Contenders, each the same architecture (ReLU hidden units, linear code, sigmoid output), MSE,
Adam at lr 1e-3, for the same number of epochs:
  aekit     ``aekit.Autoencoder`` (its defaults: diagnostics, doctor, validation split)
  eager     the plain loop with the whole training set on the device, batches drawn by
            indexing a per-epoch permutation made on the device
  loader    the plain loop a PyTorch user writes: TensorDataset + DataLoader(shuffle=True),
            batches copied to the device
  graph     the eager step (batch gather, forward, loss, backward, Adam) captured once in a
            CUDA graph (``torch.cuda.graphs``) and replayed; the last partial batch of an
            epoch is dropped (CUDA only: skipped with ``--device cpu``)
Prints samples/s (the median over the epochs after the first, which holds the warm-up and
the capture), the ratios to the eager loop, and the test error (squared error per sample,
pixels in [0, 1]) after the run, with PCA-30's for reference.

    python benchmarks/gpu_speed.py [--epochs 10] [--precision tf32] [--cases deep-256,...]
    python benchmarks/gpu_speed.py --device cpu --data digits --epochs 3   # a CPU dry run

Exits with a message (status 2) when ``--device cuda`` is asked for and PyTorch sees no GPU.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import statistics
import sys
import time
from typing import Any, Callable, Iterator

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

import aekit
from aekit.data import Dataset, load
from aekit.pipeline import subset

DEEP = (1000, 500, 250)
CASES = {"deep-256": (DEEP, 256), "deep-1024": (DEEP, 1024), "default": (None, None)}
LATENT = 30


def pixels(ds: Dataset) -> np.ndarray:
    """The images as float32 rows in [0, 1] (what aekit's pixel scaling gives)."""
    return np.ascontiguousarray(ds.x / ds.pixel_max, dtype=np.float32)


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def plain_model(n_features: int, hidden: tuple[int, ...], decoder: tuple[int, ...],
                latent: int) -> nn.Sequential:
    """ReLU hidden layers, a linear code, a sigmoid output: aekit's MLP without extras."""
    widths = [n_features, *hidden, latent, *decoder, n_features]
    layers: list[nn.Module] = []
    code = len(hidden)
    for i, (a, b) in enumerate(zip(widths[:-1], widths[1:])):
        layers.append(nn.Linear(a, b))
        if i == len(widths) - 2:
            layers.append(nn.Sigmoid())
        elif i != code:
            layers.append(nn.ReLU())
    return nn.Sequential(*layers)


def autocast(precision: str, device: torch.device) -> contextlib.AbstractContextManager:
    if precision == "bf16":
        # no cast cache: a CUDA graph captures the casts of every replay
        return torch.autocast(device.type, dtype=torch.bfloat16, cache_enabled=False)
    return contextlib.nullcontext()


@contextlib.contextmanager
def tf32(precision: str, device: torch.device) -> Iterator[None]:
    """TF32 matrix products for the plain loops, as aekit's ``--precision`` sets them."""
    if device.type != "cuda":
        yield
        return
    saved = torch.backends.cuda.matmul.allow_tf32
    torch.backends.cuda.matmul.allow_tf32 = precision in ("tf32", "bf16")
    try:
        yield
    finally:
        torch.backends.cuda.matmul.allow_tf32 = saved


@torch.no_grad()
def test_sse(model: Callable[[torch.Tensor], torch.Tensor], x_test: torch.Tensor) -> float:
    """Squared error summed over a sample's pixels, averaged over the test samples (fp32)."""
    total = 0.0
    for i in range(0, len(x_test), 4096):
        xb = x_test[i:i + 4096]
        total += float((model(xb).double() - xb.double()).pow(2).sum())
    return total / len(x_test)


def timed_epochs(run_epoch: Callable[[int], int], epochs: int,
                 device: torch.device) -> list[float]:
    """samples/s of each epoch (``run_epoch(epoch)`` returns the samples it trained on)."""
    rates = []
    for epoch in range(epochs):
        sync(device)
        t0 = time.perf_counter()
        samples = run_epoch(epoch)
        sync(device)
        rates.append(samples / (time.perf_counter() - t0))
    return rates


def steady(rates: list[float]) -> float:
    """The median rate after the first epoch (warm-up, allocation, graph capture)."""
    return statistics.median(rates[1:] if len(rates) > 1 else rates)


def plain_step(model: nn.Module, opt: torch.optim.Optimizer, xb: torch.Tensor,
               precision: str, device: torch.device) -> None:
    """The step a PyTorch user writes: forward, MSE, backward, Adam."""
    with autocast(precision, device):
        loss = F.mse_loss(model(xb).float(), xb)
    opt.zero_grad(set_to_none=True)
    loss.backward()
    opt.step()


def run_eager(x: torch.Tensor, model: nn.Module, batch: int, epochs: int, precision: str,
              seed: int) -> list[float]:
    device = x.device
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    gen = torch.Generator(device=device).manual_seed(seed)

    def epoch(_: int) -> int:
        order = torch.randperm(len(x), device=device, generator=gen)
        for i in range(0, len(x), batch):
            plain_step(model, opt, x.index_select(0, order[i:i + batch]), precision, device)
        return len(x)

    return timed_epochs(epoch, epochs, device)


def run_loader(x_host: torch.Tensor, model: nn.Module, batch: int, epochs: int,
               precision: str, device: torch.device, seed: int) -> list[float]:
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    loader = torch.utils.data.DataLoader(
        torch.utils.data.TensorDataset(x_host), batch_size=batch, shuffle=True,
        pin_memory=device.type == "cuda", generator=torch.Generator().manual_seed(seed))

    def epoch(_: int) -> int:
        for (xb,) in loader:
            plain_step(model, opt, xb.to(device, non_blocking=True), precision, device)
        return len(x_host)

    return timed_epochs(epoch, epochs, device)


def run_graph(x: torch.Tensor, model: nn.Module, batch: int, epochs: int, precision: str,
              seed: int) -> list[float]:
    """The eager step captured in one CUDA graph; each replay gathers the rows whose indices
    were copied into a static index tensor (full batches only)."""
    device = x.device
    opt = torch.optim.Adam(model.parameters(), lr=torch.tensor(1e-3, device=device),
                           capturable=True)
    gen = torch.Generator(device=device).manual_seed(seed)
    index = torch.arange(batch, device=device)
    steps = len(x) // batch

    def step() -> None:
        xb = x.index_select(0, index)
        with autocast(precision, device):
            loss = F.mse_loss(model(xb).float(), xb)
        loss.backward()
        opt.step()

    side = torch.cuda.Stream()
    side.wait_stream(torch.cuda.current_stream())
    with torch.cuda.stream(side):  # warm-up outside the graph (allocations, Adam's state)
        for _ in range(3):
            opt.zero_grad(set_to_none=False)
            step()
    torch.cuda.current_stream().wait_stream(side)
    graph = torch.cuda.CUDAGraph()
    opt.zero_grad(set_to_none=False)  # grads accumulate into the same buffers every replay
    with torch.cuda.graph(graph):
        for p in model.parameters():
            p.grad.zero_()
        step()

    def epoch(_: int) -> int:
        order = torch.randperm(len(x), device=device, generator=gen)
        for i in range(steps):
            index.copy_(order[i * batch:(i + 1) * batch])
            graph.replay()
        return steps * batch

    return timed_epochs(epoch, epochs, device)


def run_aekit(train: Dataset, hidden: tuple[int, ...] | None, batch: int | None,
              epochs: int, precision: str, device: torch.device,
              seed: int) -> tuple[aekit.Autoencoder, list[float]]:
    """aekit on the images (pixels scaled to [0, 1] as the plain loops see them); the deep
    cases with the plain loops' settings (no PCA start, no validation rows, constant lr)."""
    options: dict[str, Any] = dict(latent_dim=LATENT, epochs=epochs, optimizer="adam",
                                   progress=False, seed=seed, device=device.type,
                                   precision=precision, early_stopping_patience=None)
    if hidden is not None:
        options.update(hidden=hidden, batch_size=batch, lr=1e-3, schedule="constant",
                       pca_init=False, activation="relu", output_activation="sigmoid",
                       validation_split=0.0)
    ae = aekit.Autoencoder(**options)
    history = ae.fit(train)
    return ae, [e["samples_per_second"] for e in history.epochs]


def run_case(name: str, train: Dataset, test: Dataset, args: argparse.Namespace,
             device: torch.device) -> dict[str, Any]:
    hidden, batch = CASES[name]
    ae, aekit_rates = run_aekit(train, hidden, batch, args.epochs, args.precision, device,
                                args.seed)
    x_np = pixels(train)
    cfg = ae.config.model
    hidden = tuple(cfg.hidden)
    decoder = tuple(cfg.decoder_hidden) if cfg.decoder_hidden is not None else hidden[::-1]
    batch = ae.trainer.batch_size
    # aekit scores the raw images with its own pixel scaling: the same [0, 1] values
    rows = {"aekit": {"rates": aekit_rates, "test_sse": ae.score(test)["sse_per_sample"]}}
    x_test = torch.from_numpy(pixels(test)).to(device)
    x_host = torch.from_numpy(x_np)
    x = x_host.to(device)
    contenders = ["eager", "loader"] + (["graph"] if device.type == "cuda" else [])
    for who in contenders:
        torch.manual_seed(args.seed)
        model = plain_model(x.shape[1], hidden, decoder, LATENT).to(device)
        with tf32(args.precision, device):
            if who == "eager":
                rates = run_eager(x, model, batch, args.epochs, args.precision, args.seed)
            elif who == "loader":
                rates = run_loader(x_host, model, batch, args.epochs, args.precision, device,
                                   args.seed)
            else:
                rates = run_graph(x, model, batch, args.epochs, args.precision, args.seed)
        model.eval()
        rows[who] = {"rates": rates, "test_sse": test_sse(model, x_test)}
    for row in rows.values():
        row["samples_per_second"] = steady(row["rates"])
    return {"case": name, "hidden": hidden, "batch": batch, "rows": rows,
            "aekit_fastpath": ae.trainer.use_fastpath}


def print_case(result: dict[str, Any], pca_sse: float) -> None:
    rows = result["rows"]
    eager = rows["eager"]["samples_per_second"]
    graph = rows.get("graph", {}).get("samples_per_second")
    print(f"\n{result['case']}: {'-'.join(map(str, result['hidden']))} (mirrored), batch "
          f"{result['batch']}")
    print(f"  {'loop':<8} {'samples/s':>12} {'/ eager':>8} {'/ graph':>8} "
          f"{'test sse':>9} {'/ PCA-30':>9}")
    for who, row in rows.items():
        rate = row["samples_per_second"]
        of_graph = f"{rate / graph:>7.2f}x" if graph else f"{'-':>8}"
        print(f"  {who:<8} {rate:>12,.0f} {rate / eager:>7.2f}x {of_graph} "
              f"{row['test_sse']:>9.3f} {row['test_sse'] / pca_sse:>9.3f}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cuda", help="cuda (default) or cpu (no graph)")
    parser.add_argument("--epochs", type=int, default=10, help="epochs per contender")
    parser.add_argument("--cases", default=",".join(CASES),
                        help=f"comma-separated: {', '.join(CASES)}")
    parser.add_argument("--precision", default=None, choices=("fp32", "tf32", "bf16"),
                        help="for every contender (default: tf32 on CUDA, fp32 on the CPU)")
    parser.add_argument("--data", default="fashion-mnist",
                        help="fashion-mnist (default; its test split is scored) or digits")
    parser.add_argument("--samples", type=int, default=None, help="training rows used")
    parser.add_argument("--threads", type=int, default=None, help="CPU threads for torch")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--json", default=None, help="also write the results to this file")
    args = parser.parse_args()
    if args.device not in ("cuda", "cpu"):
        parser.error(f"--device must be cuda or cpu. Received: {args.device}")
    if args.device == "cuda" and not torch.cuda.is_available():
        print("gpu_speed.py: PyTorch sees no CUDA device (torch "
              f"{torch.__version__}); run it on a GPU machine, or try it here with "
              "--device cpu", file=sys.stderr)
        return 2
    unknown = [c for c in args.cases.split(",") if c not in CASES]
    if unknown:
        parser.error(f"unknown cases {unknown}; allowed: {', '.join(CASES)}")
    if args.threads:
        torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    args.precision = args.precision or ("tf32" if device.type == "cuda" else "fp32")
    if args.data == "fashion-mnist":
        train, test = load("fashion-mnist"), load("fashion-mnist:test")
    elif args.data == "digits":
        everything = load("digits")
        order = np.random.default_rng(args.seed).permutation(everything.n_samples)
        test, train = subset(everything, order[:300]), subset(everything, order[300:])
    else:
        parser.error(f"--data must be fashion-mnist or digits. Received: {args.data}")
    if args.samples is not None:
        train = subset(train, np.arange(min(args.samples, train.n_samples)))
    x_np = pixels(train)
    test_np = pixels(test)
    from sklearn.decomposition import PCA

    pca = PCA(LATENT, random_state=0).fit(x_np)
    pca_sse = float(((pca.inverse_transform(pca.transform(test_np)) - test_np) ** 2)
                    .sum(1).mean())
    name = torch.cuda.get_device_name(device) if device.type == "cuda" else "CPU"
    print(f"{name}, torch {torch.__version__}, precision {args.precision}, {len(x_np)} "
          f"training rows of {args.data}, {len(test_np)} test rows, {args.epochs} epochs; "
          f"PCA-30 test sse {pca_sse:.3f}")
    results = []
    for case in args.cases.split(","):
        result = run_case(case, train, test, args, device)
        print_case(result, pca_sse)
        results.append(result)
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"device": name, "torch": torch.__version__, "precision": args.precision,
                       "epochs": args.epochs, "data": args.data, "n_train": len(x_np),
                       "pca_test_sse": pca_sse, "cases": results}, f, indent=2)
    return 0


if __name__ == "__main__":
    sys.exit(main())
