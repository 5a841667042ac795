"""aekit: train autoencoders by gradient descent, see why training goes wrong, put them to work.

    import aekit
    ae = aekit.Autoencoder(latent_dim=32, hidden=(64, 32))
    history = ae.fit(x, epochs=50, batch_size=32, validation_split=0.1)
    z = ae.encode(x); x_hat = ae.decode(z); ae.save("model_dir"); ae = aekit.load("model_dir")

The public names are imported on first use, so that ``aekit --help`` does not pay for PyTorch
and scikit-learn.
"""

from __future__ import annotations

import importlib
from typing import Any

__version__ = "0.1.0"

_PUBLIC = {
    "Autoencoder": "aekit.api",
    "load": "aekit.api",
    "RunConfig": "aekit.config",
    "AutoencoderTransformer": "aekit.estimator",
    "OutlierDetector": "aekit.detector",
    "generate": "aekit.apps.generate",
}

__all__ = ["__version__", *_PUBLIC]


def __getattr__(name: str) -> Any:
    if name in _PUBLIC:
        value = getattr(importlib.import_module(_PUBLIC[name]), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'aekit' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(__all__)
