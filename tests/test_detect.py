"""OutlierDetector follows scikit-learn's outlier-detector rules, is deterministic, finds planted
outliers, explains them per feature; ``aekit detect`` writes named scores and a report.html
(histogram and threshold, top rows, images for image data) and refuses bad input."""

from __future__ import annotations

import csv
import html
import json
import re
from pathlib import Path

import numpy as np
import pytest
from sklearn.utils.estimator_checks import parametrize_with_checks

from aekit import OutlierDetector, RunConfig
from aekit.cli import main
from aekit.detect_report import log_scale
from aekit.report_plots import plot_score_histogram
from chromium import CHROMIUM, render


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


def test_neighbour_part_catches_a_row_between_clusters_and_survives_save(tmp_path):
    """Two tight clusters on a line; a row midway lies inside the codes' one Mahalanobis
    cloud and on the line (reconstructed), but far from every training row: the neighbour
    distance (n_neighbors) flags it, the score without it does not."""
    rng = np.random.default_rng(0)
    t = np.concatenate([rng.normal(-3, 0.05, 300), rng.normal(3, 0.05, 300)])
    direction = rng.normal(size=6)
    x = (t[:, None] * direction + 0.01 * rng.normal(size=(600, 6))).astype(np.float32)
    midway = (0.0 * direction)[None, :].astype(np.float32)
    with_k = _small(epochs=10, n_components=1).fit(x)
    without = _small(epochs=10, n_components=1, n_neighbors=0).fit(x)
    assert with_k.reference_codes_ is not None and without.reference_codes_ is None
    rank = lambda det: float(np.mean(det.anomaly_score(x) < det.anomaly_score(midway)[0]))
    assert rank(with_k) == 1.0 and rank(without) < 0.9
    with_k.save(tmp_path / "det")
    loaded = OutlierDetector.load(tmp_path / "det")
    np.testing.assert_allclose(loaded.anomaly_score(x[:50]), with_k.anomaly_score(x[:50]))
    (tmp_path / "det" / "detector.safetensors").unlink()
    with pytest.raises(ValueError, match="detector.safetensors"):
        OutlierDetector.load(tmp_path / "det")
    with pytest.raises(ValueError, match="n_neighbors.*Received: n_neighbors=-1"):
        _small(n_neighbors=-1).fit(x)


def test_image_rows_train_the_image_or_conv_model():
    from sklearn.datasets import load_digits

    x = load_digits().data.astype(np.float32)[:300]
    det = _small(epochs=2, image_shape=(8, 8), scaling="auto",
                 config=RunConfig().replace(kind="conv", conv_channels=(4,))).fit(x)
    assert type(det.autoencoder_.model).__name__ == "ConvAutoencoder"
    assert det.score_kind_ == "combined"  # "auto": plain squared error for images
    assert _small(epochs=1).fit(x).score_kind_ == "whitened"  # and whitened for tables
    assert det.score_parts_ == ["squared reconstruction error", "code distance (Mahalanobis)",
                                "squared distance to the k = 10 nearest training code"]
    assert det.anomaly_score(x[:5]).shape == (5,)
    with pytest.raises(ValueError, match="image_shape.*64 values"):
        _small(image_shape=(7, 7)).fit(x)


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


def test_detect_writes_scores_with_the_header_names(table, tmp_path, capsys):
    path, names = table
    out = tmp_path / "det"
    assert main(["detect", "--data", str(path), "--out", str(out), "--contamination", "0.02",
                 "--epochs", "10", "--threads", "1", "--seed", "0", "--no-progress"]) == 0
    assert f"report: {out / 'report.html'}" in capsys.readouterr().out
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
    _check_tabular_report(out, summary, names)
    assert "loaded from" in _section((again / "report.html").read_text(), "Result")


def _section(text: str, heading: str) -> str:
    """The HTML of the ``<h2>`` section that starts with ``heading`` (up to the next one)."""
    start = text.index(f"<h2>{heading}")
    end = text.find("<h2>", start + 4)
    return text[start:end if end >= 0 else len(text)]


def _check_tabular_report(out: Path, summary: dict, names: list[str]) -> None:
    """report.html: headline, the histogram with the threshold, the top rows by column name."""
    text = (out / "report.html").read_text(encoding="utf-8")
    head = _section(text, "Result")
    assert "<b>6 of 300 rows flagged" in head and "trained here" in head
    assert html.escape(summary["threshold_rule"]) in head  # the 0.98 quantile of the training...
    scores = _section(text, "Anomaly scores")
    assert "<svg" in scores  # the histogram
    assert f"6 of 300 rows score above the threshold {summary['threshold']:.4g}" in scores
    top = _section(text, "Most anomalous rows")
    assert "<th>top feature 1</th>" in top
    cells = re.findall(r"<td>(\w+) \(\d+%\)</td>", top)
    assert len(cells) == 3 * len(summary["most_anomalous"]) and set(cells) <= set(names)
    for row in summary["most_anomalous"]:
        first = row["top_features"][0]
        assert (f"<td>{row['row']}</td><td>{row['score']:.4g}</td>" in top
                and f"<td>{first['feature']} ({first['share']:.0%})</td>" in top)
    assert "as images" not in text  # a table has no pictures
    assert not re.search(r"""(src|href)=["']?(https?:)?//""", text)


@pytest.fixture(scope="module")
def digits_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """``aekit detect`` on the built-in digits (images of 8 x 8), a tiny model."""
    out = tmp_path_factory.mktemp("digits")
    assert main(["detect", "--data", "digits", "--out", str(out), "--epochs", "2",
                 "--hidden", "16", "--threads", "1", "--seed", "0", "--no-progress"]) == 0
    return out


def test_detect_report_shows_image_data_as_images(digits_run: Path, tmp_path: Path,
                                                  capsys: pytest.CaptureFixture) -> None:
    text = (digits_run / "report.html").read_text(encoding="utf-8")
    summary = json.loads((digits_run / "summary.json").read_text())
    assert "<svg" in _section(text, "Anomaly scores")
    images = _section(text, "The most anomalous samples as images")
    assert images.count('<img alt="plot" src="data:image/png;base64,') == 1
    assert "its reconstruction by the detector's autoencoder" in images
    assert len(summary["most_anomalous"]) == 20
    # `aekit report` on a detect folder writes the same report again
    assert main(["report", str(digits_run), "--out", str(tmp_path / "again.html")]) == 0
    assert "again.html" in capsys.readouterr().out
    again = (tmp_path / "again.html").read_text(encoding="utf-8")
    assert "data:image/png;base64," in _section(again, "The most anomalous samples as images")
    assert "Training curves" not in again


@pytest.mark.skipif(CHROMIUM is None, reason="chromium is not installed (Debian package "
                    "`chromium`); the CI set-up installs it")
def test_detect_report_renders_in_headless_chromium(digits_run: Path, tmp_path: Path) -> None:
    result, dom = render((digits_run / "report.html").resolve().as_uri(), tmp_path, height=2600)
    body = re.search(r"<body([^>]*)>", dom.stdout)
    assert body is not None, dom.stdout[:500]
    attrs = dict(re.findall(r'data-(\w+)="([^"]*)"', body.group(1)))
    assert attrs.get("rendered") == "ok" and attrs["plots"] == "2", attrs
    assert attrs["errors"] == "0"


def test_score_axis_turns_log_past_two_decades_and_the_plot_takes_edge_cases() -> None:
    assert log_scale(np.array([1.0, 2.0, 500.0]), 10.0)
    assert not log_scale(np.array([1.0, 2.0, 50.0]), 10.0)
    assert not log_scale(np.array([0.0, 1.0, 5000.0]), -1.0)  # no log axis below zero
    assert log_scale(np.array([1.0, 2.0, 5.0]), 1000.0)  # the threshold is shown too
    for scores, threshold, log_x in ((np.full(10, 3.0), 3.0, False),
                                     (np.array([0.0, 0.5, 80.0]), 100.0, True)):
        svg = plot_score_histogram(scores, threshold, log_x)
        assert svg.startswith("<svg")


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
                 "--threads", "1", "--no-progress", "--no-report"]) == 0
    assert (model / "scores.csv").is_file() and not (model / "report.html").exists()
    assert "report:" not in capsys.readouterr().out
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


# -- novelty detection ----------------------------------------------------------------------
def test_novelty_threshold_from_held_back_clean_rows_gives_the_target_rate():
    """Trained on clean rows, the threshold is the 95% quantile of held-back clean rows'
    scores: about 5% of new clean rows are flagged, and rows off the plane are."""
    x, _ = _planted(n=4400, n_out=0)
    det = _small(epochs=10, novelty=True, target_fpr=0.05).fit(x[:2000])
    assert det.n_fits_ == 1 and len(det.trimmed_index_) == 0  # clean rows: none set aside
    # the novelty score: reconstruction + 5th-neighbour distance, no code distance
    assert det.n_neighbors_ == 5 and det.code_distance_ is False
    fpr = float(np.mean(det.predict(x[2000:]) == -1))
    assert 0.02 < fpr < 0.09
    far, _ = _planted(n=200, n_out=200, seed=1)
    assert float(np.mean(det.predict(far) == -1)) > 0.9
    np.testing.assert_allclose(det.decision_function(x[2000:]),
                               det.score_samples(x[2000:]) - det.offset_)


def test_novelty_bad_parameters_raise_clear_errors():
    x, _ = _planted(n=100)
    with pytest.raises(ValueError, match=r"contamination.*novelty=True.*"
                                         r"Received: contamination=0.1"):
        _small(novelty=True, contamination=0.1).fit(x)
    with pytest.raises(ValueError, match="novelty.*Received: novelty='yes'"):
        _small(novelty="yes").fit(x)
    with pytest.raises(ValueError, match="code_distance.*Received: code_distance=1"):
        _small(code_distance=1).fit(x)
    with pytest.raises(ValueError, match="input_distance.*Received: input_distance='on'"):
        _small(input_distance="on").fit(x)
    with pytest.raises(ValueError, match="n_neighbors.*'auto'.*Received: n_neighbors='x'"):
        _small(n_neighbors="x").fit(x)
    plain = _small(epochs=1).fit(x)  # the unsupervised score keeps all three parts
    assert plain.n_neighbors_ == 10 and plain.code_distance_ is True
    both = _small(epochs=1, novelty=True, code_distance=True, n_neighbors=3).fit(x)
    assert both.n_neighbors_ == 3 and both.code_distance_ is True
    with pytest.raises(ValueError, match=r"held-back clean rows.*validation_split=0.0"):
        _small(novelty=True, validation_split=0.0).fit(x)
    with pytest.raises(ValueError, match=r"held-back clean rows.*\(10 rows"):
        _small(novelty=True).fit(x[:10])


def test_novelty_survives_save_and_load(tmp_path):
    x, _ = _planted(n=400, n_out=0)
    det = _small(epochs=5, novelty=True).fit(x)
    loaded = OutlierDetector.load(det.save(tmp_path / "nov"))
    assert loaded.novelty is True and loaded.n_neighbors_ == 5 and not loaded.code_distance_
    assert loaded.input_distance_ and loaded.scaling_ == "minmax"
    np.testing.assert_allclose(loaded.reference_rows_, det.reference_rows_)
    np.testing.assert_allclose(loaded.decision_function(x[:20]), det.decision_function(x[:20]))
    state = json.loads((tmp_path / "nov" / "detector.json").read_text())
    (tmp_path / "nov" / "detector.json").write_text(json.dumps({**state, "n_features_in": 3}))
    with pytest.raises(ValueError, match="neighbour rows must be a \\(rows, features\\)"):
        OutlierDetector.load(tmp_path / "nov")


def test_tables_add_the_input_neighbour_distance_novelty_on_min_max_rows():
    """With clean rows, tables are scaled to [0, 1] and the score adds the squared distance
    from the scaled row to its 5th nearest training row, over that distance's median on the
    training rows (each against its 5th *other* row), weighted INPUT_DISTANCE_WEIGHT;
    held-back rows are not neighbours."""
    from sklearn.neighbors import NearestNeighbors

    from aekit.detector import INPUT_DISTANCE_WEIGHT

    x, _ = _planted(n=600, n_out=0)
    det = _small(epochs=3, novelty=True).fit(x)
    assert det.scaling_ == "minmax" and det.input_distance_
    rows = det.reference_rows_
    assert rows.shape == (len(det.reference_codes_), x.shape[1]) < (len(x), x.shape[1])
    assert rows.min() >= -1e-6 and rows.max() <= 1 + 1e-6  # min-max scaled training rows
    new, _ = _planted(n=50, n_out=10, seed=2)
    scaled = det.autoencoder_.scaler.transform(new)
    kth = np.square(NearestNeighbors(n_neighbors=5).fit(rows).kneighbors(scaled)[0][:, 4])
    own = np.square(NearestNeighbors(n_neighbors=6).fit(rows).kneighbors(rows)[0][:, 5])
    assert det.input_scale_ == pytest.approx(float(np.median(own)), rel=1e-5)
    without = _small(epochs=3, novelty=True, input_distance=False).fit(x)
    assert without.reference_rows_ is None and without.scaling_ == "minmax"
    np.testing.assert_allclose(det.anomaly_score(new) - without.anomaly_score(new),
                               INPUT_DISTANCE_WEIGHT * kth / det.input_scale_,
                               rtol=1e-4, atol=1e-6)
    unsupervised = _small(epochs=1).fit(x)  # standard scaling, the 10th nearest row
    assert unsupervised.scaling_ == "standard" and unsupervised.input_distance_
    far = np.square(NearestNeighbors(n_neighbors=10).fit(unsupervised.reference_rows_)
                    .kneighbors(unsupervised.autoencoder_.scaler.transform(new))[0][:, 9])
    plain = _small(epochs=1, input_distance=False).fit(x)
    assert plain.reference_rows_ is None
    np.testing.assert_allclose(unsupervised.anomaly_score(new) - plain.anomaly_score(new),
                               INPUT_DISTANCE_WEIGHT * far / unsupervised.input_scale_,
                               rtol=1e-4, atol=1e-6)
    assert _small(epochs=1, novelty=True, scaling="standard").fit(x).scaling_ == "standard"
    images = _small(epochs=1, image_shape=(2, 3)).fit(x)
    assert not images.input_distance_ and images.reference_rows_ is None


def _write_csv(path: Path, x: np.ndarray, names: list[str]) -> Path:
    with path.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(names)
        writer.writerows(x.tolist())
    return path


def test_detect_novelty_trains_on_clean_rows_and_scores_new_ones(tmp_path, capsys):
    names = ["temp", "pressure", "flow", "ph", "rpm", "load"]
    rows, _ = _planted(n=900, n_out=0)  # one plane: 600 rows train, 300 are new
    clean, new = rows[:600], rows[600:].copy()
    new[:15] += np.random.default_rng(1).normal(scale=3.0, size=(15, 6)) * np.array(
        [1, 10, 100, 0.1, 1, 5])  # the first 15 new rows moved off the plane
    train = _write_csv(tmp_path / "clean.csv", clean, names)
    fresh = _write_csv(tmp_path / "new.csv", new, names)
    model = tmp_path / "nov"
    assert main(["detect", "--data", str(train), "--out", str(model), "--novelty",
                 "--target-fpr", "0.02", "--epochs", "10", "--threads", "1", "--seed", "0",
                 "--no-progress", "--no-report", "--json"]) == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["novelty"] is True and summary["n_fits"] == 1
    assert "held-back clean rows" in summary["threshold_rule"]
    assert summary["score_parts"] == [
        "reconstruction error, whitened (Mahalanobis)",
        "squared distance to the k = 5 nearest training code",
        "3 x squared distance to the k = 5 nearest training row"]
    assert main(["detect", "--data", str(fresh), "--model", str(model),
                 "--out", str(tmp_path / "scored"), "--no-report"]) == 0
    with (tmp_path / "scored" / "scores.csv").open() as handle:
        flagged = [int(r["row"]) for r in csv.DictReader(handle) if r["label"] == "-1"]
    assert sum(r < 15 for r in flagged) >= 14 and sum(r >= 15 for r in flagged) <= 25
    capsys.readouterr()
    assert main(["detect", "--data", str(train), "--out", str(tmp_path / "o1"), "--novelty",
                 "--contamination", "0.1"]) == 2
    assert "contamination=0.1" in capsys.readouterr().err
    assert main(["detect", "--data", str(fresh), "--model", str(model), "--novelty",
                 "--out", str(tmp_path / "o2")]) == 2
    assert "give one of them" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(["detect", "--data", str(train), "--out", str(tmp_path / "o3"),
              "--target-fpr", "2"])
    assert "--target-fpr: must be a number in (0, 1)" in capsys.readouterr().err
