"""Best weights and early stopping as a callback, driven by hand (no training loop)."""

import math

import torch

from aekit.config import RunConfig
from aekit.training.best_weights import BestWeights


class FakeTrainer:
    """What BestWeights reads and calls: patience, config, epoch, snapshot, restore, events."""

    def __init__(self, patience=None, restore_best_weights=True, climb_steps=0):
        self.patience = patience
        self.step = 0  # one step an epoch, the lr climbing for the first climb_steps
        self.schedule = type("S", (), {"rising": staticmethod(lambda s: s < climb_steps)})()
        self.config = RunConfig().replace(restore_best_weights=restore_best_weights)
        self.epoch = 0
        self.weights = torch.zeros(1)
        self.stop_training = False
        self.events = []
        self.history = type("H", (), {"epochs": [], "events": self.events})()

    def snapshot(self):
        return {"model.w": self.weights.clone()}

    def restore(self, state):
        self.weights = state["model.w"].clone()

    def log_event(self, kind, message, **data):
        self.events.append({"kind": kind, "message": message, **data})


def _epoch(best, trainer, val_loss):
    trainer.weights += 1  # each epoch changes the weights
    trainer.history.epochs.append({"val_loss": val_loss})
    trainer.step += 1
    best.on_epoch_end(trainer, trainer.epoch, {"val_loss": val_loss})
    trainer.epoch += 1


def test_epochs_of_the_lr_climb_do_not_count_against_patience():
    trainer, best = FakeTrainer(patience=2, climb_steps=3), BestWeights()
    best.score_initial(trainer, 1.0)
    for _ in range(4):  # epochs 1-2 end in the climb (steps 1, 2), 3-4 count
        _epoch(best, trainer, 2.0)
    assert trainer.stop_training and trainer.epoch == 4 and best.best_epoch == 0


def test_keeps_the_best_epoch_and_puts_it_back():
    trainer, best = FakeTrainer(), BestWeights()
    best.score_initial(trainer, 1.0)
    for loss in (0.8, 0.5, 0.7):
        _epoch(best, trainer, loss)
    assert (best.best_val, best.best_epoch, best.bad_epochs) == (0.5, 2, 0)
    best.restore(trainer)
    assert float(trainer.weights) == 2.0  # the weights after epoch 2
    assert trainer.events[-1]["kind"] == "best_weights" and trainer.events[-1]["best_epoch"] == 2


def test_stops_after_patience_epochs_counting_from_the_initial_weights():
    trainer, best = FakeTrainer(patience=2), BestWeights()
    best.score_initial(trainer, 0.1)
    _epoch(best, trainer, 0.2)
    assert not trainer.stop_training
    _epoch(best, trainer, 0.3)
    assert trainer.stop_training and trainer.events[-1]["kind"] == "early_stop"
    best.restore(trainer)
    assert float(trainer.weights) == 0.0  # the initial weights; no second event
    assert [e["kind"] for e in trainer.events] == ["early_stop"]


def test_keeps_nothing_when_neither_option_asks():
    trainer, best = FakeTrainer(restore_best_weights=False), BestWeights()
    best.score_initial(trainer, 1.0)
    _epoch(best, trainer, 0.5)
    assert best.state is None and math.isinf(best.best_val)


def test_checkpoint_round_trip():
    trainer, best = FakeTrainer(patience=5), BestWeights()
    best.score_initial(trainer, 1.0)
    _epoch(best, trainer, 2.0)
    other = BestWeights()
    other.load_checkpoint(best.checkpoint_meta(), best.checkpoint_tensors())
    assert other.checkpoint_meta() == {"best_val": 1.0, "bad_epochs": 1, "best_epoch": 0}
    torch.testing.assert_close(other.state["model.w"], torch.zeros(1))
    empty = BestWeights()
    assert empty.checkpoint_meta()["best_val"] is None and empty.checkpoint_tensors() == {}
