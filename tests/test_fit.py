"""One door for every run (:mod:`aekit.pipeline.fit`, :mod:`aekit.pipeline.rundir`): streamed
and in-memory runs share one PreparedRun and one assembly, and the apps that train (tune,
lr-find, sweep) stream a memory-mapped ``.npy`` as ``aekit train`` does."""

from __future__ import annotations

import importlib
import json
from pathlib import Path

import numpy as np
import pytest
import torch

from aekit.apps.lr_find import lr_find_on_data
from aekit.apps.sweep import sweep
from aekit.config import RunConfig
from aekit.errors import TrainingError
from aekit.pipeline import prepare_spec
from aekit.pipeline.fit import assemble, sanity_check, training_rows

# the module (the package's ``prepare`` attribute is the function of that name)
prepare_module = importlib.import_module("aekit.pipeline.prepare")


def _low_rank(n: int = 600, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, 3)) @ rng.normal(size=(3, 12)) + 0.05 * rng.normal(size=(n, 12))
    return x.astype(np.float32)


@pytest.fixture
def streamed(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> dict:
    """A .npy streamed in chunks of 100 rows; loading it into memory fails the test."""
    path = tmp_path / "data.npy"
    np.save(path, _low_rank())
    monkeypatch.setenv("AEKIT_OUT_OF_CORE", "1")
    monkeypatch.setenv("AEKIT_OUT_OF_CORE_CHUNK_BYTES", str(100 * 12 * 4))
    calls = []
    real = prepare_module.prepare_streamed

    def spy(cfg, *args, **kwargs):
        calls.append(cfg.data.data)
        return real(cfg, *args, **kwargs)

    def no_load(*args, **kwargs):
        raise AssertionError("the file was loaded into memory instead of streamed")

    monkeypatch.setattr(prepare_module, "prepare_streamed", spy)
    monkeypatch.setattr(prepare_module, "load", no_load)
    cfg = RunConfig().replace(data=str(path), epochs=2, threads=1, progress=False,
                              hidden=(16,), diagnostics_every_steps=None)
    return {"cfg": cfg, "calls": calls, "path": str(path)}


def test_prepare_spec_streams_a_big_npy_into_the_one_prepared_run(streamed):
    run = prepare_spec(streamed["cfg"])
    assert streamed["calls"] == [streamed["path"]]
    assert run.stream is not None and run.x_train is None
    assert run.stream.n_chunks >= 5 and len(run.train_index) + len(run.held) == 600
    rows = training_rows(run, torch.device("cpu"), 64)
    assert rows.shape[1] == 12 and 0 < len(rows) <= 64


def test_lr_find_streams(streamed):
    result = lr_find_on_data(streamed["cfg"], num_steps=30)
    assert streamed["calls"] == [streamed["path"]]
    assert 1e-6 <= result.suggestion <= 1.0 and len(result.lrs) > 0


def test_sweep_streams(streamed, tmp_path):
    result = sweep(streamed["cfg"], [2, 3], tmp_path / "sweep", log=False)
    assert streamed["calls"] == [streamed["path"]]
    assert [r.latent_dim for r in result.rows] == [2, 3]
    assert all(np.isfinite(r.test_mse) and np.isfinite(r.pca_test_mse) for r in result.rows)
    assert result.n_test == 60  # the file's held-back test rows
    assert (tmp_path / "sweep" / "sweep.json").is_file()


def test_tune_streams(streamed, tmp_path):
    pytest.importorskip("optuna")
    from aekit.apps.tune import tune

    out = tmp_path / "tune"
    tune(streamed["cfg"], 2, None, out, log=False)
    assert streamed["calls"] == [streamed["path"]]  # prepared once, for every trial
    summaries = [json.loads(p.read_text()) for p in sorted(out.glob("trials/*/summary.json"))]
    assert len(summaries) == 2
    assert all(s["out_of_core"] and s["pca"] == "incremental" for s in summaries)


def test_streamed_runs_get_the_sanity_batch(streamed):
    run = prepare_spec(streamed["cfg"])

    class Broken(torch.nn.Module):
        def forward(self, x):
            raise RuntimeError("mat1 and mat2 shapes cannot be multiplied")

    with pytest.raises(TrainingError, match="fails on a first batch"):
        assemble(run, Broken(), torch.device("cpu"))


def test_sanity_check_refuses_a_non_finite_first_loss():
    class NaNLoss(torch.nn.Module):
        def forward(self, x):
            return type("Out", (), {"loss": torch.tensor(float("nan"))})()

    with pytest.raises(TrainingError, match="not finite"):
        sanity_check(NaNLoss(), torch.zeros(4, 3))
