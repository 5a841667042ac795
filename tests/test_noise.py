"""Denoising: --noise corrupts the training inputs afresh every step (the clean rows are the
target), validation and test rows once; the summary and `aekit evaluate --noise` score the
model against PCA's projection of the noisy rows and the noisy rows themselves."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from aekit.cli import main
from aekit.config import RunConfig, parse_noise
from aekit.errors import ConfigError
from aekit.pipeline import prepare_spec
from aekit.runner import train_run
from aekit.training.noise import corrupt, corrupt_array, step_generator

QUICK = dict(threads=1, progress=False, diagnostics_every_steps=None)


def test_noise_specs_are_checked():
    assert parse_noise("gaussian:0.3") == ("gaussian", 0.3)
    assert parse_noise("saltpepper:0.1") == ("saltpepper", 0.1)
    for bad in ("gaussian", "gaussian:-1", "mask:1.5", "blur:2", "mask:x"):
        with pytest.raises(ConfigError, match=r"`noise` must be gaussian:SIGMA .* Received"):
            RunConfig().replace(noise=bad)


def test_each_kind_corrupts_as_documented_and_leaves_the_batch_alone():
    x = torch.full((400, 50), 0.5)
    g = step_generator(0, 3)
    noisy = corrupt(x, "gaussian:0.2", g, (0.0, 1.0))
    assert torch.equal(x, torch.full((400, 50), 0.5))  # a copy
    assert 0.17 < float((noisy - x).std()) < 0.2 and noisy.min() >= 0 and noisy.max() <= 1
    masked = corrupt(x, "mask:0.5", step_generator(0, 3))
    assert 0.45 < float((masked == 0).float().mean()) < 0.55
    sp = corrupt(x, "saltpepper:0.2", step_generator(0, 3), (0.0, 1.0))
    assert 0.08 < float((sp == 0).float().mean()) < 0.12
    assert 0.08 < float((sp == 1).float().mean()) < 0.12
    sp_std = corrupt(x, "saltpepper:0.2", step_generator(0, 3))  # standardized: -3 / +3
    assert set(torch.unique(sp_std).tolist()) == {-3.0, 0.5, 3.0}
    # the same step, the same noise; another step, other noise
    assert torch.equal(corrupt(x, "mask:0.5", step_generator(0, 3)), masked)
    assert not torch.equal(corrupt(x, "mask:0.5", step_generator(0, 4)), masked)
    a = corrupt_array(np.full((10, 4), 0.5, np.float32), "gaussian:0.1", 0, -1)
    assert a.dtype == np.float32 and not np.allclose(a, 0.5)


def test_validation_rows_are_corrupted_once_and_targets_are_clean():
    cfg = RunConfig().replace(data="digits", latent_dim=8, noise="mask:0.5", **QUICK)
    run = prepare_spec(cfg)
    clean = prepare_spec(cfg.replace(noise=None))
    np.testing.assert_array_equal(run.y_val, clean.x_val)
    assert (run.x_val == 0).mean() > (clean.x_val == 0).mean() + 0.2
    np.testing.assert_array_equal(prepare_spec(cfg).x_val, run.x_val)  # fixed seed


def test_a_denoiser_beats_the_noisy_rows_and_pca_on_digits(tmp_path, capsys):
    summary = train_run(RunConfig().replace(data="digits", latent_dim=16,
                                            noise="gaussian:0.3", epochs=15, **QUICK),
                        tmp_path / "run")
    assert summary["noise"] == "gaussian:0.3"
    assert summary["denoise_test_sse_per_sample"] < summary["pca_denoise_test_sse_per_sample"]
    assert summary["denoise_test_sse_per_sample"] < summary["noisy_test_sse_per_sample"]
    capsys.readouterr()
    assert main(["evaluate", "--model", str(tmp_path / "run"), "--data", "digits",
                 "--noise", "gaussian:0.3", "--labels", "none"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["denoise_sse_per_sample"] < result["noisy_sse_per_sample"]
    assert "pca_fitted_on" not in result  # the run's own PCA
    assert main(["evaluate", "--model", str(tmp_path / "run"), "--data", "digits",
                 "--noise", "blur:1"]) == 2
    assert "Received: noise='blur:1'" in capsys.readouterr().err


def test_the_console_summary_shows_test_lines_or_the_validation_line_not_both():
    from aekit.runner import format_summary

    base = {"epochs": 1, "steps": 2, "train_seconds": 1.0, "samples_per_second": 9.0,
            "val_mse": 0.5}
    test = {**base, "test_sse_per_sample": 1.0, "pca_test_sse_per_sample": 2.0,
            "ratio_to_pca": 0.5, "pca_components": 3, "test": "t", "n_test": 4,
            "n_features": 5}
    noisy = {**test, "noise": "mask:0.5", "denoise_test_sse_per_sample": 1.5,
             "pca_denoise_test_sse_per_sample": 3.0, "noisy_test_sse_per_sample": 6.0}
    assert "validation mse" in format_summary(base, "run")
    assert "validation mse" not in format_summary(test, "run")
    text = format_summary(noisy, "run")
    assert "validation mse" not in text and "PCA-3 of the noisy rows: 3" in text
