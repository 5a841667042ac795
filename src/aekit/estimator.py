"""``AutoencoderTransformer``: an autoencoder as a scikit-learn transformer, a drop-in for PCA.

    pipe = make_pipeline(StandardScaler(), AutoencoderTransformer(n_components=16),
                         LogisticRegression(max_iter=1000))
    pipe.fit(x_train, y_train).score(x_test, y_test)

It follows scikit-learn's rules: ``__init__`` only stores its parameters, ``fit`` validates the
data and sets the attributes ending in ``_``, ``transform`` checks that it is fitted and
validates with ``reset=False``; ``get_params``/``set_params``/``clone`` work, so it goes in
``Pipeline`` and ``GridSearchCV``. ``score`` is the negative reconstruction MSE (higher is better,
as scikit-learn scorers expect).
"""

from __future__ import annotations

from typing import Any, Sequence

import numpy as np
from sklearn.base import BaseEstimator, ClassNamePrefixFeaturesOutMixin, TransformerMixin
from sklearn.utils.validation import check_is_fitted, validate_data

from aekit.api import Autoencoder


# scikit-learn parameter -> aekit option, shared by the estimators (and OutlierDetector)
SKLEARN_OPTIONS = {"n_components": "latent_dim", "hidden": "hidden", "activation": "activation",
                   "epochs": "epochs", "batch_size": "batch_size", "lr": "lr",
                   "optimizer": "optimizer", "schedule": "schedule",
                   "weight_decay": "weight_decay", "validation_split": "validation_split",
                   "pca_init": "pca_init"}


def options_of(estimator: BaseEstimator) -> dict[str, Any]:
    """The aekit options an estimator's parameters stand for (those it has, by
    :data:`SKLEARN_OPTIONS`; None left as None)."""
    params = estimator.get_params(deep=False)
    options = {option: params[name] for name, option in SKLEARN_OPTIONS.items()
               if name in params}
    if options.get("hidden") is not None:
        options["hidden"] = tuple(options["hidden"])
    return options


def seed_of(random_state: Any) -> int:
    """The training seed of a ``random_state``: the integer itself; for None or a
    ``RandomState``, a seed drawn from it, so that fit stays a function of the data."""
    if not isinstance(random_state, (int, np.integer)) or isinstance(random_state, bool):
        return int(np.random.RandomState(random_state).randint(0, 2**31 - 1))
    return int(random_state)


class AutoencoderTransformer(ClassNamePrefixFeaturesOutMixin, TransformerMixin, BaseEstimator):
    """Reduce data to ``n_components`` values per sample with an autoencoder.

    The data is used as given (``scaling="none"``): put a ``StandardScaler`` in front, as for
    PCA. Training is deterministic for a given ``random_state``.

    Args:
        n_components: size of the code (the latent dimension).
        hidden: encoder hidden widths; the decoder mirrors them. None: chosen from the data
            as ``aekit train`` chooses them.
        activation: hidden activation (``relu``, ``tanh``, ``elu``...).
        epochs: passes over the data; None = aekit's automatic choice (about 4000 steps).
        batch_size: samples per step; None: chosen from the number of rows.
        lr: peak learning rate.
        optimizer: ``adam``, ``adamw``, ``sgd``...
        schedule: learning-rate schedule (``one_cycle``, ``cosine``, ``constant``...).
        weight_decay: decoupled weight decay; None = the optimizer's default.
        validation_split: share of the data held out to choose the best epoch and to check the
            model against PCA ("auto": as ``aekit train``; 0: none, the model is kept as
            trained).
        pca_init: start from PCA's solution (a linear path initialised from PCA beside the
            hidden layers), so training can only improve on it.
        random_state: seed of the initialisation and of the batch order.
        threads: CPU threads for PyTorch (None: all cores).
        verbose: show training progress.
    """

    def __init__(self, n_components: int = 2, *, hidden: Sequence[int] | None = None,
                 activation: str = "relu", epochs: int | None = None,
                 batch_size: int | None = None,
                 lr: float = 2e-3, optimizer: str = "adam", schedule: str = "one_cycle",
                 weight_decay: float | None = None, validation_split: float | str = "auto",
                 pca_init: bool = True, random_state: int | None = None, threads: int | None = None,
                 verbose: bool = False) -> None:
        self.n_components = n_components
        self.hidden = hidden
        self.activation = activation
        self.epochs = epochs
        self.batch_size = batch_size
        self.lr = lr
        self.optimizer = optimizer
        self.schedule = schedule
        self.weight_decay = weight_decay
        self.validation_split = validation_split
        self.pca_init = pca_init
        self.random_state = random_state
        self.threads = threads
        self.verbose = verbose

    def _options(self) -> dict[str, Any]:
        """The aekit options these parameters stand for (validated by aekit's config)."""
        return dict(options_of(self), seed=seed_of(self.random_state), threads=self.threads,
                    progress=bool(self.verbose), scaling="none",
                    output_activation="identity", device="cpu")

    def fit(self, X: Any, y: Any = None, sample_weight: Any = None) -> "AutoencoderTransformer":
        """Train on ``X`` of shape (n_samples, n_features); ``y`` is ignored.

        ``sample_weight`` (n_samples,), weights >= 0, weights each row's reconstruction loss
        (as :meth:`aekit.Autoencoder.fit`): ``--balance weights`` in a pipeline is
        ``fit(X, sample_weight=compute_sample_weight("balanced", y))``. Training is
        stochastic (mini-batches), so a weight of 2 is like a duplicated row on average, not
        exactly.

        Raises:
            ValueError: invalid data (scikit-learn's messages) or parameters
                (:class:`aekit.errors.ConfigError`, a ValueError).
        """
        X = validate_data(self, X, dtype=np.float32, ensure_min_samples=2)
        self.autoencoder_ = Autoencoder(**self._options())
        self.autoencoder_.fit(X, verbose=bool(self.verbose), sample_weight=sample_weight)
        self.n_components_ = int(self.n_components)
        losses = self.autoencoder_.history.epochs
        self.n_iter_ = len(losses)
        self.loss_ = float(losses[-1]["train_loss"]) if losses else float("nan")
        return self

    def transform(self, X: Any) -> np.ndarray:
        """Codes of ``X``: (n_samples, n_components) float32."""
        check_is_fitted(self)
        X = validate_data(self, X, dtype=np.float32, reset=False)
        return self.autoencoder_.encode(X)

    def inverse_transform(self, X: Any) -> np.ndarray:
        """Reconstructions from codes ``X`` of shape (n_samples, n_components)."""
        check_is_fitted(self)
        from sklearn.utils import check_array

        X = check_array(X, dtype=np.float32)
        if X.shape[1] != self.n_components_:
            raise ValueError(f"X has {X.shape[1]} features, but inverse_transform expects "
                             f"{self.n_components_} (n_components)")
        return self.autoencoder_.decode(X)

    def score(self, X: Any, y: Any = None) -> float:
        """Negative mean squared reconstruction error of ``X`` (higher is better)."""
        check_is_fitted(self)
        X = validate_data(self, X, dtype=np.float32, reset=False)
        x_hat = self.autoencoder_.reconstruct(X)
        return -float(np.mean(np.square(x_hat.astype(np.float64) - X)))

    def __sklearn_tags__(self):  # noqa: D105
        tags = super().__sklearn_tags__()
        tags.transformer_tags.preserves_dtype = ["float32"]
        tags.non_deterministic = False
        return tags

    @property
    def _n_features_out(self) -> int:
        """Number of output features, for ``get_feature_names_out``."""
        return self.n_components_
