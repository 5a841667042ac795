"""Training checkpoints: the full state of a run, for an exact resume after a crash.

When: see :meth:`aekit.training.trainer.Trainer.fit` — every ``every_steps`` steps (mid-epoch
or at the epoch end when that step ends an epoch), at least every 60 s of training, and once at
the end; not at every epoch end.

One checkpoint is one file, ``checkpoint-<step>.safetensors`` in the run folder: the tensors
(weights and buffers, optimizer state, random generator states, the best weights kept for
``restore_best_weights`` / early stopping, possibly the starting ones) in safetensors,
everything else (step, epoch, position in the epoch, schedule state, metric history with the
starting weights' validation loss, skipped-step count, early-stopping counters, fingerprints of
the configuration and data (and of a reconstruction target), a checksum of the tensors) as a
JSON document in the safetensors header's metadata. One file means one atomic
rename: a crash at any moment leaves the previous checkpoints intact. Nothing is unpickled.

Written to a temporary name, fsynced, renamed, the folder fsynced; the last :data:`KEEP`
checkpoints are kept. Loading validates everything and raises :class:`FormatError`;
:func:`load_latest` falls back to the previous checkpoint (with a warning) when the newest is
damaged.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import sys
import tempfile
import time
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch

from aekit.errors import ConfigError, FormatError
from aekit.serialization import MAX_JSON_BYTES, is_int, is_number, load_tensors
from aekit.training.callbacks import Callback, Trainer

if TYPE_CHECKING:
    from aekit.config import RunConfig

CHECKPOINT_FORMAT = "aekit-checkpoint"
CHECKPOINT_VERSION = 1
KEEP = 2
_NAME = re.compile(r"^checkpoint-(\d{10})\.safetensors$")
# Options that do not change the numbers a run computes: they may differ on resume.
NEUTRAL_OPTIONS = ("resume", "progress", "threads", "checkpoint_every_steps", "report",
                   "tensorboard", "nproc")
# Test hook: seconds to sleep between writing a checkpoint's temporary file and renaming it.
SLOW_ENV = "AEKIT_TEST_SLOW_CHECKPOINT"
_REQUIRED = {"format": str, "format_version": int, "step": int, "epoch": int,
             "batch_in_epoch": int, "skipped_steps": int, "schedule": dict, "history": dict,
             "epoch_totals": dict, "early_stopping": dict, "config": dict, "data": dict,
             "checksum": str, "metrics_bytes": int}


@dataclass
class TrainingState:
    """A checkpoint's content: named tensors and a JSON-able dictionary."""

    tensors: dict[str, torch.Tensor]
    meta: dict[str, Any]
    path: Path | None = None

    @property
    def step(self) -> int:
        return int(self.meta["step"])


def checkpoint_path(directory: str | Path, step: int) -> Path:
    """Where the checkpoint of optimizer step ``step`` lives."""
    return Path(directory) / f"checkpoint-{step:010d}.safetensors"


def list_checkpoints(directory: str | Path) -> list[Path]:
    """Checkpoint files in ``directory``, newest (highest step) first."""
    directory = Path(directory)
    if not directory.is_dir():
        return []
    found = [p for p in directory.iterdir() if _NAME.match(p.name)]
    return sorted(found, key=lambda p: p.name, reverse=True)


def tensor_checksum(tensors: dict[str, torch.Tensor]) -> str:
    """SHA-256 over names, dtypes, shapes and bytes of ``tensors`` (sorted by name)."""
    digest = hashlib.sha256()
    for name in sorted(tensors):
        t = tensors[name].detach().to("cpu").contiguous()
        digest.update(f"{name}|{t.dtype}|{tuple(t.shape)}|".encode())
        digest.update(t.reshape(-1).view(torch.uint8).numpy().tobytes())
    return digest.hexdigest()


def state_checksum(tensors: dict[str, torch.Tensor], meta: dict[str, Any]) -> str:
    """SHA-256 of the tensors' checksum and the canonical JSON of ``meta`` (sans checksum)."""
    text = json.dumps({**meta, "checksum": ""}, sort_keys=True, allow_nan=True)
    return hashlib.sha256((tensor_checksum(tensors) + text).encode()).hexdigest()


def _tensor_sha256(x: torch.Tensor) -> str:
    t = x.detach().to("cpu").contiguous()
    return hashlib.sha256(t.reshape(-1).view(torch.uint8).numpy().tobytes()).hexdigest()


def data_fingerprint(x: torch.Tensor, target: torch.Tensor | None = None) -> dict[str, Any]:
    """Shape, dtype and a SHA-256 of every value of the (scaled) training tensor, and with a
    reconstruction target (denoising) a SHA-256 of the target's values (``target_sha256``).

    A full hash, once per run: 1.2 s for Fashion-MNIST's 60000 x 784 floats on a busy 2-core
    machine (noisy); twice that with a target.
    """
    fingerprint = {"shape": list(x.shape), "dtype": str(x.dtype), "sha256": _tensor_sha256(x)}
    if target is not None:
        fingerprint["target_sha256"] = _tensor_sha256(target)
    return fingerprint


def config_fingerprint(config_dict: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """A run's configuration, flat, without the options that do not change its numbers."""
    flat = {k: v for section in config_dict.values() for k, v in section.items()}
    if flat.get("lr_auto"):  # the range test picks lr after the check: compare lr_auto only
        flat.pop("lr", None)
    if flat.get("precision") == "auto":  # the default, as in checkpoints from before it existed
        flat.pop("precision")
    return {k: v for k, v in sorted(flat.items()) if k not in NEUTRAL_OPTIONS}


def describe_differences(saved: dict[str, Any], current: dict[str, Any]) -> list[str]:
    """``name: saved -> current`` for every key whose value differs (an option absent on one
    side counts as None, "off": a checkpoint written before an option existed still resumes
    when the option is left off)."""
    keys = sorted(set(saved) | set(current))
    return [f"{k}: {saved.get(k, '<absent>')!r} in the checkpoint, {current.get(k, '<absent>')!r}"
            f" now" for k in keys if saved.get(k) != current.get(k)]


def check_config_matches(state: TrainingState, config_dict: dict[str, dict[str, Any]]) -> None:
    """Refuse to resume a run under another configuration.

    Raises:
        ConfigError: naming each option that differs, with both values.
    """
    diffs = describe_differences(state.meta["config"], config_fingerprint(config_dict))
    if diffs:
        raise ConfigError(f"--resume: {state.path} was written by a run with another "
                          f"configuration ({'; '.join(diffs)}). Resume with the same options "
                          "or train into a new --out folder")


def check_data_matches(state: TrainingState, fingerprint: dict[str, Any]) -> None:
    """Refuse to resume a run on other data.

    Raises:
        ConfigError: saying whether the shape, the type or the values differ.
    """
    saved = state.meta["data"]
    for key, what in (("shape", "shape"), ("dtype", "type"), ("sha256", "values"),
                      ("target_sha256", "reconstruction target")):
        if saved.get(key) != fingerprint.get(key):
            raise ConfigError(f"--resume: {state.path} was written by a run on other data: the "
                              f"training split differs in its {what} ({saved.get(key)} in the "
                              f"checkpoint, {fingerprint.get(key)} now). Resume with the same "
                              "--data or train into a new --out folder")


# -- writing ----------------------------------------------------------------------------------
def _fsync_dir(directory: Path) -> None:
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def _write_atomically(path: Path, data: bytes) -> None:
    """Temporary file, flush, fsync, rename, fsync the folder (crash: old or new, never half)."""
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        delay = os.environ.get(SLOW_ENV)
        if delay:
            time.sleep(float(delay))
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    _fsync_dir(path.parent)


def save_checkpoint(directory: str | Path, state: TrainingState, keep: int = KEEP) -> Path:
    """Write ``state`` as the checkpoint of its step; delete all but the newest ``keep``.

    Returns:
        The path written.
    """
    from safetensors.torch import save

    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    owned = {k: v.detach().to("cpu").clone().contiguous() for k, v in state.tensors.items()}
    meta = json.loads(json.dumps({**state.meta, "checksum": ""}, allow_nan=True, default=str))
    meta["checksum"] = state_checksum(owned, meta)
    text = json.dumps(meta, allow_nan=True)
    path = checkpoint_path(directory, int(meta["step"]))
    _write_atomically(path, save(owned, metadata={"format": CHECKPOINT_FORMAT, "state": text}))
    for old in list_checkpoints(directory)[keep:]:
        old.unlink(missing_ok=True)
    return path


def remove_stale_temporaries(directory: str | Path) -> None:
    """Delete temporary files left by a checkpoint write that a crash interrupted."""
    for p in Path(directory).glob(".checkpoint-*.tmp"):
        p.unlink(missing_ok=True)


# -- reading ----------------------------------------------------------------------------------
def _read_header_metadata(path: Path) -> dict[str, str]:
    """The ``__metadata__`` of a safetensors header, read without loading the tensors."""
    with open(path, "rb") as handle:
        head = handle.read(8)
        if len(head) < 8:
            raise FormatError(f"{path}: checkpoint is truncated ({len(head)} bytes)")
        header_len = int.from_bytes(head, "little")
        size = path.stat().st_size
        if header_len > min(size - 8, MAX_JSON_BYTES):
            raise FormatError(f"{path}: checkpoint declares a {header_len}-byte header but "
                              f"holds {size} bytes")
        raw = handle.read(header_len)
    try:
        header = json.loads(raw)
    except (ValueError, UnicodeDecodeError, RecursionError) as exc:
        raise FormatError(f"{path}: checkpoint header is not valid JSON ({exc})") from None
    meta = header.get("__metadata__") if isinstance(header, dict) else None
    if not isinstance(meta, dict) or meta.get("format") != CHECKPOINT_FORMAT:
        raise FormatError(f"{path}: not an aekit checkpoint (no format={CHECKPOINT_FORMAT!r} "
                          "in its metadata)")
    return meta


def _validate_meta(path: Path, meta: Any) -> None:
    if not isinstance(meta, dict):
        raise FormatError(f"{path}: checkpoint state must be a JSON object")
    for key, kind in _REQUIRED.items():
        value = meta.get(key)
        if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
            raise FormatError(f"{path}: checkpoint field `{key}` must be a {kind.__name__}. "
                              f"Received: {key}={value!r:.80}")
        if kind is int and value < 0:
            raise FormatError(f"{path}: checkpoint field `{key}` must be >= 0. Received: {value}")
    if meta["format"] != CHECKPOINT_FORMAT or meta["format_version"] != CHECKPOINT_VERSION:
        raise FormatError(f"{path}: unsupported checkpoint format {meta['format']!r} version "
                          f"{meta['format_version']} (this aekit reads version "
                          f"{CHECKPOINT_VERSION})")
    history = meta["history"]
    if not isinstance(history.get("epochs"), list) or not isinstance(history.get("events"), list):
        raise FormatError(f"{path}: checkpoint history must hold `epochs` and `events` lists")
    initial = history.get("initial_val_loss")
    if not (initial is None or is_number(initial)):
        raise FormatError(f"{path}: checkpoint history.initial_val_loss must be a number or "
                          f"null. Received: {initial!r:.80}")
    if not all(isinstance(e, dict) and is_int(e.get("epoch")) and is_int(e.get("step"))
               for e in history["epochs"]) or not all(isinstance(e, dict)
                                                      for e in history["events"]):
        raise FormatError(f"{path}: checkpoint history entries must be objects with integer "
                          "`epoch` and `step`")
    stopping = meta["early_stopping"]
    best = stopping.get("best_val")
    if not (best is None or is_number(best)) or not is_int(stopping.get("bad_epochs", 0)) \
            or not is_int(stopping.get("best_epoch", 0)) \
            or not isinstance(meta.get("callbacks", {}), dict):
        raise FormatError(f"{path}: checkpoint early_stopping or callbacks state is malformed")
    totals = meta["epoch_totals"]
    for key in ("loss_sum", "loss_count", "samples"):
        if not is_number(totals.get(key)):
            raise FormatError(f"{path}: checkpoint epoch_totals.{key} must be a number")


def load_checkpoint(path: str | Path) -> TrainingState:
    """Read and validate one checkpoint file.

    Raises:
        FormatError: the file is missing, truncated, not a checkpoint, or its tensors do not
            match their checksum.
    """
    path = Path(path)
    try:
        meta_text = _read_header_metadata(path).get("state")
    except FileNotFoundError:
        raise FormatError(f"{path}: checkpoint file is missing") from None
    except OSError as exc:
        raise FormatError(f"{path}: checkpoint cannot be read ({exc})") from None
    try:
        meta = json.loads(meta_text) if isinstance(meta_text, str) else None
    except (ValueError, RecursionError) as exc:
        raise FormatError(f"{path}: checkpoint state is not valid JSON ({exc})") from None
    _validate_meta(path, meta)
    tensors = load_tensors(path, "checkpoint")
    if state_checksum(tensors, meta) != meta["checksum"]:
        raise FormatError(f"{path}: checkpoint is damaged (its tensors or state do not match "
                          "the checksum written with them)")
    return TrainingState(tensors, meta, path)


def load_latest(directory: str | Path) -> TrainingState | None:
    """The newest valid checkpoint in ``directory``, or None when there is none.

    A damaged newer checkpoint is skipped with a warning naming it.

    Raises:
        FormatError: checkpoints exist but none of them is valid.
    """
    errors = []
    for path in list_checkpoints(directory):
        try:
            state = load_checkpoint(path)
        except FormatError as exc:
            errors.append(str(exc))
            warnings.warn(f"skipping damaged checkpoint: {exc}", RuntimeWarning, stacklevel=2)
            continue
        return state
    if errors:
        raise FormatError(f"{directory}: no valid checkpoint to resume from: "
                          + "; ".join(errors))
    return None


class Checkpointer(Callback):
    """Saves the trainer's full state every ``every_steps`` steps, at least every
    :data:`~aekit.training.checkpoint_timing.CHECKPOINT_SECONDS` of training, and at the end.

    The trainer finds it among its callbacks and calls :meth:`save` at those moments (a
    counter check and a clock read per step): when the step count reaches a multiple of
    ``every_steps`` mid-epoch, the checkpoint is written there; when that step is an epoch's
    last, at the epoch end (after validation). An epoch end alone does not write one, so that
    runs of many tiny epochs are not dominated by checkpoint writes. ``resume_from``, when
    given, is applied before the first step.

    Args:
        directory: the run folder.
        every_steps: steps between checkpoints; None: by time and at the end only.
        resume_from: a checkpoint to continue from (see :func:`load_latest`).
    """

    def __init__(self, directory: str | Path, every_steps: int | None = 200,
                 resume_from: TrainingState | None = None) -> None:
        self.directory = Path(directory)
        self.every_steps = every_steps
        self.resume_from = resume_from
        self.last_path: Path | None = None
        self.seconds = 0.0  # time spent writing checkpoints (the cost of this feature)

    def on_train_begin(self, trainer: "Trainer") -> None:
        if self.directory.is_dir():
            remove_stale_temporaries(self.directory)
        if self.resume_from is not None:
            trainer.load_training_state(self.resume_from)
            self.last_path = self.resume_from.path

    def save(self, trainer: "Trainer") -> Path | None:
        """Write a checkpoint of ``trainer`` now (not when its weights are non-finite)."""
        t0 = time.perf_counter()
        if not bool(torch.isfinite(trainer.flat.data).all()):
            trainer.log_event("checkpoint_skipped", "weights are not finite; the last good "
                              f"checkpoint is kept ({self.last_path})")
            return None
        state = trainer.training_state()
        state.meta["metrics_bytes"] = _flushed_metrics_size(trainer)
        self.last_path = save_checkpoint(self.directory, state)
        self.seconds += time.perf_counter() - t0
        return self.last_path


def _flushed_metrics_size(trainer: "Trainer") -> int:
    """Bytes of ``metrics.jsonl`` written so far (flushed first): what a resume keeps of it."""
    from aekit.training.callbacks import MetricsWriter

    for cb in trainer.callbacks:
        if isinstance(cb, MetricsWriter):
            handle = getattr(cb, "_file", None)
            if handle is not None:
                handle.flush()
            return cb.path.stat().st_size if cb.path.exists() else 0
    return 0


def prepare_checkpoints(cfg: "RunConfig", out_dir: str | Path,
                        writer: bool = True) -> Checkpointer:
    """The Checkpointer of a run; with ``cfg.train.resume``, loaded from ``out_dir``.

    On resume the newest valid checkpoint is chosen (damaged ones are skipped with a warning
    on stderr), the configuration is compared with the checkpoint's, and ``metrics.jsonl`` is
    cut back to what it held when the checkpoint was written, so that the resumed run appends
    with no gap and no duplicate. Without a checkpoint the run starts from the beginning.

    ``writer=False`` is the Checkpointer of a rank other than 0 under torchrun: it loads and
    checks the checkpoint rank 0 resumes from (so a mismatch fails on every rank) but prints,
    cuts back and writes nothing (the trainer saves checkpoints on rank 0 only).

    Raises:
        ConfigError: the checkpoint was written under another configuration.
        FormatError: checkpoints exist but none is valid.
    """
    out_dir = Path(out_dir)
    every = cfg.train.checkpoint_every_steps
    if not cfg.train.resume:
        return Checkpointer(out_dir, every)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        state = load_latest(out_dir)
    if not writer:  # rank 0 prints the warnings and cuts metrics.jsonl back
        if state is not None:
            check_config_matches(state, cfg.to_dict())
        return Checkpointer(out_dir, every, resume_from=state)
    for warning in caught:
        print(f"aekit train: warning: {warning.message}", file=sys.stderr, flush=True)
    metrics = out_dir / "metrics.jsonl"
    if state is None:
        print(f"aekit train: warning: --resume: no checkpoint in {out_dir}; starting from the "
              "beginning", file=sys.stderr, flush=True)
        if metrics.exists():
            os.truncate(metrics, 0)
        return Checkpointer(out_dir, every)
    check_config_matches(state, cfg.to_dict())
    if metrics.exists() and metrics.stat().st_size > state.meta["metrics_bytes"]:
        os.truncate(metrics, state.meta["metrics_bytes"])
    print(f"aekit train: resuming from {state.path.name} (epoch {state.meta['epoch'] + 1}, "
          f"step {state.step})", file=sys.stderr, flush=True)
    return Checkpointer(out_dir, every, resume_from=state)
