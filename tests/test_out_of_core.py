"""Out-of-core training: a .npy read in shuffled chunks, every row once per epoch, repeatable,
streaming statistics equal to the in-memory ones, and `aekit train` end to end (with resume)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors.numpy import load_file

from aekit.config import RunConfig
from aekit.data.out_of_core import ChunkedNpy, StreamedTrainingData, should_stream
from aekit.data.scaling import Scaler
from aekit.errors import DataError
from aekit.runner import train_run

N_ROWS, N_FEATURES = 1000, 6


@pytest.fixture()
def npy(tmp_path: Path) -> Path:
    """Rows whose first column is the row number (so visits can be counted)."""
    x = np.random.default_rng(0).normal(size=(N_ROWS, N_FEATURES)).astype(np.float32)
    x[:, 0] = np.arange(N_ROWS)
    path = tmp_path / "rows.npy"
    np.save(path, x)
    return path


def _epoch_ids(data: StreamedTrainingData, gen: torch.Generator, first: int = 0) -> list[list]:
    return [b[:, 0].long().tolist() for b in data.epoch_batches(gen, 64, first=first)]


def test_every_row_once_per_epoch_in_shuffled_chunks(npy: Path) -> None:
    source = ChunkedNpy(npy, chunk_bytes=200 * N_FEATURES * 4)  # 200 rows a chunk, 5 chunks
    assert (source.chunk_rows, source.n_chunks) == (200, 5)
    data = StreamedTrainingData(source, Scaler("none"))
    gen = torch.Generator().manual_seed(3)
    epochs = [_epoch_ids(data, gen) for _ in range(2)]
    for batches in epochs:
        assert len(batches) == data.steps_per_epoch(64) == 5 * 4
        assert sorted(i for b in batches for i in b) == list(range(N_ROWS))
        assert all(len({i // 200 for i in b}) == 1 for b in batches)  # inside one chunk
    flat = [[i for b in batches for i in b] for batches in epochs]
    assert flat[0] != flat[1] and flat[0] != sorted(flat[0])  # reshuffled every epoch
    chunk_orders = [[b[0] // 200 for b in batches[::4]] for batches in epochs]
    assert chunk_orders[0] != list(range(5)) or chunk_orders[1] != list(range(5))


def test_same_seed_same_order_and_resume_skips_batches(npy: Path) -> None:
    data = StreamedTrainingData(ChunkedNpy(npy, chunk_bytes=3000), Scaler("none"))
    first = _epoch_ids(data, torch.Generator().manual_seed(7))
    assert first == _epoch_ids(data, torch.Generator().manual_seed(7))
    assert _epoch_ids(data, torch.Generator().manual_seed(7), first=5) == first[5:]


@pytest.mark.parametrize("mode", ["standard", "minmax"])
def test_streaming_scaler_matches_in_memory(npy: Path, mode: str) -> None:
    x = np.load(npy)
    streamed = ChunkedNpy(npy, chunk_bytes=1000).fit_scaler(mode)
    reference = Scaler(mode).fit(x)
    np.testing.assert_allclose(streamed.shift, reference.shift, rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(streamed.scale, reference.scale, rtol=1e-10)


def test_streaming_validation_names_the_bad_row(npy: Path, tmp_path: Path) -> None:
    x = np.load(npy)
    x[777, 3] = np.nan
    np.save(tmp_path / "bad.npy", x)
    with pytest.raises(DataError, match="row 777 holds NaN"):
        ChunkedNpy(tmp_path / "bad.npy", chunk_bytes=1000).check_finite()
    ChunkedNpy(npy, chunk_bytes=1000).check_finite()


def test_stream_rule(npy: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("AEKIT_OUT_OF_CORE", raising=False)
    monkeypatch.setenv("AEKIT_OUT_OF_CORE_BYTES", "1000")
    assert should_stream(str(npy))  # larger than the threshold
    monkeypatch.setenv("AEKIT_OUT_OF_CORE", "0")
    assert not should_stream(str(npy))
    monkeypatch.setenv("AEKIT_OUT_OF_CORE", "1")
    monkeypatch.setenv("AEKIT_OUT_OF_CORE_BYTES", str(10**12))
    assert should_stream(str(npy)) and not should_stream("digits")


def test_aekit_train_streams_repeatably_and_resumes(npy: Path, tmp_path: Path,
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AEKIT_OUT_OF_CORE", "1")
    monkeypatch.setenv("AEKIT_OUT_OF_CORE_CHUNK_BYTES", "3000")  # 125 rows a chunk
    cfg = RunConfig().replace(data=str(npy), hidden=(8,), latent_dim=2, epochs=3,
                              batch_size=32, threads=1, progress=False,
                              checkpoint_every_steps=10)
    summary = train_run(cfg, tmp_path / "a")
    assert summary["out_of_core"] and summary["n_train"] == 900 and summary["n_chunks"] == 8
    assert summary["steps"] == 3 * (7 * 4 + 1 * 1)  # 7 chunks of 125 rows, then 25 rows
    train_run(cfg, tmp_path / "b")
    weights = [load_file(str(tmp_path / d / "model.safetensors")) for d in "ab"]
    assert all(np.array_equal(weights[0][k], weights[1][k]) for k in weights[0])
    shutil.copytree(tmp_path / "a", tmp_path / "c")
    sorted((tmp_path / "c").glob("checkpoint-*.safetensors"))[-1].unlink()  # back to step 80
    (tmp_path / "c/model.safetensors").unlink()
    train_run(cfg.replace(resume=True), tmp_path / "c")
    resumed = load_file(str(tmp_path / "c/model.safetensors"))
    assert all(np.array_equal(weights[0][k], resumed[k]) for k in resumed)


def test_streamed_run_writes_a_report_and_tensorboard_from_a_sample(
        npy: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AEKIT_OUT_OF_CORE", "1")
    monkeypatch.setenv("AEKIT_OUT_OF_CORE_CHUNK_BYTES", "3000")
    run = tmp_path / "run"
    cfg = RunConfig().replace(data=str(npy), hidden=(8,), latent_dim=2, epochs=2, threads=1,
                              progress=False, report=True, tensorboard=str(tmp_path / "tb"))
    train_run(cfg, run)
    page = (run / "report.html").read_text()
    # the code map is drawn from 16 runs of 62 rows spread over the file, not from the file
    assert "Map of the codes (992 training samples" in page
    assert "could not be loaded" not in page
    assert list((tmp_path / "tb").glob("events.out.tfevents.*"))


def _low_rank(n: int, seed: int) -> np.ndarray:
    """Rows near a 3-D subspace of 12 features."""
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, 3)) @ rng.normal(size=(3, 12)) + 0.05 * rng.normal(size=(n, 12))
    return x.astype(np.float32)


def test_streamed_run_scores_a_test_set_next_to_incremental_pca(tmp_path: Path,
                                                                 monkeypatch: pytest.MonkeyPatch
                                                                 ) -> None:
    x = _low_rank(2300, 0)
    np.save(tmp_path / "train.npy", x[:2000])
    np.save(tmp_path / "test.npy", x[2000:])
    cfg = RunConfig().replace(data=str(tmp_path / "train.npy"), test=str(tmp_path / "test.npy"),
                              hidden=(16,), latent_dim=3, epochs=3, batch_size=64, threads=1,
                              progress=False)
    in_memory = train_run(cfg, tmp_path / "mem")
    monkeypatch.setenv("AEKIT_OUT_OF_CORE", "1")
    monkeypatch.setenv("AEKIT_OUT_OF_CORE_CHUNK_BYTES", "4800")  # 100 rows a chunk
    streamed = train_run(cfg, tmp_path / "stream")
    assert streamed["out_of_core"] and streamed["pca"] == "incremental"
    assert streamed["n_test"] == 300 and streamed["pca_components"] == 3
    # incremental PCA over the chunks finds the subspace PCA finds on the data in memory (the
    # validation rows differ: a random 10% in memory, the last 10% when streaming)
    assert streamed["pca_test_mse"] == pytest.approx(in_memory["pca_test_mse"], rel=0.02)
    assert streamed["ratio_to_pca"] == pytest.approx(
        streamed["test_mse"] / streamed["pca_test_mse"])
    assert isinstance(streamed["findings"], list)


def test_streamed_test_set_with_other_features_is_refused_before_training(
        npy: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AEKIT_OUT_OF_CORE", "1")
    np.save(tmp_path / "narrow.npy", np.zeros((10, N_FEATURES - 1), np.float32))
    cfg = RunConfig().replace(data=str(npy), test=str(tmp_path / "narrow.npy"), progress=False)
    with pytest.raises(DataError, match="narrow.npy"):
        train_run(cfg, tmp_path / "x")
    assert not (tmp_path / "x").exists()


def test_streamed_lr_auto_tests_rows_from_the_whole_file(npy: Path, tmp_path: Path,
                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    source = ChunkedNpy(npy, chunk_bytes=300 * N_FEATURES * 4)  # 300 rows a chunk
    rows = source.spread_rows(200)
    assert len(rows) == 192  # 16 runs of 12 rows
    ids = rows[:, 0].astype(int)
    assert ids.min() == 0 and ids.max() == N_ROWS - 1 and len(set(ids)) == len(ids)
    monkeypatch.setenv("AEKIT_OUT_OF_CORE", "1")
    monkeypatch.setenv("AEKIT_OUT_OF_CORE_CHUNK_BYTES", "3000")
    run = tmp_path / "auto"
    train_run(RunConfig().replace(data=str(npy), lr="auto", hidden=(8,), latent_dim=2, epochs=1,
                                  threads=1, progress=False), run)
    saved = json.loads((run / "config.json").read_text())["config"]
    lr = saved["optim"]["lr"]
    assert saved["train"]["lr_auto"] is True and 1e-6 < lr < 1 and lr != 2e-3
