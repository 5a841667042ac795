"""The charts of ``report.html``, drawn with matplotlib's Agg backend as inline SVG or base64
PNG (see :mod:`aekit.report`)."""

from __future__ import annotations

import base64
import io
import math
from typing import Any

import numpy as np

def _figure(width: float = 6.4, height: float = 3.4) -> Any:
    import matplotlib

    matplotlib.use("Agg", force=True)
    from matplotlib.figure import Figure

    return Figure(figsize=(width, height), dpi=100, layout="constrained")


def figure_svg(fig: Any) -> str:
    """A matplotlib figure as an inline ``<svg>`` element (no XML prologue)."""
    buf = io.StringIO()
    fig.savefig(buf, format="svg")
    text = buf.getvalue()
    return text[text.index("<svg"):]


def figure_png(fig: Any) -> str:
    """A matplotlib figure as an ``<img>`` with a base64 PNG data URI."""
    buf = io.BytesIO()
    fig.savefig(buf, format="png")
    data = base64.b64encode(buf.getvalue()).decode("ascii")
    return f'<img alt="plot" src="data:image/png;base64,{data}">'


def plot_curves(epochs: list[dict[str, Any]], events: list[dict[str, Any]]) -> str:
    """Train/validation loss (log scale) and learning rate per epoch, events as dashed lines."""
    fig = _figure(10, 3.4)
    loss_ax, lr_ax = fig.subplots(1, 2)
    x = [e.get("epoch", i + 1) for i, e in enumerate(epochs)]
    for key, label in (("train_loss", "train"), ("val_loss", "validation")):
        ys = [e.get(key) for e in epochs]
        if any(isinstance(y, (int, float)) and math.isfinite(y) for y in ys):
            loss_ax.plot(x, [np.nan if y is None else y for y in ys], marker=".", label=label)
    loss_ax.set(title="loss", xlabel="epoch", yscale="log")
    loss_ax.legend()
    lr_ax.plot(x, [e.get("lr", np.nan) for e in epochs], color="tab:green", marker=".")
    lr_ax.set(title="learning rate (end of epoch)", xlabel="epoch")
    for event in events:
        for ax in (loss_ax, lr_ax):
            ax.axvline(event.get("epoch", 0) + 1, color="tab:red", linestyle="--", alpha=.5)
    return figure_svg(fig)


def plot_series(title: str, series: dict[str, list[tuple[float, float]]], log: bool) -> str:
    """One line per series over steps; legend only when it stays readable."""
    fig = _figure(5.4, 3.2)
    ax = fig.subplots()
    for name, points in sorted(series.items()):
        xs, ys = zip(*points)
        ax.plot(xs, ys, label=name, linewidth=1.2)
    positive = all(v > 0 for pts in series.values() for _, v in pts)
    ax.set(title=title, xlabel="step", yscale="log" if log and positive else "linear")
    if len(series) <= 16:
        ax.legend(fontsize=6, loc="center left", bbox_to_anchor=(1.0, 0.5))
    return figure_svg(fig)


def _as_images(x: np.ndarray, sample_shape: tuple[int, ...]) -> np.ndarray:
    """Rows of (n, features) as (n, h, w) or (n, h, w, c) for imshow, clipped to [0, 1]."""
    imgs = x.reshape((len(x), *sample_shape))
    if imgs.ndim == 4:  # channels first -> last
        imgs = np.moveaxis(imgs, 1, -1)
        if imgs.shape[-1] == 1:
            imgs = imgs[..., 0]
    return np.clip(imgs, 0.0, 1.0)


def plot_reconstructions(orig: np.ndarray, recon: np.ndarray,
                         sample_shape: tuple[int, ...]) -> str:
    """Originals (top row) above their reconstructions (bottom row), in scaled [0, 1] units."""
    n = len(orig)
    fig = _figure(1.0 * n, 2.3)
    axes = np.asarray(fig.subplots(2, n)).reshape(2, n)
    for row, data in enumerate((_as_images(orig, sample_shape), _as_images(recon, sample_shape))):
        for col in range(n):
            ax = axes[row, col]
            ax.imshow(data[col], cmap="gray", vmin=0, vmax=1, interpolation="nearest")
            ax.set_xticks([])
            ax.set_yticks([])
        axes[row, 0].set_ylabel("original" if row == 0 else "reconstruction", fontsize=8)
    return figure_png(fig)


def pca_2d(codes: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Project codes on their first two principal axes.

    Returns:
        (n, 2) coordinates and the share of the codes' variance each axis explains.
    """
    centred = codes.astype(np.float64) - codes.mean(axis=0)
    _, s, vt = np.linalg.svd(centred, full_matrices=False)
    coords = centred @ vt[:2].T
    if coords.shape[1] < 2:  # a 1-D code: plot it against zero
        coords = np.hstack([coords, np.zeros((len(coords), 1))])
    var = s ** 2
    share = var[:2] / max(var.sum(), 1e-30)
    return coords, np.pad(share, (0, 2 - len(share)))


def plot_code_map(codes: np.ndarray, labels: np.ndarray | None,
                  names: tuple[str, ...] | None = None) -> str:
    """Scatter of the codes' first two principal components, one colour per class (a legend
    with the class names, up to 20 classes)."""
    coords, share = pca_2d(codes)
    fig = _figure(6.4, 5.0)
    ax = fig.subplots()
    if labels is not None:
        classes = np.unique(labels)
        from matplotlib import colormaps

        cmap = colormaps["tab10" if len(classes) <= 10 else "tab20"]
        for i, c in enumerate(classes):
            at = labels == c
            name = names[c] if names is not None and 0 <= c < len(names) else str(c)
            ax.scatter(coords[at, 0], coords[at, 1], s=6, alpha=.8, label=name,
                       color=cmap(i % cmap.N))
        if len(classes) <= 20:
            ax.legend(title="class", markerscale=2.5, fontsize="small", loc="best")
    else:
        ax.scatter(coords[:, 0], coords[:, 1], s=6, alpha=.6)
    ax.set(title="codes, first two principal components",
           xlabel=f"PC1 ({share[0]:.0%} of code variance)",
           ylabel=f"PC2 ({share[1]:.0%} of code variance)")
    return figure_png(fig)


def plot_pca_bars(summary: dict[str, Any]) -> str:
    """Bar chart: test MSE of the autoencoder and of PCA at the same latent size."""
    fig = _figure(4.2, 3.0)
    ax = fig.subplots()
    k = summary.get("pca_components", summary.get("latent_dim"))
    ax.bar(["autoencoder", f"PCA-{k}"], [summary["test_mse"], summary["pca_test_mse"]],
           color=["tab:blue", "tab:gray"])
    ax.set(title="test MSE (scaled units, lower is better)")
    return figure_svg(fig)


def plot_score_histogram(scores: np.ndarray, threshold: float, log_x: bool) -> str:
    """Histogram of anomaly scores: the rows above ``threshold`` in red, the threshold as a
    dashed vertical line (its legend entry counts the rows above it). ``log_x``: log-spaced
    bins on a log axis (scores not above zero are drawn in the first bin); the count axis turns
    logarithmic when the tallest bar would flatten the rest."""
    scores = np.asarray(scores, dtype=np.float64)
    above = scores > threshold
    lo, hi = min(float(scores.min()), threshold), max(float(scores.max()), threshold)
    if log_x:
        lo = min(float(scores[scores > 0].min()), threshold)
        values, bins = np.clip(scores, lo, None), np.geomspace(lo, hi, 61)
    else:
        values, bins = scores, (np.linspace(lo, hi, 61) if hi > lo else 60)
    counts, _ = np.histogram(values, bins=bins)
    fig = _figure(7.2, 3.4)
    ax = fig.subplots()
    ax.hist([values[~above], values[above]], bins=bins, stacked=True,
            color=["tab:blue", "tab:red"], label=["inliers", "flagged as outliers"],
            log=bool(counts.max() > 50))
    ax.axvline(threshold, color="black", linestyle="--", linewidth=1.2,
               label=f"threshold {threshold:.4g}: {int(above.sum())} of {len(scores)} rows "
               "above")
    ax.set(title="anomaly scores", xlabel="anomaly score" + (" (log scale)" if log_x else ""),
           ylabel="rows", xscale="log" if log_x else "linear")
    ax.legend(fontsize="small")
    return figure_svg(fig)


def plot_sample_grid(images: np.ndarray, captions: list[str], sample_shape: tuple[int, ...],
                     recon: np.ndarray | None = None, columns: int = 5) -> str:
    """Samples as images, ``columns`` to a row, each titled with its caption; with ``recon``,
    each sample's reconstruction to its right. Values in [0, 1] (clipped)."""
    n, per = len(images), 1 if recon is None else 2
    cols = min(columns, n)
    rows = math.ceil(n / cols)
    fig = _figure(1.15 * cols * per, 1.45 * rows)
    axes = np.asarray(fig.subplots(rows, cols * per)).reshape(rows, cols * per)
    shown = [_as_images(images, sample_shape)]
    if recon is not None:
        shown.append(_as_images(recon, sample_shape))
    for ax in axes.flat:
        ax.set_axis_off()
    for i in range(n):
        for j, data in enumerate(shown):
            ax = axes[i // cols, (i % cols) * per + j]
            ax.imshow(data[i], cmap="gray", vmin=0, vmax=1, interpolation="nearest")
            ax.set_title(captions[i] if j == 0 else "reconstruction", fontsize=7,
                         color="black" if j == 0 else "dimgray")
    return figure_png(fig)
