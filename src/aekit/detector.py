"""``OutlierDetector``: anomaly scores from an autoencoder, with scikit-learn's outlier API.

    det = OutlierDetector(contamination=0.05, random_state=0).fit(x_train)  # raw units
    det.predict(x_new)          # -1 outlier, +1 inlier
    det.anomaly_score(x_new)    # higher = more anomalous
    det.feature_errors(x_new)   # each feature's share of each row's score

The score (``score_kind="combined"``, the default) adds two parts, each divided by its median on
the training rows so that neither dominates by its units:

- the **reconstruction error** (squared error summed over the features, in the scaled space the
  model works in): how far a row lies from what the model can represent (PCA's Q statistic);
- the **code distance**: the Mahalanobis distance of the row's code from the training codes
  (PCA's Hotelling T²): how unusual the row is *within* what the model represents.

A model that reconstructs well reconstructs the anomalies too (on ``cardio`` the better
autoencoder scores worse than PCA's cruder reconstruction); the code distance catches the rows
that are reconstructed but sit far from the others. ``score_kind="reconstruction"`` is the plain
reconstruction error.

Robustness to contaminated training data: after a first fit, the ``trim_fraction`` of the
training rows with the highest scores is set aside and the model is fitted again on the rest
(the anomalies it would otherwise learn to reconstruct are left out).

Threshold: with a float ``contamination``, ``offset_`` is that quantile of the training rows'
``score_samples`` (scikit-learn's rule; ``threshold_``, PyOD's, is ``-offset_``). With
``contamination="auto"`` the threshold is the score exceeded by ``target_fpr`` (1%) of the
validation rows of the final fit: rows held back from training, so the rate is the one to
expect on new normal data.
"""

from __future__ import annotations

from typing import Any, Sequence

import numpy as np
from sklearn.base import BaseEstimator, OutlierMixin
from sklearn.utils.validation import check_is_fitted, validate_data

from aekit.api import Autoencoder

SCORES = ("combined", "reconstruction")


class OutlierDetector(OutlierMixin, BaseEstimator):
    """Detect outliers by an autoencoder's reconstruction error and code distance.

    Args:
        contamination: expected share of outliers in the training data (in (0, 0.5]), or
            ``"auto"``: the threshold gives ``target_fpr`` false positives on held-back rows.
        n_components: size of the code; None: aekit's choice (``ceil(features / 4)``).
        hidden: encoder hidden widths; None: chosen from the data.
        activation, epochs, batch_size, lr, optimizer, schedule, validation_split, pca_init:
            training options, as for :class:`aekit.AutoencoderTransformer` (None / "auto":
            aekit's data-dependent defaults).
        scaling: how raw data is scaled (``standard`` by default, also ``minmax``, ``auto``,
            ``none``): the detector takes raw units.
        score_kind: ``combined`` (reconstruction error + code distance) or ``reconstruction``.
        trim_fraction: share of the training rows set aside (the highest scores) before a
            second fit; None or 0: one fit.
        target_fpr: the false-positive rate on held-back rows that ``contamination="auto"``
            aims at.
        random_state: seed of the split, the initialisation and the batch order.
        threads: CPU threads for PyTorch (None: all cores). verbose: show training progress.
    """

    def __init__(self, contamination: float | str = "auto", *, n_components: int | None = None,
                 hidden: Sequence[int] | None = None, activation: str = "relu",
                 epochs: int | None = None, batch_size: int | None = None, lr: float = 2e-3,
                 optimizer: str = "adam", schedule: str = "one_cycle",
                 validation_split: float | str = "auto", pca_init: bool = True,
                 scaling: str = "standard", score_kind: str = "combined",
                 trim_fraction: float | None = 0.1, target_fpr: float = 0.01,
                 random_state: int | None = None, threads: int | None = None,
                 verbose: bool = False) -> None:
        self.contamination = contamination
        self.n_components = n_components
        self.hidden = hidden
        self.activation = activation
        self.epochs = epochs
        self.batch_size = batch_size
        self.lr = lr
        self.optimizer = optimizer
        self.schedule = schedule
        self.validation_split = validation_split
        self.pca_init = pca_init
        self.scaling = scaling
        self.score_kind = score_kind
        self.trim_fraction = trim_fraction
        self.target_fpr = target_fpr
        self.random_state = random_state
        self.threads = threads
        self.verbose = verbose

    # -- parameters ---------------------------------------------------------------------------
    def _check_params(self) -> None:
        c = self.contamination
        if not (c == "auto" or (isinstance(c, (float, int)) and not isinstance(c, bool)
                                and 0.0 < c <= 0.5)):
            raise ValueError(f"`contamination` must be 'auto' or a float in (0, 0.5]. "
                             f"Received: contamination={c!r}")
        if self.score_kind not in SCORES:
            raise ValueError(f"`score_kind` must be one of {', '.join(SCORES)}. "
                             f"Received: score_kind={self.score_kind!r}")
        t = self.trim_fraction
        if t is not None and not (isinstance(t, (float, int)) and 0.0 <= t < 0.5):
            raise ValueError(f"`trim_fraction` must be None or a float in [0, 0.5). "
                             f"Received: trim_fraction={t!r}")
        if not (isinstance(self.target_fpr, (float, int)) and 0.0 < self.target_fpr < 1.0):
            raise ValueError(f"`target_fpr` must be a float in (0, 1). "
                             f"Received: target_fpr={self.target_fpr!r}")

    def _options(self, seed: int, n_rows: int) -> dict[str, Any]:
        """The aekit options these parameters stand for (validated by aekit's config)."""
        split = self.validation_split
        if split == "auto" and n_rows < 20:
            split = 0.0  # too few rows to hold any back
        return dict(latent_dim=self.n_components,
                    hidden=tuple(self.hidden) if self.hidden is not None else None,
                    activation=self.activation, epochs=self.epochs,
                    batch_size=self.batch_size, lr=self.lr, optimizer=self.optimizer,
                    schedule=self.schedule, validation_split=split, pca_init=self.pca_init,
                    seed=seed, threads=self.threads, progress=bool(self.verbose),
                    scaling=self.scaling, device="cpu")

    def _seed(self) -> int:
        seed = self.random_state
        if not isinstance(seed, (int, np.integer)) or isinstance(seed, bool):
            # None or a RandomState: draw a seed so that fit stays a function of the data.
            seed = int(np.random.RandomState(seed).randint(0, 2**31 - 1))
        return int(seed)

    # -- fitting ------------------------------------------------------------------------------
    def fit(self, X: Any, y: Any = None) -> "OutlierDetector":
        """Train on ``X`` (raw units, outliers allowed); ``y`` is ignored.

        Raises:
            ValueError: invalid data (scikit-learn's messages) or parameters.
        """
        self._check_params()
        X = validate_data(self, X, dtype=np.float32, ensure_min_samples=2)
        seed = self._seed()
        self.autoencoder_, val_rows = self._fit_once(X, seed)
        self.n_fits_ = 1
        self.trimmed_index_ = np.zeros(0, dtype=np.int64)
        n_trim = int(round((self.trim_fraction or 0.0) * len(X)))
        if n_trim and len(X) - n_trim >= 20:
            first = self._raw_scores(X)
            order = np.argsort(-first, kind="stable")
            self.trimmed_index_ = np.sort(order[:n_trim])
            kept = np.sort(order[n_trim:])
            self.autoencoder_, val_rows = self._fit_once(X[kept], seed)
            val_rows = kept[val_rows]
            self.n_fits_ = 2
        self.decision_scores_ = self._raw_scores(X)
        self.offset_ = -self._threshold(self.decision_scores_, val_rows)
        self.threshold_ = -self.offset_
        self.labels_ = (self.decision_scores_ > self.threshold_).astype(np.int64)
        return self

    def _fit_once(self, X: np.ndarray, seed: int) -> tuple[Autoencoder, np.ndarray]:
        """One autoencoder on ``X``, with the score's reference statistics; also returns the
        validation rows (indices of ``X``)."""
        ae = Autoencoder(**self._options(seed, len(X)))
        ae.fit(X, verbose=bool(self.verbose))
        train_index = np.asarray(ae.train_index)
        val_index = np.setdiff1d(np.arange(len(X)), train_index)
        self._set_reference(ae, X[train_index])
        return ae, val_index

    def _set_reference(self, ae: Autoencoder, x_train: np.ndarray) -> None:
        """Statistics of the training rows that put the two parts of the score on one scale:
        the codes' mean and inverse covariance, and each part's median."""
        codes = ae.encode(x_train).astype(np.float64)  # (n, latent_dim)
        self.code_mean_ = codes.mean(axis=0)
        cov = np.atleast_2d(np.cov(codes - self.code_mean_, rowvar=False))
        ridge = 1e-6 * max(float(np.trace(cov)) / len(cov), 1e-12)
        self.code_precision_ = np.linalg.pinv(cov + ridge * np.eye(len(cov)))
        self.autoencoder_ = ae
        recon, dist = self._parts(x_train)
        self.recon_scale_ = _positive_median(recon)
        self.code_scale_ = _positive_median(dist)

    def _threshold(self, scores: np.ndarray, val_rows: np.ndarray) -> float:
        """The anomaly score above which a row is an outlier (see the module's docstring)."""
        if self.contamination == "auto":
            reference = scores[val_rows] if len(val_rows) else scores
            return float(np.quantile(reference, 1.0 - self.target_fpr))
        return float(np.percentile(scores, 100.0 * (1.0 - float(self.contamination))))

    # -- scoring ------------------------------------------------------------------------------
    def _residuals(self, X: np.ndarray) -> np.ndarray:
        """Squared residuals per feature in the scaled space: (n, n_features) float64."""
        ae = self.autoencoder_
        x_scaled = ae.scaler.transform(X).astype(np.float32)
        x_hat = ae.reconstruct_scaled(x_scaled)
        return np.square(x_hat.astype(np.float64) - x_scaled)

    def _parts(self, X: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(reconstruction error, squared code distance) of each row, raw units."""
        recon = self._residuals(X).sum(axis=1)
        if len(X) == 0:
            return recon, recon.copy()
        centred = self.autoencoder_.encode(X).astype(np.float64) - self.code_mean_
        dist = np.einsum("ij,jk,ik->i", centred, self.code_precision_, centred)
        return recon, np.maximum(dist, 0.0)

    def _raw_scores(self, X: np.ndarray) -> np.ndarray:
        recon, dist = self._parts(X)
        if self.score_kind == "reconstruction":
            return recon / self.recon_scale_
        return recon / self.recon_scale_ + dist / self.code_scale_

    def anomaly_score(self, X: Any) -> np.ndarray:
        """Anomaly score of each row of ``X`` (raw units): higher = more anomalous.

        Returns:
            (n_samples,) float64.
        """
        check_is_fitted(self)
        X = validate_data(self, X, dtype=np.float32, reset=False)
        return self._raw_scores(X)

    def score_samples(self, X: Any) -> np.ndarray:
        """``-anomaly_score(X)``: lower = more abnormal, as scikit-learn's detectors."""
        return -self.anomaly_score(X)

    def decision_function(self, X: Any) -> np.ndarray:
        """``score_samples(X) - offset_``: negative for outliers."""
        return self.score_samples(X) - self.offset_

    def predict(self, X: Any) -> np.ndarray:
        """-1 for outliers, +1 for inliers."""
        decision = self.decision_function(X)
        return np.where(decision < 0, -1, 1)

    def feature_errors(self, X: Any) -> np.ndarray:
        """Each feature's share of each row's anomaly score: rows sum to ``anomaly_score(X)``.

        The score is split in proportion to the features' squared reconstruction errors (the
        code distance, too, is attributed through them: the features the model cannot
        reproduce are the ones that make the row unusual).

        Returns:
            (n_samples, n_features) float64, non-negative.
        """
        check_is_fitted(self)
        X = validate_data(self, X, dtype=np.float32, reset=False)
        residuals = self._residuals(X)
        total = residuals.sum(axis=1, keepdims=True)
        n = residuals.shape[1]
        share = np.divide(residuals, total, out=np.full_like(residuals, 1.0 / n),
                          where=total > 0)
        return share * self._raw_scores(X)[:, None]

    def __sklearn_tags__(self):  # noqa: D105
        tags = super().__sklearn_tags__()
        tags.non_deterministic = False
        return tags


def _positive_median(values: np.ndarray) -> float:
    """The median of ``values``, or a small positive number when it is zero (a perfect fit)."""
    median = float(np.median(values)) if len(values) else 0.0
    if median > 0:
        return median
    mean = float(np.mean(values)) if len(values) else 0.0
    return mean if mean > 0 else 1e-12
