"""``aekit diagnose RUN_DIR``, ``aekit lr-find`` and ``aekit study``: the training doctor on the
command line."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from aekit.commands.common import (StoreWithAlias, add_config_options, add_device_option,
                                   config_from_args)

# The strategies of `aekit study`, named here so that building the parser does not import
# aekit.apps.study (and with it PyTorch); the same keys as aekit.apps.study.STRATEGIES, which
# tests/test_cli_speed.py checks.
STRATEGY_NAMES = ("sgd", "momentum", "exp_decay", "linear_decay", "restarts", "step_decay",
                  "batch_growth", "l2", "clip", "bn", "residual", "residual_bn", "adam", "recipe")


def register(sub: argparse._SubParsersAction) -> None:
    diagnose_parser(sub)
    lr_find_parser(sub)
    study_parser(sub)


def diagnose_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("diagnose", help="explain what went wrong in a training run",
                       description="Read RUN_DIR/metrics.jsonl (and summary.json) and print the "
                       "findings, most important first, with the evidence and the advice.")
    p.add_argument("run_dir", metavar="RUN_DIR", help="a run folder written by aekit train")
    p.add_argument("--json", action="store_true", help="print the findings as JSON")
    p.set_defaults(func=run_diagnose)


def run_diagnose(args: argparse.Namespace) -> int:
    from aekit.serialization import read_json
    from aekit.training.findings import (SEVERITY_RANK, find_all, format_finding,
                                         post_run_findings, split_records)

    from aekit.training.callbacks import read_metrics

    run_dir = Path(args.run_dir)
    records = read_metrics(run_dir / "metrics.jsonl")
    findings = find_all(records)
    if (run_dir / "summary.json").is_file():  # the test set's findings (per-class errors)
        findings = sorted(findings + post_run_findings(read_json(run_dir / "summary.json",
                                                                 "run summary")),
                          key=lambda f: (SEVERITY_RANK[f.severity], f.step or 0))
    if args.json:
        print(json.dumps([f.to_dict() for f in findings], indent=2))
        return 0
    epochs, diags, events = split_records(records)
    print(f"{run_dir}: {len(epochs)} epochs, {len(diags)} diagnostics samples, "
          f"{len(events)} events")
    for event in events:
        print(f"  event at step {event.get('step')}: [{event.get('kind')}] "
              f"{event.get('message', '')}")
    if not findings:
        print("no problem found: gradients, activations and losses look healthy")
    for finding in findings:
        print(format_finding(finding))
    return 0


def lr_find_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("lr-find", help="learning-rate range test: suggest --lr",
                       description="Train a copy of the model for --num-steps steps with the "
                       "learning rate growing exponentially, save the curve (PNG + JSON) and "
                       "print the suggested --lr (the minimum of the smoothed loss / 10).")
    p.add_argument("--out", default="lr_find", help="folder for lr_find.png and lr_find.json "
                   "(default: lr_find)")
    p.add_argument("--config", default=None, help="JSON or TOML file of options")
    p.add_argument("--start-lr", type=float, default=1e-6, help="first lr (default: 1e-6)")
    p.add_argument("--end-lr", type=float, default=1.0, help="last lr (default: 1.0)")
    p.add_argument("--num-steps", type=int, default=100, help="steps (default: 100)")
    add_config_options(p)
    p.set_defaults(func=run_lr_find)


def run_lr_find(args: argparse.Namespace) -> int:
    cfg = config_from_args(args)  # bad options are refused before PyTorch is imported
    from aekit.apps.lr_find import lr_find_on_data, save_curve

    result = lr_find_on_data(cfg, args.start_lr, args.end_lr, args.num_steps)
    json_path, png_path = save_curve(result, args.out)
    note = "" if result.reliable else " (unreliable: the loss never fell; steepest descent)"
    print(f"tested {len(result.lrs)} learning rates from {result.lrs[0]:.2g} to "
          f"{result.lrs[-1]:.2g} ({cfg.optim.optimizer}, batch {cfg.train.batch_size})")
    print(f"minimum of the smoothed loss at lr {result.lr_min_loss:.3g}")
    print(f"suggested --lr {result.suggestion:.3g}{note}")
    print(f"curve: {png_path}, {json_path}")
    return 0


def study_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("study", help="train a deep sigmoid autoencoder under each strategy and "
                       "compare",
                       description="The strategy study: Hinton & Salakhutdinov's deep "
                       "autoencoder (sigmoid units) trained for the same epochs with plain "
                       "mini-batch SGD and each strategy against non-convergence and vanishing "
                       "gradients; prints and writes (study.md, study.json) the test error, its "
                       "ratio to PCA, the epochs to reach PCA, the time and the doctor's "
                       "findings for each.")
    p.add_argument("--data", default="fashion-mnist", help="training data spec, as for train "
                   "(default: fashion-mnist)")
    p.add_argument("--test", default="auto", help="test data spec (default: auto = "
                   "fashion-mnist:test for --data fashion-mnist, else 10%% of --data held back)")
    p.add_argument("--quick", action="store_true",
                   help="10,000 training samples and 4 epochs (a few minutes on 2 cores)")
    p.add_argument("--epochs", type=int, default=None, help="epochs per strategy (default: 20, "
                   "4 with --quick)")
    p.add_argument("--max-train-samples", "--n-train", type=int, default=None,
                   dest="max_train_samples", action=StoreWithAlias,
                   deprecated={"--n-train": "--max-train-samples"},
                   help="train on a random subset of this many training samples, as for aekit "
                   "sweep (default: all, 10,000 with --quick; --n-train: deprecated spelling)")
    p.add_argument("--only", default=None,
                   help="comma-separated strategies (default: all), from: "
                   f"{', '.join(STRATEGY_NAMES)}")
    p.add_argument("--hidden", default="1000,500,250",
                   help="encoder layer sizes (default: 1000,500,250)")
    p.add_argument("--latent-dim", type=int, default=30, help="code size (default: 30)")
    p.add_argument("--threads", type=int, default=1, help="CPU threads (default: 1)")
    p.add_argument("--seed", type=int, default=0, help="the same seed for every strategy "
                   "(default: 0)")
    p.add_argument("--out", default="study", help="folder for study.md and study.json "
                   "(default: study)")
    add_device_option(p, "auto", "the strategies train")
    p.set_defaults(func=run_study)


def run_study(args: argparse.Namespace) -> int:
    from aekit.apps.study import budget, study
    from aekit.errors import ConfigError

    try:
        hidden = tuple(int(v) for v in args.hidden.split(",") if v.strip())
    except ValueError:
        raise ConfigError(f"--hidden takes comma-separated layer sizes such as 1000,500,250. "
                          f"Received: {args.hidden!r}") from None
    epochs, max_train_samples = budget(args.quick, args.epochs, args.max_train_samples)
    result = study(args.data, args.test,  # "auto": decided by the study (default_test)
                   strategies=args.only.split(",") if args.only is not None else None,
                   epochs=epochs, max_train_samples=max_train_samples, seed=args.seed,
                   threads=args.threads, device=args.device,
                   hidden=hidden, latent_dim=args.latent_dim, out_dir=args.out,
                   log=lambda line: print(line, flush=True))
    print(result["table"])
    print(f"written: {args.out}/study.md, {args.out}/study.json")
    return 0
