"""``--tensorboard DIR``: the run's scalars and reconstructions as TensorBoard event files.

Written per epoch (tag: what it holds; the x axis is the optimizer step):

- ``loss/train``, ``loss/val``, ``lr``, ``speed/samples_per_second``;
- ``diagnostics/<metric>/<layer>`` for every numeric value of the diagnostics records
  (``type`` "diagnostics", from :mod:`aekit.training.diagnostics`) taken since the last epoch,
  at the step they were measured;
- ``reconstructions``: for image data, one picture with a few fixed validation samples in the top
  row and their reconstructions below;
- events (rollbacks, lr cuts, early stop) as text under ``events``.

Open with ``tensorboard --logdir DIR``.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch

from aekit.training.callbacks import Callback

if TYPE_CHECKING:
    from aekit.training.trainer import Trainer

N_IMAGES = 8


def numeric_leaves(record: dict[str, Any], prefix: str = "") -> dict[str, float]:
    """Finite numbers of a nested record as ``{"layers/encoder.0/grad_norm": value}``."""
    out: dict[str, float] = {}
    for key, value in record.items():
        if not prefix and key in ("type", "step", "epoch"):
            continue
        name = f"{prefix}{key}"
        if isinstance(value, dict):
            out.update(numeric_leaves(value, name + "/"))
        elif isinstance(value, (int, float)) and not isinstance(value, bool) \
                and math.isfinite(value):
            out[name] = float(value)
    return out


def diag_tag(name: str) -> str:
    """``layers/encoder.0/grad_norm`` -> ``diagnostics/grad_norm/encoder.0`` (one chart per
    metric, one line per layer); top-level ``grad_norm`` -> ``diagnostics/grad_norm/global``."""
    parts = [p for p in name.split("/") if p != "layers"]
    owner = "/".join(parts[:-1]) or "global"
    return f"diagnostics/{parts[-1]}/{owner}"


def image_strip(x: torch.Tensor, sample_shape: tuple[int, ...]) -> torch.Tensor:
    """Samples (n, features) in [0, 1] side by side: (channels, h, n * w)."""
    imgs = x.detach().float().cpu().clamp(0, 1).reshape(len(x), *sample_shape)
    if imgs.ndim == 3:  # greyscale (n, h, w)
        imgs = imgs.unsqueeze(1)
    imgs = imgs[:, :3] if imgs.shape[1] in (3, 4) else imgs[:, :1]
    return torch.cat(list(imgs), dim=2)


class TensorBoardWriter(Callback):
    """Writes scalars, diagnostics and reconstructions with ``SummaryWriter``.

    Args:
        log_dir: the event-file folder (created).
        probe: a few samples in the model's scaled space, reconstructed every epoch (images).
        sample_shape: shape of one sample; images need 2 or 3 dimensions.
    """

    def __init__(self, log_dir: str | Path, probe: torch.Tensor | None = None,
                 sample_shape: tuple[int, ...] | None = None) -> None:
        from aekit.optional import require

        require("tensorboard", "tensorboard", "--tensorboard")  # before the first step
        self.log_dir = Path(log_dir)
        self.probe = probe[:N_IMAGES] if probe is not None else None
        self.sample_shape = tuple(sample_shape) if sample_shape else None
        self.writer: Any = None
        self._diag_seen = 0

    @property
    def shows_images(self) -> bool:
        """True when the samples are images and there is something to reconstruct."""
        return self.probe is not None and self.sample_shape is not None \
            and len(self.sample_shape) in (2, 3) and len(self.probe) > 0

    def on_train_begin(self, trainer: "Trainer") -> None:
        from torch.utils.tensorboard import SummaryWriter

        self.writer = SummaryWriter(log_dir=str(self.log_dir))

    def on_epoch_end(self, trainer: "Trainer", epoch: int, logs: dict[str, Any]) -> None:
        if self.writer is None:
            return
        step = trainer.step
        for key, tag in (("train_loss", "loss/train"), ("val_loss", "loss/val"), ("lr", "lr"),
                         ("samples_per_second", "speed/samples_per_second")):
            value = logs.get(key)
            if isinstance(value, (int, float)) and math.isfinite(value):
                self.writer.add_scalar(tag, value, step)
        self._write_diagnostics(trainer)
        if self.shows_images:
            self._write_images(trainer, step)
        self.writer.flush()

    def _write_diagnostics(self, trainer: "Trainer") -> None:
        records = [r for cb in trainer.callbacks for r in getattr(cb, "records", ())
                   if isinstance(r, dict) and r.get("type") in ("diagnostics", "diag")]
        for record in records[self._diag_seen:]:
            for name, value in numeric_leaves(record).items():
                self.writer.add_scalar(diag_tag(name), value, int(record.get("step", 0)))
        self._diag_seen = len(records)

    @torch.no_grad()
    def _write_images(self, trainer: "Trainer", step: int) -> None:
        model = trainer.model
        was_training = model.training
        model.eval()
        probe = self.probe.to(trainer.flat.data.device)  # given on any device
        x_hat = model(probe).x_hat.cpu()
        model.train(was_training)
        picture = torch.cat([image_strip(self.probe.cpu(), self.sample_shape),
                             image_strip(x_hat, self.sample_shape)], dim=1)
        self.writer.add_image("reconstructions", picture, step, dataformats="CHW")

    def on_event(self, trainer: "Trainer", event: dict[str, Any]) -> None:
        if self.writer is not None:
            self.writer.add_text("events", f"{event.get('kind')}: {event.get('message', '')}",
                                 int(event.get("step", trainer.step)))

    def state_dict(self) -> dict[str, Any]:
        """How many diagnostics samples are written already (a resumed run, whose samples
        come back from the checkpoint, writes only the new ones)."""
        return {"diag_seen": self._diag_seen}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        seen = state["diag_seen"]
        if isinstance(seen, bool) or not isinstance(seen, int) or seen < 0:
            raise ValueError(f"diag_seen must be an integer >= 0, got {seen!r}")
        self._diag_seen = seen

    def on_train_end(self, trainer: "Trainer", logs: dict[str, Any]) -> None:
        if self.writer is not None:
            self.writer.close()
            self.writer = None
