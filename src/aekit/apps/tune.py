"""Search training options with Optuna: ``aekit tune``.

    result = tune(RunConfig().replace(data="digits", epochs=40), trials=20,
                  storage="sqlite:///tune/study.db", out_dir="tune")
    print(result.table())

The data is loaded, split, scaled and its PCA fitted **once** by the run pipeline
(:func:`aekit.pipeline.prepare_spec`); each trial is that prepared run under changed options
(:func:`aekit.pipeline.with_config`), trained and written as an ordinary aekit run folder
(``OUT/trials/NNNN``: ``model.safetensors``, ``config.json``, ``metrics.jsonl``,
``summary.json``; checkpoints removed at its end) by :func:`aekit.runner.train_prepared`.

- **Objective**: the validation MSE of the model the run ends with (``summary.json``'s
  ``val_mse``: the best epoch's weights, or PCA's solution when the PCA check kept it). The test
  rows never take part: their error is recorded for every trial and shown for the best trial
  and the defaults only.
- **Search space** (:func:`suggest`): ``lr`` log-uniform in :data:`LR_RANGE`; ``hidden`` as a
  depth (1 to :data:`MAX_DEPTH` layers) and the first layer's width (log-uniform in
  :data:`WIDTH_RANGE`), each further layer half as wide (never narrower than the code);
  ``activation`` among :data:`ACTIVATIONS`; ``batch_norm`` and ``residual`` on or off;
  ``dropout`` 0 to 0.3 in steps of 0.05; ``weight_decay`` among :data:`WEIGHT_DECAYS`;
  ``batch_size`` among :data:`BATCH_SIZES`; and, when asked (``--tune-latent``), ``latent_dim``
  log-uniform from 2 to :data:`MAX_TUNED_LATENT`. An option set by the user is held fixed.
- **Trial 0** of a new study is aekit's defaults for this data (the defaults that depend on
  the data, e.g. ``hidden`` and ``batch_size``, included), so the table always shows what the
  search gained over them.
- **Pruning**: the trainer's validation loss is reported every epoch (step = epoch); from
  :data:`PRUNE_AFTER` of the epochs on, a trial whose loss is worse than the median of the
  earlier trials at the same epoch is stopped cleanly (Optuna's ``MedianPruner``, after
  :data:`PRUNER_STARTUP` finished trials) and recorded as pruned.
- **Sampler**: TPE (:data:`TPE_STARTUP` random trials first), seeded with ``seed`` plus the
  number of trials already in the study, so a continued study does not repeat its first
  random trials.
- **Storage**: the study lives in ``storage`` (SQLite by default, or an Optuna journal file);
  ``trials`` is the number of finished trials the study should have, so a second call with
  the same study name runs only the missing ones. A study remembers its fixed options and
  refuses to continue under different ones (its trials would not be comparable).
- **Results**: ``tune.md`` (the table), ``tune.json`` (every trial: options, state, errors,
  run folder) and ``best.toml``, which ``aekit train --config OUT/best.toml`` accepts as is.

Trials run one after the other. Two trials side by side on the 2 shared cores of the machine
this was built on took as long as running them in turn (see the README), so there is no
parallel mode; several ``aekit tune`` processes on one storage would share a study.

Modules: the search space (:mod:`aekit.apps.tune_space`), the results and ``best.toml``
(:mod:`aekit.apps.tune_results`), and here the study: pruning, storage, the trials.
"""

from __future__ import annotations

import io
import json
import math
import time
from pathlib import Path
from typing import Any, Sequence

from aekit.config import RunConfig
from aekit.errors import ConfigError, TrainingError
from aekit.pipeline import PreparedRun, data_defaults, prepare_spec, with_config
from aekit.runner import train_prepared
from aekit.serialization import atomic_write_bytes, write_json
from aekit.training.callbacks import Callback
from aekit.training.checkpoint import list_checkpoints
from aekit.apps.tune_results import (FINISHED, SESSION_OPTIONS, TuneResult, best_line, cell,
                                     int_text, num, ratio_text, row_of, secs, toml_value,
                                     write_best_toml)
from aekit.apps.tune_space import (DEFAULT_SEARCH, SEARCHABLE, default_params, funnel,
                                   parse_search, suggest)

PRUNE_AFTER = 0.3  # no pruning in the first 30% of a trial's epochs (one-cycle warms up 25%)
PRUNER_STARTUP = 5  # finished trials before the pruner stops any
TPE_STARTUP = 8  # random trials before TPE models the results


# -- pruning ----------------------------------------------------------------------------------
class PruningCallback(Callback):
    """Reports the validation loss of every epoch to an Optuna trial (step = epoch) and, once
    :data:`PRUNE_AFTER` of the epochs are done, stops training when the pruner says so (the
    run then ends as any stopped run does: best weights, PCA check, run folder)."""

    def __init__(self, trial: Any, prune_after: float = PRUNE_AFTER) -> None:
        self.trial = trial
        self.prune_after = prune_after
        self.pruned_at: int | None = None

    def on_epoch_end(self, trainer: Any, epoch: int, logs: dict[str, Any]) -> None:
        value = logs.get("val_loss")
        if not isinstance(value, (int, float)) or not math.isfinite(value):
            return
        self.trial.report(float(value), epoch + 1)
        if epoch + 1 < max(1, math.ceil(self.prune_after * trainer.epochs)):
            return
        if self.trial.should_prune():
            self.pruned_at = epoch + 1
            trainer.log_event("pruned", f"Optuna trial {self.trial.number} pruned at epoch "
                              f"{epoch + 1}: validation loss {value:.4g} is worse than the "
                              "median of the earlier trials at this epoch")
            trainer.stop_training = True


# -- storage ----------------------------------------------------------------------------------
def open_storage(storage: str) -> Any:
    """An Optuna storage from ``sqlite:///PATH``, any database URL Optuna accepts,
    ``journal:PATH`` (a journal file), or a plain path (``.db``/``.sqlite``: SQLite; other:
    a journal file).

    Raises:
        ConfigError: an empty storage.
    """
    if not isinstance(storage, str) or not storage.strip():
        raise ConfigError(f"`storage` must be an Optuna storage such as sqlite:///study.db. "
                          f"Received: storage={storage!r}")
    if storage.startswith("journal:") or ("://" not in storage and
                                          Path(storage).suffix not in (".db", ".sqlite")):
        from optuna.storages.journal import JournalFileBackend, JournalStorage

        path = Path(storage[len("journal:"):] if storage.startswith("journal:") else storage)
        path.resolve().parent.mkdir(parents=True, exist_ok=True)
        return JournalStorage(JournalFileBackend(str(path)))
    if "://" not in storage:
        storage = "sqlite:///" + str(Path(storage).resolve())
    if storage.startswith("sqlite:///"):
        Path(storage[len("sqlite:///"):]).resolve().parent.mkdir(parents=True, exist_ok=True)
    return storage


def study_identity(cfg: RunConfig, search: Sequence[str]) -> dict[str, Any]:
    """What makes two calls the same study: the options held fixed and the options searched."""
    fixed = {k: v for section in cfg.to_dict().values() for k, v in section.items()
             if k not in SESSION_OPTIONS and k not in search}
    return json.loads(json.dumps({"fixed": fixed, "search": list(search)}))


def check_identity(study: Any, identity: dict[str, Any]) -> None:
    """Record the identity of a new study; refuse to continue one under other options."""
    saved = study.user_attrs.get("aekit")
    if saved is None:
        study.set_user_attr("aekit", identity)
        return
    if saved == identity:
        return
    diffs = [f"{k}: study {saved['fixed'].get(k)!r}, now {identity['fixed'].get(k)!r}"
             for k in sorted(set(saved["fixed"]) | set(identity["fixed"]))
             if saved["fixed"].get(k) != identity["fixed"].get(k)]
    if saved.get("search") != identity["search"]:
        diffs.append(f"searched options: study {saved.get('search')}, now {identity['search']}")
    raise ConfigError(f"study {study.study_name!r} was made with other options, so its trials "
                      f"would not compare with new ones ({'; '.join(diffs)}). Use the same "
                      "options, or another --study-name")


# -- the search -------------------------------------------------------------------------------
def tune(cfg: RunConfig, trials: int, storage: str | None, out_dir: str | Path,
         study_name: str | None = None, search: Sequence[str] | None = None,
         pruner: str = "median", timeout: float | None = None, log: bool = True,
         mlflow: str | None = None, mlflow_experiment: str | None = None) -> TuneResult:
    """Run (or continue) an Optuna study over training options; write the results.

    Args:
        cfg: the options every trial starts from (the data, and everything not searched).
        trials: finished trials the study should have in the end (a continued study runs
            only the missing ones).
        storage: Optuna storage (see :func:`open_storage`); None: ``OUT/study.db`` (SQLite).
        out_dir: folder for ``tune.md``, ``tune.json``, ``best.toml`` and ``trials/``.
        study_name: the study (default: the data's name); continued when it exists.
        search: options to search (:data:`SEARCHABLE`; default :data:`DEFAULT_SEARCH`).
        pruner: ``median`` or ``none``.
        timeout: start no new trial after this many seconds.
        log: print one line per trial.
        mlflow, mlflow_experiment: log every trial as an MLflow run in this store
            (experiment: the study's name unless given).

    Raises:
        ConfigError / DataError: bad options or data, before any trial.
    """
    from aekit.optional import require

    require("optuna", "tune", "aekit tune")
    import optuna

    search = parse_search(search)
    if not isinstance(trials, int) or isinstance(trials, bool) or trials < 1:
        raise ConfigError(f"`trials` must be a positive integer. Received: trials={trials!r}")
    if pruner not in ("median", "none"):
        raise ConfigError(f"`pruner` must be median or none. Received: pruner={pruner!r}")
    if cfg.train.resume:
        raise ConfigError("`resume` does not apply to aekit tune: a study continues by itself "
                          "(run the same command again)")
    if cfg.train.validation_split != "auto" and cfg.train.validation_split <= 0:
        raise ConfigError("aekit tune chooses on validation rows: --validation-split must be "
                          f"> 0. Received: validation_split={cfg.train.validation_split}")
    if "latent_dim" in search and cfg.model.latent_dim is not None:
        raise ConfigError(f"the latent size is both fixed (latent_dim={cfg.model.latent_dim}) "
                          "and searched; drop --latent-dim or --tune-latent")
    out_dir = Path(out_dir)
    study_name = study_name or Path(cfg.data.data).stem.replace(":", "-") or "aekit"
    storage = storage or f"sqlite:///{out_dir / 'study.db'}"
    _check_out_dir(out_dir, study_name)
    run = prepare_spec(cfg)  # once: load, split, scale, defaults, PCA
    identity = study_identity(run.config, search)
    opened = open_storage(storage)
    verbosity = optuna.logging.get_verbosity()
    optuna.logging.set_verbosity(optuna.logging.ERROR)
    try:
        study = optuna.create_study(
            storage=opened, study_name=study_name, direction="minimize", load_if_exists=True,
            pruner=(optuna.pruners.MedianPruner(n_startup_trials=PRUNER_STARTUP)
                    if pruner == "median" else optuna.pruners.NopPruner()))
        check_identity(study, identity)
        done = [t for t in study.trials if t.state.name in FINISHED]
        study.sampler = optuna.samplers.TPESampler(
            n_startup_trials=TPE_STARTUP, seed=cfg.train.seed + len(study.trials))
        if not study.trials:
            study.enqueue_trial(default_params(run, search), user_attrs={"defaults": True})
        objective = _Objective(run, search, out_dir, study_name, mlflow,
                               mlflow_experiment or study_name, log)
        t0 = time.perf_counter()
        missing, interrupted = trials - len(done), False
        if missing > 0:
            if log and done:
                print(f"study {study_name!r}: {len(done)} finished trial(s) already; running "
                      f"{missing} more", flush=True)
            try:
                study.optimize(objective, n_trials=missing, timeout=timeout,
                               callbacks=[objective.report] if log else None)
            except KeyboardInterrupt:  # Ctrl-C: the trials finished so far are written
                interrupted = True
        elif log:
            print(f"study {study_name!r} already has {len(done)} finished trials "
                  f"(--trials {trials}): nothing to run", flush=True)
        seconds = time.perf_counter() - t0
    finally:
        optuna.logging.set_verbosity(verbosity)
    result = _result(study, storage, search, objective.ran, seconds, out_dir)
    _write(result, run, search, out_dir)
    if interrupted:
        raise KeyboardInterrupt
    return result


def _check_out_dir(out_dir: Path, study_name: str) -> None:
    """One study per results folder: refuse a folder that holds another study's results
    (its ``trials/`` folders would be overwritten)."""
    path = out_dir / "tune.json"
    if not path.is_file():
        return
    try:
        saved = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return
    if saved.get("study_name") != study_name:
        raise ConfigError(f"{out_dir} holds the results of study {saved.get('study_name')!r} "
                          f"({saved.get('storage')}), not {study_name!r}: use another --out, "
                          "or that study's --study-name")


class _Objective:
    """One trial: options from the space, an ordinary run folder, the validation MSE."""

    def __init__(self, run: PreparedRun, search: Sequence[str], out_dir: Path,
                 study_name: str, mlflow: str | None, experiment: str, log: bool) -> None:
        self.run, self.search, self.out_dir = run, list(search), out_dir
        self.study_name, self.log, self.ran = study_name, log, 0
        self.mlflow, self.experiment, self._client = mlflow, experiment, None
        if mlflow:  # the store opens (or the missing extra is named) before any trial
            from aekit.training.mlflow_log import open_client

            self._client = open_client(mlflow)

    def __call__(self, trial: Any) -> float:
        import optuna

        self.ran += 1
        changes = suggest(trial, self.search, self.run)
        member = with_config(self.run, **changes)
        trial_dir = self.out_dir / "trials" / f"{trial.number:04d}"
        trial.set_user_attr("options", json.loads(json.dumps(
            {k: _option(member.config, k) for k in self.search})))
        trial.set_user_attr("run_dir", str(trial_dir))
        pruning = PruningCallback(trial)
        callbacks: list[Callback] = [pruning]
        logger = None
        if self.mlflow:
            from aekit.training.mlflow_log import MLflowLogger

            logger = MLflowLogger(self.mlflow, self.experiment, run_dir=trial_dir,
                                  run_name=f"{self.study_name}-trial-{trial.number}",
                                  tags={"optuna.study": self.study_name,
                                        "optuna.trial": trial.number},
                                  end_with_training=False, client=self._client)
            callbacks.append(logger)
        t0 = time.perf_counter()
        try:
            summary = train_prepared(member, trial_dir, callbacks)
        except TrainingError as exc:
            trial.set_user_attr("error", str(exc))
            trial.set_user_attr("seconds", time.perf_counter() - t0)
            return math.nan  # a failed trial (Optuna records nan as FAIL)
        finally:
            for path in list_checkpoints(trial_dir) if trial_dir.is_dir() else ():
                path.unlink(missing_ok=True)
        for key in ("val_mse", "pca_val_mse", "test_mse", "pca_test_mse", "test_sse_per_sample",
                    "pca_test_sse_per_sample", "ratio_to_pca", "epochs", "pca_components"):
            if key in summary:
                trial.set_user_attr(key, summary[key])
        trial.set_user_attr("seconds", time.perf_counter() - t0)
        trial.set_user_attr("findings", [f.get("kind") for f in summary.get("findings") or []])
        if pruning.pruned_at is not None:
            trial.set_user_attr("pruned_at", pruning.pruned_at)
            if logger is not None:
                logger.set_tags({"optuna.state": "PRUNED"})
            raise optuna.TrialPruned(f"pruned at epoch {pruning.pruned_at}")
        if logger is not None:
            logger.set_tags({"optuna.state": "COMPLETE"})
        return float(summary["val_mse"])

    def report(self, study: Any, trial: Any) -> None:
        """One line per finished trial."""
        attrs = trial.user_attrs
        opts = " ".join(f"{k}={cell(v)}" for k, v in attrs.get("options", {}).items())
        head = f"trial {trial.number:>3}"
        if attrs.get("defaults"):
            head += " (aekit defaults)"
        if attrs.get("error"):
            what = f"failed: {attrs['error']}"
        elif attrs.get("pruned_at"):
            what = f"pruned at epoch {attrs['pruned_at']}"
        else:
            what = f"val MSE {num(trial.value)} ({ratio_text({'val_mse': trial.value, **attrs})}x PCA)"
        print(f"{head}: {what}  {int_text(attrs.get('epochs'))} epochs  "
              f"{secs(attrs.get('seconds'))}s  {opts}", flush=True)


def _option(cfg: RunConfig, name: str) -> Any:
    for section in cfg.to_dict().values():
        if name in section:
            return section[name]
    return None


def _result(study: Any, storage: str, search: list[str], ran: int, seconds: float,
            out_dir: Path) -> TuneResult:
    rows = [row_of(t) for t in study.trials]
    counts = {state: sum(1 for r in rows if r["state"] == state)
              for state in ("COMPLETE", "PRUNED", "FAIL", "RUNNING", "WAITING")}
    complete = [r for r in rows if r["state"] == "COMPLETE" and r.get("val_mse") is not None]
    best = min(complete, key=lambda r: r["val_mse"]) if complete else None
    defaults = next((r for r in rows if r.get("defaults")), None)
    return TuneResult(study.study_name, storage, list(search), rows, best, defaults, ran,
                      seconds, str(out_dir), counts={k: v for k, v in counts.items() if v})


def _write(result: TuneResult, run: PreparedRun, search: list[str], out_dir: Path) -> None:
    """``tune.md``, ``tune.json`` and (with a complete trial) ``best.toml``."""
    out_dir.mkdir(parents=True, exist_ok=True)
    if result.best is not None:
        import optuna

        best = result.best
        changes = suggest(optuna.trial.FixedTrial(best["params"]), search, run)
        cfg = data_defaults(run.config.replace(**changes), len(run.train_index),
                            run.n_features, run.data.kind)
        path = out_dir / "best.toml"
        finished = sum(result.counts.get(s, 0) for s in FINISHED)
        write_best_toml(path, cfg, search, [
            f"aekit tune: the best of {finished} finished trials of study "
            f"{result.study_name!r} ({result.storage}): trial {best['number']}",
            f"validation MSE {num(best.get('val_mse'))} (PCA-{best.get('pca_components', '')}"
            f": {num(best.get('pca_val_mse'))})",
            f"train it: aekit train --config {path} --out runs/best "
            "(flags typed after it win, e.g. --epochs 200)"])
        result.best_toml = str(path)
    buffer = io.StringIO()
    buffer.write(f"# aekit tune: study {result.study_name}\n\n{result.table()}\n\n")
    for label, row in (("aekit defaults", result.defaults), ("best", result.best)):
        if row is not None:
            buffer.write(f"{best_line(label, row)}\n\n")
    atomic_write_bytes(out_dir / "tune.md", buffer.getvalue().encode())
    write_json(out_dir / "tune.json", result.to_dict())


__all__ = ["DEFAULT_SEARCH", "FINISHED", "SEARCHABLE", "SESSION_OPTIONS", "PruningCallback",
           "TuneResult", "best_line", "default_params", "funnel", "parse_search", "row_of",
           "suggest", "toml_value", "tune", "write_best_toml"]
