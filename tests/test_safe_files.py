"""Nothing aekit loads is unpickled: pickle payloads that would create a file when unpickled,
planted under every name aekit reads, are refused with an aekit error, and the file is never
created."""

from __future__ import annotations

import io
import pickle
import zipfile
from pathlib import Path

import numpy as np
import pytest
import torch

import aekit
from aekit.cli import main
from aekit.data import load
from aekit.errors import AekitError, FormatError
from aekit.training.checkpoint import load_checkpoint, load_latest


class Payload:
    """Unpickling this calls ``Path(marker).touch()``."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (Path.touch, (Path(self.marker),))


def _payloads(marker: Path) -> dict[str, bytes]:
    """The same payload as a raw pickle, a torch.save zip, a .npy and a .npz object array."""
    raw = pickle.dumps(Payload(marker))
    buf = io.BytesIO()
    torch.save({"w": Payload(marker)}, buf)
    npy = io.BytesIO()
    np.save(npy, np.array([Payload(marker), 1.0], dtype=object), allow_pickle=True)
    npz = io.BytesIO()
    with zipfile.ZipFile(npz, "w") as archive:
        archive.writestr("x.npy", npy.getvalue())
    return {"pickle": raw, "torch": buf.getvalue(), "npy": npy.getvalue(), "npz": npz.getvalue()}


@pytest.fixture
def marker(tmp_path) -> Path:
    path = tmp_path / "PWNED"
    # sanity: the payload does create the marker when unpickled the unsafe way
    pickle.loads(_payloads(path)["pickle"])
    assert path.exists()
    path.unlink()
    return path


@pytest.fixture(scope="module")
def trained(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("model")
    np.save(root / "x.npy", np.random.default_rng(0).normal(size=(30, 4)).astype(np.float32))
    args = ["train", "--data", str(root / "x.npy"), "--out", str(root / "run"), "--epochs", "1",
            "--hidden", "4", "--latent-dim", "2", "--no-progress", "--threads", "1",
            "--diagnostics-every-steps", "none"]
    assert main(args) == 0
    return root / "run"


@pytest.mark.parametrize("kind", ["pickle", "torch", "npy", "npz"])
@pytest.mark.parametrize("name", ["model.safetensors", "config.json"])
def test_model_files_with_pickles_are_refused(trained, marker, tmp_path, kind, name):
    target = tmp_path / "model"
    target.mkdir()
    for file in ("model.safetensors", "config.json"):
        (target / file).write_bytes((trained / file).read_bytes())
    (target / name).write_bytes(_payloads(marker)[kind])
    with pytest.raises(FormatError, match=name):
        aekit.load(target)
    assert main(["encode", "--model", str(target), "--data", str(trained.parent / "x.npy"),
                 "--out", str(tmp_path / "z.npy")]) == 2
    assert not marker.exists()
    assert not (tmp_path / "z.npy").exists()


@pytest.mark.parametrize("kind", ["pickle", "torch", "npy", "npz"])
def test_checkpoints_with_pickles_are_refused(trained, marker, tmp_path, kind):
    path = tmp_path / "checkpoint-0000000005.safetensors"
    path.write_bytes(_payloads(marker)[kind])
    with pytest.raises(FormatError, match=path.name):
        load_checkpoint(path)
    with pytest.warns(RuntimeWarning), pytest.raises(FormatError, match="no valid checkpoint"):
        load_latest(tmp_path)
    # `aekit train --resume` on a folder holding only that file: refused, exit 2
    args = ["train", "--data", str(trained.parent / "x.npy"), "--out", str(tmp_path),
            "--resume", "--epochs", "1", "--hidden", "4", "--latent-dim", "2",
            "--no-progress", "--threads", "1"]
    assert main(args) == 2
    assert not marker.exists()


@pytest.mark.parametrize("kind, suffix", [("npy", ".npy"), ("npz", ".npz"), ("pickle", ".npy"),
                                          ("torch", ".npy"), ("pickle", ".npz")])
def test_data_files_with_pickles_are_refused(marker, tmp_path, kind, suffix):
    path = tmp_path / f"data{suffix}"
    path.write_bytes(_payloads(marker)[kind])
    with pytest.raises(AekitError, match=path.name):
        load(str(path))
    assert main(["train", "--data", str(path), "--out", str(tmp_path / "run")]) == 2
    assert not marker.exists()
    assert not (tmp_path / "run").exists()


def test_decode_refuses_pickled_codes(trained, marker, tmp_path):
    path = tmp_path / "codes.npy"
    path.write_bytes(_payloads(marker)["npy"])
    assert main(["decode", "--model", str(trained), "--codes", str(path),
                 "--out", str(tmp_path / "x.npy")]) == 2
    assert not marker.exists()
