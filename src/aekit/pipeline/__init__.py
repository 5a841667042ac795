"""The run pipeline: the one place that turns options and data into a prepared run, and that
scores a trained model against PCA.

Every entry point goes through it -- ``Autoencoder.fit``, ``aekit train``, ``lr-find``,
``sweep`` and ``tune`` (in memory and streamed), ``study``, ``detect`` and the scikit-learn
estimators -- so the same data and the same options give the same decisions whichever door a
user comes in by:

1. **split** (:func:`split_plan`): the test rows are drawn first, with a generator that does not
   depend on ``--seed`` (runs with different seeds are scored on the same rows; ``--split-seed``
   draws another test split); the validation
   rows are then drawn from the rest with ``--seed``. Each held-back part is at most
   ``MAX_HELD_ROWS`` rows.
2. **scale** (:func:`choose_scaler`): fitted on the training rows only; ``auto`` is pixels to
   [0, 1], tabular data already within [0, 1] left alone, other tabular data standardized.
3. **defaults from the data** (:func:`data_defaults`): latent size, widths and batch size when
   the user did not set them (the rules are in that function's docstring and the README).
4. **output** (:func:`choose_output`): sigmoid for data in [0, 1], identity otherwise -- and
   identity for a model that starts from PCA, whose linear path must reproduce PCA exactly.
5. **PCA** (:func:`fit_baseline`): fitted once on the scaled training targets at the latent
   size; it initialises the model's linear path (``pca_init``) and is the yardstick of the
   validation and test errors.

Labels (``--labels``, ``fit(labels=...)``) ride along with the data: ``--balance`` turns them
into loss weights or class-balanced draws of the training rows, and after training the test
errors are given per class and the codes are judged by a linear probe and by k-means next to
PCA's (:mod:`~aekit.pipeline.classes`).

Modules: :mod:`~aekit.pipeline.decisions` (1-5 above, and the subsample and latent-size
checks), :mod:`~aekit.pipeline.prepared` (the :class:`PreparedRun`),
:mod:`~aekit.pipeline.prepare` (in memory; :func:`prepare_spec` also decides to stream) and
:mod:`~aekit.pipeline.streamed` (a ``.npy`` bigger than memory), :mod:`~aekit.pipeline.fit`
(the one assembly of a training: sanity batch, ``--lr auto``, PCA gate, doctor, budget,
progress), :mod:`~aekit.pipeline.rundir` (the run folder and ``summary.json``),
:mod:`~aekit.pipeline.scoring` (errors against PCA, the PCA gate and baseline, summaries),
:mod:`~aekit.pipeline.classes` (labels). What the entry points use is importable from
``aekit.pipeline``; the assembly and the run folder from their modules.
"""

from aekit.pipeline.classes import (
    add_label_results,
    class_gap_finding,
    class_report,
    format_classes,
    label_summary,
    per_class_sse,
    probe,
    probe_vs_pca)
from aekit.pipeline.decisions import (
    check_latent_dims,
    check_sample_weight,
    class_counts,
    training_weights,
    MAX_AUTO_VAL_SHARE,
    MAX_HELD_ROWS,
    MAX_LATENT,
    MIN_AUTO_VAL_ROWS,
    TEST_SPLIT_SEED,
    choose_output,
    choose_scaler,
    data_defaults,
    fit_baseline,
    held_count,
    in_unit_range,
    split_indices,
    split_plan,
    starts_from_pca,
    subsample_rows,
    validation_fraction)
from aekit.pipeline.prepare import (
    MIN_CHECK_ROWS,
    PreparedRun,
    as_dataset,
    host_values,
    load_splits,
    prepare,
    prepare_spec,
    subset,
    training_run_of,
    validation_halves,
    with_config)
from aekit.pipeline.scoring import (
    KEEP_T,
    PCABaseline,
    PCAGate,
    clearly_better_than_pca,
    comparable_with_pca,
    denoising_errors,
    errors_vs_pca,
    pca_callbacks,
    pca_validation_mse,
    per_row_sse,
    reconstruction_errors,
    training_figures,
    validation_errors)

__all__ = [
    "add_label_results",
    "class_gap_finding",
    "class_report",
    "format_classes",
    "label_summary",
    "per_class_sse",
    "probe",
    "probe_vs_pca",
    "check_latent_dims",
    "check_sample_weight",
    "class_counts",
    "training_weights",
    "MAX_AUTO_VAL_SHARE",
    "MAX_HELD_ROWS",
    "MAX_LATENT",
    "MIN_AUTO_VAL_ROWS",
    "TEST_SPLIT_SEED",
    "choose_output",
    "choose_scaler",
    "data_defaults",
    "fit_baseline",
    "held_count",
    "in_unit_range",
    "split_indices",
    "split_plan",
    "starts_from_pca",
    "subsample_rows",
    "validation_fraction",
    "MIN_CHECK_ROWS",
    "PreparedRun",
    "as_dataset",
    "host_values",
    "load_splits",
    "prepare",
    "prepare_spec",
    "subset",
    "training_run_of",
    "validation_halves",
    "with_config",
    "KEEP_T",
    "PCABaseline",
    "PCAGate",
    "clearly_better_than_pca",
    "comparable_with_pca",
    "denoising_errors",
    "errors_vs_pca",
    "pca_callbacks",
    "pca_validation_mse",
    "per_row_sse",
    "reconstruction_errors",
    "training_figures",
    "validation_errors",
]
