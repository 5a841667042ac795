"""The training loop: penalties, clipping, full-batch GD, skipped non-finite steps."""

import math

import pytest
import torch

from aekit.config import RunConfig
from aekit.models import MLPAutoencoder
from aekit.training.callbacks import Callback
from aekit.training.trainer import Trainer


def _setup(**options):
    cfg = RunConfig().replace(hidden=(6,), latent_dim=2, progress=False, **options)
    torch.manual_seed(0)
    model = MLPAutoencoder(cfg.model, 5, "sigmoid")
    x = torch.rand(32, 5, generator=torch.Generator().manual_seed(1))
    return cfg, model, x


@pytest.mark.parametrize("l1,l2", [(0.01, None), (None, 0.02), (0.01, 0.02)])
def test_weight_penalties_match_autograd(l1, l2):
    cfg, model, x = _setup(l1=l1, l2=l2)
    trainer = Trainer(model, cfg)
    trainer.flat.zero_grad()
    from aekit.training import fastpath

    value = fastpath.loss_and_grad(model, x) + trainer._penalty()
    ours = trainer.flat.grad.clone()
    trainer.flat.zero_grad()
    weights = [p for p in model.parameters() if p.dim() >= 2]
    ref = model(x).loss
    if l1:
        ref = ref + l1 * sum(w.abs().sum() for w in weights)
    if l2:
        ref = ref + l2 * sum(w.pow(2).sum() for w in weights)
    ref.backward()
    assert value == pytest.approx(ref.item(), rel=1e-5)
    torch.testing.assert_close(ours, trainer.flat.grad, rtol=1e-4, atol=1e-7)


def test_clip_by_norm_and_by_value():
    cfg, model, x = _setup(clip_norm=1e-3)
    trainer = Trainer(model, cfg)
    trainer.flat.grad.normal_()
    trainer._clip()
    assert float(torch.linalg.vector_norm(trainer.flat.grad)) == pytest.approx(1e-3, rel=1e-3)
    cfg, model, x = _setup(clip_value=0.01)
    trainer = Trainer(model, cfg)
    trainer.flat.grad.normal_()
    trainer._clip()
    assert float(trainer.flat.grad.abs().max()) == pytest.approx(0.01)


def test_gd_takes_one_full_batch_step_per_epoch():
    cfg, model, x = _setup(optimizer="gd", epochs=3, lr=0.5)
    trainer = Trainer(model, cfg)
    history = trainer.fit(x)
    assert trainer.steps_per_epoch == 1 and trainer.step == 3
    assert history.epochs[-1]["train_loss"] < history.epochs[0]["train_loss"]


class _PoisonStep(Callback):
    """Makes the gradient of chosen steps NaN, as a numerical fault would."""

    def __init__(self, steps):
        self.steps = set(steps)

    def on_after_backward(self, trainer, step):
        if step in self.steps:
            trainer.flat.grad[0] = float("nan")


def test_non_finite_gradients_never_reach_the_weights():
    cfg, model, x = _setup(epochs=2, batch_size=8)
    trainer = Trainer(model, cfg, [_PoisonStep({1, 5})])
    before = None

    class Watch(Callback):
        def on_after_backward(self, t, step):
            nonlocal before
            if step == 1:
                before = t.flat.data.clone()

        def on_step_end(self, t, step, loss):
            if step == 1:
                assert math.isnan(loss)
                assert torch.equal(t.flat.data, before)

    trainer.callbacks.append(Watch())
    trainer.fit(x)
    assert trainer.skipped_steps == 2 and trainer.step == 8
    assert torch.isfinite(trainer.flat.data).all()


def test_callbacks_see_every_step_and_epoch():
    cfg, model, x = _setup(epochs=2, batch_size=10)
    seen = []

    class Record(Callback):
        def on_step_end(self, t, step, loss):
            seen.append(("step", step))

        def on_epoch_end(self, t, epoch, logs):
            seen.append(("epoch", epoch, logs["step"]))

    Trainer(model, cfg, [Record()]).fit(x)
    # 32 samples in batches of 10: 4 steps per epoch (the last one has 2 samples)
    assert seen == [("step", 0), ("step", 1), ("step", 2), ("step", 3), ("epoch", 0, 4),
                    ("step", 4), ("step", 5), ("step", 6), ("step", 7), ("epoch", 1, 8)]
