"""``aekit train``: train an autoencoder, compare it with PCA, write the run folder."""

from __future__ import annotations

import argparse
import time
from pathlib import Path
from typing import Any

from aekit.commands.common import (add_config_options, add_json_option, config_from_args,
                                   human_output_to_stderr, print_json)

# aekit.training.mlflow_log.DEFAULT_URI, named here so that building the parser does not import
# the training code (and PyTorch); tests/test_cli_speed.py checks that the two agree.
MLFLOW_DEFAULT_URI = "sqlite:///mlflow.db"


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("train", help="train an autoencoder and compare it with PCA",
                       description="Train an autoencoder on --data, score it on --test (or a "
                       "held-back split) next to PCA at the same latent size, and write the "
                       "run folder.", formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--out", default=None,
                   help="run folder (default: runs/<data>-<date>-<time>)")
    p.add_argument("--config", default=None, help="JSON or TOML file of options (flat or "
                   "sectioned as in a run's config.json); flags override it")
    add_json_option(p, "the run's summary (summary.json, plus run_dir and mlflow when logged)")
    add_mlflow_options(p)
    add_config_options(p)
    p.set_defaults(func=run)


def add_mlflow_options(p: argparse.ArgumentParser, experiment_default: str | None = "aekit"
                       ) -> None:
    """``--mlflow [URI]`` and ``--mlflow-experiment NAME`` (``aekit train``, ``aekit tune``,
    whose default experiment, None, is the study's name)."""
    group = p.add_argument_group("tracking")
    group.add_argument("--mlflow", nargs="?", const=MLFLOW_DEFAULT_URI, default=None,
                       metavar="URI",
                       help="log the run to MLflow: every option as a param, the losses and "
                       "lr per epoch, the PCA comparison, the doctor's findings and the run "
                       f"folder's files (default URI when the flag is given: "
                       f"{MLFLOW_DEFAULT_URI}, a file in the working folder; any MLflow "
                       "tracking URI). Needs pip install 'aekit[mlflow]'")
    group.add_argument("--mlflow-experiment", default=experiment_default, metavar="NAME",
                       help="MLflow experiment (default: "
                       f"{experiment_default or 'the study name'})")


def run(args: argparse.Namespace) -> int:
    cfg = config_from_args(args)  # bad options are refused before PyTorch is imported
    out = args.out or f"runs/{Path(cfg.data.data).name.replace(':', '-')}-" \
                      f"{time.strftime('%Y%m%d-%H%M%S')}"
    with human_output_to_stderr(args.json):
        code, document = _train(args, cfg, out)
    if args.json and document is not None:
        print_json(document)
    return code


def _train(args: argparse.Namespace, cfg: Any, out: str) -> tuple[int, dict[str, Any] | None]:
    """Train, print the human summary; return the exit code and the JSON document (the
    summary, the run folder and where MLflow logged it; None where this process has none)."""
    from aekit.runner import format_summary, train_run
    from aekit.training import distributed

    if cfg.train.nproc > 1 and not distributed.launched_by_torchrun():
        if args.mlflow:  # the store opens (or the missing extra is named) before training
            from aekit.training.mlflow_log import open_client

            open_client(args.mlflow)
        code = distributed.relaunch(cfg, out)  # aekit train --nproc N
        if code != 0:
            return code, None
        document = None
        if args.json:  # the workers printed theirs (to stderr); the summary is in the folder
            from aekit.serialization import read_json

            document = {"run_dir": out, **read_json(Path(out) / "summary.json", "run summary")}
        if args.mlflow:  # torchrun's processes do not log: the folder is
            from aekit.training.mlflow_log import log_run_folder

            run_id = log_run_folder(out, args.mlflow, args.mlflow_experiment,
                                    resume=cfg.train.resume)
            print(mlflow_line(args.mlflow, args.mlflow_experiment, run_id))
            if document is not None:
                document["mlflow"] = mlflow_record(args.mlflow, args.mlflow_experiment, run_id)
        return code, document
    if distributed.init_from_env(cfg.train.device) > 1:
        out = distributed.main_string(out)  # one run folder, named by rank 0
        if not distributed.is_main_process():  # one progress bar, one writer of files
            cfg = cfg.replace(progress=False, report=False, tensorboard=None)
    main = distributed.is_main_process()
    callbacks = []
    if main and getattr(args, "mlflow", None):
        from aekit.training.mlflow_log import MLflowLogger

        callbacks.append(MLflowLogger(args.mlflow, args.mlflow_experiment, run_dir=out,
                                      resume=cfg.train.resume, end_with_training=False))
    try:
        summary = train_run(cfg, out, callbacks)
    finally:
        distributed.shutdown()
    if not main:
        return 0, None
    print(format_summary(summary, out))
    document = {"run_dir": str(out), **summary}
    for logger in callbacks:
        print(mlflow_line(logger.tracking_uri, logger.experiment, logger.run_id))
        document["mlflow"] = mlflow_record(logger.tracking_uri, logger.experiment,
                                           logger.run_id)
    return 0, document


def mlflow_line(uri: str, experiment: str, run_id: str | None) -> str:
    """Where the run was logged, and how to look at it."""
    return (f"mlflow: run {run_id} in experiment {experiment!r} of {uri} "
            f"(mlflow ui --backend-store-uri {uri})")


def mlflow_record(uri: str, experiment: str, run_id: str | None) -> dict[str, Any]:
    """Where the run was logged, for ``--json``."""
    return {"tracking_uri": uri, "experiment": experiment, "run_id": run_id}
