"""AutoencoderTransformer follows scikit-learn's rules (its own estimator checks) and works in
Pipeline / GridSearchCV like PCA."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.datasets import load_digits
from sklearn.decomposition import PCA
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import GridSearchCV
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.utils.estimator_checks import parametrize_with_checks

from aekit import AutoencoderTransformer
from aekit.errors import ConfigError

EXPECTED_FAILED: dict[str, str] = {
    # a weight of 2 equals a duplicated row only on average: mini-batch training draws rows
    # (and the validation split holds rows back) at random, so the two fits differ
    "check_sample_weight_equivalence_on_dense_data": "stochastic mini-batch training",
}


def _small(**kw) -> AutoencoderTransformer:
    return AutoencoderTransformer(**{"n_components": 1, "hidden": (8,), "epochs": 2,
                                     "batch_size": 32, "random_state": 0, "threads": 1, **kw})


@parametrize_with_checks([_small()], expected_failed_checks=lambda est: EXPECTED_FAILED)
def test_sklearn_estimator_checks(estimator, check):
    check(estimator)


@pytest.fixture(scope="module")
def digits():
    x, y = load_digits(return_X_y=True)
    return x.astype(np.float32), y


def test_pipeline_with_logistic_regression(digits):
    x, y = digits
    pipe = make_pipeline(StandardScaler(), _small(n_components=16, hidden=(64,), epochs=30),
                         LogisticRegression(max_iter=500))
    accuracy = pipe.fit(x[:1200], y[:1200]).score(x[1200:], y[1200:])
    pca_pipe = make_pipeline(StandardScaler(), PCA(16), LogisticRegression(max_iter=500))
    pca_accuracy = pca_pipe.fit(x[:1200], y[:1200]).score(x[1200:], y[1200:])
    assert accuracy > 0.8  # chance is 0.1
    assert accuracy > pca_accuracy - 0.05


def test_beats_or_matches_pca_reconstruction_and_score_sign(digits):
    x, _ = digits
    xs = StandardScaler().fit_transform(x).astype(np.float32)
    ae = _small(n_components=8, hidden=(64,), epochs=40).fit(xs)
    pca = PCA(8).fit(xs)
    pca_mse = float(np.mean((pca.inverse_transform(pca.transform(xs)) - xs) ** 2))
    naive = float(np.mean((ae.inverse_transform(ae.transform(xs)) - xs) ** 2))
    assert ae.score(xs) == pytest.approx(-naive, rel=1e-5)
    assert -ae.score(xs) < 1.2 * pca_mse
    assert ae.transform(xs).shape == (len(xs), 8)
    assert list(ae.get_feature_names_out())[:2] == ["autoencodertransformer0",
                                                    "autoencodertransformer1"]


def test_grid_search(digits):
    x, _ = digits
    pipe = make_pipeline(StandardScaler(), _small(hidden=(32,), epochs=15, batch_size=64,
                                                  lr=1e-2))
    search = GridSearchCV(pipe, {"autoencodertransformer__n_components": [2, 8]}, cv=2)
    search.fit(x)
    # more components reconstruct better, and score is higher-is-better
    assert search.best_params_["autoencodertransformer__n_components"] == 8


def test_bad_parameters_raise_with_the_value(digits):
    x, _ = digits
    with pytest.raises(ConfigError, match="latent_dim.*Received: latent_dim=0"):
        _small(n_components=0).fit(x[:50])
    with pytest.raises(ValueError, match="expects 1"):
        _small().fit(x[:50]).inverse_transform(np.zeros((3, 5)))


def test_sample_weight_reaches_the_loss(digits):
    """Rows weighted 0 are not learned: the weighted fit reconstructs them worse than the
    unweighted one, and a wrong-length weight is refused with aekit's message."""
    x, y = digits
    xs = StandardScaler().fit_transform(x).astype(np.float32)[:600]
    zero = y[:600] == 0
    weights = np.where(zero, 0.0, 1.0)
    plain = _small(n_components=8, hidden=(32,), epochs=15).fit(xs)
    weighted = _small(n_components=8, hidden=(32,), epochs=15).fit(xs, sample_weight=weights)
    assert -weighted.score(xs[zero]) > 1.2 * -plain.score(xs[zero])
    with pytest.raises(ValueError, match="one weight per row"):
        _small().fit(xs, sample_weight=np.ones(5))


def test_the_estimators_map_parameters_and_seeds_by_one_rule():
    """AutoencoderTransformer and OutlierDetector turn their parameters into aekit options,
    and random_state into a seed, through the same functions."""
    from aekit.detector import OutlierDetector
    from aekit.estimator import options_of, seed_of

    common = dict(n_components=3, hidden=[8], epochs=4, lr=0.01, random_state=7)
    transformer = AutoencoderTransformer(**common, weight_decay=0.1)
    detector = OutlierDetector(**common)
    t_opts, d_opts = transformer._options(), detector._options(detector._seed(), 100)
    for key in ("latent_dim", "hidden", "epochs", "lr", "seed"):
        assert t_opts[key] == d_opts[key], key
    assert t_opts["hidden"] == (8,) and t_opts["weight_decay"] == 0.1
    assert "weight_decay" not in options_of(detector)  # not one of its parameters
    assert seed_of(7) == 7 and seed_of(np.int64(5)) == 5
    assert 0 <= seed_of(None) < 2**31 - 1
