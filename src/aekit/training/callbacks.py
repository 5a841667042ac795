"""Hooks around the training step, and the callbacks every run uses (metrics file, progress).

A callback overrides the no-op methods it needs; the trainer calls them in order. Callbacks
may read the trainer's public state (``model``, ``flat``, ``step``, ``epoch``, ``lr``) and may
ask it to act (``trainer.stop_training = True``, ``trainer.log_event(...)``).

A callback with state that shapes the run's outcome (counters, smoothed values, samples that
findings are computed from) returns it from :meth:`Callback.state_dict` and takes it back in
:meth:`Callback.load_state_dict`: checkpoints carry it, so that a resumed run ends with the same
findings and events as an uninterrupted one.
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path
from typing import Any, TextIO

# The hooks are given the running :class:`aekit.training.trainer.Trainer`. It imports this
# module, so this one does not import it back (not even for annotations): the two would
# depend on each other.
Trainer = Any


class Callback:
    """Base class: every hook is a no-op."""

    def on_train_begin(self, trainer: "Trainer") -> None: ...

    def on_epoch_begin(self, trainer: "Trainer", epoch: int) -> None: ...

    def on_after_backward(self, trainer: "Trainer", step: int) -> None:
        """Gradients are in ``trainer.flat.grad`` (after penalties, before clipping)."""

    def on_step_end(self, trainer: "Trainer", step: int, loss: float) -> None: ...

    def on_epoch_end(self, trainer: "Trainer", epoch: int, logs: dict[str, Any]) -> None: ...

    def on_event(self, trainer: "Trainer", event: dict[str, Any]) -> None:
        """Something notable happened (a rollback, a restart, an lr cut)."""

    def on_train_end(self, trainer: "Trainer", logs: dict[str, Any]) -> None: ...

    def state_dict(self) -> dict[str, Any] | None:
        """The state a checkpoint keeps for an exact resume, or None (nothing to keep).

        Values are plain JSON values or tensors (top-level values only; they travel as tensors
        of the checkpoint, not in its JSON header).
        """
        return None

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Take back what :meth:`state_dict` returned (tensors on the model's device).

        Called on resume after every callback's ``on_train_begin``, so it overrides what they
        set up there. Raises :class:`aekit.errors.FormatError` on a malformed state.
        """


class MetricsWriter(Callback):
    """Appends one JSON object per line to ``metrics.jsonl``: epochs, events, diagnostics.

    Each record has a ``type`` (``epoch``, ``event``, or what another callback writes through
    :meth:`write`). The file is line-buffered: each record reaches the file whole when it is
    written, and a run interrupted in-process (``KeyboardInterrupt`` in a notebook) holds no
    buffered tail that a later flush could append after a resumed run's records.
    """

    def __init__(self, path: str | Path, append: bool = False) -> None:
        self.path = Path(path)
        self.append = append
        self._file: TextIO | None = None

    def on_train_begin(self, trainer: "Trainer") -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._file = open(self.path, "a" if self.append else "w", encoding="utf-8",
                          buffering=1)

    def write(self, record: dict[str, Any]) -> None:
        if self._file is not None:
            self._file.write(json.dumps(record, allow_nan=True) + "\n")

    def on_epoch_end(self, trainer: "Trainer", epoch: int, logs: dict[str, Any]) -> None:
        self.write({"type": "epoch", **logs})
        if self._file is not None:
            self._file.flush()

    def on_event(self, trainer: "Trainer", event: dict[str, Any]) -> None:
        self.write({"type": "event", **event})

    def on_train_end(self, trainer: "Trainer", logs: dict[str, Any]) -> None:
        if self._file is not None:
            self._file.close()
            self._file = None


def _fmt(value: float | None) -> str:
    return "-" if value is None else f"{value:.4g}"


def read_metrics(path: str | Path, strict: bool = True) -> list[dict[str, Any]]:
    """The records of a ``metrics.jsonl`` (what :class:`MetricsWriter` wrote).

    Args:
        path: the file. strict: a line that is not a JSON object raises; False: such lines
            (a crash mid-write) are skipped, as a report of an interrupted run wants.

    Raises:
        FormatError: the file is missing, or (strict) a line is not a JSON object.
    """
    from aekit.errors import FormatError

    path = Path(path)
    if not path.is_file():
        raise FormatError(f"{path}: no such file: the metrics file is missing (expected a run "
                          "folder written by `aekit train --out RUN_DIR`)")
    records = []
    text = path.read_text(encoding="utf-8", errors="strict" if strict else "replace")
    for number, line in enumerate(text.splitlines(), 1):
        if strict and not line.strip():
            continue
        try:
            record = json.loads(line)
        except ValueError as exc:
            if not strict:
                continue
            raise FormatError(f"{path}, line {number}: not JSON ({exc})") from exc
        if isinstance(record, dict):
            records.append(record)
        elif strict:
            raise FormatError(f"{path}, line {number}: expected a JSON object, "
                              f"received {type(record).__name__}")
    return records


class ProgressBar(Callback):
    """A tqdm bar per epoch on a terminal; plain log lines otherwise.

    Long runs print about ``MAX_LINES`` evenly spaced epoch lines plus the last one, so that a
    600-epoch run on a small data set stays readable (and cheap: a run of 10 ms epochs spends
    nothing noticeable here). On a terminal an epoch gets its tqdm bar only when the previous
    one took at least ``BAR_MIN_SECONDS`` (a bar that lives for milliseconds shows nothing and
    costs more than the epoch's steps); every epoch line is printed there when the epochs are
    that long. Events (a rollback, the run pipeline's ``pca_baseline`` note, a best-weights
    restore) are one line each, written above an open bar without breaking it.
    """

    MAX_LINES = 20
    BAR_MIN_SECONDS = 0.5

    def __init__(self, stream: TextIO | None = None) -> None:
        self.stream = stream or sys.stderr
        self.interactive = hasattr(self.stream, "isatty") and self.stream.isatty()
        self._bar: Any = None
        self._t0 = 0.0
        self._last_epoch_seconds = float("inf")  # unknown before the first epoch

    def on_epoch_begin(self, trainer: "Trainer", epoch: int) -> None:
        self._t0 = time.perf_counter()
        if self.interactive and self._last_epoch_seconds >= self.BAR_MIN_SECONDS:
            from tqdm.auto import tqdm

            self._bar = tqdm(total=trainer.steps_per_epoch, file=self.stream, leave=False,
                             desc=f"epoch {epoch + 1}/{trainer.epochs}", unit="step")

    def on_step_end(self, trainer: "Trainer", step: int, loss: float) -> None:
        if self._bar is not None:
            self._bar.update(1)
            if step % 20 == 0:
                self._bar.set_postfix(loss=f"{loss:.4g}", lr=f"{trainer.lr:.2g}", refresh=False)

    def on_epoch_end(self, trainer: "Trainer", epoch: int, logs: dict[str, Any]) -> None:
        if self._bar is not None:
            self._bar.close()
            self._bar = None
        self._last_epoch_seconds = time.perf_counter() - self._t0
        every = max(1, trainer.epochs // self.MAX_LINES)
        long_epochs = self.interactive and self._last_epoch_seconds >= self.BAR_MIN_SECONDS
        if not long_epochs and (epoch + 1) % every and epoch + 1 != trainer.epochs:
            return
        line = (f"epoch {epoch + 1}/{trainer.epochs}  loss {_fmt(logs['train_loss'])}  "
                f"val_loss {_fmt(logs.get('val_loss'))}  lr {logs['lr']:.3g}  "
                f"{logs['samples_per_second']:.0f} samples/s  {logs['seconds']:.1f}s")
        print(line, file=self.stream, flush=True)

    def on_event(self, trainer: "Trainer", event: dict[str, Any]) -> None:
        line = f"[{event['kind']}] {event.get('message', '')}"
        if self._bar is not None:  # above the bar, which is redrawn below it
            self._bar.write(line, file=self.stream)
        else:
            print(line, file=self.stream, flush=True)
