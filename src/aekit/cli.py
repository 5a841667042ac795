"""Command line: ``aekit VERB [options]``. One ``*_parser`` function per verb, registered in
``VERBS``; ``main`` dispatches. Errors from bad input print one line and exit 2; a run that
cannot go on (training error) exits 1.
"""

from __future__ import annotations

import argparse
import dataclasses
import io
import json
import sys
import time
import types
import typing
from pathlib import Path
from typing import Any, Callable

from aekit.config import SECTIONS, RunConfig, load_config_file
from aekit.errors import AekitError, ConfigError, DataError, TrainingError

# Flags whose names differ from the field name, and short help-group titles.
_GROUP_TITLES = {"data": "data", "model": "model", "optim": "optimizer and penalties",
                 "schedule": "learning-rate schedule", "train": "training loop"}


def _none_or(kind: Callable[[str], Any]) -> Callable[[str], Any]:
    def parse(text: str) -> Any:
        return None if text.strip().lower() in ("none", "off", "") else kind(text)
    parse.__name__ = kind.__name__
    return parse


def _field_type(f: dataclasses.Field) -> tuple[Callable[[str], Any] | None, bool]:
    """argparse ``type`` for a config field and whether it is a boolean switch."""
    hint = typing.get_type_hints(SECTIONS_BY_FIELD[f.name])[f.name]
    args = [a for a in typing.get_args(hint) if a is not type(None)]
    optional = type(None) in typing.get_args(hint)
    base = args[0] if isinstance(hint, types.UnionType) or typing.get_origin(hint) else hint
    if base is bool:
        return None, True
    if typing.get_origin(base) is tuple or base is tuple:
        kind: Callable[[str], Any] = str  # "1000,500,250", parsed by the config
    elif base is int:
        kind = int
    elif base is float:
        kind = float
    else:
        kind = str
    return (_none_or(kind) if optional else kind), False


SECTIONS_BY_FIELD = {f.name: klass for klass in SECTIONS.values()
                     for f in dataclasses.fields(klass)}


def add_config_options(parser: argparse.ArgumentParser) -> None:
    """One ``--flag`` per configuration field, default shown, value SUPPRESSed when not given
    (so that a ``--config`` file's values are only overridden by flags actually typed)."""
    for section, klass in SECTIONS.items():
        group = parser.add_argument_group(_GROUP_TITLES[section])
        for f in dataclasses.fields(klass):
            flag = "--" + f.name.replace("_", "-")
            default = f.default if f.default is not dataclasses.MISSING else None
            shown = ",".join(map(str, default)) if isinstance(default, tuple) else default
            help_text = f"{f.metadata.get('help', '')} (default: {shown})"
            kind, is_bool = _field_type(f)
            if is_bool:
                group.add_argument(flag, action=argparse.BooleanOptionalAction,
                                   default=argparse.SUPPRESS, help=help_text)
            else:
                group.add_argument(flag, type=kind, default=argparse.SUPPRESS, help=help_text,
                                   metavar=f.name.upper())


def config_from_args(args: argparse.Namespace) -> RunConfig:
    """Defaults, then the ``--config`` file, then the flags typed on the command line."""
    values: dict[str, Any] = {}
    if getattr(args, "config", None):
        values.update(load_config_file(args.config))
    for name in SECTIONS_BY_FIELD:
        if hasattr(args, name):
            values[name] = getattr(args, name)
    return RunConfig.from_dict(values)


# -- verbs -------------------------------------------------------------------------------------
def train_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("train", help="train an autoencoder and compare it with PCA",
                       description="Train an autoencoder on --data, score it on --test (or a "
                       "held-back split) next to PCA at the same latent size, and write the "
                       "run folder.", formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--out", default=None,
                   help="run folder (default: runs/<data>-<date>-<time>)")
    p.add_argument("--config", default=None, help="JSON or TOML file of options (flat or "
                   "sectioned as in a run's config.json); flags override it")
    add_config_options(p)
    p.set_defaults(func=run_train)


def run_train(args: argparse.Namespace) -> int:
    from aekit.runner import format_summary, train_run

    cfg = config_from_args(args)
    out = args.out or f"runs/{Path(cfg.data.data).name.replace(':', '-')}-" \
                      f"{time.strftime('%Y%m%d-%H%M%S')}"
    summary = train_run(cfg, out)
    print(format_summary(summary, out))
    return 0


def evaluate_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("evaluate", help="print a model's reconstruction error on data as JSON")
    p.add_argument("--model", required=True, help="model folder (a run folder)")
    p.add_argument("--data", required=True, help="data spec, as for train")
    p.set_defaults(func=run_evaluate)


def run_evaluate(args: argparse.Namespace) -> int:
    import aekit
    from aekit.data import load

    ae = aekit.load(args.model)
    ds = load(args.data)
    errors = ae.score(ds)
    print(json.dumps({"model": args.model, "data": args.data, "n_samples": ds.n_samples,
                      "latent_dim": ae.config.model.latent_dim, **errors}, indent=2))
    return 0


def encode_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("encode", help="write the codes of data to a .npy file")
    p.add_argument("--model", required=True, help="model folder")
    p.add_argument("--data", required=True, help="data spec, as for train")
    p.add_argument("--out", required=True, help="output .npy file of shape (n, latent_dim)")
    p.set_defaults(func=run_encode)


def run_encode(args: argparse.Namespace) -> int:
    import aekit
    from aekit.data import load

    ae = aekit.load(args.model)
    codes = ae.encode(load(args.data))
    _save_npy(args.out, codes)
    print(f"wrote {args.out}: codes of shape {codes.shape}")
    return 0


def decode_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("decode", help="decode a .npy file of codes back to data")
    p.add_argument("--model", required=True, help="model folder")
    p.add_argument("--codes", required=True, help=".npy file of shape (n, latent_dim)")
    p.add_argument("--out", required=True, help="output .npy file (values in the data's units)")
    p.set_defaults(func=run_decode)


def run_decode(args: argparse.Namespace) -> int:
    import aekit
    from aekit.data import load

    ae = aekit.load(args.model)
    codes = load(args.codes).x
    x = ae.decode(codes)
    _save_npy(args.out, x)
    print(f"wrote {args.out}: data of shape {x.shape}")
    return 0


def _save_npy(path: str, array: Any) -> None:
    import numpy as np

    from aekit.serialization import atomic_write_bytes

    if not path.endswith(".npy"):
        raise ConfigError(f"`--out` must be a .npy file. Received: --out {path}")
    buf = io.BytesIO()
    np.save(buf, array, allow_pickle=False)
    atomic_write_bytes(path, buf.getvalue())


VERBS: list[Callable[[argparse._SubParsersAction], None]] = [
    train_parser, evaluate_parser, encode_parser, decode_parser,
]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="aekit", description="Train autoencoders by gradient descent, compare them with "
        "PCA, and put them to work.")
    from aekit import __version__

    parser.add_argument("--version", action="version", version=f"aekit {__version__}")
    sub = parser.add_subparsers(dest="verb", metavar="VERB")
    sub.required = True
    for register in VERBS:
        register(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``aekit`` command; returns the exit code."""
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except TrainingError as exc:
        print(f"aekit {args.verb}: error: {exc}", file=sys.stderr)
        return 1
    except AekitError as exc:
        print(f"aekit {args.verb}: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"aekit {args.verb}: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
