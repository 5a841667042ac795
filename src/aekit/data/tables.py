"""Array and table files: ``.npy``, ``.npz[:key]``, ``.csv`` and ``.parquet``."""

from __future__ import annotations

import csv
import warnings
import zipfile
from pathlib import Path
from typing import Any

import numpy as np

from aekit.data.dataset import Dataset, dataset_from_array
from aekit.data.labels import LABEL_KEYS
from aekit.data.validate import parses_as_float, validate_array
from aekit.errors import DataError, DataNotFoundError

OBJECT_HINT = "object arrays are refused (they need pickle, which can run code); save numbers"


def load_npy(path: Path, source: str | None = None) -> Dataset:
    """Load a ``.npy`` file (no pickle).

    Args:
        path: the file.
        source: name for messages; defaults to the path.

    Returns:
        The dataset (tabular for 2-D arrays, images for 3-D / 4-D).

    Raises:
        DataError: unreadable, object array, wrong rank or invalid values.
    """
    source = source or str(path)
    try:
        array = np.load(path, allow_pickle=False)
    except (ValueError, OSError, EOFError) as err:
        raise DataError(f"{path}: cannot read as .npy: {_npy_reason(err)}") from err
    if not isinstance(array, np.ndarray):
        raise DataError(f"{path}: holds several arrays (an .npz archive?); rename it to .npz")
    return dataset_from_array(array, source)


def load_npz(path: Path, key: str | None = None, source: str | None = None) -> Dataset:
    """Load one array from a ``.npz`` archive (no pickle).

    Args:
        path: the archive.
        key: the array to load; None picks the only array, or the one named ``x`` (or ``X``).
        source: name for messages; defaults to ``path[:key]``.

    Returns:
        The dataset; when the data is the archive's ``x``/``X`` and it also holds ``y``,
        ``labels``, ``label`` or ``target`` with one integer per row, those are its labels
        (``--labels auto``).

    Raises:
        DataError: unreadable archive, key missing or ambiguous, object array, invalid values.
    """
    source = source or (f"{path}:{key}" if key else str(path))
    try:
        with np.load(path, allow_pickle=False) as archive:
            key = _pick_key(path, list(archive.files), key)
            array = archive[key]
            labels = _own_labels(archive, key, array.shape[0] if array.ndim else 0)
    except (ValueError, OSError, EOFError, zipfile.BadZipFile) as err:
        raise DataError(f"{path}: cannot read as .npz: {_npy_reason(err)}") from err
    return dataset_from_array(array, source, labels=labels)


def _own_labels(archive: Any, key: str, n_rows: int) -> np.ndarray | None:
    """The labels stored beside the data ``x``/``X`` (``y``, ``labels``...): integers (or
    integral floats, as ADBench stores them), one per row; None otherwise."""
    if key not in ("x", "X"):
        return None
    for name in LABEL_KEYS:
        if name in archive.files:
            values = np.asarray(archive[name])
            if values.shape != (n_rows,):
                return None
            if np.issubdtype(values.dtype, np.integer) or values.dtype == bool:
                return values.astype(np.int64)
            if (np.issubdtype(values.dtype, np.floating) and np.isfinite(values).all()
                    and np.all(values == np.round(values))):
                return values.astype(np.int64)
            return None
    return None


def _pick_key(path: Path, keys: list[str], key: str | None) -> str:
    """The array to read: the one asked for, the only one, or ``x``."""
    if key is not None:
        if key not in keys:
            raise DataError(f"{path}: no array named {key!r}; the archive holds {keys}")
        return key
    if len(keys) == 1:
        return keys[0]
    for name in ("x", "X"):
        if name in keys:
            return name
    if not keys:
        raise DataError(f"{path}: the archive holds no arrays")
    raise DataError(
        f"{path}: holds several arrays {keys} and none is named 'x' or 'X'; "
        f"choose one with {path}:KEY, e.g. {path}:{keys[0]}"
    )


def _npy_reason(err: Exception) -> str:
    """Readable reason for numpy's load errors."""
    text = str(err) or type(err).__name__
    if "allow_pickle" in text or "pickled" in text:
        return f"{OBJECT_HINT} ({text})"
    if isinstance(err, EOFError):
        return f"the file is empty or truncated ({text})"
    return text


def load_csv(path: Path, source: str | None = None) -> Dataset:
    """Load a comma-separated file of numbers; a non-numeric first row is taken as the header.

    Args:
        path: the file.
        source: name for messages; defaults to the path.

    Returns:
        The tabular dataset; with a header, its ``feature_names`` are the header's cells.

    Raises:
        DataError: empty, unreadable, ragged rows, or a non-numeric cell (naming the 1-based
            row of the file, counting the header line, and the column).
    """
    source = source or str(path)
    header = _read_header(path)
    names = header if header is not None else None
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)  # "input contained no data": checked below
            array = np.loadtxt(
                path, delimiter=",", skiprows=1 if header else 0, dtype=np.float64,
                ndmin=2, quotechar='"', comments=None, encoding="utf-8-sig",
            )
    except ValueError as err:
        _raise_first_bad_cell(path, header)
        raise DataError(f"{path}: cannot read as CSV: {err}") from err
    if array.shape[0] == 0:
        raise DataError(f"{path}: no data rows{' after the header' if header else ''}")
    x = validate_array(array, source, column_names=names)
    # a header whose width differs from the rows' is not a name per column: no names then
    feature_names = tuple(names) if names is not None and len(names) == x.shape[1] else None
    return Dataset(x, (x.shape[1],), "tabular", source, feature_names=feature_names)


def _read_header(path: Path) -> list[str] | None:
    """The first row when it holds a non-number (a header), else None."""
    try:
        with path.open(newline="", encoding="utf-8-sig") as handle:
            first = next(csv.reader(handle), None)
    except UnicodeDecodeError as err:
        raise DataError(f"{path}: not a UTF-8 text file, cannot read as CSV ({err})") from err
    except OSError as err:
        raise DataError(f"{path}: cannot read the file: {err}") from err
    if first is None or not any(cell.strip() for cell in first):
        raise DataError(f"{path}: the file is empty (no rows)")
    if all(parses_as_float(cell) for cell in first):
        return None
    return [cell.strip() for cell in first]


def _raise_first_bad_cell(path: Path, header: list[str] | None) -> None:
    """Scan the file with the csv module and raise DataError on its first bad row or cell."""
    try:
        _scan_rows(path, header)
    except (UnicodeDecodeError, csv.Error) as err:
        raise DataError(f"{path}: cannot read as CSV: {err}") from err


def _scan_rows(path: Path, header: list[str] | None) -> None:
    """Raise DataError on the first ragged row or non-numeric cell."""
    with path.open(newline="", encoding="utf-8-sig") as handle:
        reader = csv.reader(handle)
        width = len(header) if header else None
        if header:
            next(reader)
        for row in reader:
            if not row:
                continue  # blank lines are skipped, as np.loadtxt does
            width = width or len(row)
            if len(row) != width:
                raise DataError(
                    f"{path}: row {reader.line_num} (1-based, counting the header line) has "
                    f"{len(row)} cells but {'the header' if header else 'the first row'} has {width}"
                )
            for col, cell in enumerate(row):
                if not parses_as_float(cell):
                    raise DataError(
                        f"{path}: row {reader.line_num} (1-based, counting the header line), "
                        f"column {_column(col, header)}: {cell!r} is not a number; allowed: "
                        "numbers only (an optional header row, then numeric rows)"
                    )


def _column(col: int, header: list[str] | None) -> str:
    """``'name' (column 3)`` with a 1-based column number."""
    if header is not None and col < len(header):
        return f"{header[col]!r} (column {col + 1})"
    return f"{col + 1}"


def load_parquet(path: Path, source: str | None = None) -> Dataset:
    """Load a Parquet file whose columns are all numeric (or bool).

    Args:
        path: the file.
        source: name for messages; defaults to the path.

    Returns:
        The tabular dataset (``feature_names``: the column names); nulls become NaN and are
        then refused by validation.

    Raises:
        DataError: unreadable file, a non-numeric column (named), or invalid values.
    """
    import pyarrow as pa
    import pyarrow.parquet as pq

    source = source or str(path)
    try:
        table = pq.read_table(path)
    except FileNotFoundError as err:
        raise DataNotFoundError(f"{path}: no such file") from err
    except (pa.ArrowException, OSError, ValueError) as err:
        raise DataError(f"{path}: cannot read as Parquet: {err}") from err
    for name, column_type in zip(table.column_names, table.schema.types):
        if not (pa.types.is_integer(column_type) or pa.types.is_floating(column_type)
                or pa.types.is_boolean(column_type) or pa.types.is_decimal(column_type)):
            raise DataError(
                f"{path}: column {name!r} has type {column_type}, not a number; "
                "allowed: integer, float, bool or decimal columns"
            )
    x = np.empty((table.num_rows, table.num_columns), dtype=np.float64)
    for index, column in enumerate(table.columns):
        if pa.types.is_decimal(column.type) or column.null_count:
            column = column.cast(pa.float64())  # nulls -> NaN, reported by validation
        x[:, index] = column.to_numpy(zero_copy_only=False)
    x = validate_array(x, source, column_names=table.column_names)
    return Dataset(x, (x.shape[1],), "tabular", source,
                   feature_names=tuple(str(name) for name in table.column_names))
