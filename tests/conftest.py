"""Shared tiny fixtures. Everything is seeded; nothing is downloaded."""

import numpy as np
import pytest


@pytest.fixture
def blobs() -> np.ndarray:
    """120 samples of 10 features lying near a 3-D subspace, values in [0, 1]."""
    rng = np.random.default_rng(0)
    z = rng.normal(size=(120, 3))
    mix = rng.normal(size=(3, 10))
    x = 1.0 / (1.0 + np.exp(-(z @ mix)))
    return (x + 0.01 * rng.normal(size=x.shape)).clip(0, 1).astype(np.float32)


@pytest.fixture
def tabular() -> np.ndarray:
    """200 samples of 6 unscaled features (standardized by aekit)."""
    rng = np.random.default_rng(1)
    z = rng.normal(size=(200, 2))
    return (z @ rng.normal(size=(2, 6)) * 50 + 300).astype(np.float32)
