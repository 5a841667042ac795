"""``--tensorboard DIR``: event files with the run's scalars, diagnostics and reconstructions."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from aekit.cli import main
from aekit.training.tensorboard import diag_tag, image_strip, numeric_leaves

event_accumulator = pytest.importorskip("tensorboard.backend.event_processing.event_accumulator")


def _read(log_dir: Path) -> object:
    acc = event_accumulator.EventAccumulator(str(log_dir), size_guidance={"scalars": 0,
                                                                          "images": 0})
    acc.Reload()
    return acc


def test_train_with_tensorboard_writes_scalars_and_images(tmp_path: Path) -> None:
    log_dir = tmp_path / "tb"
    code = main(["train", "--data", "digits", "--epochs", "3", "--threads", "1",
                 "--latent-dim", "4", "--hidden", "32", "--no-progress", "--out",
                 str(tmp_path / "run"), "--tensorboard", str(log_dir),
                 "--diagnostics-every-steps", "3"])
    assert code == 0
    acc = _read(log_dir)
    tags = acc.Tags()
    for tag in ("loss/train", "loss/val", "lr", "diagnostics/grad_norm/global",
                "diagnostics/grad_norm/encoder.0"):
        assert tag in tags["scalars"], tags["scalars"]
    train_loss = acc.Scalars("loss/train")
    assert len(train_loss) == 3
    lines = (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()
    import json

    epochs = [json.loads(ln) for ln in lines if json.loads(ln)["type"] == "epoch"]
    np.testing.assert_allclose([s.value for s in train_loss],
                               [e["train_loss"] for e in epochs], rtol=1e-6)
    assert [s.step for s in train_loss] == [e["step"] for e in epochs]
    images = acc.Images("reconstructions")
    assert len(images) == 3 and images[-1].width == 8 * 8 and images[-1].height == 2 * 8


def test_tabular_run_has_no_images(tmp_path: Path, tabular: np.ndarray) -> None:
    np.save(tmp_path / "x.npy", tabular)
    assert main(["train", "--data", str(tmp_path / "x.npy"), "--epochs", "2", "--threads", "1",
                 "--latent-dim", "2", "--hidden", "8", "--no-progress", "--out",
                 str(tmp_path / "run"), "--tensorboard", str(tmp_path / "tb")]) == 0
    tags = _read(tmp_path / "tb").Tags()
    assert "loss/train" in tags["scalars"] and tags["images"] == []


def test_helpers() -> None:
    record = {"type": "diagnostics", "step": 4, "grad_norm": 2.0, "bad": float("nan"),
              "layers": {"decoder.1": {"dead": 0.5}}}
    leaves = numeric_leaves(record)
    assert leaves == {"grad_norm": 2.0, "layers/decoder.1/dead": 0.5}
    assert [diag_tag(k) for k in leaves] == ["diagnostics/grad_norm/global",
                                            "diagnostics/dead/decoder.1"]
    x = torch.arange(2 * 3 * 4 * 5, dtype=torch.float32).reshape(2, -1) / 120
    strip = image_strip(x, (3, 4, 5))
    assert strip.shape == (3, 4, 10)
    torch.testing.assert_close(strip[:, :, 5:], x[1].reshape(3, 4, 5))
