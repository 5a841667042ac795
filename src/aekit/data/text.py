"""Text as vectors: ``--data text:PATH[:COLUMN][?options]``.

Specs:
    1. ``text:DIR`` — every ``*.txt`` file under DIR (sorted; UTF-8) is one sample. When the
       files sit in two or more subfolders, the subfolder is the label (``DIR/sport/a.txt``).
    2. ``text:FILE.csv:COLUMN`` — each row's COLUMN (by header name) is one sample; an optional
       ``label`` column of integers gives the labels.
Options after ``?``, joined by ``&``:
    ``vectorizer=tfidf`` (default; scikit-learn ``TfidfVectorizer``, vocabulary learned from
    these texts) or ``hashing`` (``HashingVectorizer``: stateless, so texts loaded later map to
    the same features); ``max_features=N`` (default 2000: vocabulary size, or hash buckets).

Rows are L2-normalized non-negative vectors, so the data is tabular and already in [0, 1].
"""

from __future__ import annotations

from pathlib import Path
from urllib.parse import parse_qsl

import numpy as np

from aekit.data.dataset import Dataset
from aekit.data.labels import csv_columns
from aekit.data.validate import validate_array
from aekit.errors import DataError, DataNotFoundError

VECTORIZERS = ("tfidf", "hashing")
DEFAULT_MAX_FEATURES = 2000
TEXT_OPTIONS = ("vectorizer", "max_features")


def split_spec(spec: str, prefix: str, allowed: tuple[str, ...]) -> tuple[str, dict[str, str]]:
    """``"text:docs?max_features=50"`` -> (``"docs"``, ``{"max_features": "50"}``).

    Raises:
        DataError: an option outside ``allowed``.
    """
    body = spec[len(prefix) + 1:]
    body, _, query = body.partition("?")
    options = dict(parse_qsl(query, keep_blank_values=True))
    unknown = sorted(set(options) - set(allowed))
    if unknown:
        raise DataError(f"--data {spec!r}: unknown option(s) {', '.join(unknown)}; allowed: "
                        f"{', '.join(allowed)}")
    return body, options


def int_option(spec: str, options: dict[str, str], name: str, default: int,
               low: int = 1) -> int:
    """An integer option >= ``low``, or DataError echoing what was received."""
    if name not in options:
        return default
    try:
        value = int(options[name])
    except ValueError:
        value = low - 1
    if value < low:
        raise DataError(f"--data {spec!r}: `{name}` must be an integer >= {low}. Received: "
                        f"{name}={options[name]!r}")
    return value


def folder_labels(files: list[Path], root: Path) -> np.ndarray | None:
    """Labels from the subfolder of each file (sorted names -> 0, 1, ...), or None when the
    files do not sit in two or more subfolders."""
    groups = [f.relative_to(root).parts[0] if len(f.relative_to(root).parts) > 1 else ""
              for f in files]
    names = sorted(set(groups))
    if len(names) < 2 or "" in names:
        return None
    return np.asarray([names.index(g) for g in groups], dtype=np.int64)


def read_text_folder(folder: Path, spec: str) -> tuple[list[str], np.ndarray | None]:
    """The texts of every ``*.txt`` under ``folder`` and their subfolder labels."""
    files = sorted(p for p in folder.rglob("*.txt") if p.is_file())
    if not files:
        raise DataError(f"--data {spec!r}: no .txt files in {folder}")
    texts = []
    for path in files:
        try:
            texts.append(path.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError) as exc:
            raise DataError(f"{path}: cannot read as UTF-8 text ({exc})") from exc
    return texts, folder_labels(files, folder)


def read_csv_column(path: Path, column: str, spec: str) -> tuple[list[str], np.ndarray | None]:
    """The values of ``column`` of a CSV file (by header name or 0-based position), and its
    ``label`` column if it has one of integers."""
    values = csv_columns(path, [column, "label"], spec, "--data", optional=("label",))
    texts = [str(v) for v in values[column]]
    labels = None
    if column != "label" and "label" in values:
        try:
            labels = np.asarray([int(v) for v in values["label"]], dtype=np.int64)
        except ValueError:
            labels = None  # a non-integer label column is just text
    return texts, labels


def vectorize(texts: list[str], vectorizer: str, max_features: int) -> np.ndarray:
    """Texts -> (n, features) float32: TF-IDF over the ``max_features`` most frequent terms, or
    hashed term counts in ``max_features`` buckets, rows L2-normalized (non-negative)."""
    from sklearn.feature_extraction.text import HashingVectorizer, TfidfVectorizer

    if vectorizer == "tfidf":
        model = TfidfVectorizer(max_features=max_features, dtype=np.float32)
        matrix = model.fit_transform(texts)
    else:
        model = HashingVectorizer(n_features=max_features, alternate_sign=False,
                                  dtype=np.float32)
        matrix = model.transform(texts)
    return np.ascontiguousarray(matrix.toarray(), dtype=np.float32)


def load_text(spec: str) -> Dataset:
    """Load a ``text:`` spec (see the module docstring) as a tabular dataset.

    Raises:
        DataNotFoundError: the folder or file does not exist.
        DataError: no texts, a missing column, a bad option, an empty vocabulary.
    """
    body, options = split_spec(spec, "text", TEXT_OPTIONS)
    vectorizer = options.get("vectorizer", "tfidf")
    if vectorizer not in VECTORIZERS:
        raise DataError(f"--data {spec!r}: `vectorizer` must be one of {', '.join(VECTORIZERS)}. "
                        f"Received: vectorizer={vectorizer!r}")
    max_features = int_option(spec, options, "max_features", DEFAULT_MAX_FEATURES)
    path, column = Path(body).expanduser(), None
    if not path.exists() and ":" in body:
        head, _, column = body.rpartition(":")
        path = Path(head).expanduser()
    if not path.exists():
        raise DataNotFoundError(f"--data {spec!r}: no such file or folder {path} (expected "
                                "text:DIR of .txt files or text:FILE.csv:COLUMN)")
    if path.is_dir():
        texts, labels = read_text_folder(path, spec)
    elif column:
        texts, labels = read_csv_column(path, column, spec)
    else:
        raise DataError(f"--data {spec!r}: a CSV file needs the text column: "
                        f"text:{path}:COLUMN")
    try:
        x = vectorize(texts, vectorizer, max_features)
    except ValueError as exc:  # e.g. "empty vocabulary; perhaps the documents only contain stop words"
        raise DataError(f"--data {spec!r}: cannot vectorize the texts ({exc})") from exc
    return Dataset(validate_array(x, spec), (x.shape[1],), "tabular", spec, labels)
