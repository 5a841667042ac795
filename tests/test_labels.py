"""Labels: read and checked like data, balancing in the loss and in the batches, per-class
errors, the codes' probe next to PCA's, and the doctor's class finding."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from PIL import Image

import aekit
from aekit.cli import main
from aekit.config import RunConfig
from aekit.data import load
from aekit.data.labels import read_labels, same_classes, with_labels
from aekit.errors import ConfigError, DataError, DataNotFoundError
from aekit.models import build_model
from aekit.pipeline import (class_gap_finding, prepare, prepare_spec, probe, training_weights)
from aekit.runner import train_run
from aekit.training import fastpath
from aekit.training.batches import epoch_batches
from aekit.training.trainer import Trainer

QUICK = dict(epochs=2, threads=1, progress=False, diagnostics_every_steps=None)


# -- reading labels ----------------------------------------------------------------------------
def test_label_specs_npy_npz_csv(tmp_path):
    np.save(tmp_path / "y.npy", np.array([3, 1, 3]))
    np.savez(tmp_path / "a.npz", x=np.zeros((3, 2)), target=np.array([0, 1, 1]))
    (tmp_path / "t.csv").write_text("f,kind\n1,cat\n2,dog\n3,cat\n")
    codes, names = read_labels(str(tmp_path / "y.npy"))
    assert codes.tolist() == [3, 1, 3] and names is None
    assert read_labels(f"{tmp_path / 'a.npz'}:target")[0].tolist() == [0, 1, 1]
    assert read_labels(str(tmp_path / "a.npz"))[0].tolist() == [0, 1, 1]  # found by name
    codes, names = read_labels(f"{tmp_path / 't.csv'}:kind")
    assert codes.tolist() == [0, 1, 0] and names == ("cat", "dog")
    assert read_labels(f"{tmp_path / 't.csv'}:1")[1] == ("cat", "dog")  # by position


def test_bad_label_specs_name_what_is_wrong(tmp_path):
    np.save(tmp_path / "nan.npy", np.array([1.0, np.nan, 2.0]))
    (tmp_path / "t.csv").write_text("f,kind\n1,cat\n")
    with pytest.raises(DataError, match=r"label of row 1 is nan"):
        read_labels(str(tmp_path / "nan.npy"))
    with pytest.raises(DataError, match=r"has no column 'colour'; its columns: f, kind"):
        read_labels(f"{tmp_path / 't.csv'}:colour")
    with pytest.raises(DataError, match=r"needs its column: FILE.csv:COLUMN"):
        read_labels(str(tmp_path / "t.csv"))
    with pytest.raises(DataNotFoundError, match=r"no such file .*Allowed: auto, none"):
        read_labels(str(tmp_path / "missing.npy"))
    digits = load("digits")
    np.save(tmp_path / "short.npy", np.zeros(10, np.int64))
    with pytest.raises(DataError, match=r"10 labels for 1797 rows of digits"):
        with_labels(digits, str(tmp_path / "short.npy"))
    assert with_labels(digits, "none").labels is None


def test_npz_with_x_and_y_and_class_subfolders_have_their_own_labels(tmp_path):
    rng = np.random.default_rng(0)
    np.savez(tmp_path / "t.npz", X=rng.normal(size=(6, 3)), y=np.array([0., 1, 0, 0, 1, 0]))
    assert load(str(tmp_path / "t.npz")).labels.tolist() == [0, 1, 0, 0, 1, 0]
    for cls in ("boots", "shirts"):
        (tmp_path / "img" / cls).mkdir(parents=True)
        for i in range(2):
            Image.fromarray(rng.integers(0, 255, (4, 4), dtype=np.uint8)).save(
                tmp_path / "img" / cls / f"{i}.png")
    ds = load(str(tmp_path / "img"))
    assert ds.n_samples == 4 and ds.labels.tolist() == [0, 0, 1, 1]
    assert ds.label_names == ("boots", "shirts")


def test_test_classes_keep_the_training_codes():
    train = aekit.data.Dataset(np.zeros((2, 1), np.float32), (1,), "tabular", "a",
                               np.array([0, 1]), label_names=("cat", "dog"))
    test = aekit.data.Dataset(np.zeros((2, 1), np.float32), (1,), "tabular", "b",
                              np.array([0, 1]), label_names=("dog", "fox"))
    fixed = same_classes(train, test)
    assert fixed.labels.tolist() == [1, 2] and fixed.label_names == ("cat", "dog", "fox")


# -- weights -----------------------------------------------------------------------------------
def test_training_weights_balance_the_classes():
    labels = np.array([0] * 90 + [1] * 10)
    row, draw = training_weights("weights", labels, None)
    assert draw is None and row.mean() == pytest.approx(1.0)
    assert row[labels == 0].sum() == pytest.approx(row[labels == 1].sum())  # equal class mass
    row, draw = training_weights("sampler", labels, None)
    assert row is None and draw[labels == 1].sum() == pytest.approx(0.5)
    sw = np.arange(100, dtype=float)
    row, _ = training_weights("none", None, sw)
    np.testing.assert_allclose(row, sw / sw.mean(), rtol=1e-6)
    with pytest.raises(ConfigError, match=r"--balance weights needs class labels"):
        training_weights("weights", None, None)
    with pytest.raises(ConfigError, match=r"one class only"):
        training_weights("sampler", np.zeros(5, np.int64), None)


def test_weighted_loss_is_the_same_in_the_fast_path_and_autograd():
    torch.manual_seed(0)
    cfg = RunConfig().replace(latent_dim=3, hidden=(8,), pca_init=True)
    model = build_model(cfg.model, 6, "identity", 0.0, (6,))
    assert fastpath.supports(model)
    x = torch.randn(5, 6)
    w = torch.tensor([2.0, 0.0, 1.0, 0.5, 1.5])
    trainer = Trainer(model, cfg)
    loss_fast = fastpath.loss_and_grad(model, x, None, w)
    grad_fast = trainer.flat.grad.clone()
    trainer.flat.zero_grad()
    loss_auto = trainer._autograd_step(x, None, w)
    assert loss_fast == pytest.approx(loss_auto, rel=1e-5)
    torch.testing.assert_close(grad_fast, trainer.flat.grad, rtol=1e-4, atol=1e-6)
    # weight 2 on a row and 0 on another is the row counted twice, the other dropped
    trainer.flat.zero_grad()
    twice = trainer._autograd_step(torch.stack([x[0], x[0]]), None, None)
    halves = trainer._autograd_step(x[:2], None, torch.tensor([2.0, 0.0]))
    assert twice == pytest.approx(halves, rel=1e-6)


def test_sampler_draws_the_classes_equally_and_resumes_the_same_order():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(400, 5)).astype(np.float32)
    labels = np.array([0] * 380 + [1] * 20)
    cfg = RunConfig().replace(latent_dim=2, hidden=(8,), balance="sampler", epochs=1,
                              batch_size=400, validation_split=0.0, **{k: v for k, v in
                                                                       QUICK.items()
                                                                       if k != "epochs"})
    run = prepare(cfg, x, labels=labels)
    drawn = []
    generator = torch.Generator().manual_seed(0)
    for xb, _, _ in epoch_batches(torch.from_numpy(run.x_train), None, None,
                                  torch.from_numpy(run.draw_weight), generator, 400, 400, 0, 1,
                                  True, False):
        drawn.append(xb)
    rows = {tuple(r) for r in run.x_train[run.train_labels == 1].round(5).tolist()}
    rare = sum(tuple(r) in rows for r in drawn[0].numpy().round(5).tolist())
    assert 150 <= rare <= 250  # half the draws, against 5% of the rows


# -- results -----------------------------------------------------------------------------------
def test_train_writes_per_class_errors_and_the_probe(tmp_path):
    summary = train_run(RunConfig().replace(data="digits", latent_dim=8, **QUICK), tmp_path)
    assert set(summary["per_class_test_sse"]) == {str(c) for c in range(10)}
    assert sum(summary["per_class_test_rows"].values()) == summary["n_test"]
    p = summary["probe"]
    for key in ("linear_probe_accuracy", "kmeans_ari", "pca_linear_probe_accuracy",
                "pca_kmeans_ari"):
        assert 0.0 <= p[key] <= 1.0 or key.endswith("ari")
    assert p["linear_probe_accuracy"] > 0.5 and p["pca_linear_probe_accuracy"] > 0.5
    saved = json.loads((tmp_path / "summary.json").read_text())
    assert saved["probe"] == p and saved["test_only_classes"] == []


def test_balance_weights_trains_and_labels_none_drops_them(tmp_path, capsys):
    assert main(["train", "--data", "digits", "--latent-dim", "8", "--epochs", "2",
                 "--balance", "weights", "--threads", "1", "--no-progress",
                 "--out", str(tmp_path / "a")]) == 0
    out = capsys.readouterr().out
    assert "per-class test error, worst first" in out and "linear probe accuracy" in out
    assert json.loads((tmp_path / "a" / "summary.json").read_text())["balance"] == "weights"
    with pytest.raises(ConfigError, match=r"--balance sampler needs class labels"):
        prepare_spec(RunConfig().replace(data="digits", labels="none", balance="sampler",
                                         **QUICK))
    with pytest.raises(ConfigError, match=r"--test-labels .* without --test"):
        prepare_spec(RunConfig().replace(data="digits", test_labels="auto", **QUICK))


def test_python_fit_takes_labels_and_sample_weight():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(300, 6)).astype(np.float32)
    y = np.where(x[:, 0] > 1.0, "rare", "common")
    ae = aekit.Autoencoder(latent_dim=2, balance="weights", **QUICK)
    ae.fit(x, labels=y, sample_weight=np.ones(300))
    per_class = ae.score_per_class(x, labels=y)
    assert set(per_class) == {"common", "rare"}
    with pytest.raises(DataError, match=r"sample_weight must be finite and >= 0"):
        aekit.Autoencoder(latent_dim=2, **QUICK).fit(x, sample_weight=-np.ones(300))
    with pytest.raises(DataError, match=r"5 labels for 300 rows"):
        aekit.Autoencoder(latent_dim=2, **QUICK).fit(x, labels=np.zeros(5, int))


def test_evaluate_prints_the_probe_for_a_trained_model(tmp_path, capsys):
    train_run(RunConfig().replace(data="digits", latent_dim=4, **QUICK), tmp_path)
    capsys.readouterr()
    assert main(["evaluate", "--model", str(tmp_path), "--data", "digits"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert set(result["probe"]) >= {"linear_probe_accuracy", "pca_kmeans_ari"}
    assert len(result["per_class_sse"]) == 10 and len(result["pca_per_class_sse"]) == 10


def test_probe_tells_separable_codes_from_noise():
    rng = np.random.default_rng(0)
    labels = np.repeat([0, 1, 2], 100)
    good = rng.normal(size=(300, 2)) * 0.1 + labels[:, None]
    noise = rng.normal(size=(300, 2))
    assert probe(good, labels, good, labels)["linear_probe_accuracy"] > 0.95
    assert probe(good, labels, good, labels)["kmeans_ari"] > 0.9
    assert probe(noise, labels, noise, labels)["kmeans_ari"] < 0.1


def test_doctor_flags_a_class_far_worse_than_the_others(tmp_path, capsys):
    summary = {"per_class_test_sse": {"a": 1.0, "b": 1.1, "c": 5.0},
               "per_class_test_rows": {"a": 10, "b": 10, "c": 10},
               "per_class_train_rows": {"a": 100, "b": 100, "c": 2}, "steps": 7}
    finding = class_gap_finding(summary)
    assert finding["kind"] == "class_error_gap" and "class c" in finding["message"]
    assert "--balance weights" in finding["advice"]
    assert class_gap_finding({**summary, "per_class_test_rows": {"a": 10, "b": 10, "c": 2}}) \
        is None  # too few test rows of c to judge
    # aekit diagnose shows it from summary.json
    run = tmp_path / "run"
    train_run(RunConfig().replace(data="digits", latent_dim=4, **QUICK), run)
    saved = json.loads((run / "summary.json").read_text())
    saved["findings"] = [*saved["findings"], finding]
    (run / "summary.json").write_text(json.dumps(saved))
    capsys.readouterr()
    assert main(["diagnose", str(run)]) == 0
    assert "class c reconstructs 4.5x worse" in capsys.readouterr().out


def test_evaluate_a_model_saved_from_python_skips_the_probe_with_the_reason(tmp_path, capsys):
    ae = aekit.Autoencoder(latent_dim=4, **QUICK)
    ae.fit(load("digits"))
    ae.save(tmp_path / "m")
    capsys.readouterr()
    assert main(["evaluate", "--model", str(tmp_path / "m"), "--data", "digits"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert len(result["per_class_sse"]) == 10 and "probe" not in result
    assert "saved from Python" in result["probe_skipped"]
