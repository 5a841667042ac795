"""``aekit report``: a self-contained report.html, checked in headless Chromium."""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import numpy as np
import pytest

from aekit.cli import main
from aekit.errors import FormatError
from aekit.report import build_report, diag_series
from aekit.report_plots import pca_2d
from chromium import CHROMIUM, render

TRAIN_FLAGS = ["--data", "digits", "--epochs", "3", "--threads", "1", "--latent-dim", "4",
               "--hidden", "32", "--no-progress", "--seed", "0"]


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny digits run with diagnostics, its report written by ``aekit train --report``."""
    out = tmp_path_factory.mktemp("run")
    code = main(["train", *TRAIN_FLAGS, "--out", str(out), "--report",
                 "--diagnostics-every-steps", "2"])
    assert code == 0
    return out


def test_train_report_writes_self_contained_html(run_dir: Path) -> None:
    text = (run_dir / "report.html").read_text(encoding="utf-8")
    for heading in ("Result and comparison with PCA", "Training curves",
                    "Gradients and activations", "Doctor's findings",
                    "Originals (top) and reconstructions", "Map of the codes", "Configuration"):
        assert heading in text
    assert "gradient L2 norm per layer" in text  # the diagnostics records were plotted
    assert text.count("<svg") >= 3 and text.count("data:image/png;base64,") >= 2
    # self-contained: no external resource is referenced
    assert not re.search(r"""(src|href)=["']?(https?:)?//""", text)


def test_report_without_diagnostics_or_findings_says_so(run_dir: Path, tmp_path: Path) -> None:
    for name in ("config.json", "model.safetensors"):
        shutil.copy(run_dir / name, tmp_path / name)
    lines = (run_dir / "metrics.jsonl").read_text().splitlines()
    kept = [ln for ln in lines if json.loads(ln).get("type") == "epoch"]
    (tmp_path / "metrics.jsonl").write_text("\n".join(kept) + "\n{truncated")
    summary = json.loads((run_dir / "summary.json").read_text())
    summary.pop("findings", None)
    (tmp_path / "summary.json").write_text(json.dumps(summary))
    text = build_report(tmp_path)
    assert "No diagnostics records" in text
    assert "the run was not diagnosed" in text
    assert "Training curves" in text and text.count("<svg") >= 2


def test_report_of_a_missing_folder_fails_clearly(tmp_path: Path) -> None:
    with pytest.raises(FormatError, match="no such run folder"):
        build_report(tmp_path / "nope")
    (tmp_path / "summary.json").write_text("{}")
    with pytest.raises(FormatError, match="metrics file is missing"):
        build_report(tmp_path)


def test_report_cli_error_exits_2(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    assert main(["report", str(tmp_path / "missing")]) == 2
    assert "no such run folder" in capsys.readouterr().err


def test_diag_series_groups_nested_records_by_metric() -> None:
    records = [{"type": "epoch", "train_loss": 1.0},
               {"type": "diagnostics", "step": 0, "lr": 0.1, "loss": 2.0, "grad_norm": 1.5,
                "grad_norm_clipped": 1.0, "layers": {"encoder.0": {"grad_norm": 0.5,
                                                                   "dead": 0.25}}},
               {"type": "diag", "step": 10, "layers": {"encoder.0": {"grad_norm": 0.4}}}]
    panels = diag_series(records)
    assert panels["grad_norm"] == {"global": [(0.0, 1.5)], "global (clipped)": [(0.0, 1.0)],
                                   "encoder.0": [(0.0, 0.5), (10.0, 0.4)]}
    assert panels["dead"] == {"encoder.0": [(0.0, 0.25)]}
    assert "lr" not in panels and "loss" not in panels


def test_pca_2d_matches_sklearn() -> None:
    from sklearn.decomposition import PCA

    codes = np.random.default_rng(0).normal(size=(50, 5)) * [5, 3, 1, 0.5, 0.1]
    coords, share = pca_2d(codes)
    ref = PCA(2).fit(codes)
    np.testing.assert_allclose(np.abs(coords), np.abs(ref.transform(codes)), atol=1e-8)
    np.testing.assert_allclose(share, ref.explained_variance_ratio_, atol=1e-10)


@pytest.mark.skipif(CHROMIUM is None, reason="chromium is not installed (Debian package "
                    "`chromium`); the CI set-up installs it")
def test_report_renders_in_headless_chromium(run_dir: Path, tmp_path: Path) -> None:
    result, dom = render((run_dir / "report.html").resolve().as_uri(), tmp_path, height=3000)
    body = re.search(r"<body([^>]*)>", dom.stdout)
    assert body is not None, dom.stdout[:500]
    attrs = dict(re.findall(r'data-(\w+)="([^"]*)"', body.group(1)))
    assert attrs.get("rendered") == "ok", attrs  # every <img> decoded
    assert int(attrs["plots"]) >= 8 and attrs["broken"] == "0" and attrs["errors"] == "0"
    console = [ln for ln in (result.stderr + dom.stderr).splitlines()
               if "CONSOLE" in ln or "Uncaught" in ln]
    assert console == []


def test_metrics_are_read_by_one_reader(tmp_path: Path) -> None:
    """``aekit diagnose`` reads metrics.jsonl strictly, the report skips a torn line: one
    reader (next to its writer) with a switch."""
    from aekit.training.callbacks import read_metrics

    path = tmp_path / "metrics.jsonl"
    path.write_text('{"type": "epoch", "epoch": 1}\n\n{"type": "epo')
    assert read_metrics(path, strict=False) == [{"type": "epoch", "epoch": 1}]
    with pytest.raises(FormatError, match="line 3: not JSON"):
        read_metrics(path)
    path.write_text('{"type": "epoch"}\n[1, 2]\n')
    with pytest.raises(FormatError, match="line 2: expected a JSON object"):
        read_metrics(path)
    with pytest.raises(FormatError, match="metrics.jsonl: no such file"):
        read_metrics(tmp_path / "missing" / "metrics.jsonl")
