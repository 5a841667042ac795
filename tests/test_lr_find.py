"""The learning-rate range test (aekit.apps.lr_find), ``aekit lr-find`` and ``--lr-auto``."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
import torch

from aekit import Autoencoder
from aekit.apps.lr_find import save_curve
from aekit.training.lr_range import lr_find, smooth, suggest
from aekit.cli import main
from aekit.config import ModelConfig, RunConfig
from aekit.errors import ConfigError
from aekit.models.mlp import MLPAutoencoder


def _curve(lrs: np.ndarray) -> list[float]:
    """A range-test-like curve: flat, descending to a minimum at lr 1e-2, then blowing up."""
    log = np.log10(lrs)
    return list(1.0 - 0.8 * np.exp(-((log + 2.0) ** 2) / 0.8) + np.where(log > -1.5,
                                                                          (log + 1.5) * 3, 0))


def test_smooth_matches_a_naive_ema_then_median():
    losses = [3.0, 1.0, 2.0, float("nan"), 0.5, 0.7, 0.2]
    ema, naive, last = 0.0, [], 0.0
    for i, v in enumerate(losses):
        last = v if math.isfinite(v) else last
        ema = 0.9 * ema + 0.1 * last
        naive.append(ema / (1 - 0.9 ** (i + 1)))
    medians = [float(np.median(naive[max(0, i - 2):i + 3])) for i in range(len(naive))]
    assert smooth(losses) == pytest.approx(medians)


def test_suggestion_is_a_tenth_of_the_minimum():
    lrs = np.geomspace(1e-6, 1.0, 100)
    suggestion, lr_min, _, reliable = suggest(list(lrs), _curve(lrs))
    assert reliable
    assert 10 ** -2.5 < lr_min < 10 ** -1.5
    assert suggestion == pytest.approx(lr_min / 10)


def test_suggestion_is_not_fooled_by_early_spikes():
    lrs = np.geomspace(1e-6, 1.0, 100)
    clean = _curve(lrs)
    spiky = list(clean)
    for i in (2, 3, 11, 30):  # single-batch spikes, one of them huge
        spiky[i] = 50.0 if i == 11 else 8.0
    assert suggest(list(lrs), spiky)[0] == pytest.approx(suggest(list(lrs), clean)[0], rel=0.3)


def test_flat_curve_is_flagged_unreliable():
    lrs = list(np.geomspace(1e-6, 1.0, 30))
    assert suggest(lrs, [1.0] * 30)[3] is False


def test_lr_find_runs_on_a_copy_and_stops_when_the_loss_explodes(blobs):
    torch.manual_seed(0)
    cfg = RunConfig().replace(hidden=(16, 8), latent_dim=3, optimizer="sgd", batch_size=20)
    model = MLPAutoencoder(cfg.model, 10, "sigmoid")
    before = {k: v.clone() for k, v in model.state_dict().items()}
    result = lr_find(model, cfg, torch.from_numpy(blobs), 1e-4, 1e4, num_steps=80)
    for key, value in model.state_dict().items():
        assert torch.equal(value, before[key])
    assert len(result.lrs) < 80  # stopped once the loss ran away
    assert all(b > a for a, b in zip(result.lrs, result.lrs[1:]))
    assert result.lrs[0] == pytest.approx(1e-4)
    assert 1e-4 <= result.suggestion <= 1e4


def test_save_curve_writes_png_and_json(blobs, tmp_path):
    cfg = RunConfig().replace(hidden=(8,), latent_dim=2, batch_size=20)
    model = MLPAutoencoder(cfg.model, 10, "sigmoid")
    result = lr_find(model, cfg, torch.from_numpy(blobs), num_steps=20)
    json_path, png_path = save_curve(result, tmp_path / "lr")
    assert png_path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    data = json.loads(json_path.read_text())
    assert data["suggestion"] == result.suggestion and len(data["lrs"]) == len(result.lrs)
    assert "rule" in data


@pytest.mark.parametrize("kwargs, match", [
    (dict(start_lr=1.0, end_lr=0.1), "start_lr.*Received: start_lr=1.0"),
    (dict(num_steps=3), "num_steps.*>= 10. Received: 3"),
])
def test_bad_range_is_rejected(blobs, kwargs, match):
    cfg = RunConfig().replace(hidden=(8,), latent_dim=2)
    model = MLPAutoencoder(ModelConfig(hidden=(8,), latent_dim=2), 10, "sigmoid")
    with pytest.raises(ConfigError, match=match):
        lr_find(model, cfg, torch.from_numpy(blobs), **kwargs)


def test_lr_auto_sets_the_learning_rate(blobs):
    ae = Autoencoder(hidden=(16, 8), latent_dim=3, lr_auto=True, epochs=2, progress=False,
                     threads=1, batch_size=20)
    ae.fit(blobs)
    assert ae.config.train.lr_auto and ae.config.optim.lr != RunConfig().optim.lr
    assert ae.trainer.schedule.base_lr == ae.config.optim.lr


def test_lr_find_command(tmp_path, capsys):
    out = tmp_path / "lrf"
    assert main(["lr-find", "--data", "digits", "--out", str(out), "--num-steps", "30",
                 "--hidden", "16", "--latent-dim", "4", "--threads", "1"]) == 0
    text = capsys.readouterr().out
    assert "suggested --lr" in text
    assert (out / "lr_find.png").is_file() and (out / "lr_find.json").is_file()


def test_lr_auto_spelled_as_a_learning_rate(tmp_path):
    assert RunConfig().replace(lr="auto").train.lr_auto
    assert RunConfig.from_dict({"optim": {"lr": "Auto"}}).train.lr_auto
    out = tmp_path / "run"
    assert main(["train", "--data", "digits", "--lr", "auto", "--epochs", "2", "--hidden", "16",
                 "--latent-dim", "4", "--threads", "1", "--no-progress", "--out", str(out)]) == 0
    saved = json.loads((out / "config.json").read_text())["config"]
    assert saved["train"]["lr_auto"] is True
    assert isinstance(saved["optim"]["lr"], float) and saved["optim"]["lr"] != RunConfig().optim.lr


def test_lr_that_is_neither_a_number_nor_auto_is_refused(capsys):
    with pytest.raises(SystemExit) as exc:
        main(["train", "--data", "digits", "--lr", "fast"])
    assert exc.value.code == 2
    assert "--lr" in capsys.readouterr().err
    with pytest.raises(ConfigError):
        RunConfig().replace(lr="fast")
