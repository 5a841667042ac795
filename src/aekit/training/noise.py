"""Input corruption for denoising autoencoders (``--noise``): the model sees a corrupted batch
and is scored against the clean one.

Kinds (``KIND:AMOUNT``, parsed by :func:`aekit.config.parse_noise`), in the scaled space the
model works in:

- ``gaussian:SIGMA``: add N(0, SIGMA^2) to every value (then clip to the data's range when it
  has one: pixels and min-max scaled features stay in [0, 1]);
- ``mask:P``: set each value to 0 with probability P (masking noise: black pixels, or the
  training mean of a standardized feature);
- ``saltpepper:P``: set each value with probability P to the low or the high end of the
  data's range (0 or 1 for pixels; -3 or +3 standard deviations for standardized features),
  each with probability P / 2.

The noise of training step ``s`` is drawn from a generator seeded with ``(seed, s)``: fresh
noise at every step and every epoch, and the same noise again after a resume. Validation and
test rows are corrupted once with fixed seeds (:data:`VALIDATION_STREAM`,
:data:`TEST_STREAM`), so their scores compare epochs and runs on the same corruption.
"""

from __future__ import annotations

import numpy as np
import torch

from aekit.config import parse_noise

STANDARD_RANGE = (-3.0, 3.0)  # salt and pepper for standardized features (no fixed range)
VALIDATION_STREAM = -1
TEST_STREAM = -2


def step_generator(seed: int, stream: int) -> torch.Generator:
    """A generator for one training step (``stream`` = the step) or a fixed stream."""
    return torch.Generator().manual_seed((int(seed) * 1_000_003 + int(stream) + 7) % (2**63))


def corrupt(x: torch.Tensor, spec: str | tuple[str, float], generator: torch.Generator,
            value_range: tuple[float, float] | None = None) -> torch.Tensor:
    """A corrupted copy of ``x`` (the batch itself is left alone).

    Args:
        x: (batch, features) scaled rows. spec: ``KIND:AMOUNT``, or ``(kind, amount)`` as
            :func:`aekit.config.parse_noise` returns it (a loop parses it once).
        generator: the random stream (CPU); the noise is moved to ``x``'s device.
        value_range: the data's range in the scaled space, when it has one (pixels: (0, 1)).
    """
    kind, amount = parse_noise(spec) if isinstance(spec, str) else spec
    if kind == "gaussian":
        noisy = x + torch.randn(x.shape, generator=generator).to(x.device, x.dtype) * amount
        return noisy.clamp_(*value_range) if value_range is not None else noisy
    draw = torch.rand(x.shape, generator=generator).to(x.device)
    if kind == "mask":
        return x.masked_fill(draw < amount, 0.0)
    low, high = value_range if value_range is not None else STANDARD_RANGE
    noisy = x.masked_fill(draw < amount / 2, low)
    return noisy.masked_fill_((draw >= amount / 2) & (draw < amount), high)


def corrupt_array(x: np.ndarray, spec: str, seed: int, stream: int,
                  value_range: tuple[float, float] | None = None) -> np.ndarray:
    """:func:`corrupt` for a numpy array of scaled rows (validation and test sets), in
    blocks so that a large set needs no second copy in float64."""
    gen = step_generator(seed, stream)
    parsed = parse_noise(spec)
    out = np.empty_like(x)
    for i in range(0, len(x), 8192):
        out[i:i + 8192] = corrupt(torch.from_numpy(np.ascontiguousarray(x[i:i + 8192])), parsed,
                                  gen, value_range).numpy()
    return out
