"""``aekit evaluate``, ``aekit encode``, ``aekit decode``: use a trained model on data."""

from __future__ import annotations

import argparse
import json

from aekit.commands.common import add_device_option, save_npy


def register(sub: argparse._SubParsersAction) -> None:
    evaluate_parser(sub)
    encode_parser(sub)
    decode_parser(sub)


def evaluate_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "evaluate", help="print a model's reconstruction error on data as JSON",
        description="Print the model's reconstruction error on --data as JSON. When the data "
        "has labels (its own, or --labels), also the error per class next to PCA's and the "
        "codes' usefulness for classes: a linear probe (logistic regression learnt from the "
        "run's training rows, scored on --data) and k-means on the codes of --data (adjusted "
        "Rand index), each next to PCA's codes at the same size (PCA refitted on the run's "
        "training rows, as in training). The probe needs the run's training data where its "
        "config.json says it is.")
    p.add_argument("--model", required=True, help="model folder (a run folder)")
    p.add_argument("--data", required=True, help="data spec, as for train")
    p.add_argument("--labels", default="auto",
                   help="class labels of --data: auto (its own), none, FILE.npy, FILE.npz:KEY "
                   "or FILE.csv:COLUMN (default: auto)")
    p.add_argument("--noise", default=None, metavar="KIND:AMOUNT",
                   help="also score denoising: --data corrupted once (gaussian:SIGMA, mask:P, "
                   "saltpepper:P, as train's --noise) and the errors to the clean rows of the "
                   "model, of PCA's projection of the noisy rows (the run's PCA) and of the "
                   "noisy rows themselves")
    p.add_argument("--json", action="store_true",
                   help="accepted as in the other verbs; evaluate always prints one JSON "
                   "document on stdout")
    add_device_option(p)
    p.set_defaults(func=run_evaluate)


def run_evaluate(args: argparse.Namespace) -> int:
    from aekit.apps.evaluate import evaluate

    result = evaluate(args.model, args.data, args.labels, args.noise, device=args.device)
    print(json.dumps(result, indent=2))
    return 0


def encode_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("encode", help="write the codes of data to a .npy file")
    p.add_argument("--model", required=True, help="model folder")
    p.add_argument("--data", required=True, help="data spec, as for train")
    p.add_argument("--out", required=True, help="output .npy file of shape (n, latent_dim)")
    add_device_option(p)
    p.set_defaults(func=run_encode)


def run_encode(args: argparse.Namespace) -> int:
    import aekit
    from aekit.data import load

    ae = aekit.load(args.model, device=args.device)
    codes = ae.encode(load(args.data))
    save_npy(args.out, codes)
    print(f"wrote {args.out}: codes of shape {codes.shape}")
    return 0


def decode_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("decode", help="decode a .npy file of codes back to data")
    p.add_argument("--model", required=True, help="model folder")
    p.add_argument("--codes", required=True, help=".npy file of shape (n, latent_dim)")
    p.add_argument("--out", required=True, help="output .npy file (values in the data's units)")
    add_device_option(p)
    p.set_defaults(func=run_decode)


def run_decode(args: argparse.Namespace) -> int:
    import aekit
    from aekit.data import load

    ae = aekit.load(args.model, device=args.device)
    codes = load(args.codes).x
    x = ae.decode(codes)
    save_npy(args.out, x)
    print(f"wrote {args.out}: data of shape {x.shape}")
    return 0


