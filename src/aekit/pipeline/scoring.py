"""Scoring a run against PCA: errors, the PCA baseline event, the PCA gate, summaries."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import torch

from aekit.baselines.pca import pca_errors
from aekit.config import RunConfig
from aekit.data import Scaler
from aekit.training.callbacks import Callback
from aekit.training.findings import findings_of
from aekit.training.noise import TEST_STREAM, corrupt_array
from aekit.pipeline.decisions import starts_from_pca
from aekit.pipeline.prepare import MIN_CHECK_ROWS, PreparedRun, validation_halves


# -- scoring ----------------------------------------------------------------------------------
def reconstruction_errors(x: np.ndarray | torch.Tensor, x_hat: np.ndarray | torch.Tensor
                          ) -> dict[str, float]:
    """``mse`` over all values and ``sse_per_sample`` of a reconstruction (float64 sums)."""
    diff = np.asarray(x_hat, dtype=np.float64) - np.asarray(x, dtype=np.float64)
    sse = float(np.einsum("ij,ij->", diff, diff)) if diff.ndim == 2 else float((diff ** 2).sum())
    return {"mse": sse / max(1, diff.size), "sse_per_sample": sse / max(1, diff.shape[0])}


def pca_validation_mse(run: PreparedRun) -> float | None:
    """PCA's validation MSE (to the targets) on all validation rows, or None without any."""
    if run.x_val is None or not len(run.x_val):
        return None
    return pca_errors(run.pca, run.x_val, run.y_val)["mse"]


KEEP_T = 2.0  # the trained model replaces PCA's solution when it is this many standard errors better


def clearly_better_than_pca(model_sse: np.ndarray, pca_sse: np.ndarray) -> tuple[bool, str]:
    """Does the trained model beat PCA on the validation rows by more than noise?

    Paired per-row squared errors: the mean difference must be negative and at least
    ``KEEP_T`` standard errors from zero (a one-sided paired t-test at about 2.5%). On a few
    dozen validation rows a model can look better than PCA by chance -- the best epoch is
    chosen on those same rows -- and then lose on new data; a run that cannot show a clear
    gain keeps PCA's solution, which it started from.

    Returns:
        The decision and a sentence with the numbers.
    """
    diff = np.asarray(model_sse, np.float64) - np.asarray(pca_sse, np.float64)
    n = diff.shape[0]
    change = diff.mean() / max(float(np.mean(pca_sse)), 1e-30)
    if n < 3:
        return False, f"{n} validation row(s) cannot show a gain"
    se = diff.std(ddof=1) / math.sqrt(n)
    t = -diff.mean() / se if se > 0 else (math.inf if diff.mean() < 0 else 0.0)
    verdict = bool(t >= KEEP_T)
    return verdict, (f"{change:+.1%} error change against PCA on {n} validation rows, "
                     f"{t:.2f} standard errors ({'above' if verdict else 'below'} the "
                     f"{KEEP_T:g} required)")


def per_row_sse(x: np.ndarray, x_hat: np.ndarray) -> np.ndarray:
    """Squared error of each row (float64)."""
    diff = np.asarray(x_hat, np.float64) - np.asarray(x, np.float64)
    return np.einsum("ij,ij->i", diff, diff)


def comparable_with_pca(cfg: RunConfig) -> bool:
    """True when the validation loss is a plain MSE, comparable with PCA's (not a VAE's KL, a
    code penalty or a cross-entropy)."""
    return cfg.model.loss == "mse" and cfg.model.kind != "vae" and not cfg.optim.l1_codes


class PCABaseline(Callback):
    """Logs PCA's validation error as a ``pca_baseline`` event when a run starts (not when it
    resumes), so that the training doctor compares the model with it."""

    def __init__(self, val_mse: float, latent_dim: int) -> None:
        self.val_mse, self.latent_dim = val_mse, latent_dim

    def on_train_begin(self, trainer: Any) -> None:
        if trainer.step == 0:
            trainer.log_event("pca_baseline", f"PCA-{self.latent_dim} validation mse "
                              f"{self.val_mse:.4g}", val_mse=self.val_mse,
                              latent_dim=self.latent_dim)


class PCAGate(Callback):
    """At the end of training, keeps the trained model only if it is clearly better than PCA
    on the check half of the validation rows (:func:`validation_halves`,
    :func:`clearly_better_than_pca`); otherwise puts the model back
    on PCA's solution (``init_from_pca``: the linear path to PCA, the hidden path's output to
    zero). Either way a ``pca_check`` event says what was decided and why. Put it first among
    the callbacks, so that the event reaches ``metrics.jsonl`` before it is closed."""

    def __init__(self, x_check: np.ndarray | None, y_check: np.ndarray | None, pca: Any,
                 n_val: int = 0) -> None:
        self.x_val = x_check  # None: too few validation rows to check anything
        self.target = y_check if y_check is not None else x_check
        self.pca = pca
        self.n_val = n_val
        self.pca_sse = (per_row_sse(self.target, pca.inverse_transform(pca.transform(x_check)))
                        if x_check is not None else None)

    @torch.inference_mode()
    def on_train_end(self, trainer: Any, logs: dict[str, Any]) -> None:
        model = trainer.model
        model.eval()
        if self.x_val is None:
            keep, why = False, (f"{self.n_val} validation row(s) are too few to show a gain "
                                f"(at least {2 * MIN_CHECK_ROWS}: half choose the epoch, half "
                                "check it)")
        else:
            device = next(model.parameters()).device
            x_hat = np.concatenate([model(torch.from_numpy(self.x_val[i:i + 4096]).to(device))
                                    .x_hat.cpu().numpy()
                                    for i in range(0, len(self.x_val), 4096)])
            keep, why = clearly_better_than_pca(per_row_sse(self.target, x_hat), self.pca_sse)
        if not keep:
            model.init_from_pca(self.pca.components_, self.pca.mean_)
        trainer.log_event("pca_check", ("kept the trained model: " if keep else
                                        "kept PCA's solution (the run's start): ") + why,
                          kept_model=keep)


def pca_callbacks(run: Any, cfg: RunConfig, output_activation: str) -> list[Callback]:
    """The callbacks that compare a run with PCA: the baseline event (the doctor's yardstick)
    and, for a model that started from PCA, the gate that keeps PCA unless clearly beaten."""
    out: list[Callback] = []
    (x_sel, y_sel), (x_chk, y_chk) = validation_halves(run)
    if x_sel is None or not len(x_sel) or not comparable_with_pca(cfg):
        return out
    if starts_from_pca(cfg, output_activation):  # with too few rows to check: PCA is kept
        out.append(PCAGate(x_chk, y_chk, run.pca, len(run.x_val)))
    # the doctor compares with the validation loss the trainer sees: the selection half
    out.append(PCABaseline(pca_errors(run.pca, x_sel, y_sel)["mse"],
                           int(run.pca.n_components_)))
    return out


def errors_vs_pca(reconstruct: Any, scaler: Scaler, pca: Any, x_raw: np.ndarray,
                  prefix: str = "test") -> dict[str, float]:
    """The model's and PCA's errors on raw rows ``x_raw`` (in the scaled space) and the ratio.

    Args:
        reconstruct: scaled rows -> scaled reconstructions (the model).
        scaler, pca: the run's. x_raw: rows in the data's units. prefix: key prefix.
    """
    x = scaler.transform(x_raw)
    model_err = reconstruction_errors(x, reconstruct(x))
    pca_err = pca_errors(pca, x)
    return {f"{prefix}_mse": model_err["mse"],
            f"{prefix}_sse_per_sample": model_err["sse_per_sample"],
            f"pca_{prefix}_mse": pca_err["mse"],
            f"pca_{prefix}_sse_per_sample": pca_err["sse_per_sample"],
            "ratio_to_pca": model_err["mse"] / max(pca_err["mse"], 1e-30)}


def denoising_errors(reconstruct: Any, scaler: Scaler, pca: Any, x_raw: np.ndarray,
                     noise: str, seed: int) -> dict[str, float]:
    """How well a model removes ``noise`` from rows ``x_raw``: the rows are scaled, corrupted
    once (fixed seed: the same corruption for every run of this seed), and the errors to the
    clean rows (squared error per sample) of the model's reconstruction, of PCA's projection
    of the noisy rows, and of the noisy rows themselves."""
    x = scaler.transform(x_raw)
    noisy = corrupt_array(x, noise, seed, TEST_STREAM, scaler.output_range)
    model = reconstruction_errors(x, reconstruct(noisy))["sse_per_sample"]
    pca_err = pca_errors(pca, noisy, x)["sse_per_sample"]
    return {"noise": noise, "denoise_test_sse_per_sample": model,
            "pca_denoise_test_sse_per_sample": pca_err,
            "noisy_test_sse_per_sample": reconstruction_errors(x, noisy)["sse_per_sample"],
            "denoise_ratio_to_pca": model / max(pca_err, 1e-30)}


def training_figures(ae: Any, seconds: float) -> dict[str, Any]:
    """Epochs, steps, time, throughput, events and findings of a trained ``Autoencoder``."""
    epochs = ae.history.epochs
    return {"epochs": len(epochs), "steps": ae.trainer.step,
            "skipped_steps": ae.trainer.skipped_steps, "train_seconds": seconds,
            "samples_per_second": sum(e["samples_per_second"] * e["seconds"] for e in epochs)
            / max(1e-9, sum(e["seconds"] for e in epochs)),
            "fast_path": ae.trainer.use_fastpath,
            "final_train_loss": epochs[-1]["train_loss"] if epochs else None,
            "events": ae.history.events, "findings": findings_of(ae.trainer)}


def validation_errors(ae: Any, run: Any) -> dict[str, float]:
    """``val_mse`` of a trained ``Autoencoder`` and ``pca_val_mse`` (to the targets), in the
    scaled space; ``run`` is a :class:`PreparedRun` or a streamed run."""
    target = run.y_val if run.y_val is not None else run.x_val
    return {"val_mse": reconstruction_errors(target, ae.reconstruct_scaled(run.x_val))["mse"],
            "pca_val_mse": pca_validation_mse(run)}
