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
"""

from __future__ import annotations

import io
import math
import numbers
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from aekit import __version__
from aekit.data import Dataset, check_n_features
from aekit.errors import ConfigError
from aekit.serialization import atomic_write_bytes, weights_hash, write_json

# The trained model is an :class:`aekit.api.Autoencoder`, whose ``explain`` method calls
# :func:`explain`: this module does not import it back (the two would depend on each other).
Autoencoder = Any

FORMAT = "aekit-explain"
FORMAT_VERSION = 1
MAX_AXES = 8          # above this latent size, traverse the codes' top principal directions
TOP_FEATURES = 5      # features named per unit / direction
WORST_FEATURES = 10   # features listed as the worst and best reconstructed
ATTRIBUTIONS = ("correlation", "gradient")
FILES = {"json": "explain.json", "traversals": "traversals.png",
         "feature_errors": "feature_errors.png", "unit_features": "unit_features.png",
         "decoded": "traversals.npy"}
GRAD_BATCH = 512
ARRAY_SOURCE = "explain input"  # the source of rows given in memory

METHODS = {
    "correlation": "Pearson correlation between the input feature and the code unit over the "
                   "explained rows (in [-1, 1]; signed: the unit rises or falls with the "
                   "feature; 0 for a constant feature or unit)",
    "gradient": "mean |d code / d input| over the explained rows, in the scaled space (the "
                "local sensitivity of the unit to each input, unsigned)",
}


@dataclass
class Explanation:
    """What :func:`explain` found: the numbers of ``explain.json`` and the arrays behind the
    pictures.

    Attributes:
        document: the content of ``explain.json`` (:meth:`to_dict`).
        traversals: decoded traversals in the data's units, (directions, steps, n_features).
        traversals_scaled: the same in the scaled space the model works in.
        directions: (directions, latent_dim): the unit vectors moved along (code units, or the
            codes' principal directions).
        feature_mse, pca_feature_mse: per-feature mean squared error (scaled); PCA's or None.
        correlation, gradient: (latent_dim, n_features): each unit's correlation with each
            input, and its mean |d code / d input|.
        direction_correlation, direction_gradient: the same for the codes' principal
            directions when the traversals follow them; None when they follow the units.
        sample_shape: the shape of one sample. value_range: the scaled values shown from
            black to white in the image grid.
    """

    document: dict[str, Any]
    traversals: np.ndarray
    traversals_scaled: np.ndarray
    directions: np.ndarray
    feature_mse: np.ndarray
    pca_feature_mse: np.ndarray | None
    correlation: np.ndarray
    gradient: np.ndarray
    direction_correlation: np.ndarray | None = None
    direction_gradient: np.ndarray | None = None
    sample_shape: tuple[int, ...] = ()
    value_range: tuple[float, float] = (0.0, 1.0)

    def to_dict(self) -> dict[str, Any]:
        """The content of ``explain.json``."""
        return self.document

    @property
    def feature_names(self) -> list[str]:
        return list(self.document["feature_names"])

    @property
    def is_image(self) -> bool:
        return self.document["data_kind"] == "image"

    def shown_scores(self) -> tuple[np.ndarray, list[str]]:
        """The attribution scores drawn in ``unit_features.png`` (the traversal's units or
        directions, by the ranking method) and their row labels."""
        method = self.document["unit_features"]["method"]
        if self.direction_correlation is not None:
            scores = (self.direction_correlation if method == "correlation"
                      else self.direction_gradient)
        else:
            scores = self.correlation if method == "correlation" else self.gradient
        labels = [d["name"] for d in self.document["traversals"]["directions"]]
        return scores[:len(labels)], labels

    def save(self, out: str | Path) -> dict[str, Path]:
        """Write ``explain.json``, the three PNGs and ``traversals.npy`` into ``out``
        (created; each file atomically).

        Returns:
            The paths written, by kind (``json``, ``traversals``, ``feature_errors``,
            ``unit_features``, ``decoded``).
        """
        from aekit import explain_plots as plots

        out = Path(out)
        if out.exists() and not out.is_dir():
            raise ConfigError(f"the output of explain is a folder, and {out} is a file")
        out.mkdir(parents=True, exist_ok=True)
        doc = self.document
        trav = doc["traversals"]
        labels = [d["name"] for d in trav["directions"]]
        steps = [f"{p:.3g}%" for p in trav["step_percentiles"]]
        if self.is_image:
            traversal_png = plots.traversal_grid(
                self.traversals_scaled, self.sample_shape, labels, steps, self.value_range,
                f"Latent traversals: {trav['mode']}, {trav['percentiles'][0]:g}th to "
                f"{trav['percentiles'][1]:g}th percentile, the rest of the code at its median")
            errors_png = plots.error_map(self.feature_mse, self.pca_feature_mse,
                                         self.sample_shape, doc["pca"]["components"]
                                         if doc["pca"] else None)
        else:
            traversal_png = plots.traversal_panels(
                self.traversals_scaled, self.feature_names, labels, steps,
                [[f["index"] for f in d["top_features"]] for d in trav["directions"]],
                f"Latent traversals ({trav['mode']}): reconstructed features, scaled units")
            errors_png = plots.error_bars(self.feature_mse, self.pca_feature_mse,
                                          self.feature_names, doc["pca"]["components"]
                                          if doc["pca"] else None)
        scores, rows = self.shown_scores()
        method = doc["unit_features"]["method"]
        if self.is_image:
            units_png = plots.attribution_maps(scores, self.sample_shape, rows, method)
        else:
            units_png = plots.attribution_bars(scores, self.feature_names, rows, method,
                                               TOP_FEATURES)
        paths = {k: out / v for k, v in FILES.items()}
        atomic_write_bytes(paths["traversals"], traversal_png)
        atomic_write_bytes(paths["feature_errors"], errors_png)
        atomic_write_bytes(paths["unit_features"], units_png)
        buf = io.BytesIO()
        np.save(buf, self.traversals.astype(np.float32), allow_pickle=False)
        atomic_write_bytes(paths["decoded"], buf.getvalue())
        write_json(paths["json"], doc)  # last: its presence says the pictures are complete
        return paths


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

    trav = _traversals(ae, codes, steps, percentiles, max_axes)
    correlation = _correlation(xs, codes)
    gradient = _gradient(ae, xs, None)
    dir_corr = dir_grad = None
    if trav["mode_key"] == "directions":
        projections = (codes - trav["base"]) @ trav["vectors"].T
        dir_corr = _correlation(xs, projections)
        dir_grad = _gradient(ae, xs, trav["vectors"])
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
        "traversals": _traversal_doc(trav, names, percentiles, steps),
        "unit_features": {
            "method": attribution, "methods": dict(METHODS),
            "also": [m for m in ATTRIBUTIONS if m != attribution],
            "top_k": TOP_FEATURES,
            "units": [_unit_doc(f"unit {j}", names, rank[j], correlation[j], gradient[j],
                                {"unit": j, "code_mean": float(codes[:, j].mean()),
                                 "code_std": float(codes[:, j].std())})
                      for j in range(latent)],
            "directions": None if dir_rank is None else [
                _unit_doc(d["name"], names, dir_rank[i], dir_corr[i], dir_grad[i],
                          {"direction": i, "code_variance_share": d["code_variance_share"]})
                for i, d in enumerate(trav["doc"])],
        },
        "files": {k: v for k, v in FILES.items() if k != "json"},
    }
    bounds = ae.scaler.output_range
    value_range = bounds if bounds is not None else _robust_range(trav["decoded_scaled"])
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


# -- traversals -------------------------------------------------------------------------------
def _traversals(ae: Autoencoder, codes: np.ndarray, steps: int, percentiles: Any,
                max_axes: int) -> dict[str, Any]:
    """Decode codes moved along each unit (or principal direction of the codes) from the low
    to the high percentile, the rest of the code at its median."""
    n, latent = codes.shape
    base = np.median(codes, axis=0)
    total = float(codes.var(axis=0).sum())
    if latent <= max_axes:
        vectors = np.eye(latent)
        shares = codes.var(axis=0) / total if total > 0 else np.zeros(latent)
        mode_key, names = "units", [f"unit {j}" for j in range(latent)]
    else:
        centred = codes - codes.mean(axis=0)
        _, s, vt = np.linalg.svd(centred, full_matrices=False)
        vectors = vt[:max_axes]
        # a fixed sign: the largest weight of each direction positive
        signs = np.sign(vectors[np.arange(len(vectors)), np.abs(vectors).argmax(axis=1)])
        vectors = vectors * np.where(signs == 0, 1.0, signs)[:, None]
        var = s ** 2
        shares = (var / var.sum() if var.sum() > 0 else np.zeros_like(var))[:max_axes]
        mode_key, names = "directions", [f"PC{i + 1}" for i in range(len(vectors))]
    proj = (codes - base) @ vectors.T
    # step i is the i-th of `steps` evenly spaced percentiles of the unit's values: the steps
    # follow the data (denser where it is); with 5..95 and odd steps the middle one is the
    # median code itself
    t = np.percentile(proj, percentile_steps(percentiles, steps), axis=0).T
    moved = base[None, None, :] + t[..., None] * vectors[:, None, :]
    flat = moved.reshape(-1, latent).astype(np.float32)
    n_features = ae.model.n_features
    decoded_scaled = ae.decode_scaled(flat).reshape(len(vectors), steps, n_features)
    decoded = ae.decode(flat).reshape(len(vectors), steps, n_features)
    docs = []
    for i, name in enumerate(names):
        values = (base[i] + t[i]) if mode_key == "units" else t[i]
        docs.append({"name": name, "values": [float(v) for v in values],
                     "code_std": float(proj[:, i].std()),
                     "code_variance_share": float(shares[i])})
    return {"mode_key": mode_key, "base": base, "vectors": vectors, "doc": docs,
            "decoded": decoded, "decoded_scaled": decoded_scaled, "n": n}


def percentile_steps(percentiles: Any, steps: int) -> list[float]:
    """The percentile of each traversal step: ``steps`` evenly spaced from low to high."""
    return [float(p) for p in np.linspace(float(percentiles[0]), float(percentiles[1]), steps)]


def _traversal_doc(trav: dict[str, Any], names: list[str], percentiles: Any,
                   steps: int) -> dict[str, Any]:
    dec, raw = trav["decoded_scaled"].astype(np.float64), trav["decoded"].astype(np.float64)
    directions = []
    for i, doc in enumerate(trav["doc"]):
        span = dec[i].max(axis=0) - dec[i].min(axis=0)
        order = np.argsort(-span, kind="stable")[:TOP_FEATURES]
        entry = dict(doc)
        if trav["mode_key"] == "directions":
            entry["vector"] = [float(v) for v in trav["vectors"][i]]
        entry["effect_rms"] = float(np.sqrt(np.mean(span ** 2)))
        entry["top_features"] = [
            {"feature": names[j], "index": int(j), "range": float(span[j]),
             "from": float(raw[i, 0, j]), "to": float(raw[i, -1, j])} for j in order]
        directions.append(entry)
    mode = ("code units" if trav["mode_key"] == "units" else
            f"the top {len(directions)} principal directions of the codes")
    return {
        "mode": mode, "percentiles": [float(p) for p in percentiles], "steps": steps,
        "step_percentiles": percentile_steps(percentiles, steps),
        "base_code": [float(v) for v in trav["base"]],
        "description": "each unit/direction set to evenly spaced percentiles (step_percentiles)"
                       " of its values on the explained rows, the rest of the code at its "
                       "median, and decoded; values: the unit's code value at each step (for a "
                       "principal direction: the offset from the median code along it); "
                       "range: how far "
                       "a feature's reconstruction moves over the steps (scaled units); "
                       "from/to: its value at the first and last step (data units); "
                       "effect_rms: the root mean square of the ranges over all features",
        "directions": directions,
    }


# -- attribution ------------------------------------------------------------------------------
def _correlation(inputs: np.ndarray, signals: np.ndarray) -> np.ndarray:
    """Pearson correlation (signals x inputs); 0 where either side is constant."""
    a = inputs.astype(np.float64)
    a = a - a.mean(axis=0)
    b = signals.astype(np.float64) - signals.mean(axis=0)
    cov = b.T @ a / len(a)
    denom = np.outer(b.std(axis=0), a.std(axis=0))
    out = np.zeros_like(cov)
    np.divide(cov, denom, out=out, where=denom > 1e-12)
    return np.clip(out, -1.0, 1.0)


def _gradient(ae: Autoencoder, xs: np.ndarray, vectors: np.ndarray | None) -> np.ndarray:
    """Mean |d signal / d input| over the rows: the code units (``vectors`` None) or the
    projections of the codes on ``vectors``."""
    import torch

    model = ae.model
    model.eval()
    device = ae.device
    proj = None if vectors is None else torch.as_tensor(vectors, dtype=torch.float32,
                                                        device=device)
    n_out = model.cfg.latent_dim if proj is None else proj.shape[0]
    total = np.zeros((n_out, xs.shape[1]))
    with torch.enable_grad():
        for start in range(0, len(xs), GRAD_BATCH):
            batch = torch.from_numpy(xs[start:start + GRAD_BATCH]).to(device).requires_grad_()
            z = model.encode(batch)
            signals = z if proj is None else z @ proj.T
            for i in range(n_out):
                (grad,) = torch.autograd.grad(signals[:, i].sum(), batch,
                                              retain_graph=i + 1 < n_out)
                total[i] += grad.abs().sum(dim=0).double().cpu().numpy()
    return total / max(1, len(xs))


def _unit_doc(name: str, names: list[str], rank: np.ndarray, corr: np.ndarray,
              grad: np.ndarray, extra: dict[str, Any]) -> dict[str, Any]:
    order = np.argsort(-np.abs(rank), kind="stable")[:TOP_FEATURES]
    return {"name": name, **extra,
            "top_features": [{"feature": names[j], "index": int(j),
                              "correlation": float(corr[j]), "gradient": float(grad[j])}
                             for j in order]}


def _robust_range(values: np.ndarray) -> tuple[float, float]:
    lo, hi = (float(v) for v in np.percentile(values, [1, 99]))
    if not (math.isfinite(lo) and math.isfinite(hi)) or hi - lo < 1e-12:
        return (lo, lo + 1.0) if math.isfinite(lo) else (0.0, 1.0)
    return lo, hi


# -- text ---------------------------------------------------------------------------------------
def summary_lines(doc: dict[str, Any]) -> list[str]:
    """A few human-readable lines about an explanation (``aekit explain``'s output)."""
    rec, pca = doc["reconstruction"], doc["pca"]
    lines = [f"explained {doc['data']}: {doc['sample']}; latent size {doc['latent_dim']}, "
             f"{doc['n_features']} features"]
    vs = (f", PCA-{pca['components']} {rec['pca_mse']:.4g} ({pca['source']})"
          if "pca_mse" in rec else "")
    lines.append(f"reconstruction MSE (scaled) {rec['mse']:.4g}{vs}")
    errors = {r["feature"]: r for r in doc["feature_errors"]["features"]}
    worst = []
    for name in doc["feature_errors"]["worst"][:5]:
        r = errors[name]
        share = r.get("unexplained_share")
        lost = "" if share is None else f" ({share:.1%} lost)" if share < 0.01 \
            else f" ({share:.0%} lost)"
        worst.append(f"{name} {r['mse']:.3g}{lost}")
    lines.append("worst reconstructed (MSE, share of the feature's variance lost): "
                 + ", ".join(worst))
    trav = doc["traversals"]
    lines.append(f"traversals along {trav['mode']} ({trav['percentiles'][0]:g}th to "
                 f"{trav['percentiles'][1]:g}th percentile, {trav['steps']} steps):")
    for d in trav["directions"]:
        moved = ", ".join(f["feature"] for f in d["top_features"][:3])
        lines.append(f"  {d['name']}: effect {d['effect_rms']:.3g}; moves most: {moved}")
    uf = doc["unit_features"]
    lines.append(f"strongest input features per unit ({uf['method']}):")
    key = uf["method"]
    for u in (uf["directions"] or uf["units"])[:MAX_AXES]:
        feats = ", ".join(f"{f['feature']} {f[key]:+.2f}" if key == "correlation"
                          else f"{f['feature']} {f[key]:.3g}" for f in u["top_features"][:3])
        lines.append(f"  {u['name']}: {feats}")
    return lines
