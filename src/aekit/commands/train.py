"""``aekit train``: train an autoencoder, compare it with PCA, write the run folder."""

from __future__ import annotations

import argparse
import time
from pathlib import Path

from aekit.commands.common import add_config_options, config_from_args


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("train", help="train an autoencoder and compare it with PCA",
                       description="Train an autoencoder on --data, score it on --test (or a "
                       "held-back split) next to PCA at the same latent size, and write the "
                       "run folder.", formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--out", default=None,
                   help="run folder (default: runs/<data>-<date>-<time>)")
    p.add_argument("--config", default=None, help="JSON or TOML file of options (flat or "
                   "sectioned as in a run's config.json); flags override it")
    add_config_options(p)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from aekit.runner import format_summary, train_run
    from aekit.training import distributed

    cfg = config_from_args(args)
    out = args.out or f"runs/{Path(cfg.data.data).name.replace(':', '-')}-" \
                      f"{time.strftime('%Y%m%d-%H%M%S')}"
    if cfg.train.nproc > 1 and not distributed.launched_by_torchrun():
        return distributed.relaunch(cfg, out)  # aekit train --nproc N
    if distributed.init_from_env(cfg.train.device) > 1:
        out = distributed.main_string(out)  # one run folder, named by rank 0
        if not distributed.is_main_process():  # one progress bar, one writer of files
            cfg = cfg.replace(progress=False, report=False, tensorboard=None)
    main = distributed.is_main_process()
    try:
        summary = train_run(cfg, out)
    finally:
        distributed.shutdown()
    if main:
        print(format_summary(summary, out))
    return 0


