"""Learning-rate range test (``aekit lr-find`` and ``--lr auto``): the test and its rule.

The test (Smith 2017, "Cyclical learning rates") trains a copy of the model for ``num_steps``
mini-batch steps with the learning rate growing exponentially from ``start_lr`` to ``end_lr``
and records the loss of each step. It stops early once the loss is non-finite or above
``STOP_FACTOR`` times the best smoothed loss.

The suggestion rule, chosen to be robust to early spikes of a noisy curve:

1. smooth the losses with a bias-corrected exponential moving average (``SMOOTHING``), then
   with a running median over ``MEDIAN_WINDOW`` points, so a single spike moves nothing;
2. find the learning rate of the minimum of the smoothed curve, ignoring the first
   ``SKIP_START`` points (where the average has not settled) -- ``lr_min``;
3. suggest ``lr_min / 10`` (the minimum is at the edge of instability; a tenth of it is the
   largest rate that still descends steadily, fastai's "min/10" rule).

If the smoothed loss never falls below its starting value by ``MIN_DROP`` (the model did not
learn at any rate tried), the suggestion is the rate with the steepest smoothed descent and
``reliable`` is False.
"""

from __future__ import annotations

import copy
import math
import statistics
from dataclasses import asdict, dataclass
from typing import Any

import torch

from aekit.config import RunConfig
from aekit.errors import ConfigError
from aekit.training.plan import requested_batch_size
from aekit.training.trainer import Trainer

SMOOTHING = 0.9
MEDIAN_WINDOW = 5
SKIP_START = 5
STOP_FACTOR = 4.0
MIN_DROP = 0.01
NUM_STEPS = 100  # steps of the range test, one learning rate each


@dataclass
class LRFindResult:
    """The curve of a range test and its suggestion."""

    lrs: list[float]
    losses: list[float]
    smoothed: list[float]
    lr_min_loss: float
    suggestion: float
    reliable: bool

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON values (non-finite losses become None)."""
        out = asdict(self)
        out["losses"] = [v if math.isfinite(v) else None for v in self.losses]
        out["rule"] = ("EMA(0.9) then running median(5) of the loss; suggestion = lr at the "
                       "minimum of the smoothed curve / 10")
        return out


def smooth(losses: list[float], beta: float = SMOOTHING,
           window: int = MEDIAN_WINDOW) -> list[float]:
    """Bias-corrected EMA of ``losses`` followed by a centred running median.

    Non-finite losses are replaced by the last finite value before averaging.
    """
    ema, out, last = 0.0, [], math.nan
    for i, loss in enumerate(losses):
        last = loss if math.isfinite(loss) else (last if math.isfinite(last) else 0.0)
        ema = beta * ema + (1 - beta) * last
        out.append(ema / (1 - beta ** (i + 1)))
    half = window // 2
    return [statistics.median(out[max(0, i - half):i + half + 1]) for i in range(len(out))]


def suggest(lrs: list[float], losses: list[float]) -> tuple[float, float, list[float], bool]:
    """Apply the module's rule: (suggestion, lr at the minimum, smoothed curve, reliable)."""
    if len(lrs) < 2:
        raise ConfigError("the range test needs at least 2 recorded steps; raise --num-steps "
                          f"or lower --start-lr. Received: {len(lrs)} step(s)")
    curve = smooth(losses)
    skip = min(SKIP_START, len(curve) - 1)
    best = min(range(skip, len(curve)), key=curve.__getitem__)
    lr_min = lrs[best]
    reliable = curve[best] < curve[skip] * (1 - MIN_DROP)
    if reliable:
        return lr_min / 10.0, lr_min, curve, True
    slopes = [(curve[i + 1] - curve[i]) / max(math.log(lrs[i + 1] / lrs[i]), 1e-12)
              for i in range(len(curve) - 1)]
    steepest = min(range(len(slopes)), key=slopes.__getitem__)
    return lrs[steepest], lr_min, curve, False


def lr_find(model: torch.nn.Module, cfg: RunConfig, x_train: torch.Tensor,
            start_lr: float = 1e-6, end_lr: float = 1.0,
            num_steps: int = NUM_STEPS) -> LRFindResult:
    """Run the range test on a copy of ``model`` (``model`` itself is not changed).

    Args:
        model: an initialised autoencoder.
        cfg: the run configuration (optimizer, batch size, clipping, seed).
        x_train: (n, n_features) scaled training data.
        start_lr, end_lr: the range, exponentially spaced.
        num_steps: steps of the test (one learning rate each).

    Returns:
        The curve and the suggestion.

    Raises:
        ConfigError: a bad range or number of steps.
    """
    if not (0 < start_lr < end_lr) or not math.isfinite(end_lr):
        raise ConfigError(f"`start_lr` and `end_lr` must satisfy 0 < start_lr < end_lr. "
                          f"Received: start_lr={start_lr!r}, end_lr={end_lr!r}")
    if isinstance(num_steps, bool) or not isinstance(num_steps, int) or num_steps < 10:
        raise ConfigError(f"`num_steps` must be an integer >= 10. Received: {num_steps!r}")
    trainer = Trainer(copy.deepcopy(model), cfg, [])
    # Under torchrun every rank runs the whole test on the same batches, on its own: the
    # gradients must not be summed across ranks (that would scale them by the world size and
    # the suggestion with it), so the test gives the same curve as one process.
    trainer.world, trainer.rank = 1, 0
    trainer.model.train()
    generator = torch.Generator().manual_seed(cfg.train.seed)
    batch = min(requested_batch_size(cfg.train.batch_size, x_train.shape[0]), x_train.shape[0])
    factor = (end_lr / start_lr) ** (1.0 / (num_steps - 1))
    lrs, losses, best = [], [], math.inf
    order = torch.randperm(x_train.shape[0], generator=generator)
    position = 0
    for i in range(num_steps):
        if position + batch > x_train.shape[0]:
            order, position = torch.randperm(x_train.shape[0], generator=generator), 0
        xb = x_train[order[position:position + batch].to(x_train.device)]
        position += batch
        trainer.lr = start_lr * factor**i
        loss = trainer.train_step(xb)
        lrs.append(trainer.lr)
        losses.append(loss)
        if math.isfinite(loss):
            best = min(best, loss)
        if i >= SKIP_START and (not math.isfinite(loss) or loss > STOP_FACTOR * best):
            break
    suggestion, lr_min, curve, reliable = suggest(lrs, losses)
    return LRFindResult(lrs, losses, curve, lr_min, suggestion, reliable)


def auto_lr(model: torch.nn.Module, cfg: RunConfig, x_train: torch.Tensor) -> RunConfig:
    """``cfg`` with ``lr`` set by :func:`lr_find` (and ``lr_auto`` kept, for the record).

    Data-parallel (under torchrun) every rank runs the test as one process would, and all
    take rank 0's suggestion, so that they train with the same rate whatever rounding did.
    """
    from aekit.training import distributed

    suggestion = float(lr_find(model, cfg, x_train).suggestion)
    if distributed.world_size() > 1:
        suggestion = float(distributed.from_main(suggestion, x_train.device))
    return cfg.replace(lr=suggestion)


