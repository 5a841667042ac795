"""The maths of an ``OutlierDetector``'s score: robust scales, regularised covariances,
Mahalanobis and nearest-neighbour distances."""

from __future__ import annotations

import numpy as np


def positive_median(values: np.ndarray) -> float:
    """The median of ``values``, or a small positive number when it is zero (a perfect fit)."""
    median = float(np.median(values)) if len(values) else 0.0
    if median > 0:
        return median
    mean = float(np.mean(values)) if len(values) else 0.0
    return mean if mean > 0 else 1e-12


def mean_and_precision(values: np.ndarray, ridge_share: float = 1e-6
                        ) -> tuple[np.ndarray, np.ndarray]:
    """Mean and (ridge-regularised pseudo-) inverse covariance of the rows of ``values``."""
    mean = values.mean(axis=0)
    cov = np.atleast_2d(np.cov(values - mean, rowvar=False)) if len(values) > 1 else \
        np.eye(values.shape[1])
    ridge = ridge_share * max(float(np.trace(cov)) / len(cov), 1e-12)
    return mean, np.linalg.pinv(cov + ridge * np.eye(len(cov)))


def mahalanobis(values: np.ndarray, mean: np.ndarray, precision: np.ndarray) -> np.ndarray:
    """Squared Mahalanobis distance of each row: (n,) float64, never negative."""
    centred = values - mean
    return np.maximum(np.einsum("ij,jk,ik->i", centred, precision, centred), 0.0)


def kth_neighbour_distance(reference: np.ndarray, rows: np.ndarray, k: int) -> np.ndarray:
    """Squared distance from each row to its ``k``-th nearest row of ``reference`` (a row that
    is in ``reference`` counts itself): (n,) float64. ``k`` is capped at the reference's
    size."""
    from sklearn.neighbors import NearestNeighbors

    if len(rows) == 0:
        return np.zeros(0)
    k = min(k, len(reference))
    search = NearestNeighbors(n_neighbors=k, algorithm="brute").fit(reference)
    distances, _ = search.kneighbors(rows.astype(np.float32))
    return np.square(distances[:, k - 1].astype(np.float64))
