"""The pictures of ``aekit explain`` (:mod:`aekit.explain`), drawn with matplotlib's Agg
backend; each function returns the bytes of one PNG file."""

from __future__ import annotations

import io
import math
from typing import Any, Sequence

import numpy as np

from aekit.report_plots import _as_images, _figure

MAX_BARS = 25  # features in the per-feature error bar chart


def png_bytes(fig: Any) -> bytes:
    """A matplotlib figure as PNG bytes."""
    buf = io.BytesIO()
    fig.savefig(buf, format="png")
    return buf.getvalue()


def _grey(shape: tuple[int, ...]) -> tuple[int, int]:
    """(h, w) of an image sample (its channels averaged in the maps)."""
    return (shape[-2], shape[-1]) if len(shape) >= 2 else (1, shape[0])


def _as_map(values: np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
    """One value per feature as an (h, w) map; colour channels averaged."""
    if len(shape) == 3:
        return np.asarray(values).reshape(shape).mean(axis=0)
    return np.asarray(values).reshape(_grey(shape))


def _off(ax: Any) -> None:
    ax.set_xticks([])
    ax.set_yticks([])


def traversal_grid(decoded: np.ndarray, shape: tuple[int, ...], rows: Sequence[str],
                   cols: Sequence[str], value_range: tuple[float, float], title: str) -> bytes:
    """Images: one row per unit/direction, one column per step (scaled values shown over
    ``value_range``)."""
    k, steps = decoded.shape[:2]
    lo, hi = value_range
    fig = _figure(1.0 + 0.95 * steps, 0.55 + 0.95 * k)
    axes = np.asarray(fig.subplots(k, steps, squeeze=False))
    for i in range(k):
        tiles = _as_images((decoded[i] - lo) / max(hi - lo, 1e-12), shape)
        for j in range(steps):
            ax = axes[i, j]
            ax.imshow(tiles[j], cmap="gray", vmin=0, vmax=1, interpolation="nearest")
            _off(ax)
            if i == 0:
                ax.set_title(cols[j], fontsize=7)
        axes[i, 0].set_ylabel(rows[i], fontsize=8, rotation=0, ha="right", va="center")
    fig.suptitle(title, fontsize=8)
    return png_bytes(fig)


def traversal_panels(decoded: np.ndarray, names: Sequence[str], rows: Sequence[str],
                     cols: Sequence[str], top: Sequence[Sequence[int]], title: str,
                     named: int = 4) -> bytes:
    """Tables: one panel per unit/direction; every reconstructed feature as a thin grey line
    over the steps, the ``named`` that move most in colour, named in the legend."""
    k, steps = decoded.shape[:2]
    n_cols = min(4, k)
    n_rows = math.ceil(k / n_cols)
    fig = _figure(max(6.0, 3.3 * n_cols), 0.8 + 2.5 * n_rows)
    axes = np.asarray(fig.subplots(n_rows, n_cols, squeeze=False)).ravel()
    x = np.arange(steps)
    for i in range(k):
        ax = axes[i]
        ax.plot(x, decoded[i], color="0.8", linewidth=0.7)
        for rank, j in enumerate(top[i][:named]):
            ax.plot(x, decoded[i][:, j], linewidth=1.8, color=f"C{rank}", label=names[j])
        ax.set_title(rows[i], fontsize=9)
        ax.set_xticks(x, cols, fontsize=6)
        ax.tick_params(axis="y", labelsize=7)
        ax.legend(fontsize=6, loc="best")
    for ax in axes[k:]:
        ax.set_visible(False)
    fig.supxlabel("code percentile (the rest of the code at its median)", fontsize=8)
    fig.supylabel("reconstruction (scaled)", fontsize=8)
    fig.suptitle(title, fontsize=9)
    return png_bytes(fig)


def error_map(mse: np.ndarray, pca_mse: np.ndarray | None, shape: tuple[int, ...],
              k: int | None) -> bytes:
    """Images: the per-pixel mean squared error as a heat map, PCA's beside it (one colour
    scale)."""
    maps = [("autoencoder", _as_map(mse, shape))]
    if pca_mse is not None:
        maps.append((f"PCA-{k}", _as_map(pca_mse, shape)))
    vmax = max(float(m.max()) for _, m in maps) or 1.0
    fig = _figure(3.2 * len(maps) + 0.8, 3.4)
    axes = np.asarray(fig.subplots(1, len(maps), squeeze=False)).ravel()
    for ax, (label, m) in zip(axes, maps):
        image = ax.imshow(m, cmap="magma", vmin=0, vmax=vmax, interpolation="nearest")
        ax.set_title(f"{label}: mean {float(m.mean()):.3g}", fontsize=9)
        _off(ax)
    fig.colorbar(image, ax=list(axes), shrink=0.85, label="MSE per pixel (scaled)")
    fig.suptitle("Per-pixel reconstruction error (brighter: given up)", fontsize=9)
    return png_bytes(fig)


def error_bars(mse: np.ndarray, pca_mse: np.ndarray | None, names: Sequence[str],
               k: int | None) -> bytes:
    """Tables: the per-feature mean squared error, worst first, PCA's beside it."""
    order = np.argsort(-mse, kind="stable")[:MAX_BARS]
    n = len(order)
    fig = _figure(6.4, 1.0 + 0.28 * n)
    ax = fig.subplots()
    y = np.arange(n)
    height = 0.4 if pca_mse is not None else 0.7
    ax.barh(y - (height / 2 if pca_mse is not None else 0), mse[order], height=height,
            color="tab:blue", label="autoencoder")
    if pca_mse is not None:
        ax.barh(y + height / 2, pca_mse[order], height=height, color="tab:gray",
                label=f"PCA-{k}")
    ax.set_yticks(y, [names[j] for j in order], fontsize=7)
    ax.invert_yaxis()
    ax.set(xlabel="mean squared error (scaled)",
           title="Per-feature reconstruction error, worst first"
           + (f" (top {n} of {len(mse)})" if n < len(mse) else ""))
    ax.legend(fontsize=7)
    return png_bytes(fig)


def attribution_maps(scores: np.ndarray, shape: tuple[int, ...], rows: Sequence[str],
                     method: str) -> bytes:
    """Images: each unit's score on every pixel as a map (correlation: red positive, blue
    negative; gradient: brighter, more sensitive)."""
    k = len(scores)
    n_cols = min(4, k)
    n_rows = math.ceil(k / n_cols)
    fig = _figure(max(4.0, 0.8 + 2.1 * n_cols), 0.6 + 2.1 * n_rows)
    axes = np.asarray(fig.subplots(n_rows, n_cols, squeeze=False)).ravel()
    signed = method == "correlation"
    vmax = 1.0 if signed else (float(np.max(scores)) or 1.0)
    for i in range(k):
        image = axes[i].imshow(_as_map(scores[i], shape), cmap="RdBu_r" if signed else "viridis",
                               vmin=-vmax if signed else 0, vmax=vmax, interpolation="nearest")
        axes[i].set_title(rows[i], fontsize=9)
        _off(axes[i])
    for ax in axes[k:]:
        ax.set_visible(False)
    label = "correlation with the unit" if signed else "mean |d code / d pixel|"
    fig.colorbar(image, ax=list(axes), shrink=0.8, label=label)
    fig.suptitle(f"What each unit responds to ({method})", fontsize=9)
    return png_bytes(fig)


def attribution_bars(scores: np.ndarray, names: Sequence[str], rows: Sequence[str],
                     method: str, top: int) -> bytes:
    """Tables: each unit's strongest input features, one small bar chart per unit."""
    k = len(scores)
    n_cols = min(4, k)
    n_rows = math.ceil(k / n_cols)
    top = min(top, scores.shape[1])
    fig = _figure(max(6.0, 3.2 * n_cols), 0.8 + (0.5 + 0.3 * top) * n_rows)
    axes = np.asarray(fig.subplots(n_rows, n_cols, squeeze=False)).ravel()
    signed = method == "correlation"
    for i in range(k):
        order = np.argsort(-np.abs(scores[i]), kind="stable")[:top]
        values = scores[i][order]
        colors = ["tab:red" if v >= 0 else "tab:blue" for v in values] if signed \
            else ["tab:green"] * len(values)
        ax = axes[i]
        ax.barh(np.arange(len(order)), values, color=colors)
        ax.set_yticks(np.arange(len(order)), [names[j] for j in order], fontsize=7)
        ax.invert_yaxis()
        if signed:
            ax.set_xlim(-1, 1)
            ax.axvline(0, color="0.5", linewidth=0.6)
        ax.tick_params(axis="x", labelsize=7)
        ax.set_title(rows[i], fontsize=9)
    for ax in axes[k:]:
        ax.set_visible(False)
    fig.supxlabel("correlation with the unit (red +, blue -)" if signed
                  else "mean |d code / d input| (scaled)", fontsize=8)
    fig.suptitle(f"Each unit's strongest input features ({method})", fontsize=9)
    return png_bytes(fig)
