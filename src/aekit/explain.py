"""See inside a trained autoencoder (``aekit explain``, :meth:`aekit.Autoencoder.explain`).

    ex = ae.explain(x)                 # or explain(ae, "data.csv", model_dir="run")
    ex.to_dict()["feature_errors"]     # the numbers of explain.json
    ex.save("run")                     # explain.json, traversals.png, feature_errors.png,
                                       # unit_features.png, traversals.npy

Three views, all on a random sample of rows (``samples``, fixed ``seed``), measured in the scaled
space the model works in (pixels in [0, 1], standardized columns...):

1. **Latent traversals.** Each code unit -- or, when the latent size is above ``max_axes``, each
   of the top principal directions of the codes -- is set to ``steps`` evenly spaced
   percentiles of its values on the data (5th..95th by default), the rest of the code held at
   its median, and decoded. Images: a picture grid (one row per unit/direction). Tables: one
   panel per unit/direction with the reconstructed features, those that move most named.
2. **Per-feature reconstruction error**: the mean squared error of each feature, next to PCA's
   at the same latent size (PCA refitted on the run's training rows when the data is the run's
   own, else fitted on the explained rows, and ``explain.json`` says which), and the share of
   each feature's variance the model leaves unexplained.
3. **Each unit's strongest input features**: Pearson correlation between each input feature and
   each code unit over the rows (signed, free of the features' units), with the gradient
   attribution (mean ``|d code / d input|``) beside it; ``attribution`` picks which one ranks.

The result is an :class:`~aekit.explanation.Explanation` (``explain.json``, the pictures); the
maths of the traversals and attributions is in :mod:`aekit.explain_views`.
"""

from __future__ import annotations

import numbers
import os
from pathlib import Path
from typing import Any

import numpy as np

from aekit import __version__
from aekit.data import Dataset, check_n_features
from aekit.errors import ConfigError
from aekit.explain_views import (correlation_scores, gradient_scores, robust_range,
                                 traversal_doc, traversals, unit_doc)
from aekit.explanation import FILES, MAX_AXES, TOP_FEATURES, Explanation, summary_lines
from aekit.serialization import weights_hash

# The trained model is an :class:`aekit.api.Autoencoder`, whose ``explain`` method calls
# :func:`explain`: this module does not import it back (the two would depend on each other).
Autoencoder = Any

FORMAT = "aekit-explain"
FORMAT_VERSION = 1
WORST_FEATURES = 10   # features listed as the worst and best reconstructed
ATTRIBUTIONS = ("correlation", "gradient")
ARRAY_SOURCE = "explain input"  # the source of rows given in memory

METHODS = {
    "correlation": "Pearson correlation between the input feature and the code unit over the "
                   "explained rows (in [-1, 1]; signed: the unit rises or falls with the "
                   "feature; 0 for a constant feature or unit)",
    "gradient": "mean |d code / d input| over the explained rows, in the scaled space (the "
                "local sensitivity of the unit to each input, unsigned)",
}


# -- the entry point ------------------------------------------------------------------------
def explain(ae: Autoencoder, x: Any, *, samples: int | None = 2000, steps: int = 7,
            percentiles: tuple[float, float] = (5.0, 95.0), attribution: str = "correlation",
            max_axes: int = MAX_AXES, seed: int = 0, pca: bool = True,
            model_dir: str | Path | None = None) -> Explanation:
    """Look inside a trained autoencoder on data ``x``.

    Args:
        ae: a trained (or loaded) :class:`~aekit.Autoencoder`.
        x: the data: a spec (``"digits"``, ``"data.csv"``), a :class:`~aekit.data.Dataset`
            (a CSV's header names the features), a numpy array or a torch tensor, in the units
            of the training data.
        samples: rows used, a random sample drawn with ``seed``; None: all rows.
        steps: traversal steps, evenly spaced percentiles from the low to the high one.
        percentiles: the low and high percentile of the traversals.
        attribution: ``"correlation"`` or ``"gradient"``: which score ranks each unit's
            strongest features (both are computed and written).
        max_axes: latent sizes up to this are traversed unit by unit; above it, along the top
            ``max_axes`` principal directions of the codes.
        seed: seed of the row sample.
        pca: compare the per-feature errors with PCA at the same latent size.
        model_dir: the folder the model was loaded from (recorded, with a hash of its
            weights, so that a report can tell a stale explanation).

    Returns:
        An :class:`Explanation`; ``.save(out)`` writes the files.

    Raises:
        ConfigError: bad options, or a model that is not trained.
        DataError: data with the wrong number of features, or invalid data.
    """
    _check_options(samples, steps, percentiles, attribution, max_axes)
    samples = None if samples is None else int(samples)
    steps, max_axes, seed = int(steps), int(max_axes), int(seed)
    model = ae._require_fitted()
    ds = _as_data(x, samples, seed)
    check_n_features(ds, model.n_features, ds.source)
    n_rows = ds.n_samples
    if n_rows < 2:
        raise ConfigError(f"explain needs at least 2 rows of data; {ds.source} has {n_rows}")
    pick = _sample(n_rows, samples, seed)
    xs = np.ascontiguousarray(ae.scaler.transform(ds.x[pick]), dtype=np.float32)
    codes, recon = ae.encode_and_reconstruct_scaled(xs)
    codes = codes.astype(np.float64)
    names = feature_names(ds, ae.sample_shape, ae.data_kind)
    latent = codes.shape[1]

    sq = np.square(xs.astype(np.float64) - recon.astype(np.float64))
    feature_mse = sq.mean(axis=0)
    variance = xs.astype(np.float64).var(axis=0)
    is_training = _is_training_data(ae, ds)
    pca_model, pca_note = _pca(ae, ds, xs, is_training) if pca else (None, None)
    pca_feature_mse = None
    if pca_model is not None:
        pca_hat = pca_model.inverse_transform(pca_model.transform(xs))
        pca_feature_mse = np.square(pca_hat.astype(np.float64) - xs).mean(axis=0)

    trav = traversals(ae, codes, steps, percentiles, max_axes)
    correlation = correlation_scores(xs, codes)
    gradient = gradient_scores(ae, xs, None)
    dir_corr = dir_grad = None
    if trav["mode_key"] == "directions":
        projections = (codes - trav["base"]) @ trav["vectors"].T
        dir_corr = correlation_scores(xs, projections)
        dir_grad = gradient_scores(ae, xs, trav["vectors"])
    rank = correlation if attribution == "correlation" else gradient
    dir_rank = (dir_corr if attribution == "correlation" else dir_grad) \
        if dir_corr is not None else None

    document = {
        "format": FORMAT, "format_version": FORMAT_VERSION, "aekit_version": __version__,
        "model": str(model_dir) if model_dir is not None else None,
        "model_sha256": weights_hash(model_dir),
        "data": ds.source, "data_is_training_data": is_training,
        "data_kind": ae.data_kind, "sample_shape": list(ae.sample_shape),
        "n_rows": n_rows, "n_samples": int(len(pick)), "seed": seed,
        "sample": (f"all {n_rows} rows" if len(pick) == n_rows else
                   f"a random sample of {len(pick)} of the {n_rows} rows (seed {seed})"),
        "n_features": int(xs.shape[1]), "latent_dim": latent,
        "space": f"scaled: the units the model works in (scaling {ae.scaler.mode!r}); "
                 "decoded traversals in the data's own units are in traversals.npy",
        "feature_names": names,
        "reconstruction": _overall(feature_mse, pca_feature_mse),
        "pca": pca_note,
        "feature_errors": _feature_errors(names, feature_mse, pca_feature_mse, variance),
        "traversals": traversal_doc(trav, names, percentiles, steps),
        "unit_features": {
            "method": attribution, "methods": dict(METHODS),
            "also": [m for m in ATTRIBUTIONS if m != attribution],
            "top_k": TOP_FEATURES,
            "units": [unit_doc(f"unit {j}", names, rank[j], correlation[j], gradient[j],
                                {"unit": j, "code_mean": float(codes[:, j].mean()),
                                 "code_std": float(codes[:, j].std())})
                      for j in range(latent)],
            "directions": None if dir_rank is None else [
                unit_doc(d["name"], names, dir_rank[i], dir_corr[i], dir_grad[i],
                          {"direction": i, "code_variance_share": d["code_variance_share"]})
                for i, d in enumerate(trav["doc"])],
        },
        "files": {k: v for k, v in FILES.items() if k != "json"},
    }
    bounds = ae.scaler.output_range
    value_range = bounds if bounds is not None else robust_range(trav["decoded_scaled"])
    return Explanation(document, trav["decoded"], trav["decoded_scaled"], trav["vectors"],
                       feature_mse, pca_feature_mse, correlation, gradient, dir_corr, dir_grad,
                       tuple(ae.sample_shape), value_range)


# -- options and data -----------------------------------------------------------------------
def _check_options(samples: int | None, steps: int, percentiles: Any, attribution: str,
                   max_axes: int) -> None:
    if samples is not None and (isinstance(samples, bool) or not _integer(samples)
                                or samples < 2):
        raise ConfigError(f"`samples` must be an integer >= 2 (rows used) or None (all rows). "
                          f"Received: {samples!r}")
    if isinstance(steps, bool) or not _integer(steps) or not 2 <= steps <= 50:
        raise ConfigError(f"`steps` must be an integer in 2..50. Received: {steps!r}")
    try:
        lo, hi = (float(p) for p in percentiles)
    except (TypeError, ValueError):
        raise ConfigError(f"`percentiles` must be two numbers LOW,HIGH. Received: "
                          f"{percentiles!r}") from None
    if not 0 <= lo < hi <= 100:
        raise ConfigError(f"`percentiles` must satisfy 0 <= LOW < HIGH <= 100. Received: "
                          f"{lo:g},{hi:g}")
    if attribution not in ATTRIBUTIONS:
        raise ConfigError(f"`attribution` must be one of {', '.join(ATTRIBUTIONS)}. Received: "
                          f"{attribution!r}")
    if isinstance(max_axes, bool) or not _integer(max_axes) or max_axes < 1:
        raise ConfigError(f"`max_axes` must be a positive integer. Received: {max_axes!r}")


def _integer(value: Any) -> bool:
    return isinstance(value, numbers.Integral)


def _as_data(x: Any, samples: int | None, seed: int) -> Dataset:
    """The data as a Dataset: a spec is loaded (a .npy too big for memory: an even spread of
    ``samples`` rows read chunk by chunk), arrays and tensors wrapped."""
    if isinstance(x, (str, os.PathLike)):
        from aekit.data import load
        from aekit.data.out_of_core import ChunkedNpy, should_stream

        spec = os.fspath(x)
        if should_stream(spec):
            return ChunkedNpy(spec).sample(samples or 2000)
        return load(spec)
    from aekit.pipeline import as_dataset

    return as_dataset(x, ARRAY_SOURCE)


def _sample(n_rows: int, samples: int | None, seed: int) -> np.ndarray:
    if samples is None or samples >= n_rows:
        return np.arange(n_rows)
    return np.sort(np.random.default_rng(seed).choice(n_rows, samples, replace=False))


def feature_names(ds: Dataset, sample_shape: tuple[int, ...] | None = None,
                  kind: str | None = None) -> list[str]:
    """One name per feature: the data's own (a CSV header, Parquet columns); pixels
    ``pixel[r,c]`` (``pixel[r,c,k]`` for channel k of colour images); else ``f0, f1...``."""
    if ds.feature_names is not None:
        return list(ds.feature_names)
    shape = tuple(sample_shape or ds.sample_shape)
    if (kind or ds.kind) == "image" and len(shape) == 2:
        return [f"pixel[{r},{c}]" for r in range(shape[0]) for c in range(shape[1])]
    if (kind or ds.kind) == "image" and len(shape) == 3:
        return [f"pixel[{r},{c},{k}]" for k in range(shape[0]) for r in range(shape[1])
                for c in range(shape[2])]
    return [f"f{j}" for j in range(ds.n_features)]


# -- PCA --------------------------------------------------------------------------------------
def _is_training_data(ae: Autoencoder, ds: Dataset) -> bool | None:
    """Whether the data is the one the model was trained on: its spec is the run's ``data``
    (True), another spec or file (False), or rows given in memory (None: cannot tell)."""
    if ds.source == ae.config.data.data or _same_file(ds.source, ae.config.data.data):
        return True
    return None if ds.source == ARRAY_SOURCE else False


def _same_file(a: str, b: str) -> bool:
    try:
        return Path(a).is_file() and Path(b).is_file() and Path(a).samefile(b)
    except OSError:
        return False


def _pca(ae: Autoencoder, ds: Dataset, xs: np.ndarray,
         own: bool | None) -> tuple[Any, dict[str, Any]]:
    """PCA at the model's latent size, and where it comes from.

    The model's own PCA when it was fitted in this session; the run's PCA refitted on its
    training rows (:func:`aekit.pipeline.prepare_spec`) when the data is the run's own;
    otherwise PCA fitted on the explained rows themselves.
    """
    from aekit.baselines.pca import fit_pca

    k = ae.config.model.latent_dim
    if ae.pca_ is not None:
        return ae.pca_, {"components": int(ae.pca_.n_components_),
                         "source": "the model's PCA, fitted on its training rows when it was "
                                   "trained"}
    if own:
        from aekit.data.out_of_core import should_stream
        from aekit.pipeline import training_run_of

        reason = "the run's data is read out of core" if should_stream(ds.source) else None
        if reason is None:
            # the data as named here: the run may have named it from another folder
            run, reason = training_run_of(ae.config, ds.source)
            if run is not None:
                return run.pca, {"components": int(run.pca.n_components_),
                                 "source": f"PCA refitted on the run's training rows of "
                                           f"{ds.source} (its own split and scaling), as in "
                                           "training"}
        note = f"; {reason}"
    elif own is None:
        note = (": rows given in memory, not known to be the model's training data (PCA's "
                "errors are optimistic if the model never saw them)")
    else:
        note = (f": {ds.source} is not the model's training data ({ae.config.data.data}), so "
                "PCA saw these rows and the model did not (PCA's errors are optimistic)")
    fitted = fit_pca(xs, k, ae.config.train.seed)
    return fitted, {"components": int(fitted.n_components_),
                    "source": f"PCA fitted on the {len(xs)} explained rows{note}"}


def _overall(mse: np.ndarray, pca_mse: np.ndarray | None) -> dict[str, Any]:
    out: dict[str, Any] = {"mse": float(mse.mean()), "sse_per_sample": float(mse.sum())}
    if pca_mse is not None:
        out.update(pca_mse=float(pca_mse.mean()), pca_sse_per_sample=float(pca_mse.sum()),
                   ratio_to_pca=_ratio(float(mse.mean()), float(pca_mse.mean())))
    return out


def _ratio(a: float, b: float) -> float | None:
    return a / b if b > 1e-12 else None


def _feature_errors(names: list[str], mse: np.ndarray, pca_mse: np.ndarray | None,
                    variance: np.ndarray) -> dict[str, Any]:
    rows = []
    for j, name in enumerate(names):
        row: dict[str, Any] = {"feature": name, "index": j, "mse": float(mse[j])}
        if pca_mse is not None:
            row["pca_mse"] = float(pca_mse[j])
            row["ratio_to_pca"] = _ratio(float(mse[j]), float(pca_mse[j]))
        row["variance"] = float(variance[j])
        row["unexplained_share"] = float(mse[j] / variance[j]) if variance[j] > 1e-12 else None
        rows.append(row)
    order = np.argsort(-mse, kind="stable")
    return {
        "description": "mean squared error of each feature over the explained rows, in the "
                       "scaled space, next to PCA's at the same latent size; "
                       "unexplained_share = mse / the feature's variance (0: kept perfectly; "
                       "1: no better than predicting its mean; null: a constant feature)",
        "worst": [names[j] for j in order[:WORST_FEATURES]],
        "best": [names[j] for j in order[::-1][:WORST_FEATURES]],
        "features": rows,
    }


__all__ = ["ARRAY_SOURCE", "Explanation", "explain", "feature_names", "summary_lines"]
