"""What ``aekit explain`` found (:class:`Explanation`): the numbers of ``explain.json``, the
arrays behind the pictures, the files it writes and a text summary."""

from __future__ import annotations

import io
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from aekit.errors import ConfigError
from aekit.serialization import atomic_write_bytes, write_json

MAX_AXES = 8          # above this latent size, traverse the codes' top principal directions
TOP_FEATURES = 5      # features named per unit / direction
FILES = {"json": "explain.json", "traversals": "traversals.png",
         "feature_errors": "feature_errors.png", "unit_features": "unit_features.png",
         "decoded": "traversals.npy"}


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
