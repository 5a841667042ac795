"""``aekit compress``, ``aekit decompress``, ``aekit generate``, ``aekit sweep``: put trained
models to work (thin shells over :mod:`aekit.apps`)."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from aekit.commands.common import (add_config_options, add_device_option, add_json_option,
                                   config_from_args, human_output_to_stderr, print_json,
                                   save_npy)

_FMT = argparse.ArgumentDefaultsHelpFormatter


def register(sub: argparse._SubParsersAction) -> None:
    compress_parser(sub)
    decompress_parser(sub)
    generate_parser(sub)
    sweep_parser(sub)


def compress_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("compress", formatter_class=_FMT,
                       help="compress data into a small file of quantized codes",
                       description="Encode --data with a trained model, quantize the codes to "
                       "--bits per value and entropy-code them (zstd) into --out; print the "
                       "size and the reconstruction error (format: docs/compress.md).")
    p.add_argument("--model", required=True, help="model folder (a run folder)")
    p.add_argument("--data", required=True, help="data spec, as for train")
    p.add_argument("--out", required=True, help="compressed file to write (.aez)")
    p.add_argument("--bits", type=int, default=8, help="bits per code value, 2 to 16")
    p.add_argument("--json", action="store_true", help="print the report as JSON")
    p.set_defaults(func=run_compress)


def run_compress(args: argparse.Namespace) -> int:
    from aekit.apps.compress import compress

    report = compress(args.model, args.data, args.out, bits=args.bits)
    if args.json:
        print(json.dumps(report.to_dict(), indent=2))
    else:
        print(f"wrote {args.out}: {report.format()}")
    return 0


def decompress_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("decompress", formatter_class=_FMT,
                       help="decode a compressed file back to data (.npy)")
    p.add_argument("file", help="compressed file written by `aekit compress`")
    p.add_argument("--out", required=True, help="output .npy file (values in the data's units)")
    p.add_argument("--model", default=None,
                   help="model folder; default: the folder recorded in the file")
    p.set_defaults(func=run_decompress)


def run_decompress(args: argparse.Namespace) -> int:
    from aekit.apps.compress import decompress

    x = decompress(args.file, args.model)
    save_npy(args.out, x)
    print(f"wrote {args.out}: data of shape {x.shape}")
    return 0


def generate_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("generate", formatter_class=_FMT,
                       help="generate new samples with a trained model",
                       description="Sample codes (a VAE's prior, or a Gaussian mixture fitted to "
                       "the training codes of a plain autoencoder), decode them, and report the "
                       "distance of each sample to its nearest training sample.")
    p.add_argument("--model", required=True, help="model folder")
    p.add_argument("-n", type=int, default=64, help="number of samples")
    p.add_argument("--out", required=True, help="output .npy file of samples")
    p.add_argument("--grid", default=None, help="also write the samples as a PNG grid (images)")
    p.add_argument("--data", default=None,
                   help="training data for the mixture and the novelty check; default: the "
                   "data the model was trained on")
    p.add_argument("--mixture", type=int, default=10, help="Gaussian mixture components")
    p.add_argument("--seed", type=int, default=0, help="random seed")
    p.add_argument("--interpolate", default=None, metavar="I,J",
                   help="instead of sampling: decode --steps codes between the codes of "
                   "samples I and J of --data")
    p.add_argument("--steps", type=int, default=10, help="interpolation steps")
    add_device_option(p)
    p.set_defaults(func=run_generate)


def run_generate(args: argparse.Namespace) -> int:
    import aekit
    from aekit.apps.generate import generate, grid_for, interpolate
    from aekit.data import load

    ae = aekit.load(args.model, device=args.device)
    if args.interpolate:
        data = load(args.data or ae.config.data.data)
        i, j = _pair(args.interpolate, data.n_samples)
        samples = interpolate(ae, data.x[i], data.x[j], args.steps)
        print(f"interpolated {args.steps} steps between samples {i} and {j}")
    else:
        result = generate(ae, args.n, args.data, args.mixture, args.seed)
        samples = result.samples
        print(f"sampled {args.n} codes from the {result.method}")
        print(result.novelty.format())
    save_npy(args.out, samples)
    print(f"wrote {args.out}: samples of shape {samples.shape}")
    if args.grid:
        grid_for(ae, samples, args.grid, len(samples) if args.interpolate else None)
        print(f"wrote {args.grid}")
    return 0


def _pair(text: str, n: int) -> tuple[int, int]:
    from aekit.errors import ConfigError

    try:
        i, j = (int(p) for p in text.split(","))
    except ValueError:
        raise ConfigError(f"`--interpolate` must be two sample indices I,J. Received: "
                          f"{text!r}") from None
    if not (0 <= i < n and 0 <= j < n):
        raise ConfigError(f"`--interpolate` indices must be in 0..{n - 1}. Received: {text!r}")
    return i, j


def sweep_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("sweep", formatter_class=_FMT,
                       help="train one model per latent size and recommend one",
                       description="Train one model per --latent-dims size (everything else "
                       "equal), score each on the test set beside PCA, write sweep.json, "
                       "sweep.md and sweep.png into --out and recommend a size. All training "
                       "options of `aekit train` apply to every member.")
    p.add_argument("--latent-dims", default="2,4,8,16,32,64", help="sizes to try")
    p.add_argument("--out", required=True, help="folder for the results")
    p.add_argument("--threshold", type=float, default=0.1,
                   help="recommend the size from which doubling cuts the error by less than "
                   "this fraction")
    p.add_argument("--max-train-samples", type=int, default=None,
                   help="train every member on the same random subsample of this size")
    p.add_argument("--config", default=None, help="JSON or TOML file of training options")
    add_json_option(p, "the results (the content of sweep.json, plus out)")
    add_config_options(p)
    p.set_defaults(func=run_sweep)


def run_sweep(args: argparse.Namespace) -> int:
    cfg = config_from_args(args)  # bad options are refused before PyTorch is imported
    if not hasattr(args, "progress"):  # one line per member is enough
        cfg = cfg.replace(progress=False)
    with human_output_to_stderr(args.json):
        from aekit.apps.sweep import sweep

        result = sweep(cfg, args.latent_dims, args.out, args.threshold, args.max_train_samples)
        print(result.table())
        print(f"recommended latent size: {result.recommended} ({result.reason})")
        print(f"wrote {args.out}/sweep.json, sweep.md, sweep.png")
    if args.json:
        from aekit.serialization import read_json

        print_json({"out": args.out, **read_json(Path(args.out) / "sweep.json", "sweep")})
    return 0
