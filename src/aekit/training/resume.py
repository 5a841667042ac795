"""Exact resume: the state of a :class:`~aekit.training.trainer.Trainer` written into a
checkpoint, and loaded back so that the run goes on as if it had never stopped.

:class:`Resumable` is a part of ``Trainer`` kept in its own module; it uses the trainer's
weights and optimizer (``snapshot``/``restore``, ``flat``), its position (``step``, ``epoch``,
``_position``), schedule, history (with the starting weights' validation loss),
early-stopping state (best weights, which may be the starting ones, their epoch and loss, and
the count of epochs without improvement), random generator and callbacks. The file format
(safetensors + JSON metadata, checksums, atomic writes) is :mod:`aekit.training.checkpoint`'s.
"""

from __future__ import annotations

import math

import torch

from aekit.errors import FormatError
from aekit.training.checkpoint import (CHECKPOINT_FORMAT, CHECKPOINT_VERSION, TrainingState,
                                       check_config_matches, check_data_matches,
                                       config_fingerprint)


class Resumable:
    """``training_state`` / ``load_training_state`` of the trainer (see the module doc)."""

    def training_state(self) -> TrainingState:
        """Everything an exact resume needs, at the position of the last ``_save_checkpoints``.

        Returns:
            Tensors (weights, optimizer state, random generator states, best weights kept for
            ``restore_best_weights`` / early stopping) and a JSON-able dictionary (position,
            schedule, history and ``initial_val_loss``, early-stopping counters, fingerprints).
        """
        epoch, batch, totals = self._position
        # At an epoch start the generator is already at the next epoch's start state.
        epoch_rng = self._epoch_rng if batch > 0 else self.generator.get_state()
        tensors = self.snapshot()
        tensors["rng.epoch_generator"] = epoch_rng.clone()
        tensors["rng.torch_global"] = torch.get_rng_state()
        if self._best_state is not None:
            tensors.update({f"best.{k}": v for k, v in self._best_state.items()})
        meta = {
            "format": CHECKPOINT_FORMAT, "format_version": CHECKPOINT_VERSION,
            "step": self.step, "epoch": epoch, "batch_in_epoch": batch,
            "epochs": self.epochs, "steps_per_epoch": self.steps_per_epoch,
            "skipped_steps": self.skipped_steps, "stop_training": self.stop_training,
            "schedule": self.schedule.state_dict(),
            "history": {"epochs": self.history.epochs, "events": self.history.events,
                        "initial_val_loss": self.history.initial_val_loss},
            "epoch_totals": dict(zip(("loss_sum", "loss_count", "samples"), totals)),
            "early_stopping": {"best_val": None if math.isinf(self._best_val)
                               else self._best_val, "bad_epochs": self._bad_epochs,
                               "best_epoch": self._best_epoch},
            "config": config_fingerprint(self.config.to_dict()),
            "data": self.data_fingerprint, "checksum": "", "metrics_bytes": 0,
            "callbacks": {type(cb).__name__: cb.state_dict() for cb in self.callbacks
                          if callable(getattr(cb, "state_dict", None))},
        }
        return TrainingState(tensors, meta)

    def load_training_state(self, state: TrainingState) -> None:
        """Continue from a checkpoint (called by a Checkpointer in ``on_train_begin``).

        Raises:
            ConfigError: the checkpoint was written under another configuration or data.
            FormatError: its tensors or positions do not fit this run.
        """
        meta = state.meta
        check_config_matches(state, self.config.to_dict())
        check_data_matches(state, self.data_fingerprint)
        if (meta.get("epochs"), meta.get("steps_per_epoch")) != (self.epochs,
                                                                 self.steps_per_epoch):
            raise FormatError(f"{state.path}: checkpoint is for {meta.get('epochs')} epochs of "
                              f"{meta.get('steps_per_epoch')} steps, this run has "
                              f"{self.epochs} of {self.steps_per_epoch}")
        if meta["epoch"] > self.epochs or meta["batch_in_epoch"] >= self.steps_per_epoch:
            raise FormatError(f"{state.path}: checkpoint position (epoch {meta['epoch']}, batch "
                              f"{meta['batch_in_epoch']}) is outside this run")
        self._load_tensors(state)
        self.schedule.load_state_dict(meta["schedule"])
        self.step, self.epoch = meta["step"], meta["epoch"]
        self.skipped_steps = meta["skipped_steps"]
        self.stop_training = bool(meta.get("stop_training", False))
        self._resume_batch = meta["batch_in_epoch"]
        totals = meta["epoch_totals"]
        self._resume_totals = (float(totals["loss_sum"]), int(totals["loss_count"]),
                               int(totals["samples"]))
        self.history.epochs = list(meta["history"]["epochs"])
        self.history.events = list(meta["history"]["events"])
        self.history.initial_val_loss = meta["history"].get("initial_val_loss")
        best = meta["early_stopping"].get("best_val")
        self._best_val = math.inf if best is None else float(best)
        self._bad_epochs = int(meta["early_stopping"].get("bad_epochs", 0))
        self._best_epoch = int(meta["early_stopping"].get("best_epoch", 0))
        for cb in self.callbacks:
            saved = meta.get("callbacks", {}).get(type(cb).__name__)
            if saved is not None and callable(getattr(cb, "load_state_dict", None)):
                cb.load_state_dict(saved)
        self._position = (meta["epoch"], meta["batch_in_epoch"], self._resume_totals)
        self._saved_at = (self.step, meta["epoch"], meta["batch_in_epoch"])
        self._resumed = True

    def _load_tensors(self, state: TrainingState) -> None:
        """Weights, optimizer state, generator states and best weights from a checkpoint."""
        tensors = state.tensors
        current = self.snapshot()
        for key, value in current.items():
            got = tensors.get(key)
            if got is None or got.shape != value.shape or got.dtype != value.dtype:
                raise FormatError(f"{state.path}: checkpoint tensor {key} is "
                                  f"{None if got is None else (tuple(got.shape), got.dtype)}, "
                                  f"this run needs {(tuple(value.shape), value.dtype)}")
        expected_optim = set(current) - {k for k in current if k.startswith("model.")}
        present_optim = {k for k in tensors if k.startswith("optim.")}
        if present_optim - expected_optim and expected_optim:
            raise FormatError(f"{state.path}: unexpected optimizer state "
                              f"{sorted(present_optim - expected_optim)}")
        if not expected_optim and present_optim:  # Adam state appears after its first step
            flat = self.flat.data
            for key in present_optim:
                if tensors[key].shape not in (flat.shape, torch.Size([])):
                    raise FormatError(f"{state.path}: optimizer state {key} has shape "
                                      f"{tuple(tensors[key].shape)}, expected {tuple(flat.shape)}")
        self.restore({k: v.to(self.flat.data.device) for k, v in tensors.items()
                      if k.startswith(("model.", "optim."))})
        for key, setter, ref in (("rng.epoch_generator", self.generator.set_state,
                                  self.generator.get_state()),
                                 ("rng.torch_global", torch.set_rng_state, torch.get_rng_state())):
            got = tensors.get(key)
            if got is None or got.dtype != torch.uint8 or got.shape != ref.shape:
                raise FormatError(f"{state.path}: checkpoint random state {key} is missing or "
                                  "malformed")
            setter(got.clone())
        best = {k[5:]: v for k, v in tensors.items() if k.startswith("best.")}
        self._best_state = best or None
