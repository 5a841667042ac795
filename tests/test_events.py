"""The event log: events logged before training are held, then recorded once."""

from aekit.training.events import EventLog, History


class FakeTrainer:
    def __init__(self):
        self.step, self.epoch, self.history = 0, 0, History()
        self.seen = []
        self.callbacks = [type("Cb", (), {"on_event": lambda _, t, e: self.seen.append(e)})()]


def test_held_until_released_then_recorded_at_the_start_position():
    trainer, log = FakeTrainer(), EventLog()
    log.log(trainer, "pca_baseline", "PCA-2 validation mse 0.1", val_mse=0.1)
    assert trainer.history.events == [] and trainer.seen == []
    trainer.step, trainer.epoch = 5, 1
    log.release(trainer, resumed=False)
    assert trainer.history.events[0]["step"] == 5 and trainer.seen == trainer.history.events
    log.log(trainer, "lr_cut", "lr now 0.001")
    assert [e["kind"] for e in trainer.history.events] == ["pca_baseline", "lr_cut"]


def test_a_resumed_run_does_not_repeat_an_event_of_a_kind_it_logged():
    trainer, log = FakeTrainer(), EventLog()
    trainer.history.events.append({"kind": "pca_baseline"})
    log.log(trainer, "pca_baseline", "again")
    log.log(trainer, "note", "new")
    log.release(trainer, resumed=True)
    assert [e["kind"] for e in trainer.history.events] == ["pca_baseline", "note"]


def test_history_columns():
    history = History(epochs=[{"train_loss": 1.0, "val_loss": 2.0}, {"train_loss": 0.5}])
    assert history["loss"] == [1.0, 0.5] and history["val_loss"] == [2.0, None]
