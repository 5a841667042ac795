"""Shared tiny fixtures. Everything is seeded; nothing is downloaded.

The device the suite trains on is one switch, the environment variable ``AEKIT_TEST_DEVICE``:

- ``auto`` (the default): CUDA when PyTorch sees a CUDA device, else the CPU -- what a user's
  ``--device auto`` does, so on a GPU machine every model the tests build without naming a
  device lives on the GPU;
- ``cpu``: the CPU even on a GPU machine (CUDA is hidden from this process and from the
  ``aekit`` processes the tests start, as on a machine without one);
- ``cuda``: the GPU; the run stops at once when PyTorch sees none.

Tests that feed tensors to a model put them on the model's device (``ae.device``, or the
``device`` fixture for a model a test builds itself).
"""

import os

import numpy as np
import pytest

TEST_DEVICES = ("auto", "cpu", "cuda")
TEST_DEVICE = os.environ.get("AEKIT_TEST_DEVICE", "auto").strip().lower() or "auto"

if TEST_DEVICE == "cpu":
    # Before anything initializes CUDA: this process and every child see no GPU, so that
    # "auto" means the CPU everywhere (the aekit commands that tests run as processes too).
    os.environ["CUDA_VISIBLE_DEVICES"] = ""

import torch  # noqa: E402 -- after CUDA_VISIBLE_DEVICES is set

if TEST_DEVICE == "cpu":
    torch.cuda.is_available = lambda: False  # in case CUDA was initialized before


def pytest_configure(config: pytest.Config) -> None:
    if TEST_DEVICE not in TEST_DEVICES:
        raise pytest.UsageError(f"AEKIT_TEST_DEVICE must be one of {', '.join(TEST_DEVICES)}. "
                                f"Received: AEKIT_TEST_DEVICE={TEST_DEVICE!r}")
    if TEST_DEVICE == "cuda" and not torch.cuda.is_available():
        raise pytest.UsageError("AEKIT_TEST_DEVICE=cuda but PyTorch sees no CUDA device; use "
                                "auto or cpu")


def pytest_report_header(config: pytest.Config) -> str:
    return f"aekit test device: {resolved_test_device()} (AEKIT_TEST_DEVICE={TEST_DEVICE})"


def resolved_test_device() -> torch.device:
    """The device models go to when the tests name none (``auto``'s choice)."""
    if TEST_DEVICE == "cpu":
        return torch.device("cpu")
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


@pytest.fixture
def device() -> torch.device:
    """The test device (see the module docstring)."""
    return resolved_test_device()


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
