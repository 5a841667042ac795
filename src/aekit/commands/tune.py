"""``aekit tune``: search training options with Optuna (a thin shell over
:mod:`aekit.apps.tune`)."""

from __future__ import annotations

import argparse

from aekit.commands.common import SECTIONS_BY_FIELD, add_config_options, config_from_args
from aekit.commands.train import add_mlflow_options
from aekit.errors import ConfigError

SEARCHABLE = ("lr", "hidden", "activation", "batch_norm", "residual", "dropout",
              "weight_decay", "batch_size", "latent_dim")  # aekit.apps.tune.SEARCHABLE


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "tune", help="search training options with Optuna (hyperparameter search)",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        description="Search training options with Optuna: each trial is an ordinary aekit run "
        "(OUT/trials/NNNN) on data prepared once; the objective is the validation MSE (never "
        "the test rows); hopeless trials are pruned on their per-epoch validation loss; the "
        "study lives in --storage, so the same command again continues it. Writes "
        "OUT/tune.md, OUT/tune.json and OUT/best.toml (aekit train --config OUT/best.toml). "
        "Training options given here are held fixed in every trial; the others in --search "
        "are searched. Needs pip install 'aekit[tune]'.",
        epilog="aekit sweep is the special case of one option: the latent size, every size "
        "trained, chosen by the gain per doubling.")
    p.add_argument("--out", required=True, help="folder for the results and the trials' "
                   "run folders")
    p.add_argument("--trials", type=int, default=20, help="finished trials the study should "
                   "have: a second call with the same study runs only the missing ones "
                   "(default: 20)")
    p.add_argument("--storage", default=None, help="Optuna storage: sqlite:///PATH.db, "
                   "journal:PATH (a journal file) or a database URL (default: "
                   "sqlite:///OUT/study.db)")
    p.add_argument("--study-name", default=None,
                   help="the study to create or continue (default: the data's name)")
    p.add_argument("--search", default=None, metavar="OPTIONS",
                   help="options to search, comma-separated, among " + ",".join(SEARCHABLE)
                   + " (default: all but latent_dim)")
    p.add_argument("--tune-latent", action="store_true",
                   help="search the latent size too (2 to 64); without it the latent size is "
                   "--latent-dim or aekit's default for the data")
    p.add_argument("--pruner", choices=("median", "none"), default="median",
                   help="stop trials whose validation loss is worse than the median of the "
                   "earlier trials at the same epoch (after 30%% of the epochs) "
                   "(default: median)")
    p.add_argument("--timeout", type=float, default=None, metavar="SECONDS",
                   help="start no new trial after this many seconds")
    p.add_argument("--config", default=None, help="JSON or TOML file of options held fixed "
                   "(flat or sectioned); flags override it")
    add_mlflow_options(p, experiment_default=None)
    add_config_options(p)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from aekit.config import load_config_file

    cfg = config_from_args(args)  # bad options are refused before PyTorch is imported
    from aekit.apps.tune import best_line, parse_search, tune

    if not hasattr(args, "progress"):  # one line per trial is enough
        cfg = cfg.replace(progress=False)
    given = {name for name in SECTIONS_BY_FIELD if hasattr(args, name)}
    if args.config:
        given |= set(load_config_file(args.config))
    search = parse_search(args.search, args.tune_latent)
    held = [n for n in search if n in given and not (n == "latent_dim" and args.tune_latent)]
    if held:
        print("held fixed (set by you): " + ", ".join(
            f"{n}={getattr(args, n, None) if hasattr(args, n) else 'from --config'}"
            for n in held), flush=True)
    search = [n for n in search if n not in held]
    if not search:
        raise ConfigError(f"nothing left to search: every option of --search is set by you "
                          f"({', '.join(held)}); drop some of them, or --search others")
    result = tune(cfg, args.trials, args.storage, args.out, study_name=args.study_name,
                  search=search, pruner=args.pruner, timeout=args.timeout,
                  mlflow=args.mlflow, mlflow_experiment=args.mlflow_experiment)
    print()
    print(result.table())
    counts = ", ".join(f"{v} {k.lower()}" for k, v in result.counts.items())
    print(f"\nstudy {result.study_name!r} in {result.storage}: {counts}; this call ran "
          f"{result.ran} trial(s) in {result.seconds:.1f}s")
    for label, row in (("aekit defaults", result.defaults), ("best", result.best)):
        if row is not None and row.get("state") == "COMPLETE":
            print(best_line(label, row))
    if result.best_toml:
        print(f"wrote {args.out}/tune.md, tune.json, best.toml "
              f"(aekit train --config {result.best_toml})")
    else:
        print(f"wrote {args.out}/tune.md, tune.json (no complete trial: no best.toml)")
    return 0
