"""The Keras-like API: fit, encode, decode, save, load."""

import numpy as np
import pytest
import torch

import aekit
from aekit.errors import ConfigError, DataError, FormatError

FAST = dict(epochs=15, batch_size=16, progress=False)


def test_fit_learns_and_beats_an_untrained_model(blobs):
    ae = aekit.Autoencoder(latent_dim=3, hidden=(16,), lr=0.01, pca_init=False,
                           early_stopping_patience=None, **FAST)
    history = ae.fit(blobs, epochs=60, validation_split=0.2)
    losses = history["loss"]
    assert len(losses) == 60 and losses[-1] < 0.2 * losses[0]
    assert history["val_loss"][-1] is not None
    assert ae.score(blobs)["mse"] < 0.01


def test_encode_decode_shapes_and_units(tabular):
    ae = aekit.Autoencoder(latent_dim=2, hidden=(12,), **FAST)
    ae.fit(tabular)
    z = ae.encode(tabular)
    assert z.shape == (200, 2) and z.dtype == np.float32
    x_hat = ae.decode(z)
    assert x_hat.shape == tabular.shape
    # standardization is undone on decode: values come back in the data's own units
    assert abs(x_hat.mean() - tabular.mean()) < 0.1 * abs(tabular.mean())
    np.testing.assert_allclose(ae.reconstruct(tabular), x_hat, rtol=1e-5, atol=1e-3)
    assert ae.output_activation == "identity" and ae.scaler.mode == "standard"


def test_one_pass_gives_the_codes_and_reconstructions_of_two(tabular):
    ae = aekit.Autoencoder(latent_dim=2, hidden=(12,), **FAST)
    ae.fit(tabular)
    xs = ae.scaler.transform(tabular)
    codes, recon = ae.encode_and_reconstruct_scaled(xs)
    np.testing.assert_allclose(codes, ae.encode_scaled(xs), rtol=1e-6, atol=1e-6)
    np.testing.assert_allclose(recon, ae.reconstruct_scaled(xs), rtol=1e-6, atol=1e-6)
    assert codes.shape == (200, 2) and recon.shape == xs.shape
    codes, recon = ae.encode_and_reconstruct_scaled(xs[:0])
    assert codes.shape == (0, 2) and recon.shape == (0, xs.shape[1])


def test_torch_tensors_and_image_stacks_are_accepted():
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, size=(40, 6, 5), dtype=np.uint8)
    ae = aekit.Autoencoder(latent_dim=4, hidden=(8,), **FAST)
    ae.fit(torch.from_numpy(images))
    assert ae.sample_shape == (6, 5) and ae.scaler.mode == "unit"
    assert ae.output_activation == "clip"  # PCA's solution, clipped to the pixels' range
    assert ae.reconstruct(images).min() >= 0 and ae.reconstruct(images).max() <= 255
    plain = aekit.Autoencoder(latent_dim=4, hidden=(8,), pca_init=False, **FAST)
    plain.fit(images)
    assert plain.output_activation == "sigmoid"
    assert ae.encode(images).shape == (40, 4)


def test_same_seed_same_weights_bit_for_bit(blobs):
    runs = []
    for _ in range(2):
        ae = aekit.Autoencoder(latent_dim=3, hidden=(8,), seed=7, **FAST)
        ae.fit(blobs)
        runs.append(torch.cat([p.detach().reshape(-1) for p in ae.model.parameters()]))
    assert torch.equal(runs[0], runs[1])
    other = aekit.Autoencoder(latent_dim=3, hidden=(8,), seed=8, **FAST)
    other.fit(blobs)
    assert not torch.equal(runs[0], torch.cat([p.detach().reshape(-1)
                                               for p in other.model.parameters()]))


@pytest.mark.parametrize("options", [
    {"batch_norm": True}, {"residual": True, "hidden": (8, 8)}, {"dropout": 0.1},
    {"activation": "tanh", "loss": "bce"}, {"optimizer": "gd", "lr": 0.5},
])
def test_save_load_round_trip_reproduces_outputs_exactly(tmp_path, blobs, options):
    ae = aekit.Autoencoder(**{"latent_dim": 3, "hidden": (8,), **options, **FAST})
    ae.fit(blobs)
    ae.save(tmp_path / "m")
    again = aekit.load(tmp_path / "m", device=ae.device.type)  # the same arithmetic
    assert np.array_equal(again.encode(blobs), ae.encode(blobs))
    assert np.array_equal(again.reconstruct(blobs), ae.reconstruct(blobs))
    assert again.config == ae.config


def test_validation_data_and_early_stopping_restores_best(blobs):
    # from random weights (no PCA start) a high constant lr improves for a few epochs, then
    # the validation loss stops improving: the run stops 2 epochs (the patience) after its
    # best epoch and ends with that epoch's weights
    ae = aekit.Autoencoder(latent_dim=3, hidden=(16,), early_stopping_patience=2, lr=0.05,
                           schedule="constant", epochs=60, batch_size=8, progress=False,
                           pca_init=False)
    history = ae.fit(blobs[:80], validation_data=blobs[80:])
    val = history["val_loss"]
    stops = [e for e in history.events if e["kind"] == "early_stop"]
    assert len(stops) == 1 and len(val) < 60
    best_epoch = stops[0]["best_epoch"]
    assert best_epoch >= 1 and len(val) == best_epoch + 2
    assert val[best_epoch - 1] == min(val) < val[-1]  # the restore changes the weights
    assert min(val) < history.initial_val_loss
    # the validation loss is the score of validation_data's selection half (even rows; the
    # odd rows are kept for the final comparison with PCA), and the best epoch's is kept
    assert ae.score(blobs[80:][0::2])["mse"] == pytest.approx(min(val), rel=1e-4)


def test_errors_before_training(blobs):
    with pytest.raises(ConfigError, match=r"not trained yet"):
        aekit.Autoencoder().encode(blobs)
    ae = aekit.Autoencoder(latent_dim=2, hidden=(4,), **FAST)
    with pytest.raises(DataError, match=r"NaN"):
        bad = blobs.copy()
        bad[5, 2] = np.nan
        ae.fit(bad)
    ae.fit(blobs)
    with pytest.raises(DataError, match=r"expects 10"):
        ae.encode(blobs[:, :4])
    with pytest.raises(ConfigError, match=r"codes must have shape \(n, 2\)"):
        ae.decode(np.zeros((3, 5)))
    with pytest.raises(ConfigError, match=r"bce needs data scaled to \[0, 1\]"):
        aekit.Autoencoder(loss="bce", scaling="standard", **FAST).fit(blobs)


def test_load_refuses_missing_or_foreign_folders(tmp_path):
    with pytest.raises(FormatError, match=r"no such model folder"):
        aekit.load(tmp_path / "nothing")
    (tmp_path / "m").mkdir()
    (tmp_path / "m" / "config.json").write_text('{"format": "other"}')
    with pytest.raises(FormatError, match=r"not an aekit model config"):
        aekit.load(tmp_path / "m")


def test_best_validation_weights_are_kept_by_default(blobs):
    # a big model, a high constant lr and a small training split: validation loss ends worse
    # than its best, and the run ends with the best epoch's weights
    options = dict(latent_dim=6, hidden=(64,), lr=0.03, schedule="constant", epochs=80,
                   batch_size=8, progress=False, seed=3, pca_init=False,
                   early_stopping_patience=None, auto_fix=False)  # no rollback either
    ae = aekit.Autoencoder(**options)
    history = ae.fit(blobs[:40], validation_data=blobs[40:])
    val = history["val_loss"]
    assert val[-1] > min(val)
    assert [e["kind"] for e in history.events] == ["pca_baseline", "best_weights"]
    assert ae.score(blobs[40:][0::2])["mse"] == pytest.approx(min(val), rel=1e-4)  # selection half
    plain = aekit.Autoencoder(restore_best_weights=False, **options)
    plain.fit(blobs[:40], validation_data=blobs[40:])
    assert plain.score(blobs[40:][0::2])["mse"] == pytest.approx(val[-1], rel=1e-4)


@pytest.mark.parametrize("options", [dict(early_stopping_patience=4), dict(schedule="plateau")])
def test_options_needing_validation_rows_are_refused_before_training(blobs, options):
    ae = aekit.Autoencoder(latent_dim=3, hidden=(16,), validation_split=0.0, **FAST, **options)
    with pytest.raises(ConfigError, match="no validation rows"):
        ae.fit(blobs)
    assert getattr(ae, "trainer", None) is None  # refused by the pipeline, before the trainer
    ae.fit(blobs[:100], validation_data=blobs[100:])  # with validation rows: fine
