"""Tests for aekit.data: every source, every defect, and the scaler."""

from __future__ import annotations

import gzip
import json
import re
import time
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from aekit.data import Dataset, Scaler, check_n_features, load, validate_array
from aekit.data.sources import fashion_mnist_dir
from aekit.errors import ConfigError, DataError, DataNotFoundError, FormatError

try:
    from data_helpers import idx_bytes, tiny_images, write_fashion_like, write_idx, write_png
except ImportError:  # pytest run with --import-mode=importlib
    from tests.data_helpers import idx_bytes, tiny_images, write_fashion_like, write_idx, write_png


def esc(path: Path | str) -> str:
    """A path as a regex that matches it literally."""
    return re.escape(str(path))


# ---------------------------------------------------------------- built-in sets


def test_digits():
    ds = load("digits")
    assert ds.x.shape == (1797, 64) and ds.x.dtype == np.float32 and ds.x.flags.c_contiguous
    assert ds.sample_shape == (8, 8) and ds.kind == "image" and ds.pixel_max == 16
    assert ds.labels.dtype == np.int64 and ds.labels.shape == (1797,)
    assert ds.n_samples == 1797 and ds.n_features == 64
    assert ds.x.max() == 16 and ds.x.min() == 0


def test_fashion_mnist_real_files(monkeypatch):
    monkeypatch.delenv("AEKIT_DATA", raising=False)
    folder = fashion_mnist_dir()
    if not (folder / "train-images-idx3-ubyte.gz").exists() and not (folder / "train-images-idx3-ubyte").exists():
        pytest.skip(f"Fashion-MNIST is not installed in {folder} (apt-get install dataset-fashion-mnist)")
    train, test = load("fashion-mnist"), load("fashion-mnist:test")
    assert train.x.shape == (60000, 784) and test.x.shape == (10000, 784)
    assert train.x.dtype == np.float32 and train.sample_shape == (28, 28)
    assert train.pixel_max == 255 and train.kind == "image"
    assert train.labels.shape == (60000,) and test.labels.shape == (10000,)
    assert set(np.unique(train.labels)) == set(range(10))
    assert train.x.max() <= 255 and train.x.min() >= 0


def test_fashion_mnist_from_aekit_data(tmp_path, monkeypatch):
    write_fashion_like(tmp_path)
    monkeypatch.setenv("AEKIT_DATA", str(tmp_path))
    train, test = load("fashion-mnist"), load("fashion-mnist:test")
    assert train.x.shape == (6, 784) and test.x.shape == (4, 784)
    assert train.labels.tolist() == [0, 1, 2, 3, 4, 5]
    assert test.sample_shape == (28, 28) and test.pixel_max == 255


def test_fashion_mnist_missing_says_how_to_install(tmp_path, monkeypatch):
    monkeypatch.setenv("AEKIT_DATA", str(tmp_path))
    with pytest.raises(DataNotFoundError, match=f"{esc(tmp_path)}.*apt-get install dataset-fashion-mnist.*AEKIT_DATA"):
        load("fashion-mnist:test")


def test_unknown_word_lists_names_and_kinds():
    with pytest.raises(DataNotFoundError, match=r"'mnist'.*digits, fashion-mnist.*\.npy.*\.csv.*\.parquet.*IDX"):
        load("mnist")


def test_missing_file_names_path(tmp_path):
    missing = tmp_path / "nope.csv"
    with pytest.raises(DataNotFoundError, match=esc(missing)):
        load(str(missing))
    with pytest.raises(FileNotFoundError):  # DataNotFoundError is also a FileNotFoundError
        load(str(tmp_path / "nope.npy"))


def test_unknown_extension_lists_kinds(tmp_path):
    path = tmp_path / "data.xlsx"
    path.write_bytes(b"PK")
    with pytest.raises(DataError, match=f"{esc(path)}.*'.xlsx'.*allowed: .npy, .npz"):
        load(str(path))


# ---------------------------------------------------------------- IDX


@pytest.mark.parametrize("gz", [False, True])
def test_idx_images_with_labels(tmp_path, gz):
    images = tiny_images(5, 4, 3)
    suffix = ".gz" if gz else ""
    path = write_idx(tmp_path / f"train-images-idx3-ubyte{suffix}", images, gz=gz)
    write_idx(tmp_path / f"train-labels-idx1-ubyte{suffix}", np.arange(5, dtype=np.uint8), gz=gz)
    ds = load(str(path))
    assert ds.sample_shape == (4, 3) and ds.kind == "image" and ds.pixel_max == 255
    np.testing.assert_array_equal(ds.x, images.reshape(5, 12).astype(np.float32))
    assert ds.labels.tolist() == [0, 1, 2, 3, 4] and ds.labels.dtype == np.int64


def test_idx_dot_naming_without_labels(tmp_path):
    path = write_idx(tmp_path / "my.idx3-ubyte", tiny_images(2, 3, 3))
    ds = load(str(path))
    assert ds.labels is None and ds.x.shape == (2, 9)


def test_idx_other_dtypes(tmp_path):
    values = np.arange(6, dtype=np.float32).reshape(3, 2) / 3
    ds = load(str(write_idx(tmp_path / "t-idx2-ubyte", values)))
    assert ds.kind == "tabular" and ds.pixel_max is None
    np.testing.assert_array_equal(ds.x, values)
    shorts = np.arange(-12, 12, dtype=np.int16).reshape(2, 3, 4)
    ds = load(str(write_idx(tmp_path / "s-idx3-ubyte", shorts)))
    assert ds.kind == "image" and ds.pixel_max is None
    np.testing.assert_array_equal(ds.x, shorts.reshape(2, 12))


def test_idx_truncated(tmp_path):
    data = idx_bytes(tiny_images(5, 4, 3))
    path = tmp_path / "cut-idx3-ubyte"
    path.write_bytes(data[:-7])
    with pytest.raises(DataError, match=f"{esc(path)}: IDX file truncated.*\\(5, 4, 3\\)"):
        load(str(path))
    path.write_bytes(data[:10])  # header itself cut short
    with pytest.raises(DataError, match=f"{esc(path)}: truncated IDX header"):
        load(str(path))


def test_idx_huge_header_checked_before_allocating(tmp_path):
    path = tmp_path / "huge-idx3-ubyte"
    path.write_bytes(bytes([0, 0, 8, 3]) + (2**31).to_bytes(4, "big") * 3 + b"\x00" * 10)
    with pytest.raises(DataError, match="truncated"):
        load(str(path))


def test_idx_bad_magic_and_empty(tmp_path):
    path = tmp_path / "bad-idx3-ubyte"
    path.write_bytes(b"\x01\x02\x03\x04" + b"\x00" * 20)
    with pytest.raises(DataError, match=f"{esc(path)}: not an IDX file: magic bytes 01020304"):
        load(str(path))
    path.write_bytes(b"")
    with pytest.raises(DataError, match=f"{esc(path)}: not an IDX file: 0 bytes"):
        load(str(path))


def test_idx_corrupt_gzip(tmp_path):
    path = tmp_path / "x-idx3-ubyte.gz"
    path.write_bytes(gzip.compress(idx_bytes(tiny_images()))[:-12])
    with pytest.raises(DataError, match=f"{esc(path)}: corrupt or truncated gzip"):
        load(str(path))


def test_idx_labels_count_mismatch(tmp_path):
    path = write_idx(tmp_path / "train-images-idx3-ubyte", tiny_images(5))
    write_idx(tmp_path / "train-labels-idx1-ubyte", np.arange(4, dtype=np.uint8))
    with pytest.raises(DataError, match="has 4 labels but .* has 5 samples"):
        load(str(path))


def test_idx_labels_file_as_data_is_wrong_rank(tmp_path):
    path = write_idx(tmp_path / "train-labels-idx1-ubyte", np.arange(4, dtype=np.uint8))
    with pytest.raises(DataError, match=f"{esc(path)}: expected a 2-D array .*1-D"):
        load(str(path))


# ---------------------------------------------------------------- npy / npz


def test_npy_tabular_and_images(tmp_path):
    table = np.random.default_rng(0).normal(size=(7, 3))
    np.save(tmp_path / "t.npy", table)
    ds = load(str(tmp_path / "t.npy"))
    assert ds.kind == "tabular" and ds.sample_shape == (3,) and ds.pixel_max is None and ds.labels is None
    np.testing.assert_allclose(ds.x, table, rtol=1e-6)
    np.save(tmp_path / "i.npy", tiny_images(4, 5, 6))
    ds = load(str(tmp_path / "i.npy"))
    assert ds.kind == "image" and ds.sample_shape == (5, 6) and ds.pixel_max == 255
    np.save(tmp_path / "f.npy", np.zeros((4, 5, 6), dtype=np.float32))
    assert load(str(tmp_path / "f.npy")).pixel_max is None


def test_npy_channels_last_become_channels_first(tmp_path):
    rgb = np.random.default_rng(0).integers(0, 256, size=(2, 4, 5, 3), dtype=np.uint8)
    np.save(tmp_path / "rgb.npy", rgb)
    ds = load(str(tmp_path / "rgb.npy"))
    assert ds.sample_shape == (3, 4, 5) and ds.pixel_max == 255
    np.testing.assert_array_equal(ds.x.reshape(2, 3, 4, 5), rgb.transpose(0, 3, 1, 2))
    np.save(tmp_path / "grey.npy", rgb[..., :1])
    assert load(str(tmp_path / "grey.npy")).sample_shape == (4, 5)
    np.save(tmp_path / "five.npy", np.zeros((2, 4, 5, 5)))
    with pytest.raises(DataError, match="channels in \\(1, 3, 4\\).*5 channels"):
        load(str(tmp_path / "five.npy"))


@pytest.mark.parametrize(
    "array, message",
    [
        (np.arange(5.0), r"expected a 2-D array \(samples, features\) or image stack.*1-D"),
        (np.zeros((1, 2, 2, 3, 1)), "expected a 2-D array.*5-D"),
        (np.zeros((0, 3)), r"no samples \(zero rows\)"),
        (np.zeros((3, 0)), r"samples have no features \(zero columns\)"),
        (np.ones((2, 2), dtype=np.complex64), "complex numbers are not supported"),
        (np.array([["1", "x"]]), "data is text .*; row 0, column 1 holds 'x', not a number"),
    ],
)
def test_npy_defects(tmp_path, array, message):
    path = tmp_path / "bad.npy"
    np.save(path, array)
    with pytest.raises(DataError, match=f"{esc(path)}: {message}"):
        load(str(path))


def test_npy_object_array_refused(tmp_path):
    path = tmp_path / "obj.npy"
    np.save(path, np.array([[1, None]], dtype=object), allow_pickle=True)
    with pytest.raises(DataError, match=f"{esc(path)}: .*object arrays are refused"):
        load(str(path))


def test_npy_empty_and_garbage(tmp_path):
    path = tmp_path / "empty.npy"
    path.write_bytes(b"")
    with pytest.raises(DataError, match=f"{esc(path)}: cannot read as .npy: .*empty"):
        load(str(path))
    path.write_bytes(b"\x93NUMPY\x01\x00garbage")
    with pytest.raises(DataError, match=f"{esc(path)}: cannot read as .npy"):
        load(str(path))


def test_npz_keys(tmp_path):
    path = tmp_path / "d.npz"
    np.savez(path, x=np.ones((3, 2)), other=np.zeros((4, 5)))
    assert load(str(path)).x.shape == (3, 2)  # "x" preferred
    assert load(f"{path}:other").x.shape == (4, 5)
    with pytest.raises(DataError, match=f"{esc(path)}: no array named 'y'; the archive holds"):
        load(f"{path}:y")
    np.savez(tmp_path / "one.npz", only=np.ones((2, 2)))
    assert load(str(tmp_path / "one.npz")).x.shape == (2, 2)
    np.savez(tmp_path / "two.npz", a=np.ones((2, 2)), b=np.ones((2, 2)))
    with pytest.raises(DataError, match=r"holds several arrays \['a', 'b'\] and none is named 'x'"):
        load(str(tmp_path / "two.npz"))


def test_npz_defects(tmp_path):
    path = tmp_path / "obj.npz"
    np.savez(path, x=np.array([[1, None]], dtype=object))
    with pytest.raises(DataError, match=f"{esc(path)}: .*object arrays are refused"):
        load(str(path))
    np.savez(path, x=np.array([[1.0, np.nan]]))
    with pytest.raises(DataError, match=f"{esc(path)}: NaN at row 0 .*column 1"):
        load(str(path))
    path.write_bytes(b"not a zip")
    with pytest.raises(DataError, match=f"{esc(path)}: cannot read as .npz"):
        load(str(path))


# ---------------------------------------------------------------- CSV


def test_csv_with_and_without_header(tmp_path):
    plain = tmp_path / "plain.csv"
    plain.write_text("1,2,3\n4,5,6\n")
    ds = load(str(plain))
    assert ds.kind == "tabular" and ds.sample_shape == (3,)
    np.testing.assert_array_equal(ds.x, [[1, 2, 3], [4, 5, 6]])
    headed = tmp_path / "headed.csv"
    headed.write_text('a,b,"c"\n1.5,-2e3,"3"\n\n4,5,6\n')
    np.testing.assert_array_equal(load(str(headed)).x, [[1.5, -2000, 3], [4, 5, 6]])


def test_csv_bad_cell_names_row_and_column(tmp_path):
    path = tmp_path / "data.csv"
    path.write_text("a,b,c\n1,2,3\n4,oops,6\n")
    with pytest.raises(DataError, match=f"{esc(path)}: row 3 .*column 'b' \\(column 2\\): 'oops' is not a number"):
        load(str(path))
    path.write_text("1,2,3\n4,5,\n")
    with pytest.raises(DataError, match=f"{esc(path)}: row 2 .*column 3: '' is not a number"):
        load(str(path))


def test_csv_ragged_nan_inf(tmp_path):
    path = tmp_path / "data.csv"
    path.write_text("a,b\n1,2\n3\n")
    with pytest.raises(DataError, match=f"{esc(path)}: row 3 .*has 1 cells but the header has 2"):
        load(str(path))
    path.write_text("a,b\n1,2\n3,nan\n")
    with pytest.raises(DataError, match=f"{esc(path)}: NaN at row 1 .*column 'b'"):
        load(str(path))
    path.write_text("a,b\n1,-inf\n3,inf\n")
    with pytest.raises(DataError, match=f"{esc(path)}: -inf at row 0 .*column 'b'.*2 non-finite"):
        load(str(path))


def test_csv_empty_header_only_and_binary(tmp_path):
    path = tmp_path / "data.csv"
    path.write_text("")
    with pytest.raises(DataError, match=f"{esc(path)}: the file is empty"):
        load(str(path))
    path.write_text("a,b\n")
    with pytest.raises(DataError, match=f"{esc(path)}: no data rows after the header"):
        load(str(path))
    path.write_bytes(b"\xff\xfe\x00\x81binary")
    with pytest.raises(DataError, match=f"{esc(path)}: not a UTF-8 text file"):
        load(str(path))


# ---------------------------------------------------------------- Parquet


def test_parquet(tmp_path):
    pa = pytest.importorskip("pyarrow")
    pq = pytest.importorskip("pyarrow.parquet")
    path = tmp_path / "t.parquet"
    pq.write_table(pa.table({"a": [1, 2, 3], "b": [0.5, 1.5, 2.5], "c": [True, False, True]}), path)
    ds = load(str(path))
    assert ds.kind == "tabular" and ds.sample_shape == (3,)
    np.testing.assert_array_equal(ds.x, [[1, 0.5, 1], [2, 1.5, 0], [3, 2.5, 1]])
    pq.write_table(pa.table({"a": [1, 2], "name": ["x", "y"]}), path)
    with pytest.raises(DataError, match=f"{esc(path)}: column 'name' has type string, not a number"):
        load(str(path))
    pq.write_table(pa.table({"a": [1, 2], "b": [1.0, None]}), path)
    with pytest.raises(DataError, match=f"{esc(path)}: NaN at row 1 .*column 'b'"):
        load(str(path))
    path.write_bytes(b"PAR1 not really")
    with pytest.raises(DataError, match=f"{esc(path)}: cannot read as Parquet"):
        load(str(path))


# ---------------------------------------------------------------- image folders


def test_image_folder_grey(tmp_path):
    images = tiny_images(3, 4, 5)
    for index, image in enumerate(images):
        write_png(tmp_path / f"img{index}.png", image)
    (tmp_path / "notes.txt").write_text("ignored")
    ds = load(str(tmp_path))
    assert ds.kind == "image" and ds.sample_shape == (4, 5) and ds.pixel_max == 255
    np.testing.assert_array_equal(ds.x, images.reshape(3, 20))


def test_image_folder_mixed_modes_become_rgb(tmp_path):
    rgb = np.random.default_rng(1).integers(0, 256, size=(4, 5, 3), dtype=np.uint8)
    write_png(tmp_path / "a.png", tiny_images(1, 4, 5)[0])
    write_png(tmp_path / "b.png", rgb)
    Image.fromarray(rgb).save(tmp_path / "c.bmp")
    ds = load(str(tmp_path))
    assert ds.sample_shape == (3, 4, 5) and ds.n_samples == 3
    np.testing.assert_array_equal(ds.x[1].reshape(3, 4, 5), rgb.transpose(2, 0, 1))
    grey = ds.x[0].reshape(3, 4, 5)
    np.testing.assert_array_equal(grey[0], grey[2])  # grey converted to RGB: equal channels


def test_image_folder_mixed_sizes(tmp_path):
    write_png(tmp_path / "a.png", tiny_images(1, 4, 5)[0])
    write_png(tmp_path / "b.png", tiny_images(1, 4, 5)[0])
    write_png(tmp_path / "c.png", tiny_images(1, 6, 5)[0])
    with pytest.raises(DataError, match=f"{esc(tmp_path / 'c.png')} is 5x6 but the first image .*a.png is 5x4"):
        load(str(tmp_path))


def test_image_folder_empty_or_without_images(tmp_path):
    with pytest.raises(DataError, match=f"{esc(tmp_path)}: no image files .*it is empty.*\\.png"):
        load(str(tmp_path))
    (tmp_path / "readme.txt").write_text("x")
    with pytest.raises(DataError, match=f"{esc(tmp_path)}: no image files .*1 other entries"):
        load(str(tmp_path))


def test_image_folder_unreadable_image(tmp_path):
    write_png(tmp_path / "a.png", tiny_images(1)[0])
    (tmp_path / "b.png").write_bytes(b"not a png")
    with pytest.raises(DataError, match=f"{esc(tmp_path / 'b.png')}: cannot read this image"):
        load(str(tmp_path))


# ---------------------------------------------------------------- validate_array / check_n_features


def test_validate_array_casts_and_is_fast():
    x = validate_array(np.array([[True, False]]), "b.npy")
    assert x.dtype == np.float32 and x.tolist() == [[1.0, 0.0]]
    big = np.random.default_rng(0).random((70000, 784), dtype=np.float32)
    start = time.perf_counter()
    out = validate_array(big, "big.npy")
    assert time.perf_counter() - start < 1.0
    assert out is big  # already float32 C-contiguous: no copy
    big[12345, 678] = -np.inf
    with pytest.raises(DataError, match=r"big.npy: -inf at row 12345 \(0-based sample index\), column 678"):
        validate_array(big, "big.npy")


def test_validate_array_defects():
    with pytest.raises(DataError, match=r"x.npy: \+inf at row 1 .*column 0"):
        validate_array(np.array([[1.0], [np.inf]]), "x.npy")
    with pytest.raises(DataError, match=r"x.npy: 1e\+300, beyond the float32 range"):
        validate_array(np.array([[1e300]]), "x.npy")
    with pytest.raises(DataError, match="x.npy: NaN at row 0 .*column 'b' \\(index 1\\)"):
        validate_array(np.array([[1.0, np.nan]]), "x.npy", column_names=["a", "b"])
    with pytest.raises(DataError, match="x.npy: data is an object array; row 0, column 1 holds None"):
        validate_array(np.array([[1, None]], dtype=object), "x.npy")
    with pytest.raises(DataError, match="x.npy: expected a 2-D array.*0-D"):
        validate_array(3.0, "x.npy")


def test_check_n_features():
    ds = load("digits")
    check_n_features(ds, 64, "digits")
    with pytest.raises(DataError, match="data.csv has 10 features per sample but the model expects 64"):
        check_n_features(np.zeros((3, 10)), 64, "data.csv")
    with pytest.raises(DataError, match="digits has 64 features per sample but the model expects 784"):
        check_n_features(ds, 784, "digits")
    with pytest.raises(ConfigError, match="n_features=0"):
        check_n_features(ds, 0, "digits")


def test_dataset_checks_its_fields():
    with pytest.raises(DataError, match="kind must be one of"):
        Dataset(np.zeros((2, 3), np.float32), (3,), "audio", "s")
    with pytest.raises(DataError, match=r"sample_shape \(2, 2\) holds 4 values but each sample has 3"):
        Dataset(np.zeros((2, 3), np.float32), (2, 2), "tabular", "s")


# ---------------------------------------------------------------- Scaler


def _table(seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    x = rng.normal(loc=[0, 5, -3, 2], scale=[1, 10, 0.1, 1], size=(200, 4)).astype(np.float32)
    x[:, 3] = 2.0  # a constant feature
    return x


@pytest.mark.parametrize("mode", ["standard", "minmax", "none"])
def test_scaler_round_trip(mode):
    x = _table()
    before = x.copy()
    scaler = Scaler(mode).fit(x)
    y = scaler.transform(x)
    np.testing.assert_array_equal(x, before)  # input not modified
    assert y.dtype == np.float32 and y.shape == x.shape
    np.testing.assert_allclose(scaler.inverse_transform(y), x, atol=1e-5, rtol=1e-5)
    if mode == "standard":
        np.testing.assert_allclose(y[:, :3].mean(0), 0, atol=1e-5)
        np.testing.assert_allclose(y[:, :3].std(0), 1, atol=1e-4)
        np.testing.assert_array_equal(y[:, 3], 0)
    if mode == "minmax":
        assert y.min() == 0 and y.max() == pytest.approx(1)
        np.testing.assert_array_equal(y[:, 3], 0)


@pytest.mark.parametrize("mode", ["standard", "minmax", "none"])
def test_transform_rows_equals_transform_of_the_rows(mode):
    x = _table(2)
    index = np.random.default_rng(0).permutation(len(x))[:150]
    scaler = Scaler(mode).fit(x[index])
    y = scaler.transform_rows(x, index, block=16)  # blocks that do not divide 150
    assert y.dtype == np.float32 and y.flags.c_contiguous
    np.testing.assert_array_equal(y, scaler.transform(x[index]))


def test_scaler_matches_naive_reference():
    x = _table(1)
    mean = x.astype(np.float64).mean(0)
    std = x.astype(np.float64).std(0)
    std[std < 1e-9] = 1.0
    y = Scaler("standard").fit(x).transform(x)
    np.testing.assert_allclose(y, (x - mean) / std, atol=1e-5)


def test_scaler_errors():
    with pytest.raises(ConfigError, match="not fitted"):
        Scaler("standard").transform(_table())
    scaler = Scaler("minmax").fit(_table())
    with pytest.raises(DataError, match=r"fitted on 4 features .*shape \(2, 3\)"):
        scaler.transform(np.zeros((2, 3)))


@pytest.mark.parametrize("mode", ["unit", "standard", "minmax", "none"])
def test_scaler_dict_round_trip(mode):
    scaler = Scaler(mode, pixel_max=255 if mode == "unit" else None).fit(_table())
    state = json.loads(json.dumps(scaler.to_dict()))
    again = Scaler.from_dict(state)
    assert again.to_dict() == scaler.to_dict()
    x = _table(2)
    np.testing.assert_array_equal(again.transform(x), scaler.transform(x))


@pytest.mark.parametrize(
    "state, message",
    [
        ([1, 2], "must be a dict with a 'mode'"),
        ({"mode": "zscore"}, "malformed scaler state.*mode='zscore'"),
        ({"mode": "unit", "pixel_max": -1}, "pixel_max=-1"),
        ({"mode": "standard", "shift": [0.0], "scale": "x"}, "'scale' must be a non-empty list"),
        ({"mode": "standard", "shift": [0.0], "scale": [1.0, 2.0]}, "'shift' has 1 values but 'scale' has 2"),
        ({"mode": "minmax", "shift": [0.0], "scale": [0.0]}, "every 'scale' value must be > 0"),
    ],
)
def test_scaler_from_dict_malformed(state, message):
    with pytest.raises(FormatError, match=message):
        Scaler.from_dict(state)
