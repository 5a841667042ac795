"""``aekit explain``: see inside a trained autoencoder (a thin shell over
:mod:`aekit.explain`)."""

from __future__ import annotations

import argparse
from pathlib import Path

from aekit.commands.common import (add_device_option, add_json_option, human_output_to_stderr,
                                   print_json)


def _percentiles(text: str) -> tuple[float, float]:
    try:
        lo, hi = (float(p) for p in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be two numbers LOW,HIGH such as 5,95; "
                                         f"received {text!r}") from None
    return lo, hi


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "explain", formatter_class=argparse.ArgumentDefaultsHelpFormatter,
        help="see inside a trained model: traversals, per-feature errors, what each unit "
        "responds to",
        description="Write into --out: traversals.png (each code unit, or the codes' top "
        "principal directions when the latent size is above --max-axes, moved from a low to a "
        "high percentile with the rest of the code at its median, and decoded), "
        "feature_errors.png (each feature's reconstruction error next to PCA's at the same "
        "latent size), unit_features.png (each unit's strongest input features), "
        "traversals.npy and explain.json with all the numbers. With --out the model's run "
        "folder (the default), `aekit report` shows them in an \"Inside the model\" section.")
    p.add_argument("--model", required=True, help="model folder (a run folder)")
    p.add_argument("--data", default=None,
                   help="data spec, as for train; default: the run's own data (config.json)")
    p.add_argument("--out", default=None, help="folder for the files; default: --model")
    p.add_argument("--samples", type=int, default=2000,
                   help="rows used: a random sample of this many (fixed --seed); 0: all")
    p.add_argument("--steps", type=int, default=7, help="traversal steps")
    p.add_argument("--percentiles", type=_percentiles, default=(5.0, 95.0), metavar="LOW,HIGH",
                   help="traversal range: from the LOW to the HIGH percentile of each unit")
    p.add_argument("--attribution", choices=("correlation", "gradient"), default="correlation",
                   help="what ranks each unit's strongest input features (both are written "
                   "to explain.json)")
    p.add_argument("--max-axes", type=int, default=8,
                   help="the largest latent size traversed unit by unit; above it, the top "
                   "this many principal directions of the codes")
    p.add_argument("--no-pca", dest="pca", action="store_false",
                   help="skip the comparison with PCA")
    p.add_argument("--seed", type=int, default=0, help="seed of the row sample")
    add_device_option(p)
    add_json_option(p, "the content of explain.json")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    with human_output_to_stderr(args.json):
        import aekit
        from aekit.explain import explain, summary_lines
        from aekit.errors import ConfigError

        if args.samples < 0:
            raise ConfigError(f"`--samples` must be >= 2, or 0 for all rows. Received: "
                              f"{args.samples}")
        ae = aekit.load(args.model, device=args.device)
        data = args.data or _run_data(args.model, ae.config.data.data)
        found = explain(ae, data, samples=args.samples or None, steps=args.steps,
                        percentiles=args.percentiles, attribution=args.attribution,
                        max_axes=args.max_axes, seed=args.seed, pca=args.pca,
                        model_dir=args.model)
        out = Path(args.out if args.out is not None else args.model)
        paths = found.save(out)
        for line in summary_lines(found.to_dict()):
            print(line)
        print(f"wrote {out}/" + ", ".join(p.name for p in paths.values()))
    if args.json:
        print_json(found.to_dict())
    return 0


def _run_data(model: str, spec: str) -> str:
    """The run's own data, for a run folder written by ``aekit train``; a folder saved from
    Python (no summary.json) does not record what it was trained on."""
    from aekit.errors import ConfigError

    if not (Path(model) / "summary.json").is_file():
        raise ConfigError(f"{model} holds no summary.json (a model saved with ae.save(), not "
                          "an `aekit train` run folder), so its training data is not known: "
                          "pass --data")
    return spec
