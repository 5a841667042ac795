"""``aekit tune``: an Optuna study over training options, stored and continued, with a
best.toml that ``aekit train`` accepts."""

from __future__ import annotations

import importlib.util
import json
import math

import numpy as np
import pytest

optuna = pytest.importorskip("optuna")

from aekit import Autoencoder  # noqa: E402
from aekit.apps.tune import (SEARCHABLE, PruningCallback, default_params, funnel,  # noqa: E402
                             parse_search, suggest, toml_value, tune)
from aekit.cli import main  # noqa: E402
from aekit.commands import tune as tune_command  # noqa: E402
from aekit.config import RunConfig, load_config_file  # noqa: E402
from aekit.errors import ConfigError  # noqa: E402
from aekit.pipeline import prepare_spec  # noqa: E402

QUICK = ["--epochs", "2", "--threads", "1", "--diagnostics-every-steps", "none"]


@pytest.fixture
def table(tmp_path, blobs):
    path = tmp_path / "blobs.npy"
    np.save(path, blobs)
    return path


def test_a_second_call_continues_the_study_and_best_toml_trains(tmp_path, table, capsys):
    out, storage = tmp_path / "tune", f"sqlite:///{tmp_path / 'study.db'}"
    args = ["tune", "--data", str(table), "--out", str(out), "--storage", storage,
            "--study-name", "blobs", *QUICK]
    assert main([*args, "--trials", "5"]) == 0
    assert main([*args, "--trials", "7"]) == 0
    printed = capsys.readouterr().out
    assert "5 finished trial(s) already; running 2 more" in printed
    (summary,) = optuna.get_all_study_summaries(storage)
    assert summary.study_name == "blobs"
    study = optuna.load_study(study_name="blobs", storage=storage)
    finished = [t for t in study.trials if t.state.is_finished()]
    assert len(study.trials) == len(finished) == 7
    assert study.trials[0].user_attrs["defaults"] is True
    saved = json.loads((out / "tune.json").read_text())
    assert len(saved["trials"]) == 7 and saved["best"]["number"] == study.best_trial.number
    assert (out / "tune.md").read_text().count("\n| ") >= 8  # header + 7 trials
    for row in saved["trials"]:  # every trial is an ordinary run folder, checkpoints gone
        run_dir = out / "trials" / f"{row['number']:04d}"
        assert (run_dir / "summary.json").is_file()
        assert not list(run_dir.glob("checkpoint-*"))
    best = load_config_file(out / "best.toml")
    assert best["data"] == str(table.resolve()) and best["epochs"] == 2
    # as is: the best trial again, same data, seed and options, so the same weights
    assert main(["train", "--config", str(out / "best.toml"), "--out", str(tmp_path / "b"),
                 "--no-progress"]) == 0
    trained = json.loads((tmp_path / "b" / "summary.json").read_text())
    assert trained["val_mse"] == pytest.approx(study.best_value, rel=1e-5)


def test_a_study_refuses_other_fixed_options(tmp_path, table):
    cfg = RunConfig().replace(data=str(table), epochs=1, threads=1, progress=False,
                              diagnostics_every_steps=None)
    storage = f"sqlite:///{tmp_path / 'study.db'}"
    result = tune(cfg, 1, storage, tmp_path / "a", study_name="s", log=False)
    assert result.counts == {"COMPLETE": 1} and result.best["defaults"]
    with pytest.raises(ConfigError, match="epochs: study 1, now 2"):
        tune(cfg.replace(epochs=2), 2, storage, tmp_path / "a", study_name="s", log=False)


def test_trial_zero_is_aekits_defaults(table):
    run = prepare_spec(RunConfig().replace(data=str(table), epochs=1))
    search = parse_search(None, tune_latent=True)
    params = default_params(run, search)
    changes = suggest(optuna.trial.FixedTrial(params), search, run)
    cfg = run.config
    assert changes == {"latent_dim": cfg.model.latent_dim, "lr": cfg.optim.lr,
                       "hidden": cfg.model.hidden, "activation": "relu", "batch_norm": False,
                       "residual": False, "dropout": None, "weight_decay": None,
                       "batch_size": cfg.train.batch_size}


def test_search_space_pieces():
    assert funnel(512, 3, 30) == (512, 256, 128) and funnel(40, 3, 16) == (40, 20, 16)
    assert parse_search("lr, batch_size") == ["lr", "batch_size"]
    with pytest.raises(ConfigError, match="must name options"):
        parse_search("lr,epochs")
    assert tune_command.SEARCHABLE == SEARCHABLE
    assert toml_value((64, 32)) == "[64, 32]" and toml_value(1e-05) == "1e-05"
    assert toml_value('a "b"') == '"a \\"b\\""' and toml_value(False) == "false"


class _Trial:
    number = 0

    def __init__(self):
        self.reported = []

    def report(self, value, step):
        self.reported.append(step)

    def should_prune(self):
        return True


def test_a_pruned_trial_stops_cleanly_after_the_warm_up(blobs):
    trial = _Trial()
    pruning = PruningCallback(trial, prune_after=0.3)
    ae = Autoencoder(latent_dim=3, hidden=(16,), epochs=10, threads=1, progress=False,
                     early_stopping_patience=None)
    history = ae.fit(blobs, callbacks=[pruning])
    assert pruning.pruned_at == 3 == len(history.epochs) and trial.reported == [1, 2, 3]
    assert [e["kind"] for e in history.events].count("pruned") == 1
    assert math.isfinite(ae.score(blobs)["mse"])


def test_options_you_set_are_held_fixed(tmp_path, table, capsys):
    out = tmp_path / "t"
    assert main(["tune", "--data", str(table), "--out", str(out), "--trials", "2",
                 "--batch-size", "16", "--search", "batch_size,lr", *QUICK]) == 0
    assert "held fixed (set by you): batch_size=16" in capsys.readouterr().out
    saved = json.loads((out / "tune.json").read_text())
    assert saved["search"] == ["lr"]
    assert all(set(t["params"]) == {"lr"} for t in saved["trials"])


def test_missing_optuna_names_the_extra(monkeypatch, tmp_path):
    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec",
                        lambda name, *a: None if name == "optuna" else real(name, *a))
    with pytest.raises(ConfigError, match=r"aekit\[tune\]"):
        tune(RunConfig(), 1, None, tmp_path)
