"""The run pipeline: one split, one scaler, one set of defaults, whichever door a run comes in
by (``Autoencoder.fit``, ``aekit train``, lr-find, study, sweep, the estimator)."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

import aekit
from aekit.apps import lr_find as lr_find_app
from aekit.apps.study import study_data
from aekit.apps.sweep import sweep
from aekit.config import RunConfig
from aekit.data import Dataset, Scaler, load
from aekit.errors import ConfigError, DataError
from aekit.estimator import AutoencoderTransformer
from aekit.pipeline import (MAX_HELD_ROWS, choose_scaler, clearly_better_than_pca, data_defaults,
                            load_splits, prepare, prepare_spec, split_plan, validation_fraction)
from aekit.runner import train_run

QUICK = dict(epochs=2, threads=1, progress=False, diagnostics_every_steps=None)


@pytest.fixture
def table_file(tmp_path, tabular):
    path = tmp_path / "table.npy"
    np.save(path, tabular)
    return str(path)


def _same_scaler(a: Scaler, b: Scaler) -> None:
    assert a.mode == b.mode
    for left, right in ((a.shift, b.shift), (a.scale, b.scale)):
        if left is None:
            assert right is None
        else:
            np.testing.assert_allclose(left, right, rtol=1e-12)


# -- decisions ---------------------------------------------------------------------------------
def test_choose_scaler_modes():
    assert choose_scaler("image", 0, 255, "auto", 255.0).mode == "unit"
    assert choose_scaler("image", 0, 3, "auto", None).mode == "minmax"
    assert choose_scaler("tabular", 0, 1, "auto", None).mode == "none"  # already in [0, 1]
    assert choose_scaler("tabular", -2, 1, "auto", None).mode == "standard"
    assert choose_scaler("tabular", -2, 1, "minmax", None).mode == "minmax"
    with pytest.raises(ConfigError, match=r"'unit' needs the data's pixel_max, and t.csv"):
        choose_scaler("tabular", 0, 9, "unit", None, "t.csv")


def test_split_plan_is_disjoint_and_the_test_rows_do_not_move_with_the_seed():
    train, val, test = split_plan(1000, 0.1, 0.2, seed=3)
    assert len(test) == 100 and len(val) == 180 and len(train) == 720
    assert len(np.unique(np.concatenate([train, val, test]))) == 1000
    for seed in (0, 1, 7):
        assert np.array_equal(split_plan(1000, 0.1, 0.2, seed)[2], test)
    assert not np.array_equal(split_plan(1000, 0.1, 0.2, seed=4)[1], val)
    big = split_plan(10 * MAX_HELD_ROWS, 0.5, 0.5, seed=0)
    assert len(big[1]) == len(big[2]) == MAX_HELD_ROWS


@pytest.mark.parametrize("n_features,kind,latent,hidden", [
    (5, "tabular", 2, (64,)), (13, "tabular", 4, (64,)), (30, "tabular", 8, (64,)),
    (64, "image", 16, (128,)), (784, "image", 32, (512, 256, 128)), (2, "tabular", 1, (64,)),
])
def test_data_defaults(n_features, kind, latent, hidden):
    cfg = data_defaults(RunConfig(), 1000, n_features, kind)
    assert cfg.model.latent_dim == latent and cfg.model.hidden == hidden
    assert cfg.train.batch_size == 32  # auto_batch_size(1000)


def test_a_long_time_budget_on_images_trains_the_deeper_model_with_weight_decay():
    """5 ms of budget per training row or more: 1000,500,250 with weight decay 0.5 for Adam;
    less, or a table, or what the user set, and the defaults stay."""
    def chosen(budget, data_kind="image", n_features=784, **options):
        cfg = data_defaults(RunConfig().replace(time_budget=budget, **options), 54_000,
                            n_features, data_kind)
        return cfg.model.hidden, cfg.optim.weight_decay

    assert chosen(270) == chosen(600) == ((1000, 500, 250), 0.5)
    assert chosen(269) == chosen(None) == ((512, 256, 128), None)
    assert chosen(600, "tabular", 30) == ((64,), None)
    assert chosen(600, weight_decay=0.1) == ((1000, 500, 250), 0.1)
    assert chosen(600, optimizer="sgd") == ((1000, 500, 250), None)
    assert chosen(600, hidden=(64,)) == ((64,), None)
    assert chosen(600, kind="conv")[1] is None


def test_a_small_set_of_large_images_gets_weight_decay():
    """Images of 256 values or more in a run of 50 epochs or more: weight decay 0.5 for the
    default model with Adam; large sets, short runs, small images, tables and what the user
    set keep the defaults."""
    def chosen(n_train, n_features=784, data_kind="image", **options):
        cfg = data_defaults(RunConfig().replace(**options), n_train, n_features, data_kind)
        return cfg.optim.weight_decay

    assert chosen(4_500) == chosen(900) == 0.5  # 112 and 143 epochs
    assert chosen(54_000) is None  # 19 epochs
    assert chosen(54_000, epochs=60) == 0.5
    assert chosen(4_500, epochs=20) is None
    assert chosen(4_500, time_budget=10) is None  # a budget plans its own length
    assert chosen(4_500, 64) is chosen(4_500, 784, "tabular") is None
    assert chosen(4_500, weight_decay=0.1) == 0.1
    assert chosen(4_500, hidden=(64,)) is chosen(4_500, optimizer="sgd") is None
    assert chosen(4_500, kind="conv") is None
    assert data_defaults(RunConfig(), 4_500, 784, "image").model.pca_init  # the start stays


def test_data_defaults_keep_what_the_user_set():
    cfg = data_defaults(RunConfig().replace(latent_dim=3, hidden=(7,), batch_size=5), 100, 9,
                        "tabular")
    assert (cfg.model.latent_dim, cfg.model.hidden, cfg.train.batch_size) == (3, (7,), 5)


def test_latent_size_not_below_the_feature_count_is_refused(tabular):
    with pytest.raises(ConfigError, match=r"`latent_dim` must be smaller than the number of "
                       r"features \(6\).*Received: latent_dim=6; allowed: 1..5"):
        aekit.Autoencoder(latent_dim=6, **QUICK).fit(tabular)
    with pytest.raises(ConfigError, match="at least 2 features"):
        aekit.Autoencoder(**QUICK).fit(tabular[:, :1])


# -- the model starts from PCA ------------------------------------------------------------------
def test_the_model_starts_at_pca_and_ends_no_worse_on_validation(tabular):
    run = prepare(RunConfig().replace(**QUICK, validation_split=0.2), tabular)
    ae = aekit.Autoencoder(config=run.config)
    ae.build_prepared(run)
    pca = run.pca
    start = ae.reconstruct_scaled(run.x_train)
    np.testing.assert_allclose(start, pca.inverse_transform(pca.transform(run.x_train)),
                               atol=1e-4)
    ae = aekit.Autoencoder(config=run.config)
    history = ae.fit_prepared(run)
    assert history.initial_val_loss is not None
    val_mse = float(np.mean((ae.reconstruct_scaled(run.x_val) - run.x_val) ** 2))
    pca_val = float(np.mean((pca.inverse_transform(pca.transform(run.x_val)) - run.x_val) ** 2))
    assert val_mse <= pca_val * (1 + 1e-4)


# -- every entry point prepares what `aekit train` prepares ------------------------------------
def test_fit_prepares_the_split_and_scaler_of_aekit_train(tmp_path, table_file):
    cfg = RunConfig().replace(data=table_file, **QUICK)
    summary = train_run(cfg, tmp_path / "run")
    saved = aekit.load(tmp_path / "run")
    run = prepare_spec(cfg)
    _same_scaler(saved.scaler, run.scaler)
    assert summary["n_train"] == len(run.train_index) and summary["n_val"] == len(run.val_index)
    assert saved.config == run.config  # the same data-dependent defaults
    data, _, _ = load_splits(cfg)
    ae = aekit.Autoencoder(config=cfg)
    ae.fit(data)
    assert np.array_equal(ae.train_index, run.train_index)
    _same_scaler(ae.scaler, run.scaler)
    assert ae.config == run.config


def test_lr_find_sees_the_training_rows_only(monkeypatch, table_file):
    cfg = RunConfig().replace(data=table_file, **QUICK)
    seen = {}

    def fake(model, cfg, x_train, *args):
        seen["x"] = x_train
        return "result"

    monkeypatch.setattr(lr_find_app, "lr_find", fake)
    assert lr_find_app.lr_find_on_data(cfg) == "result"
    run = prepare_spec(cfg)
    assert torch.equal(seen["x"].cpu(), torch.from_numpy(run.x_train))


def test_study_prepares_like_aekit_train(table_file):
    x_train, x_test, _ = study_data(table_file, None, None, seed=0)
    cfg = RunConfig().replace(data=table_file, validation_split=0.0, seed=0)
    run = prepare_spec(cfg)
    np.testing.assert_array_equal(x_train, run.x_train)
    np.testing.assert_array_equal(x_test, run.scaler.transform(run.test.x))


def test_sweep_chooses_on_validation_and_reports_test(tmp_path, table_file):
    cfg = RunConfig().replace(data=table_file, **QUICK)
    result = sweep(cfg, [1, 2, 4], tmp_path / "sweep", log=False)
    run = prepare_spec(cfg)
    assert result.n_train == len(run.train_index) and result.n_test == run.test.n_samples
    saved = json.loads((tmp_path / "sweep" / "sweep.json").read_text())
    assert all("val_mse" in r and "test_mse" in r for r in saved["rows"])
    assert "validation error" in result.reason or "still falls" in result.reason
    with pytest.raises(ConfigError, match="not smaller than the number of features"):
        sweep(cfg, [2, 6], tmp_path / "sweep2", log=False)


def test_estimator_splits_and_scales_like_the_pipeline(tabular):
    est = AutoencoderTransformer(n_components=2, epochs=2, validation_split=0.2,
                                 random_state=0, threads=1).fit(tabular)
    run = prepare(RunConfig().replace(**QUICK, latent_dim=2, validation_split=0.2,
                                      scaling="none", output_activation="identity"), tabular)
    assert np.array_equal(est.autoencoder_.train_index, run.train_index)
    assert est.autoencoder_.config.model.hidden == run.config.model.hidden


# -- Keras habits ------------------------------------------------------------------------------
def test_the_articles_keras_call_works_as_written(blobs):
    ae = aekit.Autoencoder(latent_dim=3, threads=1, progress=False)
    history = ae.fit(blobs, blobs, epochs=3, batch_size=32, shuffle=True, validation_split=0.1)
    assert len(history["loss"]) == 3 and history["val_loss"][-1] is not None
    assert ae.config.train.batch_size == 32


def test_fit_noisy_to_clean_is_a_denoising_autoencoder():
    digits = load("digits")
    rng = np.random.default_rng(0)
    clean = digits.x / 16.0
    noisy = np.clip(clean + rng.normal(0, 0.3, clean.shape), 0, 1).astype(np.float32)
    train, test = np.arange(1500), np.arange(1500, len(clean))
    ae = aekit.Autoencoder(threads=2, progress=False, diagnostics_every_steps=None)
    ae.fit(noisy[train], clean[train].astype(np.float32))
    denoised = ae.reconstruct(noisy[test])
    err = float(np.mean((denoised - clean[test]) ** 2))
    noisy_err = float(np.mean((noisy[test] - clean[test]) ** 2))
    assert err * 2 <= noisy_err, (err, noisy_err)


def test_a_target_of_another_shape_is_refused(blobs):
    with pytest.raises(DataError, match=r"y \(the target\) must have the shape of x"):
        aekit.Autoencoder(**QUICK).fit(blobs, blobs[:10])


@pytest.mark.parametrize("option", ["nproc", "resume", "report", "test", "data"])
def test_autoencoder_refuses_options_it_would_ignore(option):
    value = {"nproc": 2, "resume": True, "report": True, "test": "x.npy", "data": "x.npy"}[option]
    with pytest.raises(ConfigError, match=rf"Autoencoder does not use {option}"):
        aekit.Autoencoder(**{option: value})


def test_dataset_input_keeps_its_kind():
    ds = Dataset(np.random.default_rng(0).random((50, 16), dtype=np.float32), (4, 4), "image",
                 "img", None, None)
    run = prepare(RunConfig().replace(**QUICK), ds)
    assert run.scaler.mode == "minmax" and run.config.model.latent_dim == 4


# -- validation rows and the PCA gate ------------------------------------------------------------
def test_validation_auto_is_a_tenth_but_at_least_200_rows_and_at_most_a_quarter():
    assert validation_fraction("auto", 100_000) == 0.1
    assert validation_fraction("auto", 1000) == pytest.approx(0.2)
    assert validation_fraction("auto", 300) == 0.25
    assert validation_fraction(0.05, 300) == 0.05
    _, val, _ = split_plan(1000, 0.1, "auto", seed=0)
    assert len(val) == 200  # 10% of the 900 rows left after the test rows is under 200


def test_clearly_better_than_pca_needs_more_than_noise():
    rng = np.random.default_rng(0)
    pca = rng.gamma(2.0, size=400)
    keep, why = clearly_better_than_pca(pca * 0.8, pca)
    assert keep and "-20.0%" in why
    z = rng.normal(size=400)
    noisy = pca - 0.01 * pca.mean() + 0.3 * pca * (z - z.mean()) / z.std()  # 1% better, noisy
    keep, why = clearly_better_than_pca(noisy, pca)
    assert not keep and "below the 2 required" in why
    assert -0.03 < float(why.split("%")[0]) / 100 < 0  # a gain of a percent or two, not shown
    assert not clearly_better_than_pca(pca[:2] * 0.5, pca[:2])[0]  # too few rows to tell


def test_a_model_that_cannot_beat_pca_ends_as_pca(tabular):
    # pure noise beyond the 2-D structure: the hidden path has nothing to learn
    noise = tabular + np.random.default_rng(3).normal(0, 40, tabular.shape).astype(np.float32)
    ae = aekit.Autoencoder(latent_dim=2, threads=1, progress=False, epochs=30,
                           diagnostics_every_steps=None)
    history = ae.fit(noise)
    check = [e for e in history.events if e["kind"] == "pca_check"]
    assert len(check) == 1
    run = prepare(ae.config, noise)
    pca_rec = run.pca.inverse_transform(run.pca.transform(run.x_val))
    if not check[0]["kept_model"]:
        np.testing.assert_allclose(ae.reconstruct_scaled(run.x_val), pca_rec, atol=1e-4)
        assert "kept PCA's solution" in check[0]["message"]
    else:  # kept only with a clear gain
        assert float(np.mean((ae.reconstruct_scaled(run.x_val) - run.x_val) ** 2)) < \
            float(np.mean((pca_rec - run.x_val) ** 2))


def test_the_same_max_train_samples_keeps_the_same_rows_in_sweep_and_study():
    """One rule draws the subsample (:func:`aekit.pipeline.subsample_rows`): the sweep and the
    study keep the same rows of the same data for the same seed."""
    from aekit.apps.study import study_data
    from aekit.apps.sweep import sweep_data
    from aekit.pipeline import subsample_rows

    cfg = RunConfig().replace(data="digits", test_split=0.1, seed=3)
    kept, _, _ = sweep_data(cfg, 300)
    x_study, _, _ = study_data("digits", None, 300, seed=3)  # digits are scaled by 1/16
    np.testing.assert_array_equal(x_study * 16, kept.x)
    assert subsample_rows(1000, None, 0) is None and subsample_rows(10, 10, 0) is None
    rows = subsample_rows(1000, 50, 0)
    assert len(rows) == 50 and np.all(np.diff(rows) > 0)
    with pytest.raises(ConfigError, match="`max_train_samples` must be at least 1"):
        subsample_rows(1000, 0, 0)


def test_train_and_sweep_refuse_a_latent_size_by_one_rule(tmp_path):
    """A latent size not smaller than the feature count: the same message from ``aekit
    train``'s defaults and from a sweep's sizes."""
    from aekit.apps.sweep import sweep
    from aekit.pipeline import check_latent_dims, data_defaults

    with pytest.raises(ConfigError) as one:
        data_defaults(RunConfig().replace(latent_dim=64), 100, 64, "image")
    with pytest.raises(ConfigError) as many:
        sweep(RunConfig().replace(data="digits", epochs=1), [8, 64, 70], tmp_path, log=False)
    for caught in (one, many):
        assert "`latent_dim` must be smaller than the number of features (64)" in str(caught.value)
    assert "latent sizes [64, 70]" in str(many.value)
    check_latent_dims([1, 63], 64)  # no error


def test_the_automatic_batch_size_is_one_rule():
    """The pipeline's default and the trainer's batch for the same rows come from one rule."""
    from aekit.training.plan import requested_batch_size
    from aekit.models import build_model
    from aekit.pipeline import data_defaults
    from aekit.training.trainer import Trainer

    for n_train in (24, 1000, 60_000):
        cfg = data_defaults(RunConfig(), n_train, 10, "tabular")
        model = build_model(cfg.model, 10, "identity", 0.0, (10,))
        trainer = Trainer(model, RunConfig().replace(hidden=cfg.model.hidden, latent_dim=3))
        assert cfg.train.batch_size == requested_batch_size(None, n_train)
        assert trainer._batch_size(n_train) == min(cfg.train.batch_size, n_train)
    assert requested_batch_size(7, 1000) == 7


def test_explain_and_evaluate_compare_a_loaded_model_with_the_same_pca(tmp_path, monkeypatch,
                                                                       capsys):
    """``aekit evaluate`` and ``aekit explain`` of a loaded model both prepare its run again
    through :func:`aekit.pipeline.training_run_of`: the same rows, scaler and PCA."""
    import aekit.pipeline as pipeline
    from aekit.cli import main

    out = tmp_path / "run"
    train_run(RunConfig().replace(data="digits", epochs=1, threads=1, progress=False,
                                  latent_dim=4, hidden=(16,)), out)
    seen = []
    real = pipeline.training_run_of

    def spy(cfg, data=None):
        run, why = real(cfg, data)
        seen.append((cfg.data.data, data, run.pca.components_.copy()))
        return run, why

    monkeypatch.setattr(pipeline, "training_run_of", spy)
    assert main(["evaluate", "--model", str(out), "--data", "digits"]) == 0
    ae = aekit.load(out)
    found = ae.explain("digits", samples=100, steps=3).to_dict()
    assert [s[0] for s in seen] == ["digits", "digits"]
    np.testing.assert_array_equal(seen[0][2], seen[1][2])
    assert "PCA refitted on the run's training rows" in found["pca"]["source"]
    capsys.readouterr()
