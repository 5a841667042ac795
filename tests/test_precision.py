"""``--precision``: fp32, tf32 (CUDA matrix products), bf16 (autocast forward and loss)."""

from __future__ import annotations

import json

import pytest
import torch

from aekit.cli import main
from aekit.config import RunConfig
from aekit.errors import ConfigError
from aekit.models import MLPAutoencoder
from aekit.training.checkpoint import config_fingerprint
from aekit.training.device import autocast_dtype, matmul_precision, resolve_precision
from aekit.training.trainer import Trainer


def test_auto_is_tf32_on_cuda_and_fp32_on_the_cpu():
    assert resolve_precision("auto", torch.device("cuda")) == "tf32"
    assert resolve_precision("auto", torch.device("cpu")) == "fp32"
    assert resolve_precision("bf16", torch.device("cpu")) == "bf16"
    assert autocast_dtype("bf16") == torch.bfloat16 and autocast_dtype("tf32") is None


def test_an_unknown_precision_is_refused_naming_the_choices():
    with pytest.raises(ConfigError, match="`precision` must be one of auto, fp32, tf32, bf16. "
                                          "Received: precision='fp16'"):
        RunConfig().replace(precision="fp16")


@pytest.mark.parametrize("precision, tf32", [("fp32", False), ("tf32", True), ("bf16", True)])
def test_tf32_is_switched_for_cuda_while_training_and_put_back(precision, tf32):
    matmul = torch.backends.cuda.matmul
    before = matmul.allow_tf32, torch.backends.cudnn.allow_tf32
    with matmul_precision(precision, torch.device("cuda")):
        assert (matmul.allow_tf32, torch.backends.cudnn.allow_tf32) == (tf32, tf32)
    assert (matmul.allow_tf32, torch.backends.cudnn.allow_tf32) == before
    with pytest.raises(RuntimeError, match="boom"), matmul_precision(precision,
                                                                     torch.device("cuda")):
        raise RuntimeError("boom")
    assert (matmul.allow_tf32, torch.backends.cudnn.allow_tf32) == before
    with matmul_precision(precision, torch.device("cpu")):  # the CPU: nothing changes
        assert (matmul.allow_tf32, torch.backends.cudnn.allow_tf32) == before


def _trainer(precision: str, device: torch.device) -> Trainer:
    cfg = RunConfig().replace(latent_dim=2, hidden=(16,), epochs=30, batch_size=16,
                              checkpoint_every_steps=None, progress=False, optimizer="adam",
                              lr=0.01, precision=precision)
    torch.manual_seed(0)
    return Trainer(MLPAutoencoder(cfg.model, 6, "sigmoid").to(device), cfg)


def test_bf16_runs_the_forward_pass_in_bfloat16_and_still_learns(device):
    x = torch.rand(64, 6, generator=torch.Generator().manual_seed(0)).to(device)
    seen = []
    trainer = _trainer("bf16", device)
    trainer.model.encoder[0].linear.register_forward_hook(
        lambda module, args, out: seen.append(out.dtype))
    history = trainer.fit(x)
    assert not trainer.use_fastpath  # the hand-written pass is float32 only
    assert set(seen) == {torch.bfloat16}
    assert trainer.flat.data.dtype == torch.float32  # weights and updates stay float32
    losses = history["loss"]
    assert losses[-1] < 0.7 * losses[0]
    fp32 = _trainer("fp32", device)
    assert fp32.use_fastpath
    fp32.fit(x)
    assert fp32.history["loss"][-1] == pytest.approx(losses[-1], rel=0.1)


def test_the_flag_reaches_the_run_folder(tmp_path):
    out = tmp_path / "run"
    assert main(["train", "--data", "digits", "--out", str(out), "--epochs", "1",
                 "--latent-dim", "4", "--hidden", "16", "--threads", "1", "--no-progress",
                 "--precision", "bf16"]) == 0
    saved = json.loads((out / "config.json").read_text())["config"]["train"]
    assert saved["precision"] == "bf16"


def test_a_checkpoint_from_before_the_option_resumes_under_the_default():
    flat = config_fingerprint(RunConfig().to_dict())
    assert "precision" not in flat  # auto: as a checkpoint written before it existed
    assert config_fingerprint(RunConfig().replace(precision="bf16").to_dict())[
        "precision"] == "bf16"


# -- one read of the device per step: the lazy forms give the CPU's numbers ------------------
def test_the_lazy_loss_is_the_read_loss(device):
    from aekit.training import fastpath

    for options in ({}, {"loss": "bce"}, {"l1_codes": 0.01}):
        cfg = RunConfig().replace(latent_dim=3, hidden=(8,), **options)
        torch.manual_seed(0)
        model = MLPAutoencoder(cfg.model, 6, "sigmoid", l1_codes=options.get("l1_codes", 0.0))
        Trainer(model.to(device), cfg)  # gradients as views of one buffer
        x = torch.rand(16, 6, generator=torch.Generator().manual_seed(2)).to(device)
        read = fastpath.lazy_loss_and_grad(model, x, read=True)
        grads = [p.grad.clone() for p in model.parameters()]
        lazy = fastpath.lazy_loss_and_grad(model, x, read=False)
        assert isinstance(read, float) and lazy.dtype == torch.float64
        assert float(lazy) == read  # the same bits
        assert all(torch.equal(g, p.grad) for g, p in zip(grads, model.parameters()))


@pytest.mark.parametrize("scale", [1e-3, 0.5, 1.0, 10.0])
def test_clipping_without_reading_the_norm_gives_the_same_bits(scale, device):
    from aekit.training.device import clip_by_norm

    grad = torch.randn(1000, generator=torch.Generator().manual_seed(3)).to(device) * scale
    max_norm = float(torch.linalg.vector_norm(torch.randn(1000, generator=torch.Generator()
                                                          .manual_seed(3)))) * 0.5
    read, lazy = grad.clone(), grad.clone()
    clip_by_norm(read, max_norm, read=True)
    clip_by_norm(lazy, max_norm, read=False)
    assert torch.equal(read, lazy)
    assert float(torch.linalg.vector_norm(read)) <= max_norm * (1 + 1e-5)
