"""Latent-size sweep: the recommendation rule against a naive loop, and a tiny real sweep."""

from __future__ import annotations

import json
import math

import pytest
from PIL import Image

from aekit.apps.sweep import doubling_gains, parse_sizes, recommend_size, sweep
from aekit.cli import main
from aekit.config import RunConfig
from aekit.errors import ConfigError


def test_doubling_gains_for_powers_of_two_and_others():
    assert doubling_gains([2, 4, 8], [1.0, 0.5, 0.45]) == pytest.approx([0.5, 0.1])
    # 4 -> 16 is two doublings: error quartered means halved per doubling
    assert doubling_gains([4, 16], [1.0, 0.25]) == pytest.approx([0.5])
    assert doubling_gains([3, 5], [1.0, 1.2])[0] < 0  # worse with a larger size


def _naive_recommend(sizes, errors, threshold):
    for i in range(len(sizes) - 1):
        ok = True
        for j in range(i, len(sizes) - 1):
            per_doubling = 1 - (errors[j + 1] / errors[j]) ** (1 / math.log2(sizes[j + 1] /
                                                                             sizes[j]))
            ok = ok and per_doubling < threshold
        if ok:
            return sizes[i]
    return sizes[-1]


@pytest.mark.parametrize("errors", [
    [0.05, 0.03, 0.02, 0.019, 0.0185, 0.0184],
    [0.05, 0.049, 0.03, 0.029, 0.028, 0.027],  # a late drop: do not stop at the first plateau
    [0.05, 0.04, 0.03, 0.02, 0.01, 0.005],  # still improving
    [0.05, 0.05, 0.05, 0.05, 0.05, 0.05],
])
def test_recommendation_matches_naive_rule(errors):
    sizes = [2, 4, 8, 16, 32, 64]
    size, reason = recommend_size(sizes, errors, 0.1)
    assert size == _naive_recommend(sizes, errors, 0.1)
    if size == 64:
        assert "try larger sizes" in reason
    else:
        assert f"doubling from {size}" in reason


def test_parse_sizes():
    assert parse_sizes("8, 2,4,4") == [2, 4, 8]
    for bad in ("4", "a,b", "0,2", ""):
        with pytest.raises(ConfigError, match="latent_dims.*Received"):
            parse_sizes(bad)


def test_tiny_sweep_writes_table_plot_and_recommendation(tmp_path):
    cfg = RunConfig().replace(data="digits", hidden=(32,), epochs=4, progress=False, threads=1)
    result = sweep(cfg, [2, 4, 8], tmp_path, max_train_samples=600, log=False)
    assert [r.latent_dim for r in result.rows] == [2, 4, 8]
    # 600 rows drawn, a quarter of them held back for validation (the size is chosen on it;
    # validation_split auto: at least 200 rows, at most a quarter)
    assert all(r.fast_path for r in result.rows) and result.n_train == 450
    pca = [r.pca_test_mse for r in result.rows]
    assert pca[0] > pca[1] > pca[2]  # PCA's error falls with size
    # the autoencoders: each started from PCA's solution and kept only a clear gain on the
    # validation rows, so none ends worse than PCA at its size; their error falls with size
    ours = [r.test_mse for r in result.rows]
    assert all(math.isfinite(e) and e > 0 for e in ours)
    assert ours[0] > ours[1] > ours[2]
    assert all(r.test_mse <= 1.01 * r.pca_test_mse and r.val_mse <= 1.01 * r.pca_val_mse
               for r in result.rows)
    # the recommendation is the rule applied to the members' validation errors
    assert (result.recommended, result.reason) == recommend_size(
        [2, 4, 8], [r.val_mse for r in result.rows], 0.1)
    saved = json.loads((tmp_path / "sweep.json").read_text())
    assert saved["recommended_latent_dim"] == result.recommended
    assert [row["test_mse"] for row in saved["rows"]] == ours
    assert "| 8 |" in (tmp_path / "sweep.md").read_text()
    assert Image.open(tmp_path / "sweep.png").format == "PNG"


def test_cli_sweep_and_bad_input(tmp_path, capsys):
    assert main(["sweep", "--latent-dims", "2,4", "--hidden", "16", "--epochs", "2",
                 "--threads", "1", "--max-train-samples", "300", "--out", str(tmp_path)]) == 0
    assert "recommended latent size" in capsys.readouterr().out
    assert main(["sweep", "--latent-dims", "4", "--out", str(tmp_path)]) == 2
    assert "latent_dims" in capsys.readouterr().err
