"""Labels in a run's results: per-class errors, and the codes judged by a classifier and by
clustering, each next to PCA's codes at the same size (the training weights that balance the
classes are a decision: :func:`aekit.pipeline.decisions.training_weights`)."""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from aekit.data import Dataset
from aekit.data.labels import class_name
from aekit.pipeline.decisions import class_counts
from aekit.pipeline.scoring import per_row_sse
from aekit.training.findings import SEVERITY_RANK

PROBE_MAX_TRAIN = 10_000  # rows of training codes the linear probe learns from (a sample)
PROBE_MAX_TEST = 10_000  # test codes scored and clustered (a sample)
CLASS_GAP = 2.0  # a class whose test error is this many times the median class's is flagged
MIN_CLASS_ROWS = 5  # fewer test rows of a class: too few to flag it


# -- per-class errors -------------------------------------------------------------------------
def per_class_sse(per_row: np.ndarray, labels: np.ndarray, ds: Dataset) -> dict[str, float]:
    """Class name -> mean squared error per sample of its rows."""
    return {class_name(ds, c): float(per_row[labels == c].mean())
            for c in np.unique(labels)}


def class_report(per_row: np.ndarray, pca_per_row: np.ndarray, test: Dataset,
                 train_labels: np.ndarray | None, train: Dataset | None) -> dict[str, Any]:
    """``per_class_test_sse``, PCA's, the test rows per class, and the classes only the test
    set has (``test_only_classes``), for ``summary.json``."""
    labels = test.labels
    out: dict[str, Any] = {
        "per_class_test_sse": per_class_sse(per_row, labels, test),
        "pca_per_class_test_sse": per_class_sse(pca_per_row, labels, test),
        "per_class_test_rows": {class_name(test, c): n for c, n in class_counts(labels).items()},
    }
    if train_labels is not None and train is not None:
        out["per_class_train_rows"] = {class_name(train, c): n
                                      for c, n in class_counts(train_labels).items()}
        only = sorted(set(np.unique(labels).tolist()) - set(np.unique(train_labels).tolist()))
        out["test_only_classes"] = [class_name(test, c) for c in only]
    return out


def class_gap_finding(summary: dict[str, Any]) -> dict[str, Any] | None:
    """A doctor's finding when one class reconstructs far worse than the others: its test
    error at least :data:`CLASS_GAP` times the median class's (classes with at least
    :data:`MIN_CLASS_ROWS` test rows); the advice names ``--balance``."""
    errors = summary.get("per_class_test_sse") or {}
    rows = summary.get("per_class_test_rows") or {}
    judged = {k: v for k, v in errors.items() if rows.get(k, 0) >= MIN_CLASS_ROWS}
    if len(judged) < 2:
        return None
    median = float(np.median(list(judged.values())))
    worst = max(judged, key=judged.get)
    if median <= 0 or judged[worst] < CLASS_GAP * median:
        return None
    train_rows = summary.get("per_class_train_rows") or {}
    share = (f"; it has {train_rows.get(worst, 0)} of the {sum(train_rows.values())} "
             "training rows" if train_rows else "")
    balanced = summary.get("balance", "none") != "none"
    advice = ("the classes are already balanced (--balance " + summary.get("balance", "") +
              "): a larger --latent-dim or more rows of this class may help" if balanced else
              "train with --balance weights (each class weighs the same in the loss) or "
              "--balance sampler (class-balanced batches); compare per_class_test_sse")
    return {"kind": "class_error_gap", "severity": "medium", "step": summary.get("steps", 0),
            "message": f"class {worst} reconstructs {judged[worst] / median:.1f}x worse than "
                       f"the median class (test error per sample {judged[worst]:.4g} against "
                       f"{median:.4g}){share}",
            "advice": advice,
            "evidence": {"class": worst, "class_test_sse": judged[worst],
                         "median_class_test_sse": median}}


# -- the codes, judged downstream --------------------------------------------------------------
def probe(train_codes: np.ndarray, train_labels: np.ndarray, test_codes: np.ndarray,
          test_labels: np.ndarray, seed: int = 0) -> dict[str, float]:
    """How useful codes are for classification and clustering.

    ``linear_probe_accuracy``: a logistic regression (on standardized codes) learnt from the
    training codes (at most :data:`PROBE_MAX_TRAIN`, a stratified-by-chance sample), scored
    on the test codes. ``kmeans_ari``: k-means with k = the number of test classes on the
    test codes, against the test labels (adjusted Rand index; 0 = chance, 1 = the classes).
    """
    from sklearn.cluster import KMeans
    from sklearn.linear_model import LogisticRegression
    from sklearn.metrics import adjusted_rand_score
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    rng = np.random.default_rng(seed)
    tr = _sample(rng, len(train_codes), PROBE_MAX_TRAIN)
    te = _sample(rng, len(test_codes), PROBE_MAX_TEST)
    out: dict[str, float] = {}
    if len(np.unique(train_labels[tr])) >= 2:
        clf = make_pipeline(StandardScaler(), LogisticRegression(max_iter=500))
        clf.fit(train_codes[tr], train_labels[tr])
        out["linear_probe_accuracy"] = float(clf.score(test_codes[te], test_labels[te]))
    k = len(np.unique(test_labels[te]))
    if 2 <= k <= len(te):
        clusters = KMeans(n_clusters=k, n_init=4, random_state=seed).fit_predict(test_codes[te])
        out["kmeans_ari"] = float(adjusted_rand_score(test_labels[te], clusters))
    return out


def probe_vs_pca(encode: Any, pca: Any, x_train: np.ndarray, train_labels: np.ndarray,
                 x_test: np.ndarray, test_labels: np.ndarray, seed: int = 0
                 ) -> dict[str, Any]:
    """The ``probe`` block of ``summary.json``: :func:`probe` on the model's codes and on
    PCA's at the same size (``pca_`` keys), from scaled training and test rows."""
    rng = np.random.default_rng(seed)
    tr = _sample(rng, len(x_train), PROBE_MAX_TRAIN)
    x_tr, y_tr = x_train[tr], train_labels[tr]
    model = probe(encode(x_tr), y_tr, encode(x_test), test_labels, seed)
    base = probe(pca.transform(x_tr), y_tr, pca.transform(x_test), test_labels, seed)
    return {**model, **{f"pca_{k}": v for k, v in base.items()},
            "latent_dim": int(pca.n_components_), "probe_train_rows": int(len(tr)),
            "probe_test_rows": int(min(len(x_test), PROBE_MAX_TEST))}


def _sample(rng: np.random.Generator, n: int, most: int) -> np.ndarray:
    return np.arange(n) if n <= most else np.sort(rng.choice(n, most, replace=False))


def add_label_results(summary: dict[str, Any], results: dict[str, Any]) -> dict[str, Any]:
    """Put the per-class errors and the probe into ``summary``, and the doctor's finding when
    one class reconstructs far worse than the others (most severe findings first)."""
    summary.update(results)
    finding = class_gap_finding(summary)
    if finding is not None and summary.get("findings") is not None:
        summary["findings"] = sorted([*summary["findings"], finding],
                                     key=lambda f: SEVERITY_RANK[f["severity"]])
    return summary


def label_summary(ae: Any, scaler: Any, pca: Any, test: Dataset,
                  train: Dataset | None = None, train_rows: np.ndarray | None = None,
                  seed: int = 0) -> dict[str, Any]:
    """What labels add to a summary: per-class test errors (the model's and PCA's) and, when
    the training rows have labels too, the ``probe`` block; empty without test labels.

    Args:
        ae: the trained model (``reconstruct_scaled``, ``encode_scaled``).
        scaler, pca: the run's. test: the test set (raw, with labels).
        train, train_rows: the data the model learnt from and its training rows (raw).
    """
    if test.labels is None or not test.n_samples:
        return {}
    x_test = scaler.transform(test.x)
    per_row = per_row_sse(x_test, ae.reconstruct_scaled(x_test))
    pca_per_row = per_row_sse(x_test, pca.inverse_transform(pca.transform(x_test)))
    train_labels = (train.labels[train_rows] if train is not None and train.labels is not None
                    and train_rows is not None else None)
    out = class_report(per_row, pca_per_row, test, train_labels, train)
    if train_labels is not None:
        x_train = scaler.transform_rows(train.x, train_rows)
        out["probe"] = probe_vs_pca(ae.encode_scaled, pca, x_train, train_labels, x_test,
                                    test.labels, seed)
    return out


def format_classes(summary: dict[str, Any], most: int = 12) -> list[str]:
    """Console lines: the per-class test errors (worst first) and the probe, when known."""
    lines: list[str] = []
    errors = summary.get("per_class_test_sse")
    if errors:
        pca = summary.get("pca_per_class_test_sse", {})
        worst = sorted(errors, key=errors.get, reverse=True)
        shown = ", ".join(f"{k}: {errors[k]:.3g}" + (f" ({errors[k] / pca[k]:.2f}x PCA)"
                                                     if pca.get(k) else "")
                          for k in worst[:most])
        more = f", ... ({len(worst) - most} more)" if len(worst) > most else ""
        lines.append(f"  per-class test error, worst first: {shown}{more}")
        if summary.get("test_only_classes"):
            lines.append(f"  classes only in the test set: "
                         f"{', '.join(map(str, summary['test_only_classes']))}")
    p = summary.get("probe")
    if p:
        parts = []
        if "linear_probe_accuracy" in p:
            parts.append(f"linear probe accuracy {p['linear_probe_accuracy']:.3f} (PCA "
                         f"{p.get('pca_linear_probe_accuracy', math.nan):.3f})")
        if "kmeans_ari" in p:
            parts.append(f"k-means ARI {p['kmeans_ari']:.3f} (PCA "
                         f"{p.get('pca_kmeans_ari', math.nan):.3f})")
        if parts:
            lines.append(f"  codes for classes ({p['latent_dim']} dims): " + ", ".join(parts))
    return lines
