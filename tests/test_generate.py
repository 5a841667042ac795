"""Generation: mixture sampling, novelty distances vs brute force, interpolation, PNG grids, CLI."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

import aekit
from aekit.apps.generate import (fit_code_mixture, generate, interpolate, nearest_distances,
                                 save_grid)
from aekit.cli import main
from aekit.data import load
from aekit.errors import ConfigError


@pytest.fixture(scope="module")
def digits_model(tmp_path_factory):
    ds = load("digits")
    ae = aekit.Autoencoder(latent_dim=6, hidden=(32,), epochs=10, progress=False, seed=0,
                           threads=1)
    ae.fit(ds)
    folder = tmp_path_factory.mktemp("model")
    ae.save(folder)
    return ae, ds, folder


def test_nearest_distances_match_brute_force():
    rng = np.random.default_rng(0)
    q, ref = rng.normal(size=(7, 5)), rng.normal(size=(9000, 5))  # crosses a chunk boundary
    naive = np.array([min(np.linalg.norm(a - b) for b in ref) for a in q])
    np.testing.assert_allclose(nearest_distances(q, ref), naive, rtol=1e-4)
    own = np.array([3, 8500, 0])
    naive_excl = np.array([min(np.linalg.norm(ref[i] - ref[j]) for j in range(len(ref)) if j != i)
                           for i in own])
    np.testing.assert_allclose(nearest_distances(ref[own], ref, exclude_self=own), naive_excl,
                               rtol=1e-4)


def test_generate_plain_autoencoder(digits_model):
    ae, ds, _ = digits_model
    result = generate(ae, 20, data=ds, n_mixture=5, seed=0)
    assert result.samples.shape == (20, 64) and result.codes.shape == (20, 6)
    assert "Gaussian mixture (5" in result.method
    np.testing.assert_allclose(result.samples, ae.decode(result.codes), rtol=1e-5)
    nov = result.novelty
    scaled = ae.scaler.transform(result.samples)
    naive = [min(np.linalg.norm(s - t) for t in ae.scaler.transform(ds.x)) for s in scaled]
    assert nov.sample_median == pytest.approx(float(np.median(naive)), rel=1e-4)
    assert nov.sample_min > 0 and nov.reference_median > 0 and nov.n_train == ds.n_samples
    again = generate(ae, 20, data=ds, n_mixture=5, seed=0)
    np.testing.assert_array_equal(again.samples, result.samples)  # seeded


def test_mixture_and_n_validation(digits_model):
    ae, ds, _ = digits_model
    with pytest.raises(ConfigError, match="`n` must be an integer from 1.*Received: n=0"):
        generate(ae, 0, data=ds)
    with pytest.raises(ConfigError, match="`n_mixture` must be.*Received: n_mixture=0"):
        fit_code_mixture(np.zeros((10, 2)), 0)


def test_interpolation_ends_at_the_reconstructions(digits_model):
    ae, ds, _ = digits_model
    path = interpolate(ae, ds.x[0], ds.x[5], steps=5)
    assert path.shape == (5, 64)
    np.testing.assert_allclose(path[[0, -1]], ae.reconstruct(ds.x[[0, 5]]), atol=1e-4)
    with pytest.raises(ConfigError, match="steps"):
        interpolate(ae, ds.x[0], ds.x[1], steps=1)


def test_png_grid_pixels(tmp_path):
    images = np.zeros((5, 4 * 3), np.float32)
    images[1] = 1.0
    path = save_grid(images, (4, 3), tmp_path / "g.png", n_cols=3, scale=1)
    grid = np.asarray(Image.open(path))
    assert grid.shape == (2 * 6 + 2, 3 * 5 + 2)
    assert (grid[2:6, 2:5] == 0).all() and (grid[2:6, 7:10] == 255).all()
    with pytest.raises(ConfigError, match="image samples"):
        save_grid(images, (12,), tmp_path / "t.png")


def test_cli_generate_and_interpolate(digits_model, tmp_path, capsys):
    _, _, folder = digits_model
    assert main(["generate", "--model", str(folder), "-n", "9", "--out", str(tmp_path / "s.npy"),
                 "--grid", str(tmp_path / "s.png"), "--mixture", "3"]) == 0
    assert np.load(tmp_path / "s.npy").shape == (9, 64)
    assert Image.open(tmp_path / "s.png").size == ((3 * 10 + 2) * 2, (3 * 10 + 2) * 2)
    assert "nearest of 1797 training samples" in capsys.readouterr().out
    assert main(["generate", "--model", str(folder), "--out", str(tmp_path / "i.npy"),
                 "--interpolate", "0,3", "--steps", "4"]) == 0
    assert np.load(tmp_path / "i.npy").shape == (4, 64)
    assert main(["generate", "--model", str(folder), "--out", str(tmp_path / "i.npy"),
                 "--interpolate", "0,99999"]) == 2
