"""End to end through the command line, as a user runs it."""

import json
import subprocess
import sys

import numpy as np
import pytest

from aekit.cli import main

SMALL = ["--hidden", "32", "--latent-dim", "8", "--epochs", "40", "--batch-size", "64",
         "--no-progress"]


def _run(*args, cwd=None):
    return subprocess.run([sys.executable, "-m", "aekit", *args], capture_output=True,
                          text=True, cwd=cwd)


def test_train_on_digits_writes_the_contract_files_and_beats_nothing_silly(tmp_path, capsys):
    out = tmp_path / "run"
    assert main(["train", "--data", "digits", "--out", str(out), *SMALL]) == 0
    printed = capsys.readouterr().out
    assert "PCA-8" in printed and "ratio" in printed
    for name in ("model.safetensors", "config.json", "metrics.jsonl", "summary.json"):
        assert (out / name).is_file(), name
    summary = json.loads((out / "summary.json").read_text())
    for key in ("latent_dim", "epochs", "train_seconds", "samples_per_second", "val_mse",
                "test_mse", "test_sse_per_sample", "pca_test_mse", "pca_test_sse_per_sample"):
        assert key in summary, key
    assert summary["latent_dim"] == 8 and summary["epochs"] == 40
    assert summary["test_sse_per_sample"] == pytest.approx(summary["test_mse"] * 64)
    records = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    epochs = [r for r in records if r["type"] == "epoch"]
    assert [r["epoch"] for r in epochs] == list(range(1, 41))
    assert {"epoch", "step", "lr", "train_loss", "val_loss", "seconds"} <= set(epochs[0])
    assert epochs[-1]["val_loss"] < epochs[0]["val_loss"]
    # nothing silly: far better than predicting the mean image, and no worse than PCA at the
    # same size (it started from PCA's solution and keeps the trained model only when it is
    # clearly better on the validation rows)
    from aekit import load
    from aekit.config import RunConfig
    from aekit.pipeline import load_splits

    train, test, _ = load_splits(RunConfig().replace(data="digits"))
    assert test.n_samples == summary["n_test"] == 180
    scaler = load(out).scaler
    mean_image = scaler.transform(train.x).mean(axis=0)
    silly = float(((scaler.transform(test.x) - mean_image) ** 2).mean())
    assert summary["test_mse"] < 0.25 * silly
    assert summary["test_mse"] <= 1.01 * summary["pca_test_mse"]
    assert summary["ratio_to_pca"] == pytest.approx(summary["test_mse"] /
                                                    summary["pca_test_mse"])


def test_encode_decode_evaluate_round_trip(tmp_path, capsys):
    out = tmp_path / "run"
    assert main(["train", "--out", str(out), *SMALL]) == 0
    assert main(["encode", "--model", str(out), "--data", "digits",
                 "--out", str(tmp_path / "z.npy")]) == 0
    z = np.load(tmp_path / "z.npy")
    assert z.shape == (1797, 8)
    assert main(["decode", "--model", str(out), "--codes", str(tmp_path / "z.npy"),
                 "--out", str(tmp_path / "x.npy")]) == 0
    x = np.load(tmp_path / "x.npy")
    assert x.shape == (1797, 64) and 0 <= x.min() and x.max() <= 16.0001  # digits' units
    capsys.readouterr()
    assert main(["evaluate", "--model", str(out), "--data", "digits"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["n_samples"] == 1797 and report["mse"] > 0


def test_config_file_then_flags(tmp_path):
    cfg = tmp_path / "c.toml"
    cfg.write_text('[model]\nlatent_dim = 3\nhidden = [16]\n[train]\nepochs = 2\n')
    out = tmp_path / "run"
    assert main(["train", "--config", str(cfg), "--epochs", "3", "--out", str(out),
                 "--no-progress"]) == 0
    saved = json.loads((out / "config.json").read_text())["config"]
    assert saved["model"]["latent_dim"] == 3 and saved["train"]["epochs"] == 3


def test_help_shows_defaults():
    result = _run("train", "--help")
    assert result.returncode == 0
    text = " ".join(result.stdout.split())  # argparse wraps lines
    assert "--latent-dim LATENT_DIM size of the code" in text and "--clip-norm" in text
    assert "(default: from the data)" in text and "(default: 0.1)" in text
    assert "(default: one_cycle)" in text


@pytest.mark.parametrize("args,match", [
    (["train", "--data", "nowhere.npy"], "nowhere.npy"),
    (["train", "--latent-dim", "0"], "latent_dim"),
    (["train", "--activation", "swish"], "activation"),
    (["train", "--data", "fashion-mnisst"], "fashion-mnisst"),
    (["evaluate", "--model", "no-model", "--data", "digits"], "no-model"),
])
def test_bad_input_one_line_exit_2(tmp_path, args, match):
    result = _run(*args, "--out" if args[0] == "train" else "--data", str(tmp_path / "o")
                  if args[0] == "train" else "digits", cwd=tmp_path)
    assert result.returncode == 2, result.stderr
    assert "Traceback" not in result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and match in lines[0]
    assert not (tmp_path / "o").exists()


def test_nan_in_csv_names_file_row_and_column(tmp_path):
    (tmp_path / "d.csv").write_text("a,b\n1,2\n3,nan\n")
    result = _run("train", "--data", str(tmp_path / "d.csv"), "--out", str(tmp_path / "o"))
    assert result.returncode == 2
    assert "d.csv" in result.stderr and "NaN" in result.stderr and "row 1" in result.stderr
    assert not (tmp_path / "o").exists()


@pytest.mark.parametrize("option", [["--early-stopping-patience", "5"], ["--schedule", "plateau"]])
def test_an_option_that_would_do_nothing_without_validation_rows_is_refused(tmp_path, option):
    result = _run("train", "--validation-split", "0", *option, "--out", str(tmp_path / "o"),
                  "--epochs", "1", cwd=tmp_path)
    assert result.returncode == 2, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "no validation rows" in lines[0] and "Traceback" not in lines[0]
    assert not (tmp_path / "o").exists()


def test_split_seed_moves_the_test_rows_and_seed_does_not():
    from aekit.config import RunConfig
    from aekit.pipeline import load_splits

    def test_rows(**options):
        _, test, _ = load_splits(RunConfig().replace(data="digits", **options))
        return test.x

    fixed = test_rows()
    assert np.array_equal(test_rows(seed=7), fixed)  # --seed: same test rows
    assert np.array_equal(test_rows(split_seed=None, seed=3), fixed)
    other = test_rows(split_seed=7)
    assert other.shape == fixed.shape and not np.array_equal(other, fixed)
    assert np.array_equal(test_rows(split_seed=7, seed=1), other)


def test_split_seed_on_the_command_line_reaches_the_run(tmp_path):
    runs = {}
    for name, extra in (("fixed", []), ("moved", ["--split-seed", "11"])):
        out = tmp_path / name
        assert main(["train", "--data", "digits", "--out", str(out), "--hidden", "16",
                     "--latent-dim", "4", "--epochs", "1", "--no-progress", *extra]) == 0
        runs[name] = json.loads((out / "summary.json").read_text())
        saved = json.loads((out / "config.json").read_text())["config"]["data"]["split_seed"]
        assert saved == (11 if extra else None)
    # PCA, fitted and scored on other rows, scores otherwise
    assert runs["fixed"]["pca_test_mse"] != runs["moved"]["pca_test_mse"]


JSON_SMALL = ["--epochs", "2", "--threads", "1", "--no-progress", "--hidden", "16"]


def test_json_train_evaluate_diagnose_print_one_document_on_stdout(tmp_path, capsys):
    run = tmp_path / "run"
    # a real process, so that stdout is a file descriptor as in a shell pipe
    result = _run("train", "--data", "digits", "--out", str(run), *JSON_SMALL,
                  "--latent-dim", "4", "--json", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    summary = json.loads(result.stdout)
    assert summary["run_dir"] == str(run) and summary["epochs"] == 2
    saved = json.loads((run / "summary.json").read_text())
    assert summary["test_mse"] == saved["test_mse"] and summary["latent_dim"] == 4
    assert "trained 2 epochs" in result.stderr and "run folder:" in result.stderr
    capsys.readouterr()
    assert main(["evaluate", "--model", str(run), "--data", "digits", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["n_samples"] == 1797
    assert main(["diagnose", str(run), "--json"]) == 0
    findings = json.loads(capsys.readouterr().out)
    assert isinstance(findings, list)


def test_json_sweep_and_detect_print_one_document_on_stdout(tmp_path, capsys):
    out = tmp_path / "sweep"
    assert main(["sweep", "--data", "digits", "--latent-dims", "2,4", "--out", str(out),
                 *JSON_SMALL, "--json"]) == 0
    captured = capsys.readouterr()
    result = json.loads(captured.out)
    assert result["out"] == str(out) and [r["latent_dim"] for r in result["rows"]] == [2, 4]
    assert result["recommended_latent_dim"] in (2, 4)
    assert "recommended latent size" in captured.err and "latent    2:" in captured.err
    out = tmp_path / "detect"
    assert main(["detect", "--data", "digits", "--out", str(out), *JSON_SMALL,
                 "--latent-dim", "4", "--json"]) == 0
    captured = capsys.readouterr()
    summary = json.loads(captured.out)
    assert summary["out"] == str(out) and summary["n_rows"] == 1797
    assert summary["n_outliers"] == json.loads((out / "summary.json").read_text())["n_outliers"]
    assert "rows flagged" in captured.err


def test_json_guard_sends_child_processes_output_to_stderr():
    script = ("import subprocess, sys\n"
              "from aekit.commands.common import human_output_to_stderr, print_json\n"
              "with human_output_to_stderr(True):\n"
              "    print('from python')\n"
              "    subprocess.run([sys.executable, '-c', 'print(\"from a child\")'])\n"
              "print_json({'ok': True})\n")
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout) == {"ok": True}
    assert "from python" in result.stderr and "from a child" in result.stderr
