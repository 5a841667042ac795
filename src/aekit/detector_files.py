"""The files of an ``OutlierDetector``: its model, ``detector.json`` and the neighbour codes
and rows, written and read back without pickle."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import torch

from aekit.api import Autoencoder
from aekit.errors import FormatError
from aekit.serialization import load_tensors, read_json, save_tensors, write_json

SCORES = ("combined", "reconstruction", "whitened")
NEIGHBOURS_FILE = "detector.safetensors"
DETECTOR_FORMAT = "aekit-outlier-detector"


def write_detector(det: Any, directory: str | Path) -> Path:
    """Write a fitted ``OutlierDetector``: its model (``model.safetensors``, ``config.json``),
    ``detector.json`` (the score's statistics and the threshold) and the neighbour codes and
    rows (``detector.safetensors``) into ``directory``. Returns the folder."""
    directory = Path(directory)
    det.autoencoder_.save(directory)
    state = {"format": DETECTOR_FORMAT, "contamination": det.contamination,
             "novelty": bool(det.novelty),
             "score_kind": det.score_kind_, "target_fpr": det.target_fpr,
             "n_neighbors": det.n_neighbors_ if det.reference_codes_ is not None else 0,
             "code_distance": bool(det.code_distance_),
             "knn_scale": det.knn_scale_,
             "input_distance": det.reference_rows_ is not None,
             "input_scale": det.input_scale_,
             "trim_fraction": det.trim_fraction, "n_features_in": int(det.n_features_in_),
             "offset": det.offset_, "code_mean": det.code_mean_.tolist(),
             "code_precision": det.code_precision_.tolist(),
             "recon_scale": det.recon_scale_, "code_scale": det.code_scale_,
             "n_fits": det.n_fits_,
             "residual_mean": _listed(det.residual_mean_),
             "residual_precision": _listed(det.residual_precision_)}
    references = {name: torch.from_numpy(getattr(det, f"{name}_"))
                  for name in ("reference_codes", "reference_rows")
                  if getattr(det, f"{name}_") is not None}
    if references:
        save_tensors(directory / NEIGHBOURS_FILE, references)
    write_json(directory / "detector.json", state)
    return directory


def read_detector(cls: type, directory: str | Path) -> Any:
    """An ``OutlierDetector`` (of class ``cls``) that :func:`write_detector` (or ``aekit
    detect --out``) saved, ready to score.

    Raises:
        FormatError: a missing or malformed folder.
    """
    directory = Path(directory)
    ae = Autoencoder.load(directory)
    state = read_json(directory / "detector.json", "detector state")
    try:
        if state.get("format") != DETECTOR_FORMAT:
            raise ValueError(f"format={state.get('format')!r}")
        det = cls(contamination=state["contamination"], score_kind=state["score_kind"],
                  novelty=bool(state.get("novelty", False)),
                  target_fpr=float(state["target_fpr"]),
                  trim_fraction=state["trim_fraction"],
                  n_neighbors=int(state.get("n_neighbors") or 0),
                  code_distance=bool(state.get("code_distance", True)),
                  input_distance=bool(state.get("input_distance", False)),
                  scaling=ae.config.data.scaling)
        if state["score_kind"] not in SCORES:
            raise ValueError(f"score_kind={state['score_kind']!r}")
        det.score_kind_ = state["score_kind"]
        det.n_neighbors_, det.code_distance_ = det.n_neighbors, det.code_distance
        det.input_distance_ = det.input_distance
        det.autoencoder_ = ae
        det.n_features_in_ = int(state["n_features_in"])
        det.offset_ = float(state["offset"])
        det.threshold_ = -det.offset_
        det.code_mean_ = np.asarray(state["code_mean"], dtype=np.float64)
        det.code_precision_ = np.asarray(state["code_precision"], dtype=np.float64)
        det.recon_scale_ = float(state["recon_scale"])
        det.code_scale_ = float(state["code_scale"])
        det.n_fits_ = int(state["n_fits"])
        det.residual_mean_, det.residual_precision_ = (
            None if state.get(k) is None else np.asarray(state[k], dtype=np.float64)
            for k in ("residual_mean", "residual_precision"))
        det.reference_codes_, det.knn_scale_ = None, float(state.get("knn_scale", 1.0))
        det.reference_rows_, det.input_scale_ = None, float(state.get("input_scale", 1.0))
        if det.n_neighbors:
            saved = load_tensors(directory / NEIGHBOURS_FILE, "neighbour codes")
            det.reference_codes_ = saved["reference_codes"].numpy().astype(np.float32)
            if det.reference_codes_.ndim != 2 or len(det.reference_codes_) < 2:
                raise ValueError("the neighbour codes must be a (rows >= 2, latent) array")
            if det.input_distance:
                det.reference_rows_ = saved["reference_rows"].numpy().astype(np.float32)
                if det.reference_rows_.shape != (len(det.reference_codes_),
                                                 det.n_features_in_):
                    raise ValueError("the neighbour rows must be a (rows, features) array "
                                     "with one row per neighbour code")
        latent = ae.config.model.latent_dim
        if det.reference_codes_ is not None and det.reference_codes_.shape[1] != latent:
            raise ValueError("the neighbour codes do not match the model's latent size")
        if det.code_precision_.shape != (latent, latent) or det.code_mean_.shape != (latent,):
            raise ValueError("code statistics do not match the model's latent size")
    except (KeyError, TypeError, ValueError) as exc:
        raise FormatError(f"{directory / 'detector.json'}: invalid detector state "
                          f"({exc}); expected a folder written by `aekit detect --out`") \
            from exc
    return det


def _listed(array: np.ndarray | None) -> list | None:
    return None if array is None else array.tolist()
