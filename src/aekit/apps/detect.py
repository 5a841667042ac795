"""Anomaly detection on a data set: train an :class:`aekit.OutlierDetector` (or load one) and
write each row's score, label and top features (``aekit detect``).

    result = detect(cfg, out="det", contamination=0.02)     # trains on cfg.data.data
    result = detect(cfg, out="det2", model_dir="det")        # scores with a trained detector
    result = detect(clean_cfg, out="nov", novelty=True)      # trains on normal rows only

Novelty detection (``novelty=True``, ``aekit detect --novelty``): the data are normal rows
only; nothing is trimmed, and the threshold is the score exceeded by ``target_fpr`` of the
held-back clean rows, the false-positive rate to expect on new normal rows. The folder written
then scores new rows with ``model_dir`` (``aekit detect --model``).

Files written into ``out``: ``scores.csv`` (``row, score, label, top_feature_1, top_share_1,
...``; label -1 = outlier, +1 = inlier; a feature's share is its part of the row's score),
``summary.json`` (counts, threshold and its rule, the most anomalous rows) and, when it trained,
the detector itself (``model.safetensors``, ``config.json``, ``detector.json``), which
``--model`` takes back, and ``report.html`` (:mod:`aekit.detect_report`: the score histogram
and threshold, the most anomalous rows, as images for image data) unless ``report=False``.
"""

from __future__ import annotations

import csv
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from aekit.explain import feature_names
from aekit.config import RunConfig
from aekit.data import Dataset, check_n_features, load
from aekit.detect_report import write_detect_report
from aekit.errors import ConfigError, DataError
from aekit.serialization import write_json

TOP_FEATURES = 3
TOP_ROWS = 20


@dataclass
class DetectResult:
    """What :func:`detect` found: ``scores`` (n,), ``labels`` (n,) in {-1, +1}, the threshold,
    the summary written to ``summary.json`` and the ``report.html`` written (None: none)."""

    scores: np.ndarray
    labels: np.ndarray
    threshold: float
    summary: dict[str, Any]
    report: Path | None = None


def detect(cfg: RunConfig, out: str | Path, model_dir: str | Path | None = None,
           contamination: float | str = "auto", report: bool = True, novelty: bool = False,
           target_fpr: float = 0.01) -> DetectResult:
    """Score every row of ``cfg.data.data`` and write the results into ``out``.

    Args:
        cfg: the options (``data`` and the training options; ``seed`` is the random state).
        out: the folder to write. model_dir: a folder written by an earlier ``detect`` (no
            training then). contamination: expected share of outliers, or ``auto``.
        report: also write ``report.html``. novelty: train on normal rows only (see the
            module). target_fpr: the held-back rows' false-positive rate that sets the
            threshold (``contamination="auto"`` or ``novelty``).

    Raises:
        DataError: invalid data (NaN, text, a width that does not match ``model_dir``).
        ConfigError / FormatError: bad options or a bad model folder.
    """
    from aekit.detector import OutlierDetector

    if model_dir is not None and novelty:
        raise ConfigError("--novelty trains a detector on clean rows and --model scores with "
                          "a trained one: give one of them (a detector trained with --novelty "
                          "keeps its threshold when --model loads it)")
    data = load(cfg.data.data)
    _check_tabular(data)
    start = time.perf_counter()
    if model_dir is not None:
        detector = OutlierDetector.load(model_dir)
        check_n_features(data, detector.n_features_in_, cfg.data.data)
        scores = detector.anomaly_score(data.x)
    else:
        # images train the image model (or --kind conv); --scaling auto leaves the scaling
        # to the detector (OutlierDetector's `scaling`: min-max for novelty on tables)
        image = data.kind == "image" and data.sample_shape is not None
        scaling = None if cfg.data.scaling == "auto" else cfg.data.scaling
        detector = OutlierDetector(contamination=contamination, novelty=novelty,
                                   target_fpr=target_fpr, random_state=cfg.train.seed,
                                   threads=cfg.train.threads, verbose=cfg.train.progress,
                                   scaling=scaling, config=cfg,
                                   image_shape=data.sample_shape if image else None)
        scores = detector.fit(data.x).decision_scores_  # fit scored these very rows
    threshold, rule = float(detector.threshold_), _rule(detector.contamination,
                                                         detector.target_fpr, detector.novelty)
    if model_dir is not None and contamination != "auto":  # a new share for these rows
        threshold = float(np.percentile(scores, 100.0 * (1.0 - float(contamination))))
        rule = f"the {1 - float(contamination):.4g} quantile of these rows' scores"
    labels = np.where(scores > threshold, -1, 1)
    shares = detector.feature_errors(data.x)
    seconds = time.perf_counter() - start
    names = feature_names(data)  # a header's names, pixel[r,c] for images, else f0, f1...
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    if model_dir is None:
        detector.save(out)
    _write_scores(out / "scores.csv", scores, labels, shares, names)
    summary = _summary(cfg.data.data, detector, scores, labels, shares, names, model_dir,
                       seconds)
    summary.update(threshold=threshold, threshold_rule=rule)
    write_json(out / "summary.json", summary)
    page = (write_detect_report(out, scores=scores, data=data,
                                autoencoder=detector.autoencoder_) if report else None)
    return DetectResult(scores, labels, threshold, summary, page)


def _rule(contamination: float | str, target_fpr: float, novelty: bool = False) -> str:
    """The threshold's rule in words (summary.json, the console)."""
    if novelty:
        return (f"exceeded by {target_fpr:.2%} of the held-back clean rows (novelty: trained "
                f"on normal rows only)")
    if contamination != "auto":
        return f"the {1 - float(contamination):.4g} quantile of the training rows' scores"
    return f"exceeded by {target_fpr:.2%} of the held-back (validation) training rows"


def _check_tabular(data: Dataset) -> None:
    if data.n_samples < 2:
        raise DataError(f"{data.source}: anomaly detection needs at least 2 rows. "
                        f"Received: {data.n_samples}")


def _top(shares_row: np.ndarray, score: float, k: int) -> list[tuple[int, float]]:
    """The ``k`` features with the largest part of the score: (index, share in [0, 1])."""
    order = np.argsort(-shares_row, kind="stable")[:k]
    return [(int(j), float(shares_row[j] / score) if score > 0 else 0.0) for j in order]


def _write_scores(path: Path, scores: np.ndarray, labels: np.ndarray, shares: np.ndarray,
                  names: list[str]) -> None:
    k = min(TOP_FEATURES, len(names))
    header = ["row", "score", "label"]
    for i in range(1, k + 1):
        header += [f"top_feature_{i}", f"top_share_{i}"]
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(header)
        for row, (score, label) in enumerate(zip(scores, labels)):
            cells: list[Any] = [row, f"{score:.6g}", int(label)]
            for j, share in _top(shares[row], float(score), k):
                cells += [names[j], f"{share:.3f}"]
            writer.writerow(cells)


def _summary(spec: str, detector: Any, scores: np.ndarray, labels: np.ndarray,
             shares: np.ndarray, names: list[str], model_dir: Any,
             seconds: float) -> dict[str, Any]:
    worst = np.argsort(-scores, kind="stable")[:TOP_ROWS]
    return {"data": spec, "n_rows": int(len(scores)), "n_features": len(names),
            "columns": names, "n_outliers": int(np.sum(labels == -1)),
            "outlier_share": float(np.mean(labels == -1)),
            "contamination": detector.contamination, "novelty": bool(detector.novelty),
            "score_kind": detector.score_kind_, "score_parts": detector.score_parts_,
            "model": str(model_dir) if model_dir else None,
            "trained": model_dir is None, "n_fits": detector.n_fits_, "seconds": seconds,
            "score_quantiles": {q: float(np.quantile(scores, float(q)))
                                for q in ("0.5", "0.9", "0.99")},
            "most_anomalous": [{"row": int(r), "score": float(scores[r]),
                                "top_features": [{"feature": names[j], "share": s}
                                                 for j, s in _top(shares[r], float(scores[r]),
                                                                  TOP_FEATURES)]}
                               for r in worst]}
