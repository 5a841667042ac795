"""``aekit explain`` and ``Autoencoder.explain``: traversals, per-feature errors, each unit's
strongest input features, the files they write and the report's "Inside the model" section."""

from __future__ import annotations

import dataclasses
import json
import math
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import aekit
from aekit.cli import main
from aekit.config import RunConfig
from aekit.data import Dataset, load
from aekit.errors import ConfigError, DataError
from aekit.pipeline import subset
from aekit.report import build_report, section_explain
from aekit.runner import train_run

COLUMNS = ("temp", "pressure", "flow", "ph", "load")
TINY = dict(epochs=2, threads=1, progress=False, diagnostics_every_steps=None)


def write_csv(path: Path, n: int = 300) -> Path:
    """``n`` rows of 5 named columns driven by 2 hidden causes, in mixed units."""
    rng = np.random.default_rng(0)
    hidden = rng.normal(size=(n, 2))
    mix = np.array([[1.0, 0.8, 0.0, 0.5, -1.0], [0.0, 0.5, 1.0, -0.7, 0.3]])
    x = (hidden @ mix + 0.1 * rng.normal(size=(n, 5))) * [1, 10, 100, 0.1, 5] + [0, 50, 1e3, 1, -3]
    np.savetxt(path, x, delimiter=",", header=",".join(COLUMNS), comments="", fmt="%.5f")
    return path


@pytest.fixture(scope="module")
def digits_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny digits run (latent 4), explained by ``aekit explain`` into its own folder."""
    out = tmp_path_factory.mktemp("digits")
    train_run(RunConfig().replace(data="digits", latent_dim=4, **TINY), out)
    assert main(["explain", "--model", str(out), "--samples", "600"]) == 0
    return out


@pytest.fixture(scope="module")
def csv_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny run on a CSV file with a header (latent 2), not explained yet."""
    folder = tmp_path_factory.mktemp("csv")
    csv = write_csv(folder / "sensors.csv")
    train_run(RunConfig().replace(data=str(csv), latent_dim=2, **TINY), folder / "run")
    return folder / "run"


def _numbers(value):
    """Every number in a JSON document."""
    if isinstance(value, bool) or value is None or isinstance(value, str):
        return
    if isinstance(value, (int, float)):
        yield value
    elif isinstance(value, dict):
        for v in value.values():
            yield from _numbers(v)
    else:
        for v in value:
            yield from _numbers(v)


# -- images -----------------------------------------------------------------------------------
def test_digits_writes_the_files_and_traversals_are_not_blank(digits_run: Path) -> None:
    from PIL import Image

    for name in ("explain.json", "traversals.png", "feature_errors.png", "unit_features.png",
                 "traversals.npy"):
        assert (digits_run / name).is_file(), name
    for name in ("traversals.png", "feature_errors.png", "unit_features.png"):
        pixels = np.asarray(Image.open(digits_run / name).convert("L"), dtype=np.float64)
        assert pixels.shape[0] > 100 and pixels.shape[1] > 100
        assert pixels.var() > 100, f"{name} looks blank"
    decoded = np.load(digits_run / "traversals.npy")
    assert decoded.shape == (4, 7, 64)  # units x steps x features, in the data's units
    assert np.isfinite(decoded).all()
    # each unit's traversal changes the picture from the first step to the last
    assert (np.abs(decoded[:, -1] - decoded[:, 0]).max(axis=1) > 0.1).all()
    assert decoded.min() >= 0 and decoded.max() <= 16.0 + 1e-4  # digits' pixel range


def test_digits_json_is_finite_and_shaped(digits_run: Path) -> None:
    doc = json.loads((digits_run / "explain.json").read_text())
    assert all(math.isfinite(v) for v in _numbers(doc))
    assert doc["format"] == "aekit-explain" and doc["data"] == "digits"
    assert doc["data_is_training_data"] is True
    assert (doc["n_rows"], doc["n_samples"], doc["latent_dim"]) == (1797, 600, 4)
    assert doc["feature_names"][:2] == ["pixel[0,0]", "pixel[0,1]"]
    assert doc["feature_names"][63] == "pixel[7,7]"
    assert doc["model_sha256"] and len(doc["model_sha256"]) == 64
    errors = doc["feature_errors"]["features"]
    assert [e["feature"] for e in errors] == doc["feature_names"]
    assert all(e["mse"] >= 0 and e["pca_mse"] >= 0 for e in errors)
    assert doc["pca"]["components"] == 4 and "training rows" in doc["pca"]["source"]
    rec = doc["reconstruction"]
    assert rec["mse"] == pytest.approx(np.mean([e["mse"] for e in errors]))
    trav = doc["traversals"]
    assert trav["mode"] == "code units" and trav["steps"] == 7
    assert [d["name"] for d in trav["directions"]] == [f"unit {j}" for j in range(4)]
    for d in trav["directions"]:
        assert len(d["values"]) == 7 and d["values"] == sorted(d["values"])
        assert len(d["top_features"]) == 5 and d["effect_rms"] > 0
    units = doc["unit_features"]
    assert units["method"] == "correlation" and set(units["methods"]) == {"correlation",
                                                                         "gradient"}
    assert len(units["units"]) == 4 and units["directions"] is None
    for u in units["units"]:
        scores = [abs(f["correlation"]) for f in u["top_features"]]
        assert scores == sorted(scores, reverse=True) and scores[0] <= 1
        assert all(f["gradient"] >= 0 for f in u["top_features"])


def test_large_latent_traverses_principal_directions(digits_run: Path) -> None:
    ae = aekit.load(digits_run)
    found = ae.explain(load("digits"), samples=300, steps=5, max_axes=2,
                       attribution="gradient", pca=False)
    doc = found.to_dict()
    assert doc["traversals"]["mode"] == "the top 2 principal directions of the codes"
    directions = doc["traversals"]["directions"]
    assert [d["name"] for d in directions] == ["PC1", "PC2"]
    for d in directions:
        assert np.linalg.norm(d["vector"]) == pytest.approx(1.0)
    shares = [d["code_variance_share"] for d in directions]
    assert shares[0] >= shares[1] > 0
    assert found.traversals.shape == (2, 5, 64)
    assert doc["pca"] is None and "pca_mse" not in doc["reconstruction"]
    units = doc["unit_features"]
    assert units["method"] == "gradient" and len(units["directions"]) == 2
    grads = [f["gradient"] for f in units["units"][0]["top_features"]]
    assert grads == sorted(grads, reverse=True) and grads[0] > 0


# -- tables -----------------------------------------------------------------------------------
def test_csv_header_names_the_features(csv_run: Path, capsys: pytest.CaptureFixture) -> None:
    out = csv_run.parent / "explained"
    assert main(["explain", "--model", str(csv_run), "--out", str(out), "--json"]) == 0
    captured = capsys.readouterr()
    doc = json.loads(captured.out)  # stdout: explain.json's content, nothing else
    assert doc == json.loads((out / "explain.json").read_text())
    assert "strongest input features" in captured.err
    assert doc["feature_names"] == list(COLUMNS)
    assert {e["feature"] for e in doc["feature_errors"]["features"]} == set(COLUMNS)
    assert set(doc["feature_errors"]["worst"]) == set(COLUMNS)
    for unit in doc["unit_features"]["units"]:
        assert {f["feature"] for f in unit["top_features"]} == set(COLUMNS)
        assert abs(unit["top_features"][0]["correlation"]) > 0.5  # 2 causes, 2 units
    for d in doc["traversals"]["directions"]:
        assert d["top_features"][0]["feature"] in COLUMNS
    assert doc["data_kind"] == "tabular" and doc["n_samples"] == 300
    assert all(math.isfinite(v) for v in _numbers(doc))
    for name in ("traversals.png", "feature_errors.png", "unit_features.png"):
        assert (out / name).stat().st_size > 5000
    assert not (csv_run / "explain.json").exists()  # --out elsewhere leaves the run alone


def test_csv_loader_keeps_column_names(tmp_path: Path) -> None:
    ds = load(str(write_csv(tmp_path / "t.csv", n=20)))
    assert ds.feature_names == COLUMNS
    assert subset(ds, np.arange(5)).feature_names == COLUMNS
    np.savetxt(tmp_path / "plain.csv", np.ones((4, 3)), delimiter=",")
    assert load(str(tmp_path / "plain.csv")).feature_names is None


def test_dataset_feature_names_are_optional_and_checked() -> None:
    x = np.zeros((3, 2), np.float32)
    ds = Dataset(x, (2,), "tabular", "a", None, None, None)  # positional, as before
    assert ds.feature_names is None
    named = dataclasses.replace(ds, feature_names=["a", "b"])
    assert named.feature_names == ("a", "b")
    with pytest.raises(DataError, match="3 feature names but each sample has 2"):
        Dataset(x, (2,), "tabular", "a", feature_names=("a", "b", "c"))


def test_python_api_on_arrays(csv_run: Path) -> None:
    ae = aekit.load(csv_run)
    x = load(str(csv_run.parent / "sensors.csv")).x
    found = ae.explain(x[:120], samples=100, steps=3)
    doc = found.to_dict()
    assert doc["feature_names"] == [f"f{j}" for j in range(5)]  # a bare array has no names
    assert doc["data_is_training_data"] is None and "explained rows" in doc["pca"]["source"]
    assert doc["n_samples"] == 100 and found.traversals.shape == (2, 3, 5)
    assert found.correlation.shape == found.gradient.shape == (2, 5)
    with pytest.raises(ConfigError, match="steps"):
        ae.explain(x, steps=1)
    with pytest.raises(ConfigError, match="percentiles"):
        ae.explain(x, percentiles=(90, 10))
    with pytest.raises(DataError, match="has 3 features per sample but the model expects 5"):
        ae.explain(x[:, :3])


# -- the report -------------------------------------------------------------------------------
def test_report_shows_inside_the_model(digits_run: Path, tmp_path: Path) -> None:
    text = build_report(digits_run)
    section = text[text.index("<h2>Inside the model</h2>"):text.index("<h2>Configuration")]
    assert "Latent traversals: code units" in section
    assert section.count('src="data:image/png;base64,') == 3
    assert "pixel[" in section and "other weights" not in section
    # without explain output: a note (tests/test_report.py builds whole reports of such runs)
    for name in ("config.json", "model.safetensors"):
        shutil.copy(digits_run / name, tmp_path / name)
    assert "No explain output in this run folder" in section_explain(tmp_path)
    # an explanation of other weights says so; a broken one is named, not fatal
    doc = json.loads((digits_run / "explain.json").read_text())
    (tmp_path / "explain.json").write_text(json.dumps({**doc, "model_sha256": "0" * 64}))
    assert "other weights" in section_explain(tmp_path)
    (tmp_path / "explain.json").write_text("{not json")
    assert "explain.json could not be read" in section_explain(tmp_path)


# -- errors and the command line --------------------------------------------------------------
def test_bad_data_and_folders_fail_clearly(digits_run: Path, csv_run: Path, tmp_path: Path,
                                          capsys: pytest.CaptureFixture) -> None:
    csv = str(csv_run.parent / "sensors.csv")
    assert main(["explain", "--model", str(digits_run), "--data", csv,
                 "--out", str(tmp_path / "o")]) == 2
    err = capsys.readouterr().err
    assert "has 5 features per sample but the model expects 64" in err
    assert "Traceback" not in err
    assert main(["explain", "--model", str(tmp_path / "missing")]) == 2
    assert "no such model folder" in capsys.readouterr().err
    assert main(["explain", "--model", str(digits_run), "--data", str(tmp_path / "no.csv"),
                 "--out", str(tmp_path / "o")]) == 2
    assert "no.csv" in capsys.readouterr().err
    saved = tmp_path / "saved"  # a folder saved from Python: its data is not known
    for name in ("config.json", "model.safetensors"):
        saved.mkdir(exist_ok=True)
        shutil.copy(digits_run / name, saved / name)
    assert main(["explain", "--model", str(saved)]) == 2
    assert "pass --data" in capsys.readouterr().err
    (tmp_path / "file").write_text("x")
    assert main(["explain", "--model", str(digits_run), "--samples", "50",
                 "--out", str(tmp_path / "file")]) == 2
    assert "is a file" in capsys.readouterr().err
    assert not (tmp_path / "o").exists()


def test_explain_help_imports_nothing_heavy() -> None:
    probe = ("import sys\nfrom aekit.cli import main\n"
             "try:\n    main(['explain', '--help'])\nexcept SystemExit:\n    pass\n"
             "heavy = {'torch', 'sklearn', 'matplotlib', 'scipy'} & "
             "{m.split('.')[0] for m in sys.modules}\n"
             "print(sorted(heavy), file=sys.stderr)")
    proc = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True)
    assert "--samples" in proc.stdout and "--attribution" in proc.stdout
    assert proc.stderr.strip().splitlines()[-1] == "[]"
