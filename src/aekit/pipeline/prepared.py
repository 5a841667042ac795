"""The prepared run: everything decided before the first step, in memory or streamed."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from aekit.config import RunConfig
from aekit.data import Dataset, Scaler
from aekit.data.out_of_core import ChunkedNpy


@dataclass
class PreparedRun:
    """Everything decided before the first step (arrays are scaled float32).

    Attributes:
        config: the options with the data-dependent defaults filled in.
        data: the rows the model learns from (the test rows removed); streamed: the file.
        train_index, val_index: rows of ``data`` for training and validation.
        scaler: fitted on the training rows. output_activation: sigmoid, identity or clip.
        x_train, x_val: scaled inputs (``x_train`` None when streamed); y_train, y_val:
            scaled targets (None: the inputs).
        test, test_source: the test set (raw, or None) and where it came from.
        pca: PCA at the latent size, fitted on the scaled training targets.
        row_weight: weight of each training row's loss (mean 1), or None: equal.
        draw_weight: class-balanced draw probabilities of the training rows, or None.
        stream: the ``.npy`` streamed in chunks (None: in memory). Streamed, ``train_index``,
            ``val_index`` and ``test_index`` are rows of the file (sorted) and ``held`` the
            validation and test rows together, never trained on.
    """

    config: RunConfig
    data: Dataset | ChunkedNpy
    train_index: np.ndarray
    val_index: np.ndarray
    scaler: Scaler
    output_activation: str
    x_train: np.ndarray | None
    x_val: np.ndarray | None
    y_train: np.ndarray | None = None
    y_val: np.ndarray | None = None
    test: Dataset | None = None
    test_source: str = "none"
    pca: Any = None
    row_weight: np.ndarray | None = None
    draw_weight: np.ndarray | None = None
    stream: ChunkedNpy | None = None
    held: np.ndarray | None = None
    test_index: np.ndarray | None = None

    @property
    def n_features(self) -> int:
        """Values per sample."""
        return self.data.n_features

    @property
    def train_labels(self) -> np.ndarray | None:
        """Class labels of the training rows, or None."""
        labels = getattr(self.data, "labels", None)  # a streamed file has none in memory
        return labels[self.train_index] if labels is not None else None
