"""Training speed: aekit against an idiomatic PyTorch loop and scikit-learn, in one process.

Fashion-MNIST's 60,000 training images, two cases:
  small: 784-64-32 (latent 32), mirrored, batch 32   (the articles' Keras example)
  deep:  784-1000-500-250 (latent 30), mirrored, batch 256 (Hinton & Salakhutdinov)
The plain loop is what a PyTorch user writes: TensorDataset + DataLoader(shuffle=True) +
nn.Sequential + Adam. Same architecture (ReLU hidden units, linear code, sigmoid output), same
batch size, MSE. Prints seconds per epoch, ratios, the machine's float32 matrix-multiply rate
measured in this run, and the share of it aekit reaches: of the best 2048x2048 product, and
of the model's own products alone (the same products, shapes and number of steps as an epoch,
timed after each of aekit's epochs, best against best). aekit trains the images as
``aekit.data.load`` gives them, with its defaults (which start from PCA: a linear path beside
the hidden layers); the last columns time the same model without that path
(``pca_init=False``) and the path's cost, default against without.

    python benchmarks/train_speed.py [--epochs 1] [--samples 60000] [--threads N]
"""

from __future__ import annotations

import argparse
import dataclasses
import time
import warnings

import numpy as np
import torch
from torch import nn

import aekit
from aekit.data import Dataset, load
from aekit.training.callbacks import Callback

CASES = {"small": ((64,), 32, 32), "deep": ((1000, 500, 250), 30, 256)}


def matmul_gflops(size: int = 2048, repeats: int = 5) -> float:
    """Best float32 GEMM rate over a few square multiplications (GFLOP/s)."""
    a, b = torch.randn(size, size), torch.randn(size, size)
    a @ b
    best = 0.0
    for _ in range(repeats):
        t0 = time.perf_counter()
        a @ b
        best = max(best, 2 * size**3 / (time.perf_counter() - t0) / 1e9)
    return best


class ModelGemms:
    """Exactly the matrix multiplications one training step of the model performs (forward,
    weight gradients, input gradients but the first) on operands of the step's shapes, timed
    alone: the ceiling for this model on this machine."""

    def __init__(self, widths: list[int], batch: int) -> None:
        layers = list(zip(widths[:-1], widths[1:]))
        self.weights = [torch.randn(b, a) for a, b in layers]
        self.acts = [torch.randn(batch, a) for a, _ in layers]
        self.grads = [torch.randn(batch, b) for _, b in layers]
        self.flops = training_flops_per_sample(widths) * batch
        self.step()

    def step(self) -> None:
        for w, a in zip(self.weights, self.acts):
            a @ w.t()
        for i, (w, a, g) in enumerate(zip(self.weights, self.acts, self.grads)):
            g.t() @ a
            if i:
                g @ w

    def best_step_gflops(self, repeats: int = 20) -> float:
        """The best rate of single steps (GFLOP/s)."""
        best = 0.0
        for _ in range(repeats):
            t0 = time.perf_counter()
            self.step()
            best = max(best, self.flops / (time.perf_counter() - t0) / 1e9)
        return best

    def epoch_seconds(self, steps: int) -> float:
        """Seconds of ``steps`` steps in a row: an epoch of the model's products alone."""
        t0 = time.perf_counter()
        for _ in range(steps):
            self.step()
        return time.perf_counter() - t0


class GemmEpochAfterEach(Callback):
    """Times an epoch of the model's products alone after each of aekit's epochs: the two
    alternate, so both see the machine in the same state (a shared machine's speed drifts)."""

    def __init__(self, gemms: ModelGemms, steps: int) -> None:
        self.gemms, self.steps, self.seconds = gemms, steps, []

    def on_epoch_end(self, trainer, epoch, logs) -> None:
        self.seconds.append(self.gemms.epoch_seconds(self.steps))


def training_flops_per_sample(widths: list[int]) -> float:
    """Matmul FLOPs of one forward + backward pass per sample (no input gradient needed)."""
    macs = sum(a * b for a, b in zip(widths[:-1], widths[1:]))
    first = widths[0] * widths[1]
    return 2.0 * (3 * macs - first)


def plain_torch_epoch(x: torch.Tensor, hidden: tuple[int, ...], latent: int,
                      batch: int, epochs: int) -> float:
    """Seconds per epoch of the loop a PyTorch user writes."""
    widths = [x.shape[1], *hidden, latent, *hidden[::-1], x.shape[1]]
    layers: list[nn.Module] = []
    for i, (a, b) in enumerate(zip(widths[:-1], widths[1:])):
        layers.append(nn.Linear(a, b))
        if i == len(widths) - 2:
            layers.append(nn.Sigmoid())
        elif i != len(hidden):  # the code layer is linear
            layers.append(nn.ReLU())
    model = nn.Sequential(*layers)
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    loader = torch.utils.data.DataLoader(torch.utils.data.TensorDataset(x), batch_size=batch,
                                         shuffle=True)
    loss_fn = nn.MSELoss()
    times = []
    for _ in range(epochs):
        t0 = time.perf_counter()
        for (xb,) in loader:
            opt.zero_grad()
            loss = loss_fn(model(xb), xb)
            loss.backward()
            opt.step()
        times.append(time.perf_counter() - t0)
    return min(times)


def aekit_epoch(x: Dataset, hidden: tuple[int, ...], latent: int, batch: int,
                epochs: int, gemms: ModelGemms, pca_init: bool = True
                ) -> tuple[float, bool, float]:
    """Seconds per epoch of aekit's training loop (defaults, no validation split), whether it
    took the hand-written pass, and seconds of an epoch of the model's products alone, each
    the best over ``epochs``, the two timed in alternation. ``x`` is Fashion-MNIST as
    ``aekit.data.load`` gives it (images); ``pca_init=False`` leaves out the linear PCA path
    of the default."""
    ae = aekit.Autoencoder(latent_dim=latent, hidden=hidden, batch_size=batch, epochs=epochs,
                           validation_split=0.0, schedule="constant", lr=1e-3, progress=False,
                           pca_init=pca_init)
    ceiling = GemmEpochAfterEach(gemms, -(-len(x.x) // batch))
    history = ae.fit(x, callbacks=[ceiling])
    return (min(e["seconds"] for e in history.epochs), ae.trainer.use_fastpath,
            min(ceiling.seconds))


def sklearn_epoch(x: np.ndarray, hidden: tuple[int, ...], latent: int, batch: int) -> float:
    """Seconds of one epoch of scikit-learn's MLPRegressor (adam) on the same model."""
    from sklearn.exceptions import ConvergenceWarning
    from sklearn.neural_network import MLPRegressor

    reg = MLPRegressor(hidden_layer_sizes=(*hidden, latent, *hidden[::-1]), batch_size=batch,
                       max_iter=1, solver="adam", shuffle=True, random_state=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        t0 = time.perf_counter()
        reg.fit(x, x)
    return time.perf_counter() - t0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=2, help="epochs per contender (best kept)")
    parser.add_argument("--samples", type=int, default=60000, help="training images used")
    parser.add_argument("--threads", type=int, default=None, help="torch threads (default all)")
    parser.add_argument("--cases", default="small,deep", help="comma-separated: small, deep")
    parser.add_argument("--no-sklearn", action="store_true", help="skip MLPRegressor")
    parser.add_argument("--no-path", action="store_true",
                        help="skip the run without the linear PCA path (--no-pca-init)")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    ds = load("fashion-mnist")
    images = dataclasses.replace(ds, x=np.ascontiguousarray(ds.x[: args.samples]),
                                 labels=None if ds.labels is None else ds.labels[: args.samples])
    x_np = np.ascontiguousarray(ds.x[: args.samples] / 255.0, dtype=np.float32)
    x = torch.from_numpy(x_np)
    torch.manual_seed(0)
    rate = matmul_gflops()
    print(f"machine: {torch.get_num_threads()} torch threads, float32 matmul "
          f"{rate:.1f} GFLOP/s (best 2048x2048), {len(x_np)} samples, best of "
          f"{args.epochs} epoch(s)")
    print(f"{'case':<6} {'plain torch s/ep':>16} {'aekit s/ep':>11} {'speed-up':>9} "
          f"{'sklearn s/ep':>13} {'aekit GFLOP/s':>14} {'of 2048^2 rate':>15} "
          f"{'of model GEMMs':>15} {'no PCA path s/ep':>17} {'path cost':>10}")
    for case in args.cases.split(","):
        hidden, latent, batch = CASES[case]
        widths = [784, *hidden, latent, *hidden[::-1], 784]
        gemms = ModelGemms(widths, batch)
        plain = plain_torch_epoch(x, hidden, latent, batch, args.epochs)
        ours, fast, gemm_epoch = aekit_epoch(images, hidden, latent, batch, args.epochs, gemms)
        without = (float("nan") if args.no_path else
                   aekit_epoch(images, hidden, latent, batch, args.epochs, gemms, False)[0])
        skl = float("nan") if args.no_sklearn else sklearn_epoch(x_np, hidden, latent, batch)
        gflops = training_flops_per_sample(widths) * len(x_np) / ours / 1e9
        print(f"{case:<6} {plain:>16.2f} {ours:>11.2f} {plain / ours:>8.2f}x {skl:>13.2f} "
              f"{gflops:>14.1f} {gflops / rate:>15.0%} {gemm_epoch / ours:>15.0%}"
              f" {without:>17.2f} {ours / without:>9.2f}x"
              + ("" if fast else "  (autograd)"))
        print(f"{'':<6} model GEMMs alone: {gemm_epoch:.2f} s an epoch "
              f"({training_flops_per_sample(widths) * len(x_np) / gemm_epoch / 1e9:.1f} GFLOP/s; "
              f"best single step {gemms.best_step_gflops():.1f}); sklearn vs aekit: "
              f"{skl / ours:.2f}x")

if __name__ == "__main__":
    main()
