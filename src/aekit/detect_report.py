"""``report.html`` of an ``aekit detect`` folder: one self-contained page (the look and the
helpers of :mod:`aekit.report`) that shows what the detector found. Sections:

1. the headline: rows scored, outliers flagged, the threshold and its rule, whether the
   detector was trained here or loaded;
2. a histogram of the anomaly scores, the threshold drawn on it;
3. the most anomalous rows (``summary.json``'s, up to 20) with each row's top features;
4. for image data, those rows as images, each beside its reconstruction.

Written by ``aekit detect`` (``--no-report`` skips it) and by ``aekit report DIR`` on a detect
folder. A section whose inputs are missing (the data no longer at its path) says so instead of
failing.
"""

from __future__ import annotations

import csv
import math
from pathlib import Path
from typing import Any

import numpy as np

from aekit.errors import AekitError, FormatError
from aekit.report_html import (escape as _esc, html_page, html_table, note as _note,
                               plot_block as _plot)
from aekit.report_plots import plot_sample_grid, plot_score_histogram
from aekit.serialization import atomic_write_bytes, read_json

LOG_DECADES = 2.0  # scores spanning more decades than this get a log axis
N_SHOWN = 20


def is_detect_folder(folder: str | Path) -> bool:
    """Whether ``folder`` was written by ``aekit detect`` (it holds ``scores.csv``, and
    ``detector.json`` when it trained), not by ``aekit train``."""
    folder = Path(folder)
    return (folder / "detector.json").is_file() or (folder / "scores.csv").is_file()


def read_scores(path: Path) -> np.ndarray:
    """The ``score`` column of a ``scores.csv``.

    Raises:
        FormatError: the file is missing or has no readable ``score`` column.
    """
    try:
        with path.open(newline="", encoding="utf-8") as handle:
            return np.array([float(r["score"]) for r in csv.DictReader(handle)])
    except (OSError, KeyError, TypeError, ValueError) as exc:
        raise FormatError(f"{path}: cannot read the scores ({exc!r}); expected the scores.csv "
                          "written by `aekit detect`") from exc


def log_scale(scores: np.ndarray, threshold: float) -> bool:
    """Whether the scores (and the threshold) span more than ``LOG_DECADES`` decades: then a
    log axis shows both the bulk and the tail."""
    positive = scores[scores > 0]
    if threshold <= 0 or not len(positive):
        return False
    lo, hi = min(positive.min(), threshold), max(positive.max(), threshold)
    return math.log10(hi / lo) > LOG_DECADES


# -- sections ----------------------------------------------------------------------------------
def section_headline(summary: dict[str, Any]) -> str:
    """How many rows were flagged, by which threshold, with which detector."""
    model = (f"trained here ({summary.get('n_fits', '?')} fits)" if summary.get("trained")
             else f"loaded from {summary.get('model')} (no training)")
    rows = [("data", summary.get("data")), ("rows scored", summary["n_rows"]),
            ("features", summary.get("n_features", "-")),
            ("outliers flagged", f"{summary['n_outliers']} ({summary['outlier_share']:.2%})"),
            ("threshold", summary["threshold"]), ("threshold rule", summary["threshold_rule"]),
            ("contamination", summary.get("contamination", "-")),
            ("score", " + ".join(summary["score_parts"]) if summary.get("score_parts")
             else summary.get("score_kind", "-")), ("detector", model),
            ("seconds", summary.get("seconds", "-"))]
    rows += [(f"score quantile {q}", v) for q, v in summary.get("score_quantiles", {}).items()]
    return ("<h2>Result</h2>"
            f"<p><b>{summary['n_outliers']} of {summary['n_rows']} rows flagged "
            f"({summary['outlier_share']:.1%})</b>: threshold {summary['threshold']:.4g}, "
            f"{_esc(summary['threshold_rule'])}.</p>" + html_table(rows))


def section_scores(scores: np.ndarray, summary: dict[str, Any]) -> str:
    """The histogram of every row's score, the threshold drawn on it."""
    threshold = float(summary["threshold"])
    log_x = log_scale(scores, threshold)
    above = int(np.sum(scores > threshold))
    return ("<h2>Anomaly scores</h2>"
            f"<p>{above} of {len(scores)} rows score above the threshold {threshold:.4g} "
            "(red, right of the dashed line)" + ("; log-scaled score axis, the scores span more "
                                           f"than {LOG_DECADES:g} decades" if log_x else "")
            + ".</p>" + _plot(plot_score_histogram(scores, threshold, log_x)))


def section_top_rows(summary: dict[str, Any]) -> str:
    """The most anomalous rows, worst first, with the features that make up their scores."""
    worst = summary.get("most_anomalous", [])[:N_SHOWN]
    if not worst:
        return "<h2>Most anomalous rows</h2>" + _note("summary.json lists no rows.")
    k = max(len(r.get("top_features", [])) for r in worst)
    threshold = float(summary["threshold"])
    rows = [(rank, r["row"], r["score"], "yes" if r["score"] > threshold else "no",
             *(f"{f['feature']} ({f['share']:.0%})" for f in r.get("top_features", [])))
            for rank, r in enumerate(worst, 1)]
    header = ("rank", "row", "score", "flagged", *(f"top feature {i}" for i in range(1, k + 1)))
    return (f"<h2>Most anomalous rows ({len(worst)})</h2><p>Rows are counted from 0, as in "
            "scores.csv; a feature's share is its part of the row's score.</p>"
            + html_table(rows, header))


def section_samples(summary: dict[str, Any], data: Any, autoencoder: Any) -> str:
    """For image data: the most anomalous rows as images, each beside its reconstruction."""
    worst = summary.get("most_anomalous", [])[:N_SHOWN]
    if data is None or data.kind != "image" or not worst:
        return ""
    out = ["<h2>The most anomalous samples as images</h2>"]
    if data.n_samples != summary["n_rows"]:
        return out[0] + _note(f"{summary.get('data')} now has {data.n_samples} rows, not the "
                              f"{summary['n_rows']} scored: no pictures.")
    rows = np.array([r["row"] for r in worst])
    x = data.x[rows]
    recon = _reconstruct(autoencoder, x)
    low, high = (0.0, float(data.pixel_max)) if data.pixel_max else (float(x.min()),
                                                                       float(x.max()))
    span = max(high - low, 1e-12)
    captions = [f"row {r['row']}\nscore {r['score']:.3g}" for r in worst]
    out.append("<p>Worst first, each captioned with its row and score"
               + (", its reconstruction by the detector's autoencoder to its right"
                  if recon is not None else "") + ".</p>")
    out.append(_plot(plot_sample_grid((x - low) / span, captions, data.sample_shape,
                                      None if recon is None else (recon - low) / span)))
    if recon is None:
        out.append(_note("The detector's model could not be loaded or does not take these "
                         "rows: no reconstructions."))
    return "".join(out)


def _reconstruct(autoencoder: Any, x: np.ndarray) -> np.ndarray | None:
    """The autoencoder's reconstructions of ``x`` in raw units; None without a model or when
    the model does not take these rows (the data changed since it was scored)."""
    if autoencoder is None:
        return None
    try:
        return autoencoder.reconstruct(x)
    except AekitError:
        return None


# -- the page ----------------------------------------------------------------------------------
def _load_views(folder: Path, summary: dict[str, Any]) -> tuple[Any, Any, str]:
    """The scored data and the detector's autoencoder for the pictures, read back from the
    folder (``aekit report DIR``); (None, None, why) when they cannot be."""
    try:
        from aekit.api import load as load_model
        from aekit.data import load

        data = load(summary["data"])
        if data.kind != "image":
            return data, None, ""
        model_dir = folder if (folder / "detector.json").is_file() else summary.get("model")
        return data, (load_model(model_dir) if model_dir else None), ""
    except (AekitError, OSError, KeyError) as exc:
        return None, None, f"The data or the detector could not be loaded ({exc}): no pictures."


def build_detect_report(folder: str | Path, scores: np.ndarray | None = None,
                        data: Any = None, autoencoder: Any = None) -> str:
    """The report of a detect folder as one HTML string.

    Args:
        folder: a folder written by ``aekit detect``.
        scores, data, autoencoder: what :func:`aekit.apps.detect.detect` has in memory (the
            scores, the :class:`aekit.data.Dataset`, the detector's autoencoder); None: read
            back from the folder (``scores.csv``, the data at ``summary.json``'s path, the
            folder's model or the one it was loaded from).

    Raises:
        FormatError: the folder is not a detect folder (no summary.json / scores.csv).
    """
    folder = Path(folder)
    if not folder.is_dir():
        raise FormatError(f"{folder}: no such folder (expected a folder written by "
                          "`aekit detect --out`)")
    summary = read_json(folder / "summary.json", "detect summary")
    if "threshold" not in summary or "most_anomalous" not in summary:
        raise FormatError(f"{folder / 'summary.json'}: not the summary of `aekit detect` (no "
                          "threshold or most_anomalous)")
    scores = read_scores(folder / "scores.csv") if scores is None else np.asarray(scores)
    why = ""
    if data is None:
        data, autoencoder, why = _load_views(folder, summary)
    body = "".join([f"<h1>aekit detect: {_esc(folder.resolve().name)}</h1>",
                    section_headline(summary), section_scores(scores, summary),
                    section_top_rows(summary), section_samples(summary, data, autoencoder),
                    _note(why) if why else ""])
    return html_page(f"aekit detect report: {folder.name}", body)


def write_detect_report(folder: str | Path, out: str | Path | None = None, **views: Any) -> Path:
    """Write ``report.html`` (atomically) for a detect folder; ``views``: the keyword
    arguments of :func:`build_detect_report`.

    Returns:
        The path written (default ``FOLDER/report.html``).
    """
    path = Path(out) if out is not None else Path(folder) / "report.html"
    atomic_write_bytes(path, build_detect_report(folder, **views).encode("utf-8"))
    return path
