"""``OutlierDetector``: anomaly scores from an autoencoder, with scikit-learn's outlier API.

    det = OutlierDetector(contamination=0.05, random_state=0).fit(x_train)  # raw units
    det.predict(x_new)          # -1 outlier, +1 inlier
    det.anomaly_score(x_new)    # higher = more anomalous
    det.feature_errors(x_new)   # each feature's share of each row's score

The score adds four parts on tables (three on images), each divided by its median on the
training rows so that none dominates by its units:

- the **reconstruction error**: how far a row lies from what the model can represent (PCA's Q
  statistic). ``score_kind="whitened"`` (the default for tables) measures the residual vector
  by its Mahalanobis distance (the residuals' covariance on the training rows, regularised),
  so a residual in a direction where the training rows never have one counts more than the
  same error where they often do; ``"combined"`` (the default for images) sums the squared
  residuals (in the scaled space): whitening hundreds of correlated pixels from a few
  thousand rows amplifies noise (Fashion-MNIST one-class, 4 classes: 0.850 whitened, 0.878
  plain);
- the **code distance** (``code_distance``; on unless ``novelty``): the Mahalanobis distance of
  the row's code from the training codes (PCA's Hotelling T²): how unusual the row is *within*
  what the model represents;
- the **neighbour distance** (``n_neighbors``, 10 by default, 5 with ``novelty``): the
  squared distance from the
  row's code to its ``n_neighbors``-th nearest training code (a training row counts itself).
  The Mahalanobis distance sees one cloud; a row can sit inside it yet far from every other
  row (between clusters, in a sparse pocket). On the 27 ADBench tables
  (``benchmarks/anomaly.py``, 3 seeds) this part lifts the mean ROC-AUC from 0.765 to 0.775
  (k = 10; 0.775-0.776 for k from 10 to 40); the neighbours are searched among at most
  ``MAX_NEIGHBOUR_ROWS`` training codes;
- the **input neighbour distance** (``input_distance``; on for tables): the squared distance
  from the scaled row itself to its ``n_neighbors``-th nearest training row, the one part
  that does not depend on what the model learned (PyOD's KNN detector, measured beside the
  model's parts), weighted ``INPUT_DISTANCE_WEIGHT`` (3) where the other parts weigh 1.
  Unsupervised, 5 seeds, mean ROC-AUC on the design / confirmation half: 0.768 / 0.766
  without it, 0.771 / 0.781 with it (docs/guide/detect.md, "What was tried").

A model that reconstructs well reconstructs the anomalies too (on ``cardio`` the better
autoencoder scores worse than PCA's cruder reconstruction); the code distance catches the rows
that are reconstructed but sit far from the others. ``score_kind="reconstruction"`` is the
plain reconstruction error (squared, summed over the features).

Robustness to contaminated training data: after a first fit, the ``trim_fraction`` of the
training rows with the highest scores is set aside and the model is fitted again on the rest
(the anomalies it would otherwise learn to reconstruct are left out). The second fit starts
from the first one's weights and runs ``refit_share`` of its epochs (half, at least 5): it
only has to unlearn the rows set aside, not learn the data again.

Novelty detection (``novelty=True``, as scikit-learn's ``LocalOutlierFactor``): the training
rows are taken to be clean (normal rows only), so none is trimmed, and the threshold is the
score exceeded by ``target_fpr`` of the held-back clean rows: the false-positive rate to expect
on new normal rows. Score new rows with ``predict``, ``decision_function`` or
``score_samples``. The score there is the reconstruction error, the distance to the 5th
nearest training code and the distance to the 5th nearest training row (weighted 3), without
the code distance, on tables scaled to [0, 1] per feature (``scaling`` ``minmax``): with clean
training rows the neighbours describe the normal rows' shape better than one Mahalanobis
cloud, and min-max scaling does not let a feature with a few extreme values squeeze the
others. ADBench's semi-supervised split in ``benchmarks/anomaly.py``, mean ROC-AUC over 5
seeds, design half / confirmation half: reconstruction and code neighbours on standard-scaled
rows 0.863 / 0.830; with min-max scaling and the input neighbours 0.874 / 0.837; the input
neighbours weighted 3 (now) 0.875 / 0.837; PyOD's KNN (k = 5) 0.875 / 0.834
(docs/guide/detect.md, "What was tried").

Threshold: with a float ``contamination``, ``offset_`` is that quantile of the training rows'
``score_samples`` (scikit-learn's rule; ``threshold_``, PyOD's, is ``-offset_``). With
``contamination="auto"`` the threshold is the score exceeded by ``target_fpr`` (1%) of the
validation rows: rows held back before the first fit (``validation_split``, aekit's "auto"
share) that no fit trains on or trims, so the rate is the one to expect on new data like the
training data.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any, Sequence

import numpy as np
from sklearn.base import BaseEstimator, OutlierMixin
from sklearn.utils.validation import check_is_fitted, validate_data

from aekit.api import Autoencoder
from aekit.config import RunConfig
from aekit.errors import ConfigError
from aekit.estimator import options_of, seed_of
from aekit.pipeline import prepare, split_plan
from aekit.detector_files import SCORES, read_detector, write_detector
from aekit.detector_scores import (kth_neighbour_distance, mahalanobis, mean_and_precision,
                                   positive_median)

MAX_NEIGHBOUR_ROWS = 20_000  # training codes kept for the neighbour distance (a seeded sample)
# The input neighbour distance's weight in the score (the other parts weigh 1): with clean
# training rows it is the most reliable part, and the model's parts correct it (module docs).
INPUT_DISTANCE_WEIGHT = 3.0
REFIT_MIN_EPOCHS = 5


class OutlierDetector(OutlierMixin, BaseEstimator):
    """Detect outliers by an autoencoder's reconstruction error and code distance.

    Args:
        contamination: expected share of outliers in the training data (in (0, 0.5]), or
            ``"auto"``: the threshold gives ``target_fpr`` false positives on held-back rows.
        novelty: the training rows are normal ones only (novelty detection): no trimming,
            and the threshold is always ``target_fpr`` of held-back clean rows (so
            ``contamination`` must be ``"auto"`` and ``validation_split`` must hold rows
            back).
        n_components: size of the code; None: aekit's choice (``ceil(features / 4)``).
        hidden: encoder hidden widths; None: chosen from the data.
        activation, epochs, batch_size, lr, optimizer, schedule, validation_split, pca_init:
            training options, as for :class:`aekit.AutoencoderTransformer` (None: the
            ``config``'s value, else aekit's defaults, some chosen from the data).
        scaling: how raw data is scaled (``standard``, ``minmax``, ``auto``, ``none``): the
            detector takes raw units. None: ``minmax`` for novelty on tables, ``standard`` for
            other tables, ``auto`` for images (``image_shape`` given). The one used is
            ``scaling_``.
        image_shape: (height, width) or (channels, height, width) when the rows are flattened
            images: the model is then chosen as for images (and ``config`` may ask for the
            convolutional one, ``kind="conv"``). None: a table.
        score_kind: ``whitened`` (Mahalanobis distance of the residual + code distance),
            ``combined`` (squared reconstruction error + code distance), ``reconstruction``,
            or ``auto``: ``combined`` for images (``image_shape`` given), else ``whitened``.
            The kind used is ``score_kind_``.
        code_distance: add the code distance (see the module); None: yes, unless
            ``novelty``.
        n_neighbors: the neighbour distances' k (see the module), added to ``whitened`` and
            ``combined`` scores; None or 0: no neighbour part; ``"auto"``: 10, or 5 with
            ``novelty``.
        input_distance: add the input neighbour distance (see the module; it keeps up to
            ``MAX_NEIGHBOUR_ROWS`` scaled training rows in the detector); None: yes for
            tables, no for images (``image_shape`` given).
        trim_fraction: share of the training rows set aside (the highest scores) before a
            second fit; None or 0: one fit.
        refit_share: the second fit starts from the first fit's weights and runs this share
            of the first fit's epochs (at least 5, at most as many); None: a full second fit
            from scratch.
        target_fpr: the false-positive rate on held-back rows that ``contamination="auto"``
            aims at.
        random_state: seed of the split, the initialisation and the batch order.
        threads: CPU threads for PyTorch (None: all cores). verbose: show training progress.
        config: a :class:`aekit.RunConfig` holding any other training option (``aekit detect``
            passes its flags this way); the parameters above override it when not None.
    """

    def __init__(self, contamination: float | str = "auto", *, novelty: bool = False,
                 n_components: int | None = None,
                 hidden: Sequence[int] | None = None, activation: str | None = None,
                 epochs: int | None = None, batch_size: int | None = None,
                 lr: float | None = None, optimizer: str | None = None,
                 schedule: str | None = None, validation_split: float | str | None = None,
                 pca_init: bool | None = None, scaling: str | None = None,
                 image_shape: Sequence[int] | None = None,
                 score_kind: str = "auto", n_neighbors: int | str | None = "auto",
                 code_distance: bool | None = None, input_distance: bool | None = None,
                 trim_fraction: float | None = 0.1,
                 refit_share: float | None = 0.5,
                 target_fpr: float = 0.01, random_state: int | None = None,
                 threads: int | None = None, verbose: bool = False,
                 config: RunConfig | None = None) -> None:
        self.contamination = contamination
        self.novelty = novelty
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
        self.image_shape = image_shape
        self.score_kind = score_kind
        self.n_neighbors = n_neighbors
        self.code_distance = code_distance
        self.input_distance = input_distance
        self.trim_fraction = trim_fraction
        self.refit_share = refit_share
        self.target_fpr = target_fpr
        self.random_state = random_state
        self.threads = threads
        self.verbose = verbose
        self.config = config

    # -- parameters ---------------------------------------------------------------------------
    def _check_params(self) -> None:
        c = self.contamination
        if not (c == "auto" or (isinstance(c, (float, int)) and not isinstance(c, bool)
                                and 0.0 < c <= 0.5)):
            raise ConfigError(f"`contamination` must be 'auto' or a float in (0, 0.5]. "
                              f"Received: contamination={c!r}")
        if not isinstance(self.novelty, (bool, np.bool_)):
            raise ConfigError(f"`novelty` must be True or False. "
                              f"Received: novelty={self.novelty!r}")
        if self.novelty and c != "auto":
            raise ConfigError(f"`contamination` must be 'auto' with novelty=True: the "
                              f"threshold is the score exceeded by `target_fpr` of the "
                              f"held-back clean rows (set target_fpr for another rate). "
                              f"Received: contamination={c!r}")
        if self.score_kind not in (*SCORES, "auto"):
            raise ConfigError(f"`score_kind` must be one of auto, {', '.join(SCORES)}. "
                              f"Received: score_kind={self.score_kind!r}")
        k = self.n_neighbors
        if k is not None and k != "auto" and not (isinstance(k, (int, np.integer))
                                                  and not isinstance(k, bool) and k >= 0):
            raise ConfigError(f"`n_neighbors` must be 'auto', None or an integer >= 0. "
                              f"Received: n_neighbors={k!r}")
        for name in ("code_distance", "input_distance"):
            value = getattr(self, name)
            if value is not None and not isinstance(value, (bool, np.bool_)):
                raise ConfigError(f"`{name}` must be None, True or False. "
                                  f"Received: {name}={value!r}")
        t = self.trim_fraction
        if t is not None and not (isinstance(t, (float, int)) and 0.0 <= t < 0.5):
            raise ConfigError(f"`trim_fraction` must be None or a float in [0, 0.5). "
                              f"Received: trim_fraction={t!r}")
        r = self.refit_share
        if r is not None and not (isinstance(r, (float, int)) and not isinstance(r, bool)
                                  and 0.0 < r <= 1.0):
            raise ConfigError(f"`refit_share` must be None or a float in (0, 1]. "
                              f"Received: refit_share={r!r}")
        if not (isinstance(self.target_fpr, (float, int)) and 0.0 < self.target_fpr < 1.0):
            raise ConfigError(f"`target_fpr` must be a float in (0, 1). "
                              f"Received: target_fpr={self.target_fpr!r}")

    def _options(self, seed: int, n_rows: int) -> dict[str, Any]:
        """The aekit options these parameters stand for (None: the ``config``'s value, else
        aekit's default); validated by aekit's config."""
        options = {k: v for k, v in options_of(self).items() if v is not None}
        base = self.config or RunConfig()
        if options.get("validation_split", base.train.validation_split) == "auto" and n_rows < 20:
            options["validation_split"] = 0.0  # too few rows to hold any back
        return dict(options, config=base, seed=seed, threads=self.threads,
                    progress=bool(self.verbose), scaling=self._scaling(), device="cpu")

    def _scaling(self) -> str:
        """The scaling ``None`` stands for (see the class): min-max for novelty on tables."""
        if self.scaling is not None:
            return self.scaling
        if self.image_shape is not None:
            return "auto"
        return "minmax" if self.novelty else "standard"

    def _seed(self) -> int:
        return seed_of(self.random_state)

    # -- fitting ------------------------------------------------------------------------------
    def fit(self, X: Any, y: Any = None) -> "OutlierDetector":
        """Train on ``X`` (raw units; outliers allowed unless ``novelty``); ``y`` is ignored.

        Raises:
            ValueError: invalid data (scikit-learn's messages) or parameters.
        """
        self._check_params()
        X = validate_data(self, X, dtype=np.float32, ensure_min_samples=2)
        seed = self._seed()
        options = self._options(seed, len(X))
        config = options.pop("config").replace(**options)
        # The held-back rows are drawn once: both fits stop early on them, they are never
        # trimmed, and the "auto" threshold is read from them (rows no fit has learned from).
        fit_rows, val_rows, _ = split_plan(len(X), 0.0, config.train.validation_split, seed)
        if self.novelty and not len(val_rows):
            raise ConfigError(f"novelty=True takes its threshold from held-back clean rows, "
                              f"and none are held back ({len(X)} rows, validation_split="
                              f"{config.train.validation_split!r}): give at least 20 rows and "
                              f"validation_split 'auto' or a share in (0, 1)")
        self.reference_codes_ = self.reference_rows_ = None  # set after the last fit
        self.code_distance_ = (not self.novelty if self.code_distance is None
                               else bool(self.code_distance))
        self.n_neighbors_ = ((5 if self.novelty else 10) if self.n_neighbors == "auto"
                             else int(self.n_neighbors or 0))
        self.input_distance_ = (self.image_shape is None if self.input_distance is None
                                else bool(self.input_distance))
        self.score_kind_ = self.score_kind if self.score_kind != "auto" else (
            "combined" if self.image_shape is not None else "whitened")
        self.autoencoder_ = self._fit_once(X, fit_rows, val_rows, config)
        self.n_fits_ = 1
        self.trimmed_index_ = np.zeros(0, dtype=np.int64)
        trim = 0.0 if self.novelty else (self.trim_fraction or 0.0)  # clean rows: no trim
        n_trim = int(round(trim * len(fit_rows)))
        if n_trim and len(fit_rows) - n_trim >= 20:
            first = self._raw_scores(X[fit_rows])
            order = np.argsort(-first, kind="stable")
            self.trimmed_index_ = np.sort(fit_rows[order[:n_trim]])
            kept = np.sort(fit_rows[order[n_trim:]])
            warm = None
            if self.refit_share is not None:  # a shorter fit from the first one's weights
                first_epochs = len(self.autoencoder_.history.epochs)
                config = config.replace(epochs=max(1, min(first_epochs, max(
                    REFIT_MIN_EPOCHS, math.ceil(self.refit_share * first_epochs)))))
                warm = {k: v.detach().clone()
                        for k, v in self.autoencoder_.model.state_dict().items()}
            self.autoencoder_ = self._fit_once(X, kept, val_rows, config, warm)
            self.n_fits_ = 2
        self._set_neighbours(X[fit_rows], seed)
        self.decision_scores_ = self._raw_scores(X)
        self.offset_ = -self._threshold(self.decision_scores_, val_rows)
        self.threshold_ = -self.offset_
        self.labels_ = (self.decision_scores_ > self.threshold_).astype(np.int64)
        return self

    def _fit_once(self, X: np.ndarray, fit_rows: np.ndarray, val_rows: np.ndarray,
                  config: RunConfig, initial_state: dict | None = None) -> Autoencoder:
        """One autoencoder trained on ``X[fit_rows]`` (validated on ``X[val_rows]``; from
        ``initial_state`` when given), with the score's reference statistics taken on its
        training rows."""
        config = config.replace(progress=bool(self.verbose))
        ae = Autoencoder(config=config.replace(validation_split=0.0) if not len(val_rows)
                         else config)
        run = prepare(ae.config, self._as_samples(X[fit_rows]),
                      validation_data=self._as_samples(X[val_rows]) if len(val_rows) else None)
        ae.fit_prepared(run, initial_state=initial_state)
        self._set_reference(ae, X[fit_rows])
        return ae

    def _as_samples(self, X: np.ndarray) -> np.ndarray:
        """Rows as the samples the model trains on: images when ``image_shape`` is set."""
        if self.image_shape is None:
            return X
        shape = tuple(int(v) for v in self.image_shape)
        if math.prod(shape) != X.shape[1] or len(shape) not in (2, 3):
            raise ConfigError(f"`image_shape` must be (height, width) or (channels, height, "
                              f"width) with {X.shape[1]} values in all (the rows' width). "
                              f"Received: image_shape={self.image_shape!r}")
        return X.reshape(len(X), *shape)

    def _set_reference(self, ae: Autoencoder, x_train: np.ndarray) -> None:
        """Statistics of the training rows that put the parts of the score on one scale: the
        codes' (and, for ``whitened``, the residuals') mean and inverse covariance, and each
        part's median."""
        self.autoencoder_ = ae
        residuals, codes, _ = self._forward(x_train)
        self.code_mean_, self.code_precision_ = mean_and_precision(codes)
        self.residual_mean_ = self.residual_precision_ = None
        if self.score_kind_ == "whitened":
            self.residual_mean_, self.residual_precision_ = mean_and_precision(residuals,
                                                                                1e-3)
        recon, dist = self._parts(residuals, codes)
        self.recon_scale_ = positive_median(recon)
        self.code_scale_ = positive_median(dist)

    def _set_neighbours(self, x_fit: np.ndarray, seed: int) -> None:
        """Keep the training codes (and, with ``input_distance``, the scaled training rows)
        the neighbour distances are measured against: the rows the fits learned from, not the
        held-back ones, so that those score like new rows; a seeded sample of
        ``MAX_NEIGHBOUR_ROWS`` when there are more. And each distance's median on them."""
        self.knn_scale_ = self.input_scale_ = 1.0
        if self.score_kind_ == "reconstruction" or not self.n_neighbors_ or len(x_fit) < 2:
            return
        if len(x_fit) > MAX_NEIGHBOUR_ROWS:
            x_fit = x_fit[np.sort(np.random.default_rng(seed).choice(
                len(x_fit), MAX_NEIGHBOUR_ROWS, replace=False))]
        self.reference_codes_ = self.autoencoder_.encode(x_fit).astype(np.float32)
        self.knn_scale_ = positive_median(self._neighbour_part(self.reference_codes_))
        if self.input_distance_:
            rows = self.autoencoder_.scaler.transform(x_fit).astype(np.float32)
            self.reference_rows_ = rows.reshape(len(rows), -1)
            # the scale: each training row's distance to its k-th *other* training row, the
            # distance a new normal row has to its k-th nearest
            self.input_scale_ = positive_median(kth_neighbour_distance(
                self.reference_rows_, self.reference_rows_, self.n_neighbors_ + 1))

    def _neighbour_part(self, codes: np.ndarray) -> np.ndarray:
        """Squared distance from each code to its k-th nearest reference code (the same rule
        for every row, so that ``predict`` on the training rows agrees with ``fit``)."""
        return kth_neighbour_distance(self.reference_codes_, codes, self.n_neighbors_)

    def _threshold(self, scores: np.ndarray, val_rows: np.ndarray) -> float:
        """The anomaly score above which a row is an outlier (see the module's docstring)."""
        if self.contamination == "auto" or self.novelty:
            reference = scores[val_rows] if len(val_rows) else scores
            return float(np.quantile(reference, 1.0 - self.target_fpr))
        return float(np.percentile(scores, 100.0 * (1.0 - float(self.contamination))))

    # -- scoring ------------------------------------------------------------------------------
    def _forward(self, X: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Residuals (reconstruction minus row, scaled space), codes and the scaled rows,
        from one pass of the model (residuals and codes float64)."""
        ae = self.autoencoder_
        x_scaled = ae.scaler.transform(X).astype(np.float32)
        codes, x_hat = ae.encode_and_reconstruct_scaled(x_scaled)
        return (x_hat.astype(np.float64) - x_scaled, codes.astype(np.float64),
                x_scaled.reshape(len(x_scaled), -1))

    def _parts(self, residuals: np.ndarray, codes: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(reconstruction error, squared code distance) of each row, raw units, from the
        rows' residuals and codes."""
        if self.residual_precision_ is not None:  # whitened: Mahalanobis of the residual
            recon = mahalanobis(residuals, self.residual_mean_, self.residual_precision_)
        else:
            recon = np.square(residuals).sum(axis=1)
        if len(residuals) == 0:
            return recon, recon.copy()
        return recon, mahalanobis(codes, self.code_mean_, self.code_precision_)

    def _raw_scores(self, X: np.ndarray) -> np.ndarray:
        """The anomaly score of each row of ``X`` (see the module)."""
        return self._scores_of(*self._forward(X))

    def _scores_of(self, residuals: np.ndarray, codes: np.ndarray,
                   x_scaled: np.ndarray) -> np.ndarray:
        """:meth:`_raw_scores` from the rows' residuals, codes and scaled values."""
        recon, dist = self._parts(residuals, codes)
        if self.score_kind_ == "reconstruction":
            return recon / self.recon_scale_
        score = recon / self.recon_scale_
        if self.code_distance_:
            score = score + dist / self.code_scale_
        if self.reference_codes_ is not None:
            score = score + self._neighbour_part(codes) / self.knn_scale_
        if self.reference_rows_ is not None:
            score = score + INPUT_DISTANCE_WEIGHT * kth_neighbour_distance(
                self.reference_rows_, x_scaled, self.n_neighbors_) / self.input_scale_
        return score

    @property
    def scaling_(self) -> str:
        """The scaling the fitted model applies (``scaling`` resolved; its config's)."""
        check_is_fitted(self)
        return self.autoencoder_.config.data.scaling

    @property
    def score_parts_(self) -> list[str]:
        """The parts the fitted detector's score adds, in words (``summary.json`` of
        ``aekit detect`` lists them)."""
        check_is_fitted(self)
        kind = self.score_kind_
        parts = [{"whitened": "reconstruction error, whitened (Mahalanobis)",
                  "combined": "squared reconstruction error",
                  "reconstruction": "squared reconstruction error"}[kind]]
        if kind == "reconstruction":
            return parts
        if self.code_distance_:
            parts.append("code distance (Mahalanobis)")
        k = self.n_neighbors_
        if self.reference_codes_ is not None:
            parts.append(f"squared distance to the k = {k} nearest training code")
        if self.reference_rows_ is not None:
            parts.append(f"{INPUT_DISTANCE_WEIGHT:g} x squared distance to the k = {k} "
                         f"nearest training row")
        return parts

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
        code and neighbour distances, too, are attributed through them: the features the
        model cannot reproduce are the ones that make the row unusual).

        Returns:
            (n_samples, n_features) float64, non-negative.
        """
        check_is_fitted(self)
        X = validate_data(self, X, dtype=np.float32, reset=False)
        residuals, codes, x_scaled = self._forward(X)
        squared = np.square(residuals)
        total = squared.sum(axis=1, keepdims=True)
        n = squared.shape[1]
        share = np.divide(squared, total, out=np.full_like(squared, 1.0 / n), where=total > 0)
        return share * self._scores_of(residuals, codes, x_scaled)[:, None]

    # -- files -------------------------------------------------------------------------------
    def save(self, directory: str | Path) -> Path:
        """Write the model (``model.safetensors``, ``config.json``), ``detector.json`` (the
        score's statistics and the threshold) and the neighbour codes into ``directory``: no
        pickle (:func:`aekit.detector_files.write_detector`)."""
        check_is_fitted(self)
        return write_detector(self, directory)

    @classmethod
    def load(cls, directory: str | Path) -> "OutlierDetector":
        """A detector saved by :meth:`save` (or ``aekit detect --out``), ready to score.

        Raises:
            FormatError: a missing or malformed folder.
        """
        return read_detector(cls, directory)

    def __sklearn_tags__(self):  # noqa: D105
        tags = super().__sklearn_tags__()
        tags.non_deterministic = False
        return tags
