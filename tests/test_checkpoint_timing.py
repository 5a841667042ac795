"""When checkpoints are due: by step count, by time, and the final state once."""

import pytest

from aekit.training import checkpoint_timing
from aekit.training.checkpoint import Checkpointer
from aekit.training.checkpoint_timing import CheckpointTimer


class Recording(Checkpointer):
    def save(self, trainer):
        self.saved.append((trainer.step, *trainer.checkpoint_timer.position[:2]))


class FakeTrainer:
    def __init__(self, timer):
        self.step, self.epoch, self.rank, self.checkpoint_timer = 0, 0, 0, timer


def _timer(every):
    cp = Recording("/nonexistent-aekit-test", every)
    cp.saved = []
    timer = CheckpointTimer()
    timer.checkpointers = [cp]
    return timer, cp


def test_due_by_step_count_and_final_state_once():
    timer, cp = _timer(every=3)
    trainer = FakeTrainer(timer)
    timer.on_train_begin(trainer)
    due = []
    for step in range(1, 8):
        trainer.step = step
        if timer.due(step):
            due.append(step)
            timer.save(trainer, 0, step, (0.0, 0, 0))
    assert due == [3, 6] and cp.saved == [(3, 0, 3), (6, 0, 6)]
    trainer.step, trainer.epoch = 7, 1
    timer.on_loop_end(trainer)
    timer.on_loop_end(trainer)  # just written: not again
    assert cp.saved[-1] == (7, 1, 0) and len(cp.saved) == 3


def test_due_by_time(monkeypatch):
    monkeypatch.setattr(checkpoint_timing, "CHECKPOINT_SECONDS", 0.0)
    timer, cp = _timer(every=None)
    trainer = FakeTrainer(timer)
    timer.on_train_begin(trainer)
    assert timer.due(1)


def test_nothing_due_without_checkpointers():
    timer = CheckpointTimer()
    assert timer.find([object()], None, None) == {}
    trainer = FakeTrainer(timer)
    timer.on_train_begin(trainer)
    assert not timer.due(10**9)
    timer.on_loop_end(trainer)  # writes nothing, fails on nothing


@pytest.mark.parametrize("every, step, expected", [(4, 0, 4), (4, 5, 8), (None, 5, None)])
def test_next_step(every, step, expected):
    timer, _ = _timer(every)
    trainer = FakeTrainer(timer)
    trainer.step = step
    timer.on_train_begin(trainer)
    assert timer.next_step == (float("inf") if expected is None else expected)
