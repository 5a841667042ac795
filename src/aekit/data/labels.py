"""Class labels: read from a file (``--labels SPEC``), checked like data, attached to a Dataset.

A label spec is one of:

- ``auto``: the data's own labels (digits, Fashion-MNIST, an IDX file with its sibling labels
  file, a folder of images with one subfolder per class, an ``.npz`` holding ``y`` or
  ``labels`` beside its data), or none when it has none;
- ``none``: ignore any labels;
- ``FILE.npy``: a 1-D array, one label per row;
- ``FILE.npz:KEY`` (or ``FILE.npz`` holding ``y`` / ``labels`` / a single array);
- ``FILE.csv:COLUMN``: a column of a CSV file, by header name or 0-based position.

Labels are integers or strings; strings (and numbers that are not integers, such as 1.0 or
"3") become class codes 0, 1, ... in sorted order, and their names are kept
(``Dataset.label_names``) so that per-class results name the classes as the file does.
"""

from __future__ import annotations

import csv
import dataclasses
import zipfile
from pathlib import Path

import numpy as np

from aekit.data.dataset import Dataset
from aekit.data.validate import parses_as_float
from aekit.errors import DataError, DataNotFoundError

LABEL_KEYS = ("y", "labels", "label", "target")
SPEC_FORMS = ("auto", "none", "FILE.npy", "FILE.npz:KEY", "FILE.csv:COLUMN")


def with_labels(ds: Dataset, spec: str | None, what: str = "--labels") -> Dataset:
    """``ds`` with the labels ``spec`` names (``auto``/None: its own; ``none``: without).

    Raises:
        DataError / DataNotFoundError: unreadable labels, or not one per row of ``ds``.
    """
    if spec is None or spec == "auto":
        return ds
    if spec == "none":
        return dataclasses.replace(ds, labels=None, label_names=None)
    labels, names = read_labels(spec, what)
    check_labels(labels, ds.n_samples, f"{what} {spec}", ds.source)
    return dataclasses.replace(ds, labels=labels, label_names=names)


def test_labels_spec(labels: str, test_labels: str | None) -> str:
    """The labels of ``--test``: ``--test-labels`` when given, else the test set's own --
    unless ``--labels none`` says to ignore labels altogether."""
    return test_labels or ("none" if labels == "none" else "auto")


def attach(ds: Dataset, labels: object, what: str = "labels") -> Dataset:
    """``ds`` with labels given in Python (a sequence or array, one per row; None: unchanged)."""
    if labels is None:
        return ds
    codes, names = encode_labels(np.asarray(labels), what)
    check_labels(codes, ds.n_samples, what, ds.source)
    return dataclasses.replace(ds, labels=codes, label_names=names)


def read_labels(spec: str, what: str = "--labels") -> tuple[np.ndarray, tuple[str, ...] | None]:
    """Read the labels a spec names: int64 class codes and the class names (None: the codes
    are the labels themselves)."""
    path, _, key = spec.rpartition(":") if not Path(spec).exists() and ":" in spec \
        else (spec, "", "")
    file = Path(path).expanduser()
    if not file.is_file():
        raise DataNotFoundError(f"{what} {spec!r}: no such file {file}. Allowed: "
                                f"{', '.join(SPEC_FORMS)}")
    suffix = file.suffix.lower()
    if suffix == ".npy" and not key:
        try:
            values = np.load(file, allow_pickle=False)
        except (ValueError, OSError, EOFError) as exc:
            raise DataError(f"{what} {spec!r}: cannot read {file} as .npy ({exc})") from exc
    elif suffix == ".npz":
        values = _npz_labels(file, key or None, spec, what)
    elif suffix in (".csv", ".txt") and key:
        values = csv_columns(file, [key], spec, what)[key]
    else:
        raise DataError(f"{what} {spec!r}: not a label spec. Allowed: {', '.join(SPEC_FORMS)}"
                        + (" (a CSV file needs its column: FILE.csv:COLUMN)"
                           if suffix == ".csv" else ""))
    return encode_labels(values, f"{what} {spec}")


def encode_labels(values: np.ndarray, what: str) -> tuple[np.ndarray, tuple[str, ...] | None]:
    """Integer class codes for label values, and the names when they are not integers.

    Raises:
        DataError: not one-dimensional, a missing value (NaN, empty) or an object array.
    """
    values = np.asarray(values)
    if values.ndim == 2 and values.shape[1] == 1:
        values = values[:, 0]
    if values.ndim != 1:
        raise DataError(f"{what}: labels must be one value per row (1-D). Received: shape "
                        f"{values.shape}")
    if values.dtype == bool:
        return values.astype(np.int64), None
    if np.issubdtype(values.dtype, np.integer):
        return values.astype(np.int64), None
    if np.issubdtype(values.dtype, np.floating):
        bad = np.flatnonzero(~np.isfinite(values))
        if bad.size:
            raise DataError(f"{what}: label of row {bad[0]} is {values[bad[0]]} ({bad.size} "
                            "missing or infinite label(s)); every row needs a class")
        if np.all(values == np.round(values)):
            return values.astype(np.int64), None
        values = values.astype(str)
    if values.dtype.kind not in "US":
        raise DataError(f"{what}: labels must be integers or strings. Received: dtype "
                        f"{values.dtype}")
    text = np.char.strip(values.astype(str))
    empty = np.flatnonzero(text == "")
    if empty.size:
        raise DataError(f"{what}: label of row {empty[0]} is empty ({empty.size} empty "
                        "label(s)); every row needs a class")
    if all(_is_int(v) for v in np.unique(text)):
        return text.astype(np.int64), None
    names, codes = np.unique(text, return_inverse=True)
    return codes.astype(np.int64), tuple(str(n) for n in names)


def check_labels(labels: np.ndarray, n_rows: int, what: str, source: str) -> None:
    """One label per row of the data, or a clear error naming both counts."""
    if labels.shape != (n_rows,):
        raise DataError(f"{what}: {labels.shape[0] if labels.ndim else 0} labels for "
                        f"{n_rows} rows of {source}; give one label per row")


def class_name(ds: Dataset, code: int) -> str:
    """How results name class ``code`` of ``ds``: its name, or the code itself."""
    names = ds.label_names
    return names[code] if names is not None and 0 <= code < len(names) else str(int(code))


def same_classes(train: Dataset, test: Dataset) -> Dataset:
    """``test`` with its label codes made those of ``train`` when both have names (a class
    name present in both gets the same code; a name only in the test set gets a new code past
    the training ones)."""
    if (train.label_names is None or test.label_names is None or test.labels is None
            or train.label_names == test.label_names):
        return test
    names = list(train.label_names)
    extra = [n for n in test.label_names if n not in names]
    names += extra
    recode = np.asarray([names.index(n) for n in test.label_names], dtype=np.int64)
    return dataclasses.replace(test, labels=recode[test.labels], label_names=tuple(names))


def _is_int(text: str) -> bool:
    try:
        int(text)
    except ValueError:
        return False
    return True


def _npz_labels(file: Path, key: str | None, spec: str, what: str) -> np.ndarray:
    try:
        with np.load(file, allow_pickle=False) as archive:
            keys = list(archive.files)
            if key is None:
                found = [k for k in LABEL_KEYS if k in keys]
                key = found[0] if found else (keys[0] if len(keys) == 1 else None)
            if key is None or key not in keys:
                raise DataError(f"{what} {spec!r}: {file} holds {keys}; name the labels' "
                                f"array: {file}:KEY")
            return archive[key]
    except (ValueError, OSError, EOFError, zipfile.BadZipFile) as exc:
        raise DataError(f"{what} {spec!r}: cannot read {file} as .npz ({exc})") from exc


def csv_columns(file: Path, columns: list[str], spec: str, what: str,
                optional: tuple[str, ...] = ()) -> dict[str, np.ndarray]:
    """The values of ``columns`` of a CSV file, read once: each named by its header or by its
    0-based position (a header of numbers is then data), as arrays of strings; a column of
    ``optional`` the file lacks is left out.

    Raises:
        DataError: unreadable, empty, a missing column (listing the file's), a short row.
    """
    try:
        with open(file, newline="", encoding="utf-8-sig") as handle:
            rows = list(csv.reader(handle))
    except (OSError, UnicodeDecodeError, csv.Error) as exc:
        raise DataError(f"{what} {spec!r}: cannot read {file} as CSV ({exc})") from exc
    if not rows:
        raise DataError(f"{what} {spec!r}: {file} is empty")
    header = rows[0]
    out: dict[str, np.ndarray] = {}
    for column in columns:
        if column in header:
            index, body = header.index(column), rows[1:]
        elif column.isdigit() and int(column) < len(header):
            index = int(column)
            body = rows[1:] if not all(parses_as_float(c) for c in header) else rows
        elif column in optional:
            continue
        else:
            raise DataError(f"{what} {spec!r}: {file} has no column {column!r}; its columns: "
                            f"{', '.join(header)} (or a 0-based position)")
        if not body:
            raise DataError(f"{what} {spec!r}: {file} has no data rows after the header")
        short = [i for i, row in enumerate(body) if len(row) <= index]
        if short:
            raise DataError(f"{what} {spec!r}: row {short[0] + 1} of {file} has no column "
                            f"{column!r}")
        out[column] = np.asarray([row[index] for row in body])
    return out
