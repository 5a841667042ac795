"""The bad-input matrix: every data format x every defect, through the CLI.

Each case must exit with code 2, print one line on stderr that names the file, print no
traceback, and leave no output behind (no run folder for ``train``, no ``.npy`` for
``encode``)."""

from __future__ import annotations

import gzip
import struct
import tempfile
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from PIL import Image

from aekit.cli import main

TRAIN_FLAGS = ["--epochs", "1", "--hidden", "4", "--latent-dim", "2", "--no-progress",
               "--threads", "1"]


def good(n: int = 6, d: int = 4) -> np.ndarray:
    """A valid (n, d) float32 array."""
    return np.arange(n * d, dtype=np.float32).reshape(n, d) / 10


def idx_bytes(a: np.ndarray) -> bytes:
    """The IDX encoding of ``a`` (uint8 or float32)."""
    code = {np.dtype(np.uint8): 0x08, np.dtype(np.float32): 0x0D}[a.dtype]
    header = struct.pack(">BBBB", 0, 0, code, a.ndim) + struct.pack(f">{a.ndim}I", *a.shape)
    return header + a.astype(a.dtype.newbyteorder(">")).tobytes()


def _with(value: float, row: int, col: int) -> np.ndarray:
    a = good()
    a[row, col] = value
    return a


def _arrays() -> dict[str, np.ndarray]:
    """The defects an array can have, for .npy and .npz."""
    return {
        "nan": _with(np.nan, 2, 1), "inf": _with(np.inf, 3, 0), "neginf": _with(-np.inf, 1, 3),
        "onedim": np.arange(5, dtype=np.float32), "zerorows": np.zeros((0, 4), np.float32),
        "zerocols": np.zeros((5, 0), np.float32), "strings": np.array([["a", "b"], ["c", "d"]]),
        "complex": good().astype(np.complex64),
        "object": np.array([[1.0, "x"], [2.0, None]], dtype=object),
    }


CSV_TEXTS = {
    "nan": "a,b\n1,2\n3,nan\n4,5\n", "blank": "a,b\n1,2\n3,\n4,5\n",
    "inf": "a,b\n1,2\n3,inf\n4,5\n", "neginf": "a,b\n1,2\n3,-inf\n4,5\n",
    "zerorows": "a,b\n", "zerocols": "\n\n\n", "strings": "a,b\n1,2\n3,hello\n4,5\n",
    "complex": "a,b\n1,2\n3,1+2j\n4,5\n", "ragged": "a,b\n1,2\n3,4,5\n4,5\n",
}


def _tables() -> dict[str, pa.Table]:
    empty = pa.array([], pa.float32())
    return {
        "nan": pa.table({"a": [1.0, float("nan"), 2.0], "b": [1.0, 2.0, 3.0]}),
        "inf": pa.table({"a": [1.0, float("inf"), 2.0], "b": [1.0, 2.0, 3.0]}),
        "neginf": pa.table({"a": [1.0, 2.0, 2.0], "b": [1.0, -float("inf"), 3.0]}),
        "null": pa.table({"a": [1.0, None, 2.0], "b": [1.0, 2.0, 3.0]}),
        "zerorows": pa.table({"a": empty, "b": empty}), "zerocols": pa.table({}),
        "strings": pa.table({"a": [1.0, 2.0, 3.0], "b": ["x", "y", "z"]}),
    }


def _idx_files() -> dict[str, bytes]:
    def stack(value: float) -> np.ndarray:
        a = np.ones((4, 3, 3), np.float32)
        a[2, 0, 1] = value
        return a

    valid = idx_bytes(np.ones((4, 3, 3), np.uint8))
    return {
        "nan": idx_bytes(stack(np.nan)), "inf": idx_bytes(stack(np.inf)),
        "neginf": idx_bytes(stack(-np.inf)), "onedim": idx_bytes(np.arange(5, dtype=np.uint8)),
        "zerorows": idx_bytes(np.zeros((0, 3, 3), np.uint8)),
        "zerocols": idx_bytes(np.zeros((4, 0, 0), np.uint8)), "truncated": valid[:-5],
        "empty": b"", "garbage": b"\xff" * 40, "gz": gzip.compress(valid)[:-4],
    }


def _image_folders() -> dict[str, list]:
    blank = np.zeros((4, 4), np.uint8)
    return {"empty": [], "mixed": [blank, np.zeros((5, 4), np.uint8)],
            "unreadable": [blank, b"not a png at all"], "emptyfile": [blank, b""]}


def cases(root: Path) -> dict[str, str]:
    """Write one file (or folder) per format x defect under ``root``; name -> data spec."""
    specs: dict[str, str] = {}
    for name, array in _arrays().items():
        np.save(root / f"{name}.npy", array, allow_pickle=True)
        np.savez(root / f"{name}.npz", x=array)
        specs[f"npy-{name}"], specs[f"npz-{name}"] = str(root / f"{name}.npy"), \
            str(root / f"{name}.npz")
    for ext in ("npy", "npz", "csv", "parquet"):
        (root / f"empty.{ext}").write_bytes(b"")
        (root / f"garbage.{ext}").write_bytes(b"\x93\x00\xffnot a file" * 7)
        for what in ("empty", "garbage", "missing"):
            specs[f"{ext}-{what}"] = str(root / f"{what}.{ext}")
    for name, text in CSV_TEXTS.items():
        (root / f"{name}.csv").write_text(text)
        specs[f"csv-{name}"] = str(root / f"{name}.csv")
    for name, table in _tables().items():
        pq.write_table(table, root / f"{name}.parquet")
        specs[f"parquet-{name}"] = str(root / f"{name}.parquet")
    for name, data in _idx_files().items():
        path = root / name / "data-idx3-ubyte"
        path.parent.mkdir()
        path.write_bytes(data)
        specs[f"idx-{name}"] = str(path)
    specs["idx-missing"] = str(root / "nope-idx3-ubyte")
    for name, images in _image_folders().items():
        folder = root / f"img-{name}"
        folder.mkdir()
        for i, image in enumerate(images):
            if isinstance(image, bytes):
                (folder / f"{i}.png").write_bytes(image)
            else:
                Image.fromarray(image).save(folder / f"{i}.png")
        specs[f"images-{name}"] = str(folder)
    specs["images-missing"] = str(root / "img-missing")
    return specs


def _case_names() -> list[str]:
    with tempfile.TemporaryDirectory() as folder:
        return sorted(cases(Path(folder)))


_NAMES = _case_names()


@pytest.fixture(scope="module")
def matrix(tmp_path_factory) -> dict[str, str]:
    return cases(tmp_path_factory.mktemp("bad"))


def _one_error_line(capsys, spec: str) -> str:
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1, err
    assert "Traceback" not in err[0]
    assert spec in err[0] or Path(spec).name in err[0], err[0]
    return err[0]


@pytest.mark.parametrize("name", _NAMES)
def test_train_refuses_bad_data(matrix, name, tmp_path, capsys):
    spec = matrix[name]
    out = tmp_path / "run"
    assert main(["train", "--data", spec, "--out", str(out), *TRAIN_FLAGS]) == 2
    line = _one_error_line(capsys, spec)
    assert line.startswith("aekit train: error: ")
    assert not out.exists()


@pytest.mark.parametrize("name", ["npy-nan", "csv-inf", "parquet-strings", "idx-zerorows",
                                  "images-mixed", "npz-object"])
def test_train_refuses_bad_test_set(matrix, name, tmp_path, capsys):
    good_file = tmp_path / "good.npy"
    np.save(good_file, good(20, 4))
    out = tmp_path / "run"
    args = ["train", "--data", str(good_file), "--test", matrix[name], "--out", str(out)]
    assert main([*args, *TRAIN_FLAGS]) == 2
    _one_error_line(capsys, matrix[name])
    assert not out.exists()


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("model")
    np.save(root / "train.npy", good(40, 4))
    assert main(["train", "--data", str(root / "train.npy"), "--out", str(root / "run"),
                 *TRAIN_FLAGS, "--diagnostics-every-steps", "none"]) == 0
    return root / "run"


@pytest.mark.parametrize("verb", ["encode", "evaluate"])
@pytest.mark.parametrize("defect", ["features", "npy-nan", "csv-strings", "images-empty",
                                    "npy-missing"])
def test_encode_and_evaluate_refuse_bad_data(model_dir, matrix, verb, defect, tmp_path,
                                             capsys):
    capsys.readouterr()
    if defect == "features":  # the model was trained on 4 features
        spec = str(tmp_path / "six.npy")
        np.save(spec, good(5, 6))
    else:
        spec = matrix[defect]
    out = tmp_path / "codes.npy"
    extra = ["--out", str(out)] if verb == "encode" else []
    assert main([verb, "--model", str(model_dir), "--data", spec, *extra]) == 2
    line = _one_error_line(capsys, spec)
    if defect == "features":
        assert "4" in line and "6" in line
    assert not out.exists()
