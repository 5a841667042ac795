"""MLflow tracking (``aekit train --mlflow``, ``MLflowLogger``), read back with MLflow's own
client from a local SQLite store: nothing leaves the machine."""

from __future__ import annotations

import importlib.util
import json

import numpy as np
import pytest

pytest.importorskip("mlflow")

from aekit import Autoencoder  # noqa: E402
from aekit.cli import main  # noqa: E402
from aekit.config import RunConfig  # noqa: E402
from aekit.errors import ConfigError  # noqa: E402
from aekit.runner import train_run  # noqa: E402
from aekit.training.callbacks import Callback  # noqa: E402
from aekit.training.mlflow_log import RUN_FILE, MLflowLogger, open_client  # noqa: E402

TINY = ["--hidden", "16", "--latent-dim", "3", "--batch-size", "32", "--threads", "1",
        "--no-progress", "--diagnostics-every-steps", "none"]


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    """One SQLite store for the module (creating its tables takes seconds)."""
    return f"sqlite:///{tmp_path_factory.mktemp('mlflow') / 'mlflow.db'}"


@pytest.fixture
def table(tmp_path, blobs):
    path = tmp_path / "blobs.npy"
    np.save(path, blobs)
    return path


def _runs(client, experiment):
    exp = client.get_experiment_by_name(experiment)
    return client.search_runs([exp.experiment_id])


def test_train_with_mlflow_is_read_back_by_mlflows_client(tmp_path, table, store, capsys):
    out = tmp_path / "run"
    assert main(["train", "--data", str(table), "--epochs", "3", "--out", str(out), *TINY,
                 "--mlflow", store, "--mlflow-experiment", "cli"]) == 0
    assert "mlflow: run" in capsys.readouterr().out
    client = open_client(store)
    (run,) = _runs(client, "cli")
    assert run.info.status == "FINISHED" and run.info.run_name == "run"
    params = run.data.params
    assert params["latent_dim"] == "3" and params["hidden"] == "16"
    assert params["epochs"] == "3" and params["n_features"] == "10"
    summary = json.loads((out / "summary.json").read_text())
    history = client.get_metric_history(run.info.run_id, "val_loss")
    assert sorted(m.step for m in history) == list(range(1, summary["epochs"] + 1))
    assert len(client.get_metric_history(run.info.run_id, "lr")) == summary["epochs"]
    metrics = run.data.metrics
    for key in ("test_mse", "pca_test_mse", "ratio_to_pca", "val_mse", "pca_val_mse"):
        assert metrics[key] == pytest.approx(summary[key]), key
    assert run.data.tags["aekit.findings"]
    artifacts = {a.path for a in client.list_artifacts(run.info.run_id)}
    assert {"model.safetensors", "config.json", "summary.json", "metrics.jsonl",
            "findings.json"} <= artifacts
    assert json.loads((out / RUN_FILE).read_text())["run_id"] == run.info.run_id


class _Crash(Callback):
    """Stops the process after ``epochs`` epochs, as a crash would."""

    def __init__(self, epochs: int) -> None:
        self.epochs = epochs

    def on_epoch_end(self, trainer, epoch, logs):
        if epoch + 1 == self.epochs:
            raise KeyboardInterrupt


def test_a_resumed_run_continues_the_same_mlflow_run(tmp_path, table, store):
    out = tmp_path / "run"
    cfg = RunConfig().replace(data=str(table), epochs=6, hidden=(16,), latent_dim=3,
                              batch_size=32, threads=1, progress=False,
                              checkpoint_every_steps=5, diagnostics_every_steps=None)
    first = MLflowLogger(store, "resume", run_dir=out, end_with_training=False)
    with pytest.raises(KeyboardInterrupt):
        train_run(cfg, out, [first, _Crash(4)])
    client = open_client(store)
    assert client.get_run(first.run_id).info.status == "KILLED"
    again = MLflowLogger(store, "resume", run_dir=out, resume=True, end_with_training=False)
    assert again.run_id == first.run_id
    summary = train_run(cfg.replace(resume=True), out, [again])
    (run,) = _runs(client, "resume")
    assert run.info.status == "FINISHED" and run.data.tags["aekit.resumed"] == "true"
    steps = [m.step for m in client.get_metric_history(run.info.run_id, "val_loss")]
    assert sorted(steps) == list(range(1, summary["epochs"] + 1))  # one point per epoch


def test_the_callback_logs_a_python_fit(store, blobs):
    logger = MLflowLogger(store, "python", run_name="fit")
    ae = Autoencoder(latent_dim=3, hidden=(16,), threads=1, progress=False)
    ae.fit(blobs, epochs=2, callbacks=[logger])
    run = open_client(store).get_run(logger.run_id)
    assert run.info.status == "FINISHED"
    assert run.data.params["latent_dim"] == "3"
    assert {"train_loss", "val_loss", "lr", "pca_val_loss"} <= set(run.data.metrics)


def test_missing_mlflow_names_the_extra(monkeypatch):
    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec",
                        lambda name, *a: None if name == "mlflow" else real(name, *a))
    with pytest.raises(ConfigError, match=r"aekit\[mlflow\]"):
        open_client("sqlite:///never.db")
