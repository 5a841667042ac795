"""OutlierDetector follows scikit-learn's outlier-detector rules, is deterministic, finds planted
outliers, explains them per feature; ``aekit detect`` writes named scores and refuses bad input."""

from __future__ import annotations

import csv
import json

import numpy as np
import pytest
from sklearn.utils.estimator_checks import parametrize_with_checks

from aekit import OutlierDetector
from aekit.cli import main


def _small(**kw) -> OutlierDetector:
    return OutlierDetector(**{"hidden": (8,), "epochs": 2, "batch_size": 32,
                              "random_state": 0, "threads": 1, **kw})


@parametrize_with_checks([_small(), _small(contamination=0.1)])
def test_sklearn_estimator_checks(estimator, check):
    check(estimator)


def _planted(n: int = 400, n_out: int = 12, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Rows on a 2-D plane in 6 features (raw units, mixed scales) and a few rows off it."""
    rng = np.random.default_rng(seed)
    basis = rng.normal(size=(2, 6))
    x = rng.normal(size=(n, 2)) @ basis + 0.05 * rng.normal(size=(n, 6))
    x[:n_out] += rng.normal(scale=3.0, size=(n_out, 6))
    x = x * np.array([1, 10, 100, 0.1, 1, 5]) + 50.0
    y = np.zeros(n, dtype=int)
    y[:n_out] = 1
    return x.astype(np.float32), y


def test_finds_planted_outliers_and_threshold_semantics():
    x, y = _planted()
    det = _small(epochs=20, contamination=0.03).fit(x)
    from sklearn.metrics import roc_auc_score

    assert roc_auc_score(y, det.anomaly_score(x)) > 0.95
    np.testing.assert_allclose(det.decision_scores_, det.anomaly_score(x))
    np.testing.assert_allclose(det.score_samples(x), -det.anomaly_score(x))
    np.testing.assert_allclose(det.decision_function(x), det.score_samples(x) - det.offset_)
    assert det.threshold_ == pytest.approx(-det.offset_)
    labels = det.predict(x)
    assert set(np.unique(labels)) <= {-1, 1}
    assert np.array_equal(labels == -1, det.anomaly_score(x) > det.threshold_)
    assert abs(np.mean(labels == -1) - 0.03) < 0.01
    assert np.array_equal(det.labels_, (labels == -1).astype(int))
    # 100 rows held back (auto: 25% of 400); 10% of the other 300 set aside, then a refit
    assert det.n_fits_ == 2 and len(det.trimmed_index_) == 30


def test_auto_threshold_is_a_false_positive_rate_on_held_back_rows():
    x, _ = _planted(n=2600, n_out=0)  # all normal; the same plane throughout
    det = _small(epochs=10).fit(x[:600])  # contamination="auto", target_fpr=0.01
    fpr = float(np.mean(det.predict(x[600:]) == -1))
    assert fpr < 0.05


def test_same_data_same_random_state_identical_scores():
    x, _ = _planted()
    a = _small(epochs=5).fit(x).anomaly_score(x)
    b = _small(epochs=5).fit(x).anomaly_score(x)
    assert np.array_equal(a, b)


def test_feature_errors_sum_to_the_score():
    x, _ = _planted()
    det = _small(epochs=5).fit(x)
    parts = det.feature_errors(x[:50])
    assert parts.shape == (50, 6) and (parts >= 0).all()
    np.testing.assert_allclose(parts.sum(axis=1), det.anomaly_score(x[:50]), rtol=1e-9)
    recon = _small(epochs=5, score_kind="reconstruction").fit(x)
    np.testing.assert_allclose(recon.feature_errors(x).sum(axis=1), recon.anomaly_score(x))


def test_bad_parameters_raise_with_the_value():
    x, _ = _planted(n=60)
    with pytest.raises(ValueError, match="contamination.*Received: contamination=0.7"):
        _small(contamination=0.7).fit(x)
    with pytest.raises(ValueError, match="score_kind.*Received: score_kind='x'"):
        _small(score_kind="x").fit(x)


# -- the command ----------------------------------------------------------------------------
@pytest.fixture()
def table(tmp_path):
    x, _ = _planted(n=300, n_out=6)
    path = tmp_path / "sensors.csv"
    names = ["temp", "pressure", "flow", "ph", "rpm", "load"]
    with path.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(names)
        writer.writerows(x.tolist())
    return path, names


def test_detect_writes_scores_with_the_header_names(table, tmp_path):
    path, names = table
    out = tmp_path / "det"
    assert main(["detect", "--data", str(path), "--out", str(out), "--contamination", "0.02",
                 "--epochs", "10", "--threads", "1", "--seed", "0", "--no-progress"]) == 0
    with (out / "scores.csv").open() as handle:
        rows = list(csv.DictReader(handle))
    assert len(rows) == 300
    assert set(rows[0]) >= {"row", "score", "label", "top_feature_1", "top_share_1"}
    assert {r["top_feature_1"] for r in rows} <= set(names)
    flagged = [int(r["row"]) for r in rows if r["label"] == "-1"]
    assert len(flagged) == 6 and sum(r < 6 for r in flagged) >= 5
    summary = json.loads((out / "summary.json").read_text())
    assert summary["n_outliers"] == 6 and summary["columns"] == names
    # a trained detector folder scores new data without training
    again = tmp_path / "again"
    assert main(["detect", "--data", str(path), "--model", str(out), "--out", str(again)]) == 0
    with (again / "scores.csv").open() as handle:
        scores = [float(r["score"]) for r in csv.DictReader(handle)]
    np.testing.assert_allclose(scores, [float(r["score"]) for r in rows], rtol=1e-5)


def test_detect_bad_input_exits_2(table, tmp_path, capsys):
    path, _ = table
    bad = tmp_path / "nan.csv"
    bad.write_text("a,b,c\n1,2,3\n4,nan,6\n")
    assert main(["detect", "--data", str(bad), "--out", str(tmp_path / "o1")]) == 2
    assert "NaN" in capsys.readouterr().err
    text = tmp_path / "text.csv"
    text.write_text("a,b,c\n1,2,3\n4,x,6\n")
    assert main(["detect", "--data", str(text), "--out", str(tmp_path / "o2")]) == 2
    assert "not a number" in capsys.readouterr().err
    model = tmp_path / "m"
    assert main(["detect", "--data", str(path), "--out", str(model), "--epochs", "2",
                 "--threads", "1", "--no-progress"]) == 0
    narrow = tmp_path / "narrow.csv"
    narrow.write_text("a,b,c\n1,2,3\n4,5,6\n")
    assert main(["detect", "--data", str(narrow), "--model", str(model),
                 "--out", str(tmp_path / "o3")]) == 2
    err = capsys.readouterr().err
    assert "aekit detect: error:" in err and "6" in err and "3" in err
    assert main(["detect", "--data", str(path), "--out", str(tmp_path / "o4"),
                 "--contamination", "0.9"]) == 2


def test_the_refit_starts_from_the_first_fit_and_runs_a_share_of_its_epochs():
    x, y = _planted()
    warm = _small(epochs=20).fit(x)
    assert warm.n_fits_ == 2 and warm.autoencoder_.config.train.epochs == 10
    cold = _small(epochs=20, refit_share=None).fit(x)
    assert cold.autoencoder_.config.train.epochs == 20
    from sklearn.metrics import roc_auc_score

    assert roc_auc_score(y, warm.anomaly_score(x)) > 0.95
    with pytest.raises(ValueError, match=r"refit_share.*Received: refit_share=0"):
        _small(refit_share=0).fit(x)
