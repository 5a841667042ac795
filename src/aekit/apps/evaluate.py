"""``aekit evaluate``: a trained model's reconstruction error on data, with, when the data has
labels, the error per class next to PCA's and the codes' usefulness for classes, and, with a
noise spec, the denoising errors.

PCA is the run's own (:func:`aekit.pipeline.training_run_of`: refitted on the run's training
rows, as in training) when the run folder says where its data is; otherwise the per-class
errors are the model's alone and the denoising comparison fits PCA on the data itself.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any


def evaluate(model_dir: str | Path, data: str, labels: str = "auto",
             noise: str | None = None, device: str = "cpu") -> dict[str, Any]:
    """Score the model in ``model_dir`` on the data spec ``data``.

    Args:
        model_dir: a run folder (or a folder ``Autoencoder.save`` wrote).
        data: a data spec, as for ``aekit train``.
        labels: class labels of ``data``: ``auto`` (its own), ``none`` or a labels spec.
        noise: a ``--noise`` spec (``gaussian:0.1``...): also score denoising.
        device: where the model runs (``cpu``, ``cuda``, ``auto``).

    Returns:
        The JSON document ``aekit evaluate`` prints.

    Raises:
        ConfigError / DataError / FormatError: a bad noise spec, data or model folder.
    """
    import aekit
    from aekit.baselines.pca import fit_pca
    from aekit.config import parse_noise
    from aekit.data import load
    from aekit.data.labels import same_classes, with_labels
    from aekit.pipeline import denoising_errors, label_summary, training_run_of

    if noise is not None:
        parse_noise(noise)  # a bad spec fails before anything is loaded
    ae = aekit.load(model_dir, device=device)
    ds = with_labels(load(data), labels, "--labels")
    result = {"model": str(model_dir), "data": data, "n_samples": ds.n_samples,
              "latent_dim": ae.config.model.latent_dim, **ae.score(ds)}
    run, why = None, None
    if (ds.labels is not None or noise is not None) and not (
            Path(model_dir) / "summary.json").is_file():
        why = ("the model holds no summary.json (saved from Python with ae.save()): its "
               "training data is not recorded")
    elif ds.labels is not None or noise is not None:
        # the run's own preparation: its training rows, scaler and PCA
        run, why = training_run_of(ae.config)
    if noise is not None:
        pca = run.pca if run is not None else fit_pca(ae.scaler.transform(ds.x),
                                                      ae.config.model.latent_dim)
        found = denoising_errors(ae.reconstruct_scaled, ae.scaler, pca, ds.x, noise,
                                 ae.config.train.seed)
        result.update({k.replace("_test_", "_"): v for k, v in found.items()})
        if run is None:
            result["pca_fitted_on"] = f"--data itself: {why}"
    if ds.labels is not None:
        if run is None:
            result["per_class_sse"] = ae.score_per_class(ds)
            result["probe_skipped"] = f"{why}; the probe and PCA's per-class errors need it"
        else:
            ds = same_classes(run.data, ds)
            found = label_summary(ae, ae.scaler, run.pca, ds, run.data, run.train_index,
                                  ae.config.train.seed)
            result.update({k.replace("_test_", "_"): v for k, v in found.items()})
    return result
