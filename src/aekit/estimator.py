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
        seed = self.random_state
        if not isinstance(seed, (int, np.integer)) or isinstance(seed, bool):
            # None or a RandomState: draw a seed so that fit stays a function of the data.
            seed = int(np.random.RandomState(seed).randint(0, 2**31 - 1))
        return dict(latent_dim=self.n_components,
                    hidden=tuple(self.hidden) if self.hidden is not None else None,
                    activation=self.activation, epochs=self.epochs,
                    batch_size=self.batch_size, lr=self.lr, optimizer=self.optimizer,
                    schedule=self.schedule, weight_decay=self.weight_decay,
                    validation_split=self.validation_split, pca_init=self.pca_init,
                    seed=int(seed),
                    threads=self.threads, progress=bool(self.verbose), scaling="none",
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
