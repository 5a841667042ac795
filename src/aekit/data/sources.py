"""``load(spec)``: built-in data sets by name, or a file / folder by path."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from aekit.data.dataset import Dataset
from aekit.data.idx import is_idx_path, load_idx
from aekit.data.images import IMAGE_EXTENSIONS, load_image_folder
from aekit.data.tables import load_csv, load_npy, load_npz, load_parquet
from aekit.errors import DataError, DataNotFoundError

BUILTIN_NAMES = ("digits", "fashion-mnist", "fashion-mnist:test")
FASHION_MNIST_DIR = Path("/usr/share/datasets/fashion-mnist")
FASHION_MNIST_FILES = {"train": "train-images-idx3-ubyte", "test": "t10k-images-idx3-ubyte"}
FILE_KINDS = (
    ".npy", ".npz[:key]", ".csv", ".parquet", "IDX (*-idx3-ubyte[.gz])",
    "a folder of images (" + ", ".join(IMAGE_EXTENSIONS) + ")",
)
DATA_SUFFIXES = (".npy", ".npz", ".csv", ".parquet", ".gz") + IMAGE_EXTENSIONS


def load(spec: str | os.PathLike[str]) -> Dataset:
    """Load a data set named by a spec: a built-in name or a path.

    Args:
        spec: ``digits``, ``fashion-mnist``, ``fashion-mnist:test``, or a path to a ``.npy``,
            ``.npz[:key]``, ``.csv``, ``.parquet`` or IDX file, or to a folder of images.

    Returns:
        The validated dataset (raw values, not scaled).

    Raises:
        DataNotFoundError: the path does not exist, the name is unknown, or a built-in set is
            not installed.
        DataError: the file is unreadable, of an unknown kind, or holds invalid data.
    """
    text = os.fspath(spec)
    if text.startswith("text:"):  # TF-IDF / hashed bag of words (data/text.py)
        from aekit.data.text import load_text

        return load_text(text)
    if text.startswith("audio:"):  # log-spectrograms of WAV files (data/audio.py)
        from aekit.data.audio import load_audio

        return load_audio(text)
    name = text.strip().lower()
    if name == "digits":
        return load_digits()
    if name in ("fashion-mnist", "fashion-mnist:train", "fashion-mnist:test"):
        return load_fashion_mnist("test" if name.endswith(":test") else "train")
    return load_path(text)


def load_path(spec: str) -> Dataset:
    """Load a file or folder, choosing the reader from the extension.

    Args:
        spec: the path, optionally ``file.npz:key``.

    Returns:
        The validated dataset.

    Raises:
        DataNotFoundError: nothing at that path, or a word that is neither a path nor a name.
        DataError: unknown file kind, unreadable file, invalid data.
    """
    path, key = _split_npz_key(spec)
    if not path.exists():
        raise _not_found(spec, path)
    if path.is_dir():
        return load_image_folder(path, spec)
    suffix = path.suffix.lower()
    if is_idx_path(path):
        return load_idx(path, spec)
    if suffix == ".npy":
        return load_npy(path, spec)
    if suffix == ".npz":
        return load_npz(path, key, spec)
    if suffix == ".csv":
        return load_csv(path, spec)
    if suffix == ".parquet":
        return load_parquet(path, spec)
    raise DataError(
        f"{path}: unknown kind of data file (extension {suffix or 'none'!r}); "
        f"allowed: {', '.join(FILE_KINDS)}"
    )


def _split_npz_key(spec: str) -> tuple[Path, str | None]:
    """``data.npz:train`` -> (Path("data.npz"), "train"); other specs have no key."""
    path = Path(spec).expanduser()
    if not path.exists() and ":" in spec:
        head, _, key = spec.rpartition(":")
        if head.lower().endswith(".npz") and key:
            return Path(head).expanduser(), key
    return path, None


def _not_found(spec: str, path: Path) -> DataNotFoundError:
    """The error for a spec that names nothing: a missing path, or an unknown word."""
    looks_like_path = (
        os.sep in spec or "/" in spec or spec.startswith((".", "~"))
        or path.suffix.lower() in DATA_SUFFIXES or is_idx_path(path)
    )
    if looks_like_path:
        return DataNotFoundError(f"{spec}: no such file or folder (looked at {path.absolute()})")
    return DataNotFoundError(
        f"--data {spec!r} is neither a built-in data set nor an existing path. "
        f"Built-in names: {', '.join(BUILTIN_NAMES)}. Accepted paths: {', '.join(FILE_KINDS)}"
    )


def load_digits() -> Dataset:
    """scikit-learn's bundled 8x8 digits: 1797 images with values 0..16 and labels 0..9.

    Returns:
        The dataset, kind "image", sample_shape (8, 8), pixel_max 16.
    """
    from sklearn.datasets import load_digits as sklearn_digits

    bunch = sklearn_digits()
    x = np.ascontiguousarray(bunch.data, dtype=np.float32)
    labels = np.asarray(bunch.target, dtype=np.int64)
    return Dataset(x, (8, 8), "image", "digits", labels, pixel_max=16.0)


def fashion_mnist_dir() -> Path:
    """The folder holding Fashion-MNIST's IDX files: ``$AEKIT_DATA`` if set, else Debian's.

    Returns:
        The folder path (it may not exist).
    """
    folder = os.environ.get("AEKIT_DATA")
    return Path(folder).expanduser() if folder else FASHION_MNIST_DIR


def load_fashion_mnist(split: str = "train") -> Dataset:
    """Fashion-MNIST from its IDX files: 60000 (train) or 10000 (test) 28x28 images with labels.

    Args:
        split: "train" or "test".

    Returns:
        The dataset, kind "image", sample_shape (28, 28), pixel_max 255.

    Raises:
        DataError: unknown split, or malformed files.
        DataNotFoundError: the files are not installed.
    """
    if split not in FASHION_MNIST_FILES:
        raise DataError(
            f"Fashion-MNIST split must be one of {tuple(FASHION_MNIST_FILES)}. Received: {split!r}"
        )
    folder = fashion_mnist_dir()
    name = FASHION_MNIST_FILES[split]
    for candidate in (folder / f"{name}.gz", folder / name):
        if candidate.is_file():
            spec = "fashion-mnist" if split == "train" else "fashion-mnist:test"
            return load_idx(candidate, spec)
    where = "AEKIT_DATA" if os.environ.get("AEKIT_DATA") else "the default folder"
    raise DataNotFoundError(
        f"fashion-mnist ({split}): {name}.gz (or {name}) not found in {folder} ({where}). "
        "Install it with `apt-get install dataset-fashion-mnist`, or set AEKIT_DATA to a folder "
        "holding the IDX files (train-images-idx3-ubyte.gz, train-labels-idx1-ubyte.gz, "
        "t10k-images-idx3-ubyte.gz, t10k-labels-idx1-ubyte.gz)"
    )
