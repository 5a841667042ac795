"""PCA at the same latent size, fitted on the same training split (scikit-learn); for data
streamed out of core, incremental PCA over the same rows, block by block."""

from __future__ import annotations

from typing import Iterable

import numpy as np
from sklearn.decomposition import PCA, IncrementalPCA


def fit_pca(x_train: np.ndarray, n_components: int, seed: int = 0,
            overwrite: bool = False) -> PCA:
    """Fit PCA with ``n_components`` (capped at what the data allows) on ``x_train``;
    ``overwrite=True`` lets it centre ``x_train`` in place instead of copying it."""
    k = max(1, min(n_components, x_train.shape[0], x_train.shape[1]))
    return PCA(n_components=k, random_state=seed, copy=not overwrite).fit(x_train)


def fit_pca_streamed(blocks: Iterable[np.ndarray], n_components: int, n_samples: int,
                     n_features: int) -> IncrementalPCA:
    """Incremental PCA over ``blocks`` of rows (scaled), never holding more than a block or two.

    Blocks smaller than the number of components are gathered with the next ones, and a short
    tail joins the last batch (each ``partial_fit`` needs at least that many rows).

    Args:
        blocks: (rows, n_features) arrays, every training row once.
        n_components: wanted size (capped at what ``n_samples`` x ``n_features`` allows).
        n_samples, n_features: the size of the whole training data.
    """
    k = max(1, min(n_components, n_samples, n_features))
    pca = IncrementalPCA(n_components=k)
    ready: np.ndarray | None = None  # a batch of at least k rows, fitted when the next is full
    pending: list[np.ndarray] = []
    for block in blocks:
        pending.append(block)
        if sum(len(b) for b in pending) >= k:
            if ready is not None:
                pca.partial_fit(ready)
            ready, pending = np.concatenate(pending), []
    last = [ready] if ready is not None else []
    pca.partial_fit(np.concatenate(last + pending))  # a short tail joins the last batch
    return pca


def pca_errors(pca: PCA, x: np.ndarray, target: np.ndarray | None = None) -> dict[str, float]:
    """``mse`` and ``sse_per_sample`` of PCA's reconstruction of ``x`` (compared with
    ``target`` when given: PCA as a denoiser of ``x``).

    Args:
        pca: a fitted PCA.
        x: (n, n_features) data in the same space PCA was fitted in.
        target: what the reconstruction should be (default: ``x``).
    """
    x_hat = pca.inverse_transform(pca.transform(x))
    reference = x if target is None else target
    sq = np.square(x_hat.astype(np.float64) - reference.astype(np.float64))
    sse = float(sq.sum())
    return {"mse": sse / max(1, sq.size), "sse_per_sample": sse / max(1, x.shape[0])}
