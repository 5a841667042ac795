"""Exact resume: the state of a :class:`~aekit.training.trainer.Trainer` written into a
checkpoint, and loaded back so that the run goes on as if it had never stopped.

:class:`Resumable` is a part of ``Trainer`` kept in its own module; it uses the trainer's
weights and optimizer (``snapshot``/``restore``, ``flat``), its position (``step``, ``epoch``,
the ``checkpoint_timer``'s ``position``), schedule, history (with the starting weights' validation loss),
early-stopping state (its ``best_weights``: the best weights, which may be the starting ones,
their epoch and loss, and the count of epochs without improvement), random generators (the epoch permutation's, the CPU's
and every CUDA device's) and the state of every callback that has one
(:meth:`~aekit.training.callbacks.Callback.state_dict`: the training doctor's counters and
last good state, the diagnostics' samples...), so that a resumed run ends with the same
weights, findings and events. The file format (safetensors + JSON metadata, checksums, atomic
writes) is :mod:`aekit.training.checkpoint`'s.
"""

from __future__ import annotations

from typing import Any

import torch

from aekit.errors import FormatError
from aekit.training.checkpoint import (CHECKPOINT_FORMAT, CHECKPOINT_VERSION, TrainingState,
                                       check_config_matches, check_data_matches,
                                       config_fingerprint)


class Resumable:
    """``snapshot`` / ``restore`` and ``training_state`` / ``load_training_state`` of the
    trainer (see the module doc)."""

    def snapshot(self) -> dict[str, torch.Tensor]:
        """A copy of the weights, buffers (batch-norm statistics) and optimizer state."""
        state = {f"model.{k}": v.detach().clone() for k, v in self.model.state_dict().items()}
        state.update({f"optim.{k}": v  # state_tensors returns new tensors: no second copy
                      for k, v in self.optimizer.state_tensors().items()})
        return state

    def restore(self, state: dict[str, torch.Tensor]) -> None:
        """Put back what :meth:`snapshot` returned."""
        with torch.no_grad():
            model_state = {k[6:]: v for k, v in state.items() if k.startswith("model.")}
            for key, tensor in self.model.state_dict().items():
                tensor.copy_(model_state[key])
        self.optimizer.load_state_tensors(
            {k[6:]: v for k, v in state.items() if k.startswith("optim.")})

    def training_state(self) -> TrainingState:
        """Everything an exact resume needs, at the position of the checkpoint timer's last save.

        Returns:
            Tensors (weights, optimizer state, random generator states, best weights kept for
            ``restore_best_weights`` / early stopping) and a JSON-able dictionary (position,
            schedule, history and ``initial_val_loss``, early-stopping counters, fingerprints).
        """
        epoch, batch, totals = self.checkpoint_timer.position
        # At an epoch start the generator is already at the next epoch's start state.
        epoch_rng = self.epoch_rng if batch > 0 else self.generator.get_state()
        tensors = self.snapshot()
        tensors["rng.epoch_generator"] = epoch_rng.clone()
        tensors["rng.torch_global"] = torch.get_rng_state()
        tensors.update({f"rng.cuda.{i}": t for i, t in enumerate(_cuda_rng_states())})
        tensors.update(self.best_weights.checkpoint_tensors())
        meta = {
            "format": CHECKPOINT_FORMAT, "format_version": CHECKPOINT_VERSION,
            "step": self.step, "epoch": epoch, "batch_in_epoch": batch,
            "epochs": self.epochs, "steps_per_epoch": self.steps_in_epoch(0),
            "skipped_steps": self.skipped_steps, "stop_training": self.stop_training,
            "lr": self.lr,
            "schedule": self.schedule.state_dict(),
            "history": {"epochs": self.history.epochs, "events": self.history.events,
                        "initial_val_loss": self.history.initial_val_loss},
            "epoch_totals": dict(zip(("loss_sum", "loss_count", "samples"), totals)),
            "early_stopping": self.best_weights.checkpoint_meta(),
            "config": config_fingerprint(self.config.to_dict()),
            "data": self.data_fingerprint, "checksum": "", "metrics_bytes": 0,
            "callbacks": {},
        }
        for key, cb in self._callback_keys():
            state = cb.state_dict() if callable(getattr(cb, "state_dict", None)) else None
            if state is None:
                continue
            plain = {}
            for name, value in state.items():
                if isinstance(value, torch.Tensor):
                    tensors[f"callback.{key}.{name}"] = value
                else:
                    plain[name] = value
            meta["callbacks"][key] = plain
        return TrainingState(tensors, meta)

    def _callback_keys(self) -> list[tuple[str, Any]]:
        """(key, callback): the class name, ``#2``, ``#3``... appended to repeats."""
        seen: dict[str, int] = {}
        out = []
        for cb in self.callbacks:
            name = type(cb).__name__
            seen[name] = seen.get(name, 0) + 1
            out.append((name if seen[name] == 1 else f"{name}#{seen[name]}", cb))
        return out

    def load_training_state(self, state: TrainingState) -> None:
        """Continue from a checkpoint (called by a Checkpointer in ``on_train_begin``).

        Raises:
            ConfigError: the checkpoint was written under another configuration or data.
            FormatError: its tensors or positions do not fit this run.
        """
        meta = state.meta
        check_config_matches(state, self.config.to_dict())
        check_data_matches(state, self.data_fingerprint)
        first_steps = self.steps_in_epoch(0)  # steps of the first epoch (--batch-schedule)
        if (meta.get("epochs"), meta.get("steps_per_epoch")) != (self.epochs, first_steps):
            raise FormatError(f"{state.path}: checkpoint is for {meta.get('epochs')} epochs of "
                              f"{meta.get('steps_per_epoch')} steps, this run has "
                              f"{self.epochs} of {first_steps}")
        if (meta["epoch"] > self.epochs
                or meta["batch_in_epoch"] >= self.steps_in_epoch(meta["epoch"])):
            raise FormatError(f"{state.path}: checkpoint position (epoch {meta['epoch']}, batch "
                              f"{meta['batch_in_epoch']}) is outside this run")
        self._load_tensors(state)
        self.schedule.load_state_dict(meta["schedule"])
        self.step, self.epoch = meta["step"], meta["epoch"]
        self.skipped_steps = meta["skipped_steps"]
        self.stop_training = bool(meta.get("stop_training", False))
        lr = meta.get("lr")
        if isinstance(lr, (int, float)) and not isinstance(lr, bool):
            self.lr = float(lr)
        totals = meta["epoch_totals"]
        totals = (float(totals["loss_sum"]), int(totals["loss_count"]), int(totals["samples"]))
        self.resume_point = (meta["batch_in_epoch"], totals)
        self.history.epochs = list(meta["history"]["epochs"])
        self.history.events = list(meta["history"]["events"])
        self.history.initial_val_loss = meta["history"].get("initial_val_loss")
        self.best_weights.load_checkpoint(meta["early_stopping"], state.tensors,
                                          self.flat.data.device)
        self.pending_callback_states = self._saved_callback_states(state)
        timer = self.checkpoint_timer
        timer.position = (meta["epoch"], meta["batch_in_epoch"], totals)
        timer.saved_at = (self.step, meta["epoch"], meta["batch_in_epoch"])
        self.resumed = True

    def _saved_callback_states(self, state: TrainingState) -> dict[str, dict[str, Any]]:
        """Each callback's saved state by key, its tensors put back among its JSON values."""
        saved = {key: dict(value) for key, value in state.meta.get("callbacks", {}).items()
                 if isinstance(value, dict)}
        device = self.flat.data.device
        for name, tensor in state.tensors.items():
            if name.startswith("callback."):
                key, _, field = name[len("callback."):].partition(".")
                saved.setdefault(key, {})[field] = tensor.to(device)
        return saved

    def load_callback_states(self) -> None:
        """Give every callback the state the checkpoint holds for it (see
        :meth:`load_training_state`); the trainer calls this once every callback has run its
        ``on_train_begin``, so that a callback which sets itself up there (the doctor takes a
        first good state) ends with the saved state, whatever its place in the list.

        Raises:
            FormatError: a callback's saved state is malformed.
        """
        states, self.pending_callback_states = self.pending_callback_states or {}, None
        for key, cb in self._callback_keys():
            saved = states.get(key)
            if saved is not None and callable(getattr(cb, "load_state_dict", None)):
                try:
                    cb.load_state_dict(saved)
                except (KeyError, TypeError, ValueError) as exc:
                    raise FormatError(f"checkpoint state of callback {key} is malformed "
                                      f"({type(exc).__name__}: {exc})") from None

    def _load_tensors(self, state: TrainingState) -> None:
        """Weights, optimizer state and generator states from a checkpoint."""
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
            packed = torch.Size([self.flat.packed_numel])
            for key in present_optim:
                if tensors[key].shape not in (packed, torch.Size([])):
                    raise FormatError(f"{state.path}: optimizer state {key} has shape "
                                      f"{tuple(tensors[key].shape)}, expected {tuple(packed)}")
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
        cuda = [tensors[k] for k in sorted((k for k in tensors if k.startswith("rng.cuda.")),
                                            key=lambda k: int(k.rsplit(".", 1)[1]))]
        if any(t.dtype != torch.uint8 or t.dim() != 1 for t in cuda):
            raise FormatError(f"{state.path}: checkpoint CUDA random state is malformed")
        if self.flat.data.is_cuda and not cuda:
            raise FormatError(f"{state.path}: checkpoint has no CUDA random state, and this run "
                              "trains on CUDA (dropout, sampling would not resume exactly); it "
                              "was written by a run on another device")
        _set_cuda_rng_states(cuda)


def _cuda_rng_states() -> list[torch.Tensor]:
    """The random state of every CUDA device (empty without CUDA, or before CUDA is used)."""
    if not torch.cuda.is_available() or not torch.cuda.is_initialized():
        return []
    return [t.clone() for t in torch.cuda.get_rng_state_all()]


def _set_cuda_rng_states(states: list[torch.Tensor]) -> None:
    """Put back :func:`_cuda_rng_states` (devices this machine lacks are left out)."""
    if not states or not torch.cuda.is_available():
        return
    for index, state in enumerate(states[:torch.cuda.device_count()]):
        torch.cuda.set_rng_state(state.cpu(), index)
