"""The strategy study: one deep sigmoid autoencoder trained under each strategy of the articles.

    result = study("fashion-mnist", test="fashion-mnist:test", epochs=20, out_dir="study")
    print(result["table"])

The network is Hinton & Salakhutdinov's 784-1000-500-250-30 (decoder mirrored) with sigmoid
hidden units and the MSE loss (a sigmoid output for data in [0, 1]), trained for the same number
of epochs under each strategy. Each strategy is plain mini-batch SGD (lr 0.1, batch 100,
constant) plus one change, except Adam and aekit's recommended recipe. For each run the table
gives the test error (squared error per sample, in the scaled space), its ratio to PCA fitted on
the same scaled training samples, the first epoch whose test error is below PCA's ("never" if
none), the wall time, the gradient reaching the first layer (``||g||/||W||`` of encoder.0 over
that of the strongest layer, late in training: what the vanishing-gradient detector compares
with its 1e-2 threshold) and the findings of the training doctor.

Any data set works (``data`` and ``test`` are data specs as for ``aekit train``; the default
test set, ``"auto"``, is ``fashion-mnist:test`` for ``fashion-mnist`` and 10% of the data held
back for anything else); the reference result is Fashion-MNIST's.
"""

from __future__ import annotations

import json
import time
import warnings
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np
import torch

from aekit.api import Autoencoder
from aekit.baselines.pca import fit_pca, pca_errors
from aekit.config import RunConfig
from aekit.errors import ConfigError
from aekit.pipeline import load_splits, prepare, subsample_rows, subset
from aekit.serialization import atomic_write_bytes
from aekit.training.callbacks import Callback
from aekit.training.findings import find_all, layer_gradients, records_of, split_records

BASE = dict(hidden=(1000, 500, 250), latent_dim=30, activation="sigmoid", loss="mse",
            optimizer="sgd", lr=0.1, schedule="constant", batch_size=100,
            validation_split=0.0, progress=False, scaling="none", pca_init=False)
STRATEGIES: dict[str, tuple[str, dict[str, Any]]] = {
    "sgd": ("plain mini-batch SGD", {}),
    "momentum": ("+ momentum 0.9", dict(optimizer="momentum")),
    "exp_decay": ("+ exponential decay (lr 0.5 -> 0.005)",
                  dict(lr=0.5, schedule="exponential")),
    "linear_decay": ("+ linear decay (lr 0.5 -> 0.005)", dict(lr=0.5, schedule="linear")),
    "restarts": ("+ warm restarts (cosine, lr 0.5)", dict(lr=0.5, schedule="cosine_restarts")),
    "step_decay": ("+ step decay (lr 0.5, x0.2 at each third)",
                   dict(lr=0.5, schedule="step", gamma=0.2)),
    # Smith et al. 2018: the same points, the batch x5 instead of the lr x0.2
    "batch_growth": ("+ growing batch (lr 0.5, batch x5 at each third)",
                     dict(lr=0.5, batch_schedule="step:5")),
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
        device = trainer.flat.data.device  # the test rows may live elsewhere (the CPU)
        for i in range(0, self.x_test.shape[0], 4096):
            xb = self.x_test[i:i + 4096].to(device)
            total += float((model(xb).x_hat.double() - xb.double()).pow(2).sum())
        model.train(was_training)
        self.sse.append(total / self.x_test.shape[0])


def budget(quick: bool, epochs: int | None = None,
           max_train_samples: int | None = None) -> tuple[int, int | None]:
    """Epochs and training subset: the values given, else the quick study's (4 epochs, 10,000
    samples) or the full one's (20 epochs, all samples)."""
    if epochs is None:
        epochs = 4 if quick else 20
    if max_train_samples is None and quick:
        max_train_samples = 10_000
    return epochs, max_train_samples


def default_test(data: str, test: str | None) -> str | None:
    """The test set of a study: ``test`` itself unless it is ``"auto"``, which stands for
    ``fashion-mnist:test`` when the data are ``fashion-mnist`` and for None (10% of the data
    held back) otherwise."""
    if test != "auto":
        return test
    return "fashion-mnist:test" if data == "fashion-mnist" else None


def check_strategies(names: Sequence[str]) -> list[str]:
    """The names, validated against :data:`STRATEGIES` (ConfigError naming the allowed ones)."""
    names = [n.strip() for n in names if n.strip()]
    if not names:
        raise ConfigError(f"no strategy given; allowed: {', '.join(STRATEGIES)}")
    unknown = [n for n in names if n not in STRATEGIES]
    if unknown:
        raise ConfigError(f"unknown strategies {unknown}; allowed: {', '.join(STRATEGIES)}")
    return names


def run_strategy(name: str, x_train: np.ndarray, x_test: np.ndarray, epochs: int,
                 seed: int, threads: int, pca_sse: float, device: str = "auto",
                 **model: Any) -> dict[str, Any]:
    """Train one strategy (``model`` overrides ``hidden`` / ``latent_dim``) on ``device``;
    its table row."""
    label, changes = STRATEGIES[name]
    ae = Autoencoder(**{**BASE, **model, **changes}, epochs=epochs, seed=seed, threads=threads,
                     device=device)
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


def table(rows: list[dict[str, Any]], pca_sse: float, k: int = 30) -> str:
    """The study as a Markdown table."""
    lines = [f"PCA-{k} test error: {pca_sse:.2f}", "",
             f"| strategy | test error | / PCA-{k} | epochs to PCA-{k} | seconds | "
             "gradient at encoder.0 | findings |",
             "|---|---:|---:|---:|---:|---:|---|"]
    for r in rows:
        first = r["gradient_to_strongest"].get("encoder.0")
        lines.append(f"| {r['label']} | {r['test_sse_per_sample']:.2f} | "
                     f"{r['ratio_to_pca']:.2f} | {r['epochs_to_pca'] or 'never'} | "
                     f"{r['seconds']:.0f} | {'-' if first is None else f'{first:.1e}'} | "
                     f"{', '.join(r['findings']) or '-'} |")
    return "\n".join(lines)


def study_data(data: str, test: str | None, max_train_samples: int | None,
               seed: int) -> tuple[np.ndarray, np.ndarray, str]:
    """Scaled training and test arrays (float32) and a description of the test set.

    The data are loaded, split and scaled by the run pipeline as ``aekit train`` does them
    (without a test set, 10% held back; "auto" scaling fitted on the training samples);
    ``max_train_samples`` keeps a random subset of them (the same for every strategy).
    """
    cfg = RunConfig().replace(data=data, test=test, test_split=0.1, seed=seed,
                              validation_split=0.0, scaling="auto")
    train, test_ds, source = load_splits(cfg)
    if test_ds is None:
        raise ConfigError(f"{data} has too few samples ({train.n_samples}) to hold back a test "
                          "set; give one with --test (test= in Python)")
    keep = subsample_rows(train.n_samples, max_train_samples, seed)  # as the sweep does
    if keep is not None:
        train = subset(train, keep)
    run = prepare(cfg, train, test=test_ds, test_source=source)
    return run.x_train, run.scaler.transform(test_ds.x), source


def study(data: str = "fashion-mnist", test: str | None = "auto", *,
          strategies: Sequence[str] | None = None, epochs: int = 20,
          max_train_samples: int | None = None, seed: int = 0, threads: int = 1,
          device: str = "auto", hidden: Sequence[int] = (1000, 500, 250),
          latent_dim: int = 30,
          out_dir: str | Path | None = None, log: Callable[[str], None] | None = print,
          n_train: int | None = None) -> dict[str, Any]:
    """Train the study's network under each strategy and tabulate the results.

    Args:
        data, test: data specs as for ``aekit train`` (``test=None``: hold back 10%;
            ``"auto"``: ``fashion-mnist:test`` for ``fashion-mnist``, else hold back 10%).
        strategies: names from :data:`STRATEGIES` (default: all, in that order).
        epochs: the same budget for every strategy.
        max_train_samples: train on a random subset of this many training samples (default:
            all), as ``aekit sweep --max-train-samples``.
        n_train: deprecated name of ``max_train_samples``.
        seed, threads, device: as for training; every strategy uses the same seed.
        hidden, latent_dim: the network (default: Hinton & Salakhutdinov's).
        out_dir: where ``study.json`` and ``study.md`` go (written atomically); None: nowhere.
        log: called with a line per strategy as it finishes (None: silent).

    Returns:
        ``{"data", "test", "n_train", "epochs", "latent_dim", "pca_test_sse_per_sample",
        "rows", "table"}``; each row has the test error, its ratio to PCA, the epochs to reach
        PCA, the seconds, the findings and the first layer's relative gradient.

    Raises:
        ConfigError: unknown strategy, epochs < 1. DataError: unreadable data.
    """
    if n_train is not None:
        warnings.warn("study(n_train=...) is deprecated: use max_train_samples=... (the name "
                      "aekit sweep uses)", DeprecationWarning, stacklevel=2)
        if max_train_samples is not None and max_train_samples != n_train:
            raise ConfigError(f"give max_train_samples or its old name n_train, not both. "
                              f"Received: max_train_samples={max_train_samples}, "
                              f"n_train={n_train}")
        max_train_samples = n_train
    names = check_strategies(list(strategies) if strategies is not None else list(STRATEGIES))
    if epochs < 1:
        raise ConfigError(f"`epochs` must be at least 1. Received: epochs={epochs}")
    test = default_test(data, test)
    x_train, x_test, source = study_data(data, test, max_train_samples, seed)
    k = min(latent_dim, x_train.shape[1], x_train.shape[0])
    pca_sse = pca_errors(fit_pca(x_train, k, seed), x_test)["sse_per_sample"]
    say = log or (lambda line: None)
    say(f"{data}: {len(x_train)} training samples, test {source} ({len(x_test)}), {epochs} "
        f"epochs, {threads} thread(s); PCA-{k} test error {pca_sse:.2f}")
    rows = []
    for name in names:
        row = run_strategy(name, x_train, x_test, epochs, seed, threads, pca_sse, device,
                           hidden=tuple(hidden), latent_dim=latent_dim)
        rows.append(row)
        say(f"{name:13s} test {row['test_sse_per_sample']:7.2f}  ratio "
            f"{row['ratio_to_pca']:5.2f}  {row['seconds']:5.0f}s  {row['findings']}")
        if row["vanishing"]:
            say(f"{'':13s} {row['vanishing']}")
    result = {"data": data, "test": source, "n_train": len(x_train), "epochs": epochs,
              "latent_dim": latent_dim, "pca_test_sse_per_sample": pca_sse, "rows": rows,
              "table": table(rows, pca_sse, k)}
    if out_dir is not None:
        out = Path(out_dir)
        out.mkdir(parents=True, exist_ok=True)
        atomic_write_bytes(out / "study.json", json.dumps(
            {key: v for key, v in result.items() if key != "table"}, indent=2).encode())
        atomic_write_bytes(out / "study.md", (result["table"] + "\n").encode())
    return result
