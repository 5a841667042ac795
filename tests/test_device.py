"""Tensors on another device than the model's: moved there, or refused with an aekit error
(a ``meta`` tensor has a shape but no values). The CUDA cases run where PyTorch sees CUDA."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import aekit
from aekit.config import RunConfig
from aekit.errors import ConfigError, DataError
from aekit.models import MLPAutoencoder
from aekit.training.diagnostics import Diagnostics
from aekit.training.doctor import Doctor
from aekit.training.trainer import Trainer, mean_loss

needs_cuda = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
QUICK = dict(latent_dim=2, hidden=(8,), epochs=2, batch_size=16, progress=False, seed=0,
             threads=1)


def _trainer(device: torch.device, **train) -> Trainer:
    cfg = RunConfig().replace(latent_dim=2, hidden=(6,), epochs=2, batch_size=8,
                              checkpoint_every_steps=None, progress=False, **train)
    torch.manual_seed(0)
    return Trainer(MLPAutoencoder(cfg.model, 5, "sigmoid").to(device), cfg)


def _rows(n: int = 40) -> torch.Tensor:
    return torch.rand(n, 5, generator=torch.Generator().manual_seed(1))


@pytest.mark.parametrize("where", ["x_train", "x_val", "y_train"])
def test_a_meta_tensor_given_to_the_trainer_is_refused(where):
    data = {"x_train": _rows(), "x_val": _rows(8), "y_train": None}
    data[where] = torch.empty(40 if where != "x_val" else 8, 5, device="meta")
    with pytest.raises(DataError, match=f"`{where}` is a tensor on the meta device"):
        _trainer(torch.device("cpu")).fit(**data)


def test_rows_on_the_cpu_train_a_model_on_the_test_device(device):
    trainer = _trainer(device)
    history = trainer.fit(_rows(), _rows(8))  # CPU tensors, the model on `device`
    assert trainer.step == 10 and history.epochs[-1]["val_loss"] is not None
    assert mean_loss(trainer.model, _rows(8)) == pytest.approx(history.epochs[-1]["val_loss"])


def test_a_cpu_probe_serves_a_model_on_the_test_device(device):
    diag = Diagnostics(2, _rows())
    trainer = _trainer(device)
    trainer.callbacks.append(diag)
    trainer.fit(_rows())
    assert diag.probe.device.type == device.type
    assert any("act_mean" in entry for r in diag.records for entry in r["layers"].values())


@pytest.mark.parametrize("call", ["fit", "encode", "decode", "sample_weight", "labels"])
def test_meta_tensors_given_to_the_autoencoder_are_refused(blobs, call):
    ae = aekit.Autoencoder(**QUICK)
    meta = torch.empty(len(blobs), 10, device="meta")
    if call == "fit":
        with pytest.raises(DataError, match="meta device"):
            ae.fit(meta)
        return
    if call in ("sample_weight", "labels"):
        with pytest.raises(DataError, match=f"`{call}` is a tensor on the meta device"):
            ae.fit(blobs, **{call: torch.empty(len(blobs), device="meta")})
        return
    ae.fit(blobs)
    with pytest.raises(DataError, match="meta device"):
        ae.encode(meta) if call == "encode" else ae.decode(torch.empty(3, 2, device="meta"))


def test_the_doctor_tells_a_state_on_another_device_from_the_current_one():
    """A good state kept on one device and the live weights on another are different states
    (compared without torch.equal across devices, which raises)."""
    trainer = _trainer(torch.device("cpu"))
    doctor = Doctor()
    trainer.callbacks.append(doctor)
    trainer.fit(_rows())
    assert doctor._good_is() == "current"
    doctor._good = {k: torch.empty_like(v, device="meta") for k, v in doctor._good.items()}
    assert doctor._good_is() is None
    assert "good.model.encoder.0.linear.weight" in doctor.state_dict()


def test_load_puts_the_model_on_the_device_asked_for(tmp_path, blobs, device):
    ae = aekit.Autoencoder(**QUICK)
    ae.fit(blobs)
    ae.save(tmp_path / "m")
    assert aekit.load(tmp_path / "m").device == torch.device("cpu")  # the default
    again = aekit.load(tmp_path / "m", device=device.type)
    assert next(again.model.parameters()).device.type == device.type
    assert again.encode(blobs).shape == (len(blobs), 2)
    with pytest.raises(ConfigError, match="`device` must be one of auto, cpu, cuda"):
        aekit.load(tmp_path / "m", device="tpu")


@needs_cuda
def test_cuda_tensors_train_and_are_scored_by_a_cpu_model(blobs):
    ae = aekit.Autoencoder(**QUICK, device="cpu")
    x = torch.from_numpy(blobs).cuda()
    ae.fit(x, sample_weight=torch.ones(len(blobs), device="cuda"))
    np.testing.assert_allclose(ae.encode(x), ae.encode(blobs))
    assert ae.decode(torch.zeros(3, 2, device="cuda")).shape == (3, 10)


@needs_cuda
def test_cpu_tensors_train_a_cuda_model_through_the_trainer():
    trainer = _trainer(torch.device("cuda"))
    trainer.callbacks.append(Diagnostics(2, _rows()))
    trainer.fit(_rows(), _rows(8), y_train=_rows())
    assert trainer.flat.data.is_cuda and trainer.step == 10


def test_the_model_verbs_run_on_the_device_asked_for(tmp_path, device, capsys):
    """evaluate, encode, decode, generate and explain load the model on ``--device`` (cpu by
    default) and give the CPU's results there (to float rounding)."""
    from aekit.cli import main

    run = tmp_path / "run"
    assert main(["train", "--data", "digits", "--out", str(run), "--epochs", "2",
                 "--latent-dim", "3", "--hidden", "16", "--threads", "1", "--no-progress"]) == 0
    codes = {}
    for where in ("cpu", device.type):
        out = tmp_path / where
        out.mkdir(exist_ok=True)
        assert main(["encode", "--model", str(run), "--data", "digits", "--out",
                     str(out / "z.npy"), "--device", where]) == 0
        assert main(["decode", "--model", str(run), "--codes", str(out / "z.npy"), "--out",
                     str(out / "x.npy"), "--device", where]) == 0
        assert main(["generate", "--model", str(run), "-n", "4", "--out",
                     str(out / "g.npy"), "--device", where]) == 0
        assert main(["explain", "--model", str(run), "--out", str(out), "--samples", "200",
                     "--device", where]) == 0
        capsys.readouterr()
        assert main(["evaluate", "--model", str(run), "--data", "digits", "--device",
                     where]) == 0
        codes[where] = (np.load(out / "z.npy"), np.load(out / "x.npy"),
                        capsys.readouterr().out)
    np.testing.assert_allclose(codes[device.type][0], codes["cpu"][0], rtol=1e-3, atol=1e-4)
    np.testing.assert_allclose(codes[device.type][1], codes["cpu"][1], rtol=1e-3, atol=1e-3)
    with pytest.raises(SystemExit) as exc:
        main(["encode", "--model", str(run), "--data", "digits", "--out",
              str(tmp_path / "z.npy"), "--device", "tpu"])
    assert exc.value.code == 2
    assert "invalid choice: 'tpu'" in capsys.readouterr().err


def test_the_gpu_scripts_parse_and_refuse_a_machine_without_cuda(tmp_path):
    import shutil
    import subprocess
    import sys
    from pathlib import Path

    benchmarks = Path(__file__).resolve().parent.parent / "benchmarks"
    if shutil.which("bash"):
        checked = subprocess.run(["bash", "-n", str(benchmarks / "gpu_check.sh")],
                                 capture_output=True, text=True)
        assert checked.returncode == 0, checked.stderr
    if torch.cuda.is_available():
        return
    ran = subprocess.run([sys.executable, str(benchmarks / "gpu_speed.py")], capture_output=True,
                         text=True, cwd=tmp_path)
    assert ran.returncode == 2
    assert "PyTorch sees no CUDA device" in ran.stderr and "--device cpu" in ran.stderr
