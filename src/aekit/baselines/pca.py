"""PCA at the same latent size, fitted on the same training split (scikit-learn)."""

from __future__ import annotations

import numpy as np
from sklearn.decomposition import PCA


def fit_pca(x_train: np.ndarray, n_components: int, seed: int = 0) -> PCA:
    """Fit PCA with ``n_components`` (capped at what the data allows) on ``x_train``."""
    k = max(1, min(n_components, x_train.shape[0], x_train.shape[1]))
    return PCA(n_components=k, random_state=seed).fit(x_train)


def pca_errors(pca: PCA, x: np.ndarray) -> dict[str, float]:
    """``mse`` and ``sse_per_sample`` of PCA's reconstruction of ``x``.

    Args:
        pca: a fitted PCA.
        x: (n, n_features) data in the same space PCA was fitted in.
    """
    x_hat = pca.inverse_transform(pca.transform(x))
    sq = np.square(x_hat.astype(np.float64) - x.astype(np.float64))
    sse = float(sq.sum())
    return {"mse": sse / max(1, sq.size), "sse_per_sample": sse / max(1, x.shape[0])}
