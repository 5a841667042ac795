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
    from aekit.training.optim import weight_penalty

    value = fastpath.loss_and_grad(model, x) + weight_penalty(trainer.flat, l1 or 0.0, l2 or 0.0)
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
    from aekit.training.optim import clip_gradients

    cfg, model, x = _setup(clip_norm=1e-3)
    trainer = Trainer(model, cfg)
    trainer.flat.grad.normal_()
    clip_gradients(trainer.flat, None, 1e-3)
    assert float(torch.linalg.vector_norm(trainer.flat.grad)) == pytest.approx(1e-3, rel=1e-3)
    cfg, model, x = _setup(clip_value=0.01)
    trainer = Trainer(model, cfg)
    trainer.flat.grad.normal_()
    clip_gradients(trainer.flat, 0.01, None)
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


# -- auto values ---------------------------------------------------------------------------------
def test_auto_batch_size_and_patience():
    from aekit.training.plan import auto_batch_size, auto_patience

    cfg, model, x = _setup(epochs=30, batch_size=None)
    trainer = Trainer(model, cfg)
    trainer.fit(x[:24], x[24:])
    assert trainer.batch_size == auto_batch_size(24) == 16
    assert trainer.steps_per_epoch == 2
    assert trainer.patience == auto_patience(30)
    cfg, model, x = _setup(epochs=3, batch_size=None, optimizer="gd")
    trainer = Trainer(model, cfg)
    trainer.fit(x)
    assert trainer.batch_size == 32 and trainer.steps_per_epoch == 1  # gd: the whole split
    cfg, model, x = _setup(epochs=3, early_stopping_patience=None)
    trainer = Trainer(model, cfg)
    trainer.fit(x)
    assert trainer.patience is None


def test_patience_none_never_stops_early():
    cfg, model, x = _setup(epochs=12, batch_size=8, early_stopping_patience=None,
                           restore_best_weights=False)
    trainer = Trainer(model, cfg, [_Worsen()])
    trainer.fit(x[:24], x[24:])
    assert len(trainer.history.epochs) == 12
    assert not [e for e in trainer.history.events if e["kind"] in ("early_stop", "best_weights")]


# -- reconstruction targets ----------------------------------------------------------------------
class _RecordingTrainer(Trainer):
    """Keeps every (inputs, target) batch handed to the step."""

    def train_step(self, xb, weight=1.0, target=None, row_weight=None):
        self.seen.append((xb.clone(), None if target is None else target.clone()))
        return super().train_step(xb, weight, target, row_weight)


def test_a_target_takes_the_same_rows_as_the_inputs_and_is_trained_toward():
    cfg, model, x = _setup(epochs=3, batch_size=5)
    y = x.flip(1).contiguous()  # a different target: the features reversed
    trainer = _RecordingTrainer(model, cfg)
    trainer.seen = []
    trainer.fit(x, y_train=y)
    assert len(trainer.seen) == 3 * 7
    for xb, yb in trainer.seen:
        assert torch.equal(yb, xb.flip(1))
    from aekit.training.trainer import mean_loss

    # validation scores the reconstruction against the target, not the input
    assert mean_loss(model, x, y) != pytest.approx(mean_loss(model, x), rel=1e-3)
    # and training moves the reconstruction toward the target
    _, fresh, _ = _setup()
    assert mean_loss(model, x, y) < mean_loss(fresh, x, y)


def test_a_target_equal_to_the_input_changes_nothing():
    cfg, model, x = _setup(epochs=3, batch_size=6)
    plain = Trainer(model, cfg)
    plain.fit(x[:24], x[24:])
    _, model2, _ = _setup(epochs=3, batch_size=6)
    with_target = Trainer(model2, cfg)
    with_target.fit(x[:24], x[24:], y_train=x[:24].clone(), y_val=x[24:].clone())
    assert torch.equal(plain.flat.data, with_target.flat.data)
    assert plain.history.epochs == [
        {**e, "seconds": p["seconds"], "samples_per_second": p["samples_per_second"]}
        for e, p in zip(with_target.history.epochs, plain.history.epochs)]


def test_target_errors_are_clear():
    from aekit.errors import ConfigError

    cfg, model, x = _setup(epochs=1)
    with pytest.raises(ConfigError, match="y_train.*shape"):
        Trainer(model, cfg).fit(x, y_train=x[:, :4])
    with pytest.raises(ConfigError, match="y_val.*without x_val"):
        Trainer(model, cfg).fit(x, y_val=x)

    class Streamed:  # out-of-core training data: not a tensor
        shape = (32, 5)

    with pytest.raises(ConfigError, match="out-of-core.*no target"):
        Trainer(model, cfg).fit(Streamed(), y_train=x)


# -- the starting weights as a candidate for the best ---------------------------------------------
class _Worsen(Callback):
    """Pushes every weight up after each step: every epoch ends worse than the one before."""

    def on_step_end(self, trainer, step, loss):
        trainer.flat.data.add_(0.05)


def test_initial_weights_are_restored_when_no_epoch_beats_them():
    from aekit.training.trainer import mean_loss

    cfg, model, x = _setup(epochs=4, batch_size=8, early_stopping_patience=None)
    initial = {k: v.clone() for k, v in model.state_dict().items()}
    trainer = Trainer(model, cfg, [_Worsen()])
    history = trainer.fit(x[:24], x[24:])
    start = mean_loss(model, x[24:])
    assert history.initial_val_loss == pytest.approx(start)
    assert history.epochs[0]["initial_val_loss"] == history.initial_val_loss
    assert "initial_val_loss" not in history.epochs[1]
    for key, value in model.state_dict().items():
        assert torch.equal(value, initial[key]), key
    event = history.events[-1]
    assert event["kind"] == "best_weights" and event["best_epoch"] == 0
    assert event["best_val_loss"] == history.initial_val_loss
    assert "initial weights" in event["message"]


def test_early_stopping_counts_from_the_initial_weights():
    cfg, model, x = _setup(epochs=20, batch_size=8, early_stopping_patience=3,
                           schedule="constant")
    trainer = Trainer(model, cfg, [_Worsen()])
    history = trainer.fit(x[:24], x[24:])
    assert len(history.epochs) == 3  # three epochs, none better than the start
    event = [e for e in history.events if e["kind"] == "early_stop"][0]
    assert event["best_epoch"] == 0 and "initial weights" in event["message"]


def test_early_stopping_waits_for_the_end_of_one_cycles_climb():
    # 20 epochs of 3 steps, the lr climbing for the first quarter (15 steps): epochs 1-4 end
    # inside the climb (steps 3-12) and do not count, so patience 3 stops after epoch 4 + 3
    cfg, model, x = _setup(epochs=20, batch_size=8, early_stopping_patience=3,
                           schedule="one_cycle", pct_start=0.25)
    history = Trainer(model, cfg, [_Worsen()]).fit(x[:24], x[24:])
    assert len(history.epochs) == 7
    assert [e for e in history.events if e["kind"] == "early_stop"][0]["best_epoch"] == 0


def test_a_better_epoch_replaces_the_initial_weights():
    cfg, model, x = _setup(epochs=5, batch_size=8, lr=0.01, optimizer="adam")
    history = Trainer(model, cfg).fit(x[:24], x[24:])
    assert history.epochs[-1]["val_loss"] < history.initial_val_loss
    assert not [e for e in history.events if e.get("best_epoch") == 0]


def test_without_kept_best_weights_the_last_ones_stay():
    cfg, model, x = _setup(epochs=3, batch_size=8, early_stopping_patience=None,
                           restore_best_weights=False)
    trainer = Trainer(model, cfg, [_Worsen()])
    history = trainer.fit(x[:24], x[24:])
    assert history.initial_val_loss is not None  # still measured
    assert not history.events and trainer.best_weights.state is None


# -- events logged before training ---------------------------------------------------------------
def test_events_logged_before_training_reach_every_callback_once(tmp_path):
    import json

    from aekit.training.callbacks import MetricsWriter

    seen = []

    class Seen(Callback):
        def on_event(self, trainer, event):
            seen.append(event["kind"])

    class LogsAtStart(Callback):
        def on_train_begin(self, trainer):
            trainer.log_event("pca_baseline", "PCA-2 validation mse 0.01", val_mse=0.01,
                              latent_dim=2)

    cfg, model, x = _setup(epochs=2, batch_size=8)
    trainer = Trainer(model, cfg, [LogsAtStart(), MetricsWriter(tmp_path / "m.jsonl"), Seen()])
    trainer.log_event("note", "before fit")
    trainer.fit(x[:24], x[24:])
    lines = [json.loads(line) for line in (tmp_path / "m.jsonl").read_text().splitlines()]
    kinds = [r["kind"] for r in lines if r["type"] == "event"]
    assert kinds[:2] == ["note", "pca_baseline"] and seen[:2] == kinds[:2]
    assert lines[0]["type"] == "event"  # before the first epoch's line
    assert [e["kind"] for e in trainer.history.events][:2] == ["note", "pca_baseline"]


# -- when checkpoints are written ----------------------------------------------------------------
class _CountingCheckpointer:
    """A Checkpointer that records (step, epoch, batch) instead of writing files."""

    @staticmethod
    def make(every):
        from aekit.training.checkpoint import Checkpointer

        class Counting(Checkpointer):
            def save(self, trainer):
                self.saved.append((trainer.step, *trainer.checkpoint_timer.position[:2]))

        cp = Counting("/nonexistent-aekit-test", every)
        cp.saved = []
        return cp


@pytest.mark.parametrize("every, expected", [
    # 32 rows in batches of 8: 4 steps per epoch, 5 epochs (20 steps)
    (5, [(5, 1, 1), (10, 2, 2), (15, 3, 3), (20, 5, 0)]),  # mid-epoch; step 20 ends epoch 5
    (8, [(8, 2, 0), (16, 4, 0), (20, 5, 0)]),  # due at an epoch's last step: its end; final
    (None, [(20, 5, 0)]),  # by time only (none due in a short run) and the final state
])
def test_checkpoints_by_step_count_not_at_every_epoch_end(every, expected):
    cfg, model, x = _setup(epochs=5, batch_size=8)
    cp = _CountingCheckpointer.make(every)
    Trainer(model, cfg, [cp]).fit(x)
    assert cp.saved == expected


def test_checkpoints_by_time_when_epochs_are_long(monkeypatch):
    from aekit.training import checkpoint_timing as timing_module

    monkeypatch.setattr(timing_module, "CHECKPOINT_SECONDS", 0.0)  # every moment is due
    cfg, model, x = _setup(epochs=2, batch_size=8)
    cp = _CountingCheckpointer.make(None)
    Trainer(model, cfg, [cp]).fit(x)
    # after every step (mid-epoch) and at every epoch end, never twice for one position
    assert cp.saved == [(1, 0, 1), (2, 0, 2), (3, 0, 3), (4, 1, 0),
                        (5, 1, 1), (6, 1, 2), (7, 1, 3), (8, 2, 0)]


def test_early_stop_writes_the_final_state_once():
    cfg, model, x = _setup(epochs=20, batch_size=8, early_stopping_patience=2,
                           schedule="constant")
    cp = _CountingCheckpointer.make(3)
    trainer = Trainer(model, cfg, [cp, _Worsen()])
    trainer.fit(x[:24], x[24:])
    assert len(trainer.history.epochs) == 2
    assert cp.saved == [(3, 1, 0), (6, 2, 0)]  # step 6 ends epoch 2, where it stopped


def test_progress_on_a_terminal_is_cheap_for_tiny_epochs(monkeypatch):
    import io

    import tqdm.auto

    from aekit.training.callbacks import ProgressBar

    bars = []

    class FakeBar:
        def __init__(self, **kwargs):
            bars.append(self)
            self.written = []

        def update(self, n):
            pass

        def set_postfix(self, **kwargs):
            pass

        def close(self):
            pass

        def write(self, line, file=None):
            self.written.append(line)

    class Terminal(io.StringIO):
        def isatty(self):
            return True

    monkeypatch.setattr(tqdm.auto, "tqdm", FakeBar)
    stream = Terminal()
    cfg, model, x = _setup(epochs=60, batch_size=8, early_stopping_patience=None)
    trainer = Trainer(model, cfg, [ProgressBar(stream)])
    trainer.log_event("pca_baseline", "PCA-2 validation mse 0.01", val_mse=0.01, latent_dim=2)
    trainer.fit(x[:24], x[24:])
    lines = stream.getvalue().splitlines()
    assert len(bars) == 1  # the first epoch's; the next ones are too short for a bar
    assert lines.count("[pca_baseline] PCA-2 validation mse 0.01") == 1
    epoch_lines = [line for line in lines if line.startswith("epoch ")]
    assert len(epoch_lines) <= ProgressBar.MAX_LINES + 1 and epoch_lines[-1].startswith(
        "epoch 60/60")


@pytest.mark.parametrize("options, match", [
    ({"early_stopping_patience": 3}, r"early_stopping_patience` 3 .*no validation rows"),
    ({"schedule": "plateau"}, r"`schedule` plateau .*no validation rows"),
])
def test_options_that_read_the_validation_loss_are_refused_without_it(options, match):
    from aekit.errors import ConfigError

    cfg, model, x = _setup(epochs=2, batch_size=8, **options)
    with pytest.raises(ConfigError, match=match):
        Trainer(model, cfg).fit(x)
    with pytest.raises(ConfigError, match=match):
        Trainer(model, cfg).fit(x, x[:0])  # an empty validation set is none
    Trainer(model, cfg).fit(x[:24], x[24:])  # with validation rows they act


def test_auto_patience_without_validation_rows_is_simply_off():
    cfg, model, x = _setup(epochs=3, batch_size=8)
    trainer = Trainer(model, cfg)
    trainer.fit(x)
    assert cfg.train.early_stopping_patience == "auto" and len(trainer.history.epochs) == 3


def test_batch_schedule_grows_the_batch_where_step_decay_would_cut_the_rate():
    from aekit.training.plan import batch_sizes
    from aekit.errors import ConfigError

    assert batch_sizes("step:5", 100, 10_000, 9, None) == [100] * 3 + [500] * 3 + [2500] * 3
    assert batch_sizes("step:2", 16, 50, 4, 1) == [16, 32, 50, 50]  # at most the rows
    assert batch_sizes(None, 16, 50, 3, None) == [16, 16, 16]
    with pytest.raises(ConfigError, match=r"`batch_schedule` must be step:FACTOR"):
        RunConfig().replace(batch_schedule="grow:2")
    cfg, model, x = _setup(epochs=3, batch_size=5, batch_schedule="step:2",
                           step_size_epochs=1)
    trainer = Trainer(model, cfg)
    history = trainer.fit(x)
    assert [e["batch_size"] for e in history.epochs] == [5, 10, 20]
    assert [e["step"] for e in history.epochs] == [7, 11, 13]  # 7 + 4 + 2 steps of 32 rows
    assert trainer.step == 13


def test_an_interrupted_writer_leaves_nothing_to_flush_into_a_resumed_file(tmp_path):
    """A run interrupted in-process keeps its metrics writer open (the traceback holds it);
    a resume cuts the file back and appends. Whatever happens to the old writer later (its
    collection flushes and closes it), every line of the file stays one whole record."""
    import gc
    import json
    import os

    from aekit.training.callbacks import MetricsWriter

    path = tmp_path / "metrics.jsonl"
    old = MetricsWriter(path)
    old.on_train_begin(None)
    old.write({"type": "epoch", "epoch": 1})
    kept = path.stat().st_size  # what a checkpoint records
    for step in range(3):  # written after the checkpoint, then the crash
        old.write({"type": "diagnostics", "step": step, "layers": {"a": list(range(20))}})
    os.truncate(path, kept)  # the resume
    new = MetricsWriter(path, append=True)
    new.on_train_begin(None)
    new.write({"type": "diagnostics", "step": 0})
    new.on_train_end(None, {})
    del old
    gc.collect()
    records = [json.loads(line) for line in path.read_text().splitlines()]
    assert records == [{"type": "epoch", "epoch": 1}, {"type": "diagnostics", "step": 0}]
