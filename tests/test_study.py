"""The strategy study (aekit.apps.study, ``aekit study``) on small data."""

from __future__ import annotations

import json

import numpy as np
import pytest

from aekit.apps.study import STRATEGIES, study
from aekit.cli import main
from aekit.errors import ConfigError

SMALL = dict(epochs=2, hidden=(32, 16), latent_dim=4, threads=1, log=None)


def test_study_rows_compare_each_strategy_with_pca_and_write_the_table(tmp_path):
    result = study("digits", None, strategies=["sgd", "recipe"], out_dir=tmp_path, **SMALL)
    assert [r["strategy"] for r in result["rows"]] == ["sgd", "recipe"]
    assert result["test"] == "10% of digits held back" and result["n_train"] == 1617
    pca = result["pca_test_sse_per_sample"]
    for row in result["rows"]:
        assert len(row["test_sse_by_epoch"]) == 2
        assert row["ratio_to_pca"] == pytest.approx(row["test_sse_per_sample"] / pca)
        assert row["label"] == STRATEGIES[row["strategy"]][0]
        assert "encoder.0" in row["gradient_to_strongest"]
    sgd, recipe = result["rows"]
    # two epochs of plain SGD through sigmoid layers barely move the first layer; the recipe
    # trains it and ends far lower
    assert "vanishing_gradients" in sgd["findings"]
    assert recipe["findings"] == [] and recipe["test_sse_per_sample"] < sgd["test_sse_per_sample"]
    saved = json.loads((tmp_path / "study.json").read_text())
    assert [r["strategy"] for r in saved["rows"]] == ["sgd", "recipe"]
    md = (tmp_path / "study.md").read_text()
    assert md.startswith("PCA-4 test error") and "| plain mini-batch SGD |" in md


def test_study_subsets_the_training_samples_the_same_way_every_time():
    a = study("digits", None, strategies=["adam"], max_train_samples=300, **SMALL)
    with pytest.warns(DeprecationWarning, match="max_train_samples"):
        b = study("digits", None, strategies=["adam"], n_train=300, **SMALL)  # the old name
    assert a["n_train"] == b["n_train"] == 300
    assert a["rows"][0]["test_sse_by_epoch"] == b["rows"][0]["test_sse_by_epoch"]


def test_the_default_test_set_follows_the_data():
    from aekit.apps.study import default_test

    assert default_test("fashion-mnist", "auto") == "fashion-mnist:test"
    assert default_test("digits", "auto") is None  # not Fashion-MNIST's test images
    assert default_test("digits", "x.npy") == "x.npy" and default_test("digits", None) is None
    # the Python default: 10% of digits held back (Fashion-MNIST's 784 features would not fit)
    result = study("digits", strategies=["sgd"], **SMALL)
    assert result["test"] == "10% of digits held back"


@pytest.mark.parametrize("options, match", [
    (dict(strategies=["sgd", "dropout"]), r"unknown strategies \['dropout'\]; allowed: sgd"),
    (dict(strategies=[]), "no strategy given; allowed: sgd"),
    (dict(epochs=0), "epochs"),
    (dict(max_train_samples=0), "max_train_samples"),
])
def test_study_rejects_bad_options_before_training(options, match, tmp_path):
    with pytest.raises(ConfigError, match=match):
        study("digits", None, **{**SMALL, **options, "out_dir": tmp_path / "out"})
    assert not (tmp_path / "out").exists()


def test_study_command(tmp_path, capsys):
    np.save(tmp_path / "x.npy", np.random.default_rng(0).random((150, 12)).astype(np.float32))
    out = tmp_path / "study"
    assert main(["study", "--data", str(tmp_path / "x.npy"), "--only", "sgd,bn", "--epochs",
                 "2", "--hidden", "16,8", "--latent-dim", "3", "--out", str(out)]) == 0
    text = capsys.readouterr().out
    assert "PCA-3 test error" in text and "| + batch normalization |" in text
    assert (out / "study.md").is_file() and (out / "study.json").is_file()


@pytest.mark.parametrize("args, match", [
    (["--only", "sgd,fast"], "unknown strategies ['fast']"),
    (["--hidden", "10,x"], "--hidden takes comma-separated layer sizes"),
    (["--epochs", "0"], "`epochs` must be at least 1"),  # 0 is not "the default"
    (["--max-train-samples", "0"], "`max_train_samples` must be at least 1"),
    (["--n-train", "0"], "`max_train_samples` must be at least 1"),  # the deprecated spelling
    (["--only", ""], "no strategy given"),
])
def test_study_command_bad_input_exits_2(args, match, tmp_path, capsys):
    assert main(["study", "--data", "digits", "--out", str(tmp_path / "s"), *args]) == 2
    assert match in capsys.readouterr().err


def test_one_flag_name_per_concept_old_spellings_still_work(capsys):
    from aekit.cli import build_parser

    parser = build_parser()
    study_new = parser.parse_args(["study", "--max-train-samples", "300"])
    study_old = parser.parse_args(["study", "--n-train", "300"])
    sweep = parser.parse_args(["sweep", "--latent-dims", "2,4", "--max-train-samples", "300",
                               "--out", "s"])
    assert study_new.max_train_samples == study_old.max_train_samples == 300
    assert sweep.max_train_samples == 300
    assert "--n-train is deprecated, use --max-train-samples" in capsys.readouterr().err
    export = ["export", "--model", "m", "--out", "o"]
    assert parser.parse_args(export).include_scaling is True
    assert parser.parse_args([*export, "--no-include-scaling"]).include_scaling is False
    assert capsys.readouterr().err == ""
    assert parser.parse_args([*export, "--no-scaling"]).include_scaling is False
    assert parser.parse_args([*export, "--scaling"]).include_scaling is True
    err = capsys.readouterr().err
    assert "--no-scaling is deprecated, use --no-include-scaling" in err
    assert "--scaling is deprecated, use --include-scaling" in err
