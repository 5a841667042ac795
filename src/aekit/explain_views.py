"""The maths of ``aekit explain``'s views (see :mod:`aekit.explain`): latent traversals along code
units or the codes' principal directions, and each unit's attribution to the input features
(correlation, gradient)."""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from aekit.explanation import TOP_FEATURES

# The trained model is an :class:`aekit.api.Autoencoder` (not imported: it calls explain).
Autoencoder = Any
GRAD_BATCH = 512


# -- traversals ---------------------------------------------------------------------------
def traversals(ae: Autoencoder, codes: np.ndarray, steps: int, percentiles: Any,
                max_axes: int) -> dict[str, Any]:
    """Decode codes moved along each unit (or principal direction of the codes) from the low
    to the high percentile, the rest of the code at its median."""
    n, latent = codes.shape
    base = np.median(codes, axis=0)
    total = float(codes.var(axis=0).sum())
    if latent <= max_axes:
        vectors = np.eye(latent)
        shares = codes.var(axis=0) / total if total > 0 else np.zeros(latent)
        mode_key, names = "units", [f"unit {j}" for j in range(latent)]
    else:
        centred = codes - codes.mean(axis=0)
        _, s, vt = np.linalg.svd(centred, full_matrices=False)
        vectors = vt[:max_axes]
        # a fixed sign: the largest weight of each direction positive
        signs = np.sign(vectors[np.arange(len(vectors)), np.abs(vectors).argmax(axis=1)])
        vectors = vectors * np.where(signs == 0, 1.0, signs)[:, None]
        var = s ** 2
        shares = (var / var.sum() if var.sum() > 0 else np.zeros_like(var))[:max_axes]
        mode_key, names = "directions", [f"PC{i + 1}" for i in range(len(vectors))]
    proj = (codes - base) @ vectors.T
    # step i is the i-th of `steps` evenly spaced percentiles of the unit's values: the steps
    # follow the data (denser where it is); with 5..95 and odd steps the middle one is the
    # median code itself
    t = np.percentile(proj, percentile_steps(percentiles, steps), axis=0).T
    moved = base[None, None, :] + t[..., None] * vectors[:, None, :]
    flat = moved.reshape(-1, latent).astype(np.float32)
    n_features = ae.model.n_features
    decoded_scaled = ae.decode_scaled(flat).reshape(len(vectors), steps, n_features)
    decoded = ae.decode(flat).reshape(len(vectors), steps, n_features)
    docs = []
    for i, name in enumerate(names):
        values = (base[i] + t[i]) if mode_key == "units" else t[i]
        docs.append({"name": name, "values": [float(v) for v in values],
                     "code_std": float(proj[:, i].std()),
                     "code_variance_share": float(shares[i])})
    return {"mode_key": mode_key, "base": base, "vectors": vectors, "doc": docs,
            "decoded": decoded, "decoded_scaled": decoded_scaled, "n": n}


def percentile_steps(percentiles: Any, steps: int) -> list[float]:
    """The percentile of each traversal step: ``steps`` evenly spaced from low to high."""
    return [float(p) for p in np.linspace(float(percentiles[0]), float(percentiles[1]), steps)]


def traversal_doc(trav: dict[str, Any], names: list[str], percentiles: Any,
                   steps: int) -> dict[str, Any]:
    dec, raw = trav["decoded_scaled"].astype(np.float64), trav["decoded"].astype(np.float64)
    directions = []
    for i, doc in enumerate(trav["doc"]):
        span = dec[i].max(axis=0) - dec[i].min(axis=0)
        order = np.argsort(-span, kind="stable")[:TOP_FEATURES]
        entry = dict(doc)
        if trav["mode_key"] == "directions":
            entry["vector"] = [float(v) for v in trav["vectors"][i]]
        entry["effect_rms"] = float(np.sqrt(np.mean(span ** 2)))
        entry["top_features"] = [
            {"feature": names[j], "index": int(j), "range": float(span[j]),
             "from": float(raw[i, 0, j]), "to": float(raw[i, -1, j])} for j in order]
        directions.append(entry)
    mode = ("code units" if trav["mode_key"] == "units" else
            f"the top {len(directions)} principal directions of the codes")
    return {
        "mode": mode, "percentiles": [float(p) for p in percentiles], "steps": steps,
        "step_percentiles": percentile_steps(percentiles, steps),
        "base_code": [float(v) for v in trav["base"]],
        "description": "each unit/direction set to evenly spaced percentiles (step_percentiles)"
                       " of its values on the explained rows, the rest of the code at its "
                       "median, and decoded; values: the unit's code value at each step (for a "
                       "principal direction: the offset from the median code along it); "
                       "range: how far "
                       "a feature's reconstruction moves over the steps (scaled units); "
                       "from/to: its value at the first and last step (data units); "
                       "effect_rms: the root mean square of the ranges over all features",
        "directions": directions,
    }


# -- attribution ------------------------------------------------------------------------------
def correlation_scores(inputs: np.ndarray, signals: np.ndarray) -> np.ndarray:
    """Pearson correlation (signals x inputs); 0 where either side is constant."""
    a = inputs.astype(np.float64)
    a = a - a.mean(axis=0)
    b = signals.astype(np.float64) - signals.mean(axis=0)
    cov = b.T @ a / len(a)
    denom = np.outer(b.std(axis=0), a.std(axis=0))
    out = np.zeros_like(cov)
    np.divide(cov, denom, out=out, where=denom > 1e-12)
    return np.clip(out, -1.0, 1.0)


def gradient_scores(ae: Autoencoder, xs: np.ndarray, vectors: np.ndarray | None) -> np.ndarray:
    """Mean |d signal / d input| over the rows: the code units (``vectors`` None) or the
    projections of the codes on ``vectors``."""
    import torch

    model = ae.model
    model.eval()
    device = ae.device
    proj = None if vectors is None else torch.as_tensor(vectors, dtype=torch.float32,
                                                        device=device)
    n_out = model.cfg.latent_dim if proj is None else proj.shape[0]
    total = np.zeros((n_out, xs.shape[1]))
    with torch.enable_grad():
        for start in range(0, len(xs), GRAD_BATCH):
            batch = torch.from_numpy(xs[start:start + GRAD_BATCH]).to(device).requires_grad_()
            z = model.encode(batch)
            signals = z if proj is None else z @ proj.T
            for i in range(n_out):
                (grad,) = torch.autograd.grad(signals[:, i].sum(), batch,
                                              retain_graph=i + 1 < n_out)
                total[i] += grad.abs().sum(dim=0).double().cpu().numpy()
    return total / max(1, len(xs))


def unit_doc(name: str, names: list[str], rank: np.ndarray, corr: np.ndarray,
              grad: np.ndarray, extra: dict[str, Any]) -> dict[str, Any]:
    order = np.argsort(-np.abs(rank), kind="stable")[:TOP_FEATURES]
    return {"name": name, **extra,
            "top_features": [{"feature": names[j], "index": int(j),
                              "correlation": float(corr[j]), "gradient": float(grad[j])}
                             for j in order]}


def robust_range(values: np.ndarray) -> tuple[float, float]:
    lo, hi = (float(v) for v in np.percentile(values, [1, 99]))
    if not (math.isfinite(lo) and math.isfinite(hi)) or hi - lo < 1e-12:
        return (lo, lo + 1.0) if math.isfinite(lo) else (0.0, 1.0)
    return lo, hi
