"""Generate new samples with a trained autoencoder, interpolate, and check for copies.

    result = generate("runs/fm30", n=64, seed=0)      # a plain autoencoder: Gaussian mixture
    save_grid(result.samples, (28, 28), "grid.png")   # on the training codes, then decode
    path = interpolate(ae, x[0], x[1], steps=10)       # straight line between two codes

A plain autoencoder has no prior: its codes fill an irregular region of the latent space. We
fit a Gaussian mixture (scikit-learn, full covariances) to the codes of the training data,
sample codes from it and decode them. A variational autoencoder (``--model vae``) was trained
to make its codes look like N(0, I), so its prior is sampled directly.

Are the samples new? For each sample we measure the Euclidean distance (in the model's scaled
space) to its nearest training sample, and compare it with the same distance for real held-out
samples: a sample much closer to the training set than real data is would be a copy.
"""

from __future__ import annotations

import io
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from aekit.api import Autoencoder, as_dataset
from aekit.data import Dataset, load
from aekit.errors import ConfigError
from aekit.serialization import atomic_write_bytes

MAX_TRAIN_FOR_MIXTURE = 20000


@dataclass(frozen=True)
class NoveltyReport:
    """Distances (model space) from samples to their nearest training sample."""

    sample_median: float
    sample_min: float
    reference_median: float  # real samples not in the reference set, same measure
    n_train: int

    def format(self) -> str:
        """One human-readable line."""
        ratio = self.sample_median / max(self.reference_median, 1e-12)
        return (f"distance to the nearest of {self.n_train} training samples: generated median "
                f"{self.sample_median:.3f} (min {self.sample_min:.3f}); real held-out samples "
                f"median {self.reference_median:.3f} (ratio {ratio:.2f}: near 0 would mean "
                "copies)")


@dataclass(frozen=True)
class GenerationResult:
    """Generated samples (units of the training data), their codes, and the novelty check."""

    samples: np.ndarray  # (n, n_features)
    codes: np.ndarray  # (n, latent_dim)
    method: str
    novelty: NoveltyReport | None


def _model(model: Autoencoder | str | Path) -> Autoencoder:
    return model if isinstance(model, Autoencoder) else Autoencoder.load(model)


def _training_data(ae: Autoencoder, data: Any) -> Dataset:
    if data is None:
        data = ae.config.data.data  # the spec the model was trained on
    return load(data) if isinstance(data, (str, Path)) else as_dataset(data)


def fit_code_mixture(codes: np.ndarray, n_mixture: int = 10, seed: int = 0) -> Any:
    """A Gaussian mixture with full covariances fitted to codes (n, latent_dim).

    Raises:
        ConfigError: ``n_mixture`` is not a positive integer or exceeds the number of codes.
    """
    from sklearn.mixture import GaussianMixture

    if isinstance(n_mixture, bool) or not isinstance(n_mixture, int) or \
            not 1 <= n_mixture <= len(codes):
        raise ConfigError(f"`n_mixture` must be an integer from 1 to the number of training "
                          f"samples ({len(codes)}). Received: n_mixture={n_mixture!r}")
    return GaussianMixture(n_mixture, covariance_type="full", reg_covar=1e-4,
                           random_state=seed).fit(codes.astype(np.float64))


def sample_codes(ae: Autoencoder, n: int, train: Dataset | None, n_mixture: int, seed: int
                 ) -> tuple[np.ndarray, str]:
    """Codes to decode: from the VAE's prior, or from a mixture fitted to training codes."""
    if hasattr(ae.model, "sample_prior"):
        gen = torch.Generator().manual_seed(seed)
        return ae.model.sample_prior(n, gen).numpy(), "VAE prior N(0, I)"
    rng = np.random.default_rng(seed)
    x = train.x
    if len(x) > MAX_TRAIN_FOR_MIXTURE:  # a subsample is plenty for a mixture of ~10 parts
        x = x[np.sort(rng.choice(len(x), MAX_TRAIN_FOR_MIXTURE, replace=False))]
    mixture = fit_code_mixture(ae.encode(x), n_mixture, seed)
    mixture.random_state = seed
    codes, _ = mixture.sample(n)
    codes = codes[rng.permutation(n)]  # sample() groups codes by component
    return codes.astype(np.float32), f"Gaussian mixture ({n_mixture} full-covariance parts) " \
        "on the training codes"


def generate(model: Autoencoder | str | Path, n: int = 64, data: Any = None,
             n_mixture: int = 10, seed: int = 0, check_novelty: bool = True
             ) -> GenerationResult:
    """Generate ``n`` new samples.

    Args:
        model: a trained autoencoder or its folder.
        n: number of samples.
        data: training data for the code mixture and the novelty check (default: the data
            spec the model was trained on).
        n_mixture: mixture components (plain autoencoders).
        seed: random seed.
        check_novelty: measure distances to the nearest training samples.

    Raises:
        ConfigError: ``n`` or ``n_mixture`` out of range.
    """
    if isinstance(n, bool) or not isinstance(n, int) or not 1 <= n <= 1_000_000:
        raise ConfigError(f"`n` must be an integer from 1 to 1000000. Received: n={n!r}")
    ae = _model(model)
    needs_train = check_novelty or not hasattr(ae.model, "sample_prior")
    train = _training_data(ae, data) if needs_train else None
    codes, method = sample_codes(ae, n, train, n_mixture, seed)
    samples = ae.decode(codes)
    novelty = novelty_report(ae, samples, train.x, seed) if check_novelty else None
    return GenerationResult(samples, codes, method, novelty)


def nearest_distances(queries: np.ndarray, reference: np.ndarray,
                      exclude_self: np.ndarray | None = None) -> np.ndarray:
    """Euclidean distance from each query row to its nearest reference row (chunked).

    Args:
        queries: (m, d). reference: (n, d).
        exclude_self: for each query, the index of a reference row to ignore (itself), or None.
    """
    q = torch.from_numpy(np.ascontiguousarray(queries, np.float32))
    best = torch.full((len(q),), math.inf, dtype=torch.float64)
    for start in range(0, len(reference), 8192):
        ref = torch.from_numpy(np.ascontiguousarray(reference[start:start + 8192], np.float32))
        d2 = torch.cdist(q, ref).double()  # (m, chunk)
        if exclude_self is not None:
            rows = np.nonzero((exclude_self >= start) & (exclude_self < start + len(ref)))[0]
            d2[rows, exclude_self[rows] - start] = math.inf
        best = torch.minimum(best, d2.min(dim=1).values)
    return best.numpy()


def novelty_report(ae: Autoencoder, samples: np.ndarray, train_x: np.ndarray, seed: int = 0,
                   n_reference: int = 256) -> NoveltyReport:
    """Distances of samples to the training set, beside those of real training samples to the
    rest of the training set (each excluding itself)."""
    train_scaled = ae.scaler.transform(train_x)
    d_samples = nearest_distances(ae.scaler.transform(samples), train_scaled)
    rng = np.random.default_rng(seed)
    ref_idx = rng.choice(len(train_x), min(n_reference, len(train_x)), replace=False)
    d_ref = nearest_distances(train_scaled[ref_idx], train_scaled, exclude_self=ref_idx)
    return NoveltyReport(float(np.median(d_samples)), float(d_samples.min()),
                         float(np.median(d_ref)), len(train_x))


def interpolate(model: Autoencoder | str | Path, a: Any, b: Any, steps: int = 8) -> np.ndarray:
    """Decode ``steps`` codes evenly spaced between the codes of samples ``a`` and ``b``.

    Returns:
        (steps, n_features) in the units of the data; the first and last rows are the
        reconstructions of ``a`` and ``b``.
    """
    if isinstance(steps, bool) or not isinstance(steps, int) or steps < 2:
        raise ConfigError(f"`steps` must be an integer >= 2. Received: steps={steps!r}")
    ae = _model(model)
    pair = np.stack([np.asarray(a, np.float32).reshape(-1), np.asarray(b, np.float32).reshape(-1)])
    za, zb = ae.encode(pair)
    t = np.linspace(0.0, 1.0, steps, dtype=np.float32)[:, None]
    return ae.decode((1 - t) * za + t * zb)


def save_grid(images: np.ndarray, sample_shape: tuple[int, ...], path: str | Path,
              n_cols: int | None = None, value_range: tuple[float, float] = (0.0, 1.0),
              scale: int = 2) -> Path:
    """Write images as one PNG grid (Pillow).

    Args:
        images: (n, n_features) with values in ``value_range``.
        sample_shape: (h, w), (1, h, w) or (3, h, w).
        path: the PNG file.
        n_cols: columns; default: about a square.
        scale: each pixel drawn as scale x scale.

    Raises:
        ConfigError: samples that are not images.
    """
    from PIL import Image

    shape = tuple(sample_shape)
    if len(shape) == 3 and shape[0] in (1, 3):
        channels, h, w = shape
    elif len(shape) == 2:
        channels, (h, w) = 1, shape
    else:
        raise ConfigError(f"a PNG grid needs image samples (h, w) or (c, h, w) with 1 or 3 "
                          f"channels. Received: sample shape {shape}")
    n = len(images)
    n_cols = n_cols or max(1, math.ceil(math.sqrt(n)))
    n_rows = max(1, math.ceil(n / n_cols))
    lo, hi = value_range
    pixels = np.clip((np.asarray(images, np.float64) - lo) / max(hi - lo, 1e-12), 0, 1)
    tiles = (pixels.reshape(n, channels, h, w).transpose(0, 2, 3, 1) * 255).round()
    canvas = np.full((n_rows * (h + 2) + 2, n_cols * (w + 2) + 2, channels), 255, np.uint8)
    for i, tile in enumerate(tiles.astype(np.uint8)):
        r, c = divmod(i, n_cols)
        canvas[2 + r * (h + 2):2 + r * (h + 2) + h, 2 + c * (w + 2):2 + c * (w + 2) + w] = tile
    image = Image.fromarray(canvas[..., 0] if channels == 1 else canvas)
    if scale > 1:
        image = image.resize((image.width * scale, image.height * scale), Image.NEAREST)
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    atomic_write_bytes(path, buffer.getvalue())
    return Path(path)


def grid_for(ae: Autoencoder, samples: np.ndarray, path: str | Path,
             n_cols: int | None = None) -> Path:
    """A PNG grid of samples in the model's units (scaled to [0, 1] as the model sees them)."""
    return save_grid(ae.scaler.transform(samples), ae.sample_shape, path, n_cols)
