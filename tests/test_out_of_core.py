"""Out-of-core training: a .npy read in shuffled chunks, every training row once per epoch,
repeatable, the same split, scaler and defaults as the in-memory pipeline, and `aekit train`
end to end (with resume, --test-split, and PCA as the yardstick)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors.numpy import load_file

from aekit.pipeline.streamed import prepare_streamed, split_rows
from aekit.config import RunConfig
from aekit.data.out_of_core import ChunkedNpy, StreamedTrainingData, should_stream
from aekit.data.scaling import Scaler
from aekit.errors import DataError
from aekit.pipeline import prepare_spec
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


def test_held_rows_are_never_trained_on_and_resume_stays_exact(npy: Path) -> None:
    held = np.sort(np.random.default_rng(1).choice(N_ROWS, 150, replace=False))
    held = np.r_[held[held >= 125], np.arange(125)]  # ...and the whole first chunk
    held = np.unique(held)
    data = StreamedTrainingData(ChunkedNpy(npy, chunk_bytes=3000), Scaler("none"), held=held)
    assert len(data) == data.shape[0] == N_ROWS - len(held) and data.chunk_counts[0] == 0
    batches = _epoch_ids(data, torch.Generator().manual_seed(7))
    assert sorted(i for b in batches for i in b) == sorted(set(range(N_ROWS)) - set(held))
    assert len(batches) == data.steps_per_epoch(64)
    assert _epoch_ids(data, torch.Generator().manual_seed(7), first=3) == batches[3:]
    other = StreamedTrainingData(ChunkedNpy(npy, chunk_bytes=3000), Scaler("none"),
                                 held=held[1:])
    assert data.fingerprint() != other.fingerprint()  # another split: --resume refuses it


@pytest.mark.parametrize("mode", ["standard", "minmax"])
def test_streaming_scaler_matches_in_memory(npy: Path, mode: str) -> None:
    x = np.load(npy)
    held = np.arange(0, N_ROWS, 7)
    source = ChunkedNpy(npy, chunk_bytes=1000)
    streamed = source.fit_scaler(Scaler(mode), source.scan(held), held)
    reference = Scaler(mode).fit(np.delete(x, held, axis=0))
    np.testing.assert_allclose(streamed.shift, reference.shift, rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(streamed.scale, reference.scale, rtol=1e-10)


def _datasets() -> dict[str, np.ndarray]:
    rng = np.random.default_rng(5)
    unit = rng.uniform(size=(900, 10)).astype(np.float32)
    unit[:, 3] = 0.5  # a constant feature
    wide = rng.normal(size=(900, 10)) * rng.uniform(0.1, 50, size=10) + 7.0
    wide[:, 2] = 4.0
    images = rng.integers(0, 256, size=(900, 6, 6, 3)).astype(np.uint8)
    return {"unit-range table": unit, "table to standardize": wide,  # float64 on file
            "uint8 images, channels last": images}


@pytest.mark.parametrize("name, options", [
    ("unit-range table", {}),
    ("unit-range table", {"pca_init": False, "test_split": 0.3, "seed": 4}),
    ("table to standardize", {"batch_size": 40}),
    ("table to standardize", {"scaling": "minmax", "validation_split": 0.25}),
    ("uint8 images, channels last", {}),
    ("uint8 images, channels last", {"pca_init": False, "test_split": 0.0}),
])
def test_streamed_preparation_is_the_in_memory_one(tmp_path: Path, name: str,
                                                    options: dict) -> None:
    x = _datasets()[name]
    np.save(tmp_path / "data.npy", x)
    cfg = RunConfig().replace(data=str(tmp_path / "data.npy"), threads=1, progress=False,
                              **options)
    memory = prepare_spec(cfg)
    streamed = prepare_streamed(cfg, chunk_size=2000)  # many chunks
    assert streamed.data.n_chunks > 5
    assert streamed.config == memory.config
    assert streamed.output_activation == memory.output_activation
    assert streamed.data.sample_shape == memory.data.sample_shape
    assert streamed.data.kind == memory.data.kind
    rows = streamed.data.gather(np.arange(len(x)))  # the file as the in-memory loader reads it
    # the in-memory run learns from the file less its test rows: same rows, same order
    np.testing.assert_array_equal(rows[streamed.train_index], memory.data.x[memory.train_index])
    np.testing.assert_array_equal(rows[streamed.val_index], memory.data.x[memory.val_index])
    if memory.test is None:
        assert streamed.test is None and len(streamed.test_index) == 0
    else:
        np.testing.assert_array_equal(streamed.test.x, memory.test.x)
        assert streamed.test_source == memory.test_source
    assert len(streamed.train_index) + len(streamed.held) == len(x)
    assert streamed.scaler.mode == memory.scaler.mode
    assert streamed.scaler.pixel_max == memory.scaler.pixel_max
    if memory.scaler.shift is not None:
        np.testing.assert_allclose(streamed.scaler.shift, memory.scaler.shift, rtol=1e-12,
                                   atol=1e-12)
        np.testing.assert_allclose(streamed.scaler.scale, memory.scaler.scale, rtol=1e-12)
    np.testing.assert_allclose(streamed.x_val, memory.x_val, rtol=1e-6, atol=1e-6)
    assert streamed.pca.n_components_ == memory.pca.n_components_


def test_streamed_split_honours_test_split_and_test(tmp_path: Path) -> None:
    cfg = RunConfig().replace(data="rows.npy", test_split=0.2, validation_split=0.1, seed=3)
    train, val, test = split_rows(cfg, 1000)
    assert (len(train), len(val), len(test)) == (720, 80, 200)
    assert len(np.union1d(np.union1d(train, val), test)) == 1000
    assert np.array_equal(split_rows(cfg.replace(seed=4), 1000)[2], test)  # not moved by --seed
    train, val, test = split_rows(cfg.replace(test=str(tmp_path / "t.npy")), 1000)
    assert (len(train), len(val), len(test)) == (900, 100, 0)  # --test: no rows held for it


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
    train, val, test = split_rows(cfg, N_ROWS)  # 10% test, then 10% of the rest validation
    assert summary["out_of_core"] and summary["n_chunks"] == 8
    # validation "auto": at least 200 of the 900 rows left after the 100 test rows
    assert (summary["n_train"], summary["n_val"], summary["n_test"]) == (700, 200, 100)
    per_chunk = np.bincount(train // 125, minlength=8)  # training rows of each chunk
    assert summary["steps"] == 3 * sum(-(-int(k) // 32) for k in per_chunk)
    train_run(cfg, tmp_path / "b")
    weights = [load_file(str(tmp_path / d / "model.safetensors")) for d in "ab"]
    assert all(np.array_equal(weights[0][k], weights[1][k]) for k in weights[0])
    shutil.copytree(tmp_path / "a", tmp_path / "c")
    sorted((tmp_path / "c").glob("checkpoint-*.safetensors"))[-1].unlink()  # back a checkpoint
    (tmp_path / "c/model.safetensors").unlink()
    train_run(cfg.replace(resume=True), tmp_path / "c")
    resumed = load_file(str(tmp_path / "c/model.safetensors"))
    assert all(np.array_equal(weights[0][k], resumed[k]) for k in resumed)


def test_streamed_run_writes_a_report_and_tensorboard_from_a_sample(
        npy: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    pytest.importorskip("tensorboard")
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
    assert streamed["test"] == in_memory["test"] == str(tmp_path / "test.npy")
    for key in ("n_train", "n_val", "latent_dim", "hidden", "batch_size", "pca_init"):
        assert streamed[key] == in_memory[key], key
    # incremental PCA over the chunks finds the subspace PCA finds on the same rows in memory
    assert streamed["pca_test_mse"] == pytest.approx(in_memory["pca_test_mse"], rel=0.02)
    assert streamed["pca_val_mse"] == pytest.approx(in_memory["pca_val_mse"], rel=0.02)
    assert streamed["ratio_to_pca"] == pytest.approx(
        streamed["test_mse"] / streamed["pca_test_mse"])
    assert isinstance(streamed["findings"], list)


def test_streamed_run_holds_back_test_split_and_compares_with_pca(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    np.save(tmp_path / "low_rank.npy", _low_rank(2000, 1))
    monkeypatch.setenv("AEKIT_OUT_OF_CORE", "1")
    monkeypatch.setenv("AEKIT_OUT_OF_CORE_CHUNK_BYTES", "4800")  # 100 rows a chunk
    cfg = RunConfig().replace(data=str(tmp_path / "low_rank.npy"), test_split=0.15,
                              latent_dim=3, epochs=4, threads=1, progress=False)
    summary = train_run(cfg, tmp_path / "run")
    assert json.loads((tmp_path / "run/summary.json").read_text()) == summary
    assert summary["out_of_core"] and summary["test"].startswith("15% of")
    # validation "auto": at least 200 of the 1700 rows left after the 300 test rows
    assert (summary["n_train"], summary["n_val"], summary["n_test"]) == (1500, 200, 300)
    for key in ("val_mse", "pca_val_mse", "test_mse", "pca_test_mse", "ratio_to_pca"):
        assert np.isfinite(summary[key]), key
    assert summary["pca_init"] and summary["ratio_to_pca"] <= 1.02  # it starts from PCA
    assert [e for e in summary["events"] if e["kind"] == "pca_baseline"]


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


def test_streamed_run_gives_per_class_test_errors_and_refuses_balancing(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from aekit.errors import ConfigError

    np.save(tmp_path / "low_rank.npy", _low_rank(600, 1))
    np.save(tmp_path / "labels.npy", np.arange(600) % 3)
    monkeypatch.setenv("AEKIT_OUT_OF_CORE", "1")
    cfg = RunConfig().replace(data=str(tmp_path / "low_rank.npy"),
                              labels=str(tmp_path / "labels.npy"), latent_dim=3, epochs=2,
                              threads=1, progress=False)
    summary = train_run(cfg, tmp_path / "run")
    assert set(summary["per_class_test_sse"]) == {"0", "1", "2"}
    assert sum(summary["per_class_test_rows"].values()) == summary["n_test"]
    assert "probe" not in summary  # the training rows are not in memory
    with pytest.raises(ConfigError, match=r"--balance weights needs the training data in memory"):
        train_run(cfg.replace(balance="weights"), tmp_path / "x")
    assert not (tmp_path / "x").exists()
