"""MLflow tracking: ``aekit train --mlflow [URI]``, and :class:`MLflowLogger` in Python.

    ae.fit(x, callbacks=[MLflowLogger("sqlite:///mlflow.db")])

One MLflow run per training run, in the experiment ``aekit`` unless told otherwise:

- **params**: every option of the run (``latent_dim``, ``hidden`` as ``128,64``, ``lr`` ...),
  after the run pipeline filled in the defaults that depend on the data, plus ``n_train``,
  ``n_features``, ``batch_size`` and ``epochs`` as the trainer used them;
- **metrics**, step = epoch (1, 2, ...): ``train_loss``, ``val_loss``, ``lr`` (at the epoch's
  end), ``samples_per_second``, ``epoch_seconds``; written in batches (at most one write per
  :data:`FLUSH_SECONDS`, and at the end) so that runs of many short epochs do not wait on
  the store;
- **at the end**: the PCA comparison and the training doctor's findings (metrics
  ``pca_val_loss`` and ``best_val_loss`` beside the per-epoch ``val_loss``; ``val_mse``,
  ``pca_val_mse``, ``test_mse``, ``pca_test_mse``, ``ratio_to_pca`` ... from ``summary.json``
  when there is a run folder; tags ``aekit.findings`` and ``aekit.pca_check``;
  ``findings.json`` and ``events.json`` as artifacts);
- **artifacts** (``aekit train``): the run folder's ``model.safetensors``, ``config.json``,
  ``summary.json``, ``metrics.jsonl`` and, when made, ``report.html`` and pictures.

The run's id is kept in the run folder (``mlflow.json``), so ``aekit train --resume --mlflow``
continues the same MLflow run: epochs already in it are not logged twice (a resume is exact, so
the epochs trained again after the checkpoint have the values already logged).

Offline by default: the default store is a SQLite file (``sqlite:///mlflow.db`` in the working
folder) with the artifacts in a folder beside it (``mlruns/``), and MLflow's usage telemetry is
turned off (``MLFLOW_DISABLE_TELEMETRY``, ``DO_NOT_TRACK``) before MLflow is imported, so
nothing tries the network. Any tracking URI MLflow accepts works (an ``http://`` server too).
Look at the runs with ``mlflow ui --backend-store-uri sqlite:///mlflow.db``.
"""

from __future__ import annotations

import json
import logging
import math
import os
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any, Iterable

from aekit.errors import ConfigError
from aekit.training.callbacks import Callback

if TYPE_CHECKING:
    from aekit.training.trainer import Trainer

DEFAULT_URI = "sqlite:///mlflow.db"
DEFAULT_EXPERIMENT = "aekit"
RUN_FILE = "mlflow.json"  # in the run folder: where the run is tracked, for --resume
ARTIFACTS = ("model.safetensors", "config.json", "summary.json", "metrics.jsonl",
             "report.html")
FLUSH_SECONDS = 2.0
EPOCH_METRICS = {"train_loss": "train_loss", "val_loss": "val_loss", "lr": "lr",
                 "samples_per_second": "samples_per_second", "seconds": "epoch_seconds"}
SUMMARY_METRICS = ("val_mse", "pca_val_mse", "test_mse", "test_sse_per_sample", "pca_test_mse",
                   "pca_test_sse_per_sample", "ratio_to_pca", "train_seconds",
                   "final_train_loss", "epochs", "steps", "skipped_steps")
DATA_PARAMS = ("n_train", "n_val", "n_test", "n_features", "pca_components")
# options that say how a run was run, not what was trained: not params
NOT_PARAMS = ("progress", "resume")


def offline_environment() -> None:
    """Turn off MLflow's usage telemetry (its only network use with a local store) and quiet
    the database set-up messages; call before MLflow is imported."""
    os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
    os.environ.setdefault("DO_NOT_TRACK", "true")
    for name in ("alembic", "mlflow.store.db.utils"):
        logging.getLogger(name).setLevel(logging.WARNING)


def artifact_root(tracking_uri: str) -> str | None:
    """Where a new experiment keeps its artifacts: ``mlruns/`` beside a SQLite store (so a
    store and its files stay together, whatever the working folder); None: MLflow's choice."""
    if not tracking_uri.startswith("sqlite:///"):
        return None
    db = Path(tracking_uri[len("sqlite:///"):])
    return (db.resolve().parent / "mlruns").as_uri()


def open_client(tracking_uri: str) -> Any:
    """An ``MlflowClient`` on ``tracking_uri`` (a SQLite store's folder is created).

    Raises:
        ConfigError: mlflow is not installed (naming the extra), or the store cannot be opened.
    """
    from aekit.optional import require

    require("mlflow", "mlflow", "--mlflow (MLflow tracking)")
    if not isinstance(tracking_uri, str) or not tracking_uri.strip():
        raise ConfigError(f"`--mlflow` must be a tracking URI such as {DEFAULT_URI}. "
                          f"Received: {tracking_uri!r}")
    offline_environment()
    from mlflow.tracking import MlflowClient

    if tracking_uri.startswith("sqlite:///"):
        Path(tracking_uri[len("sqlite:///"):]).resolve().parent.mkdir(parents=True,
                                                                      exist_ok=True)
    try:
        client = MlflowClient(tracking_uri=tracking_uri)
        client.search_experiments(max_results=1)  # opens (and creates) the store now
    except Exception as exc:  # MlflowException, sqlalchemy errors...
        raise ConfigError(f"--mlflow {tracking_uri}: the MLflow store could not be opened: "
                          f"{exc}. Allowed: an MLflow tracking URI such as {DEFAULT_URI} "
                          "or sqlite:////absolute/path.db") from exc
    return client


def experiment_id(client: Any, name: str, tracking_uri: str) -> str:
    """The id of experiment ``name``, created (artifacts beside a SQLite store) if needed."""
    found = client.get_experiment_by_name(name)
    if found is not None:
        if getattr(found, "lifecycle_stage", "active") == "deleted":
            client.restore_experiment(found.experiment_id)
        return found.experiment_id
    return client.create_experiment(name, artifact_location=artifact_root(tracking_uri))


def param_text(value: Any) -> str:
    """An option as MLflow stores it: ``128,64`` for widths, ``None`` for off."""
    if isinstance(value, (list, tuple)):
        return ",".join(str(v) for v in value)
    return str(value)


def flat_options(config: Any) -> dict[str, Any]:
    """Every option of a :class:`~aekit.config.RunConfig` (or its sectioned dict), flat."""
    sections = config.to_dict() if hasattr(config, "to_dict") else config
    return {k: v for section in sections.values() if isinstance(section, dict)
            for k, v in section.items()}


def _finite(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) \
        and math.isfinite(value)


def findings_text(findings: Iterable[dict[str, Any]]) -> str:
    """``overfitting (low); plateau (medium)`` or ``none``."""
    parts = [f"{f.get('kind', '?')} ({str(f.get('severity', '?')).lower()})" for f in findings]
    return "; ".join(parts) or "none"


class MLflowLogger(Callback):
    """Logs a training run to MLflow (see the module's docstring for what is logged).

    Args:
        tracking_uri: the store, default ``sqlite:///mlflow.db`` (in the working folder).
        experiment: the experiment's name (created when missing).
        run_name: the MLflow run's name (default: the run folder's name, or MLflow's choice).
        run_dir: the run folder (``aekit train --out``): the run id is written there as
            ``mlflow.json``, and :meth:`end_run` logs the folder's files.
        resume: continue the MLflow run recorded in ``run_dir`` (``--resume``).
        run_id: continue this MLflow run instead.
        tags: extra tags for the run.
        end_with_training: close the MLflow run when training ends (Python use). ``aekit
            train`` leaves it open and calls :meth:`end_run` with the summary and the files.
        client: an ``MlflowClient`` on ``tracking_uri`` to share (``aekit tune``'s trials).

    Raises:
        ConfigError: mlflow is missing or the store cannot be opened (before any training).
    """

    def __init__(self, tracking_uri: str = DEFAULT_URI, experiment: str = DEFAULT_EXPERIMENT,
                 run_name: str | None = None, run_dir: str | Path | None = None,
                 resume: bool = False, run_id: str | None = None,
                 tags: dict[str, Any] | None = None, end_with_training: bool = True,
                 client: Any = None) -> None:
        self.tracking_uri = tracking_uri
        self.client = client if client is not None else open_client(tracking_uri)
        self.experiment = experiment
        self.run_dir = Path(run_dir) if run_dir is not None else None
        self.run_name = run_name or (self.run_dir.name if self.run_dir is not None else None)
        self.tags = dict(tags or {})
        self.end_with_training = end_with_training
        self.run_id = run_id or (self._recorded_run_id() if resume else None)
        self.continued = self.run_id is not None
        self._pending: list[Any] = []
        self._last_flush = 0.0
        self._logged_upto = 0  # the last epoch already in the MLflow run
        self._events: list[dict[str, Any]] = []
        self.ended = False
        self.broken = False  # a store error stopped the logging

    # -- the run ---------------------------------------------------------------------------
    def _recorded_run_id(self) -> str | None:
        """The MLflow run recorded in the run folder, if it lives in this store."""
        if self.run_dir is None or not (self.run_dir / RUN_FILE).is_file():
            return None
        try:
            record = json.loads((self.run_dir / RUN_FILE).read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return None
        if record.get("tracking_uri") != self.tracking_uri:
            return None  # tracked elsewhere before: a new run in this store
        try:
            self.client.get_run(record["run_id"])
        except Exception:
            return None  # deleted since: start a new one
        return record["run_id"]

    def start(self, options: dict[str, Any]) -> str:
        """Create (or continue) the MLflow run and log ``options`` as params; returns its id.
        Params already in a continued run are left as they are (MLflow refuses changes)."""
        from mlflow.entities import Param, RunTag

        if self.run_id is None:
            exp = experiment_id(self.client, self.experiment, self.tracking_uri)
            from aekit import __version__

            tags = {"aekit.version": __version__, **self.tags}
            if self.run_dir is not None:
                tags["aekit.run_dir"] = str(self.run_dir.resolve())
            run = self.client.create_run(exp, run_name=self.run_name,
                                         tags={k: str(v) for k, v in tags.items()})
            self.run_id = run.info.run_id
            existing: dict[str, str] = {}
        else:
            run = self.client.get_run(self.run_id)
            existing = dict(run.data.params)
            self.client.update_run(self.run_id, status="RUNNING")
            self._logged_upto = max((int(m.step) for m in self.client.get_metric_history(
                self.run_id, "train_loss")), default=0)
        if self.run_dir is not None:
            self.run_dir.mkdir(parents=True, exist_ok=True)
            (self.run_dir / RUN_FILE).write_text(json.dumps(
                {"tracking_uri": self.tracking_uri, "experiment": self.experiment,
                 "run_id": self.run_id}, indent=2) + "\n", encoding="utf-8")
        params = [Param(k, param_text(v)) for k, v in options.items()
                  if k not in NOT_PARAMS and k not in existing]
        tags = [RunTag("aekit.resumed", "true")] if self.continued else []
        for i in range(0, max(len(params), 1), 100):  # MLflow takes 100 params per call
            self.client.log_batch(self.run_id, params=params[i:i + 100],
                                  tags=tags if i == 0 else [])
        return self.run_id

    def log_epoch(self, logs: dict[str, Any], flush: bool = False) -> None:
        """Queue one epoch's metrics (step = the epoch number); written every
        :data:`FLUSH_SECONDS` or when ``flush``."""
        from mlflow.entities import Metric

        epoch = int(logs["epoch"])
        if epoch > self._logged_upto:
            stamp = int(time.time() * 1000)
            self._pending += [Metric(name, float(logs[key]), stamp, epoch)
                              for key, name in EPOCH_METRICS.items() if _finite(logs.get(key))]
            self._logged_upto = epoch
        if flush or time.monotonic() - self._last_flush >= FLUSH_SECONDS:
            self.flush()

    def flush(self) -> None:
        """Write the queued metrics."""
        while self._pending and self.run_id is not None:
            self.client.log_batch(self.run_id, metrics=self._pending[:1000])
            self._pending = self._pending[1000:]
        self._last_flush = time.monotonic()

    def log_params(self, values: dict[str, Any]) -> None:
        """Log params the run does not have yet (MLflow refuses to change one)."""
        from mlflow.entities import Param

        if self.run_id is None:
            return
        existing = self.client.get_run(self.run_id).data.params
        params = [Param(k, param_text(v)) for k, v in values.items() if k not in existing]
        if params:
            self.client.log_batch(self.run_id, params=params[:100])

    def log_metrics(self, values: dict[str, Any], step: int = 0) -> None:
        """Log the finite numbers of ``values`` once (at ``step``)."""
        from mlflow.entities import Metric

        stamp = int(time.time() * 1000)
        metrics = [Metric(k, float(v), stamp, step) for k, v in values.items() if _finite(v)]
        if metrics and self.run_id is not None:
            self.client.log_batch(self.run_id, metrics=metrics)

    def set_tags(self, tags: dict[str, Any]) -> None:
        """Tags on the run (values as text)."""
        from mlflow.entities import RunTag

        if self.run_id is not None and tags:
            self.client.log_batch(self.run_id, tags=[RunTag(k, str(v)[:5000])
                                                     for k, v in tags.items()])

    def log_outcome(self, findings: list[dict[str, Any]], events: list[dict[str, Any]]
                    ) -> None:
        """The doctor's findings and the run's events (tags and JSON artifacts), and PCA's
        validation loss on the rows of ``val_loss`` (``pca_val_loss``, from the run's
        ``pca_baseline`` event)."""
        baseline = [e for e in events if e.get("kind") == "pca_baseline"]
        kept = [e for e in events if e.get("kind") in ("best_weights", "early_stop")]
        check = [e for e in events if e.get("kind") == "pca_check"]
        tags = {"aekit.findings": findings_text(findings)}
        if check:
            tags["aekit.pca_check"] = check[-1].get("message", "")
        self.set_tags(tags)
        self.log_metrics({"pca_val_loss": baseline[-1].get("val_mse") if baseline else None,
                          "best_val_loss": kept[-1].get("best_val_loss") if kept else None,
                          "findings": len(findings)})
        self.client.log_dict(self.run_id, {"findings": findings}, "findings.json")
        self.client.log_dict(self.run_id, {"events": events}, "events.json")

    def log_files(self, folder: str | Path) -> list[str]:
        """Log the run folder's files (:data:`ARTIFACTS` and pictures) as artifacts; returns
        their names."""
        folder = Path(folder)
        names = [n for n in ARTIFACTS if (folder / n).is_file()]
        names += sorted(p.name for p in folder.glob("*.png"))
        for name in names:
            self.client.log_artifact(self.run_id, str(folder / name))
        return names

    def end_run(self, out_dir: str | Path | None = None, summary: dict[str, Any] | None = None,
                status: str = "FINISHED") -> None:
        """Log the summary's numbers and the run folder's files, and close the MLflow run
        (``status`` FINISHED, FAILED or KILLED). Does nothing before the run started or
        after it ended."""
        if self.run_id is None or self.ended or self.broken:
            return
        self.flush()
        if summary:
            self.log_metrics({k: summary.get(k) for k in SUMMARY_METRICS})
            self.log_params({k: summary[k] for k in DATA_PARAMS if k in summary})
            if "findings" in summary:
                self.set_tags({"aekit.findings": findings_text(summary["findings"] or [])})
        folder = out_dir if out_dir is not None else self.run_dir
        if folder is not None and Path(folder).is_dir():
            self.log_files(folder)
        self.client.set_terminated(self.run_id, status=status)
        self.ended = True

    # -- the callback -----------------------------------------------------------------------
    def on_train_begin(self, trainer: "Trainer") -> None:
        options = flat_options(trainer.config)  # as trained: the data's defaults filled in
        options.update(batch_size=trainer.batch_size, epochs=trainer.epochs,
                       n_features=getattr(trainer.model, "n_features", None))
        self.start({k: v for k, v in options.items()
                    if k != "n_features" or v is not None})
        for logs in trainer.history.epochs:  # a resumed run: epochs the store lacks
            self.log_epoch(logs)
        self.flush()

    def on_epoch_end(self, trainer: "Trainer", epoch: int, logs: dict[str, Any]) -> None:
        if self.broken:
            return
        try:
            if epoch == 0 and _finite(logs.get("initial_val_loss")):
                self.log_metrics({"initial_val_loss": logs["initial_val_loss"]})
            self.log_epoch(logs)
        except Exception as exc:  # the store went away: training goes on without it
            self._give_up(exc)

    def on_train_end(self, trainer: "Trainer", logs: dict[str, Any]) -> None:
        from aekit.training.findings import findings_of

        if self.broken:
            return
        try:
            self.flush()
            self.log_outcome(findings_of(trainer), list(trainer.history.events))
            if self.end_with_training:
                self.end_run(None, None)
        except Exception as exc:
            self._give_up(exc)

    def _give_up(self, exc: Exception) -> None:
        """Stop logging after an error of the store, with one warning (the run goes on)."""
        self.broken = True
        print(f"aekit: warning: MLflow logging stopped ({self.tracking_uri}): {exc}",
              file=sys.stderr, flush=True)


def log_run_folder(run_dir: str | Path, tracking_uri: str = DEFAULT_URI,
                   experiment: str = DEFAULT_EXPERIMENT, resume: bool = False) -> str:
    """Log a finished run folder (``config.json``, ``metrics.jsonl``, ``summary.json``,
    files) as one MLflow run, after the fact: ``aekit train --nproc N --mlflow``, whose
    training processes are launched by torchrun, is logged this way. Returns the run id."""
    run_dir = Path(run_dir)
    logger = MLflowLogger(tracking_uri, experiment, run_dir=run_dir, resume=resume,
                          end_with_training=False)
    config = json.loads((run_dir / "config.json").read_text(encoding="utf-8"))
    summary = json.loads((run_dir / "summary.json").read_text(encoding="utf-8"))
    options = flat_options(config.get("config", config))
    options.update(n_train=summary.get("n_train"), n_features=summary.get("n_features"))
    logger.start(options)
    records = []
    with open(run_dir / "metrics.jsonl", encoding="utf-8") as lines:
        for line in lines:
            if line.strip():
                records.append(json.loads(line))
    for logs in (r for r in records if r.get("type") == "epoch"):
        logger.log_epoch(logs)
    logger.flush()
    logger.log_outcome(summary.get("findings") or [], summary.get("events") or [])
    logger.end_run(run_dir, summary)
    return logger.run_id
