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
"""

from __future__ import annotations

import io
import json
import math
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence

from aekit.config import RunConfig, SECTIONS, load_config_file
from aekit.errors import ConfigError, TrainingError
from aekit.pipeline import PreparedRun, data_defaults, prepare_spec, with_config
from aekit.runner import train_prepared
from aekit.serialization import atomic_write_bytes, write_json
from aekit.training.callbacks import Callback
from aekit.training.checkpoint import list_checkpoints

SEARCHABLE = ("lr", "hidden", "activation", "batch_norm", "residual", "dropout",
              "weight_decay", "batch_size", "latent_dim")
DEFAULT_SEARCH = SEARCHABLE[:-1]  # the latent size only when asked
LR_RANGE = (1e-4, 3e-2)
WIDTH_RANGE = (16, 1024)
MAX_DEPTH = 3
ACTIVATIONS = ("relu", "leaky_relu", "elu", "gelu", "tanh")
MAX_DROPOUT, DROPOUT_STEP = 0.3, 0.05
WEIGHT_DECAYS = (0.0, 1e-5, 1e-4, 1e-3, 1e-2)
BATCH_SIZES = (16, 32, 64, 128, 256)
MAX_TUNED_LATENT = 64
PRUNE_AFTER = 0.3  # no pruning in the first 30% of a trial's epochs (one-cycle warms up 25%)
PRUNER_STARTUP = 5  # finished trials before the pruner stops any
TPE_STARTUP = 8  # random trials before TPE models the results
# options about how a run is run, not what is trained: not part of a study's identity and
# not written to best.toml
SESSION_OPTIONS = ("progress", "resume", "nproc", "report", "tensorboard", "threads", "device")
FINISHED = ("COMPLETE", "PRUNED", "FAIL")


# -- the search space -------------------------------------------------------------------------
def funnel(width: int, depth: int, latent: int) -> tuple[int, ...]:
    """``depth`` encoder widths starting at ``width``, each half the previous one, never
    narrower than the code: ``funnel(512, 3, 30) == (512, 256, 128)``."""
    return tuple(max(int(latent), int(width) >> i) for i in range(int(depth)))


def batch_choices(n_train: int) -> list[int]:
    """The batch sizes worth trying on ``n_train`` rows (no batch larger than the data)."""
    return [b for b in BATCH_SIZES if b <= n_train] or [BATCH_SIZES[0]]


def latent_range(n_features: int) -> tuple[int, int]:
    """Smallest and largest latent size tried by ``--tune-latent``."""
    return min(2, n_features - 1), max(1, min(MAX_TUNED_LATENT, n_features - 1))


def suggest(trial: Any, search: Sequence[str], run: PreparedRun) -> dict[str, Any]:
    """The options of one trial, asked of ``trial`` (an Optuna trial, or ``FixedTrial``);
    returns changes for :func:`aekit.pipeline.with_config`."""
    changes: dict[str, Any] = {}
    latent = run.config.model.latent_dim
    if "latent_dim" in search:
        latent = changes["latent_dim"] = trial.suggest_int(
            "latent_dim", *latent_range(run.n_features), log=True)
    if "lr" in search:
        changes["lr"] = trial.suggest_float("lr", *LR_RANGE, log=True)
    if "hidden" in search:
        depth = trial.suggest_int("depth", 1, MAX_DEPTH)
        width = trial.suggest_int("width", *WIDTH_RANGE, log=True)
        changes["hidden"] = funnel(width, depth, latent)
    if "activation" in search:
        changes["activation"] = trial.suggest_categorical("activation", list(ACTIVATIONS))
    for switch in ("batch_norm", "residual"):
        if switch in search:
            changes[switch] = trial.suggest_categorical(switch, [False, True])
    if "dropout" in search:
        rate = round(trial.suggest_float("dropout", 0.0, MAX_DROPOUT, step=DROPOUT_STEP), 2)
        changes["dropout"] = rate or None
    if "weight_decay" in search:
        changes["weight_decay"] = trial.suggest_categorical("weight_decay",
                                                            list(WEIGHT_DECAYS)) or None
    if "batch_size" in search:
        changes["batch_size"] = trial.suggest_categorical(
            "batch_size", batch_choices(len(run.train_index)))
    return changes


def default_params(run: PreparedRun, search: Sequence[str]) -> dict[str, Any]:
    """aekit's defaults for this data as the search space's parameters (trial 0); a default
    the space cannot express is left to the sampler."""
    cfg = run.config
    params: dict[str, Any] = {}
    latent = cfg.model.latent_dim
    low, high = latent_range(run.n_features)
    if "latent_dim" in search and latent is not None and low <= latent <= high:
        params["latent_dim"] = latent
    if "lr" in search and not cfg.train.lr_auto and LR_RANGE[0] <= cfg.optim.lr <= LR_RANGE[1]:
        params["lr"] = cfg.optim.lr
    hidden = cfg.model.hidden or ()
    if "hidden" in search and 1 <= len(hidden) <= MAX_DEPTH and \
            WIDTH_RANGE[0] <= hidden[0] <= WIDTH_RANGE[1] and \
            funnel(hidden[0], len(hidden), latent or 1) == tuple(hidden):
        params.update(depth=len(hidden), width=hidden[0])
    if "activation" in search and cfg.model.activation in ACTIVATIONS:
        params["activation"] = cfg.model.activation
    for switch in ("batch_norm", "residual"):
        if switch in search:
            params[switch] = getattr(cfg.model, switch)
    rate = cfg.model.dropout or 0.0
    if "dropout" in search and rate <= MAX_DROPOUT and \
            abs(rate / DROPOUT_STEP - round(rate / DROPOUT_STEP)) < 1e-9:
        params["dropout"] = rate
    if "weight_decay" in search and (cfg.optim.weight_decay or 0.0) in WEIGHT_DECAYS:
        params["weight_decay"] = cfg.optim.weight_decay or 0.0
    if "batch_size" in search and cfg.train.batch_size in batch_choices(len(run.train_index)):
        params["batch_size"] = cfg.train.batch_size
    return params


def parse_search(text: str | Sequence[str] | None, tune_latent: bool = False) -> list[str]:
    """``"lr,hidden"`` (or a list; None: :data:`DEFAULT_SEARCH`) -> the options to search.

    Raises:
        ConfigError: an option that cannot be searched.
    """
    if text is None:
        names = list(DEFAULT_SEARCH)
    else:
        names = [p.strip() for p in text.split(",")] if isinstance(text, str) else list(text)
        names = [n for n in names if n]
    unknown = [n for n in names if n not in SEARCHABLE]
    if unknown or not (names or tune_latent):
        raise ConfigError(f"`search` must name options among {', '.join(SEARCHABLE)}. "
                          f"Received: search={text!r}")
    if tune_latent and "latent_dim" not in names:
        names.append("latent_dim")
    return [n for n in SEARCHABLE if n in names]


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


# -- results ----------------------------------------------------------------------------------
@dataclass
class TuneResult:
    """The study's trials (all of them, earlier calls included) and the best one."""

    study_name: str
    storage: str
    search: list[str]
    rows: list[dict[str, Any]]
    best: dict[str, Any] | None
    defaults: dict[str, Any] | None
    ran: int = 0
    seconds: float = 0.0
    out_dir: str = ""
    best_toml: str | None = None
    counts: dict[str, int] = field(default_factory=dict)

    def table(self) -> str:
        """The trials in Markdown, best marked with ``*``."""
        columns = [c for c in ("latent_dim", "lr", "hidden", "activation", "batch_norm",
                               "residual", "dropout", "weight_decay", "batch_size")
                   if c in self.search]
        head = ["trial", "state", "val MSE", "/ PCA", "epochs", "s", *columns]
        text = ("state", "hidden", "activation", "batch_norm", "residual")
        lines = ["| " + " | ".join(head) + " |",
                 "|" + "|".join("---" if h in text else "---:" for h in head) + "|"]
        best = self.best["number"] if self.best else None
        for row in self.rows:
            opts = row.get("options", {})
            name = f"{row['number']}" + (" *" if row["number"] == best else "") + \
                (" (defaults)" if row.get("defaults") else "")
            state = row["state"].lower()
            if row.get("pruned_at"):
                state = f"pruned at {row['pruned_at']}"
            elif row.get("error"):
                state = "failed"
            cells = [name, state, _num(row.get("val_mse")), _ratio(row), _int(row.get("epochs")),
                     _secs(row.get("seconds")), *(_cell(opts.get(c)) for c in columns)]
            lines.append("| " + " | ".join(cells) + " |")
        return "\n".join(lines)

    def to_dict(self) -> dict[str, Any]:
        return {"study_name": self.study_name, "storage": self.storage, "search": self.search,
                "counts": self.counts, "ran_this_call": self.ran,
                "seconds_this_call": self.seconds, "best": self.best,
                "defaults": self.defaults, "best_toml": self.best_toml, "trials": self.rows}


def _num(v: Any) -> str:
    return f"{v:.5g}" if isinstance(v, (int, float)) and math.isfinite(v) else "-"


def _int(v: Any) -> str:
    return str(int(v)) if isinstance(v, (int, float)) else "-"


def _secs(v: Any) -> str:
    return f"{v:.1f}" if isinstance(v, (int, float)) else "-"


def _ratio(row: dict[str, Any]) -> str:
    v, p = row.get("val_mse"), row.get("pca_val_mse")
    if isinstance(v, (int, float)) and isinstance(p, (int, float)) and p > 0:
        return f"{v / p:.3f}"
    return "-"


def _cell(v: Any) -> str:
    if isinstance(v, bool):
        return "yes" if v else "-"
    if isinstance(v, (list, tuple)):
        return ",".join(map(str, v))
    if v is None:
        return "-"
    if isinstance(v, float):
        return f"{v:.3g}"
    return str(v)


def row_of(trial: Any) -> dict[str, Any]:
    """One trial as a plain dictionary (``tune.json``)."""
    attrs = dict(trial.user_attrs)
    row = {"number": trial.number, "state": trial.state.name, "params": dict(trial.params),
           **attrs}
    if trial.state.name == "COMPLETE":
        row["val_mse"] = trial.value
    return row


def best_line(label: str, row: dict[str, Any]) -> str:
    """``best (trial 7): val MSE ... test error ...``."""
    k = row.get("pca_components", "")
    text = (f"{label} (trial {row['number']}): val MSE {_num(row.get('val_mse'))} "
            f"(PCA-{k}: {_num(row.get('pca_val_mse'))}, {_ratio(row)}x)")
    if "test_sse_per_sample" in row:
        text += (f", test error (squared error per sample) {_num(row['test_sse_per_sample'])}"
                 f" (PCA-{k}: {_num(row.get('pca_test_sse_per_sample'))})")
    return text + f", {_int(row.get('epochs'))} epochs, {_secs(row.get('seconds'))} s"


# -- best.toml --------------------------------------------------------------------------------
def toml_value(value: Any) -> str:
    """A TOML value for an option (strings, numbers, booleans, lists of numbers)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return repr(value) if math.isfinite(value) else \
            ("nan" if math.isnan(value) else ("inf" if value > 0 else "-inf"))
    if isinstance(value, str):
        return json.dumps(value)  # JSON's escapes are TOML's
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(toml_value(v) for v in value) + "]"
    raise TypeError(f"no TOML form for {value!r}")


def best_options(cfg: RunConfig, search: Sequence[str]) -> dict[str, dict[str, Any]]:
    """The options ``best.toml`` holds, by section: those that differ from aekit's defaults
    and those searched (the data-chosen ones, e.g. ``hidden``, included), without the
    options about how a run is run (:data:`SESSION_OPTIONS`)."""
    default = RunConfig().to_dict()
    out: dict[str, dict[str, Any]] = {}
    for section, values in cfg.to_dict().items():
        for key, value in values.items():
            if key in SESSION_OPTIONS:
                continue
            if key in search or key == "latent_dim" or value != default[section][key]:
                out.setdefault(section, {})[key] = value
    return out


def write_best_toml(path: Path, cfg: RunConfig, search: Sequence[str],
                    comments: Sequence[str]) -> None:
    """Write ``best.toml`` (sectioned, as a run's ``config.json``) and check that it reads
    back as ``cfg``'s options."""
    lines = [f"# {c}" for c in comments]
    options = best_options(cfg, search)
    for section in SECTIONS:
        values = options.get(section)
        if not values:
            continue
        lines += ["", f"[{section}]"]
        for key, value in values.items():
            if value is None:  # TOML has no null: say it instead
                default = getattr(getattr(RunConfig(), section), key)
                lines.append(f"# {key}: off (aekit's default)" if default is None else
                             f"# {key}: off -- give --{key.replace('_', '-')} none to "
                             "aekit train (TOML has no null)")
                continue
            if section == "data" and key in ("data", "test") and Path(value).exists():
                value = str(Path(value).resolve())  # a path that works from any folder
            lines.append(f"{key} = {toml_value(value)}")
    atomic_write_bytes(path, ("\n".join(lines) + "\n").encode())
    back = RunConfig.from_dict(load_config_file(path)).to_dict()
    for section, values in options.items():
        for key, value in values.items():
            if value is not None and key not in ("data", "test") and \
                    back[section][key] != value:
                raise RuntimeError(f"{path}: {key} reads back as {back[section][key]!r}, "
                                   f"not {value!r}")


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
        opts = " ".join(f"{k}={_cell(v)}" for k, v in attrs.get("options", {}).items())
        head = f"trial {trial.number:>3}"
        if attrs.get("defaults"):
            head += " (aekit defaults)"
        if attrs.get("error"):
            what = f"failed: {attrs['error']}"
        elif attrs.get("pruned_at"):
            what = f"pruned at epoch {attrs['pruned_at']}"
        else:
            what = f"val MSE {_num(trial.value)} ({_ratio({'val_mse': trial.value, **attrs})}x PCA)"
        print(f"{head}: {what}  {_int(attrs.get('epochs'))} epochs  "
              f"{_secs(attrs.get('seconds'))}s  {opts}", flush=True)


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
            f"validation MSE {_num(best.get('val_mse'))} (PCA-{best.get('pca_components', '')}"
            f": {_num(best.get('pca_val_mse'))})",
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
