"""``aekit detect``: anomaly scores, labels and top features for every row of a data set
(a thin shell over :mod:`aekit.apps.detect`)."""

from __future__ import annotations

import argparse

from aekit.commands.common import (add_config_options, add_json_option, config_from_args,
                                   human_output_to_stderr, print_json)


def _contamination(text: str) -> float | str:
    if text == "auto":
        return text
    try:
        return float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be 'auto' or a number in (0, 0.5]; "
                                         f"received {text!r}") from None


def _rate(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = float("nan")
    if not 0.0 < value < 1.0:
        raise argparse.ArgumentTypeError(f"must be a number in (0, 1); received {text!r}")
    return value


REPORT_HELP = ("write OUT/report.html: the scores' histogram and threshold, the most "
               "anomalous rows and their top features, as images for image data (default: on; "
               "--no-report skips it)")


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("detect", formatter_class=argparse.ArgumentDefaultsHelpFormatter,
                       help="score every row for anomalies: scores, labels, top features",
                       description="Train an outlier detector on --data (or use the one in "
                       "--model) and write scores.csv (row, score, label -1/+1, the features "
                       "with the largest part of the score, named by the data's header), "
                       "summary.json and report.html into --out. The score adds the "
                       "reconstruction error, the code's distance from the training codes and "
                       "from its 10th nearest training code and, for tables, the row's "
                       "distance from its 10th nearest training row; images train the image "
                       "model (--kind conv: the convolutional one); the training rows may hold "
                       "outliers (the top-scored 10%% are set aside and the model refitted). "
                       "--novelty: the rows are normal ones only (nothing set aside; the score "
                       "drops the code distance and uses the 5th nearest code and training row, "
                       "tables scaled to [0, 1]). "
                       "Then `aekit detect --model OUT --data NEW` scores new rows with the "
                       "trained threshold. All training options of `aekit train` apply.")
    p.add_argument("--out", required=True, help="folder for scores.csv, summary.json, "
                   "report.html and the trained detector")
    p.add_argument("--model", default=None, help="a folder written by an earlier `aekit "
                   "detect --out`: score with it, no training")
    p.add_argument("--contamination", type=_contamination, default="auto",
                   help="expected share of outliers in the data (threshold: that quantile of "
                   "the training scores); auto: 1%% false positives on held-back rows")
    p.add_argument("--novelty", action="store_true",
                   help="novelty detection: --data holds normal rows only; nothing is set "
                   "aside, and the threshold is the score exceeded by --target-fpr of held-back "
                   "clean rows (the false-positive rate to expect on new normal rows); score "
                   "new rows with --model OUT")
    p.add_argument("--target-fpr", type=_rate, default=0.01,
                   help="the held-back rows' false-positive rate the threshold aims at "
                   "(--contamination auto, --novelty)")
    p.add_argument("--config", default=None, help="JSON or TOML file of training options")
    add_json_option(p, "the summary (summary.json, plus out and report)")
    add_config_options(p, help_overrides={"report": REPORT_HELP})
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    cfg = config_from_args(args)  # bad options are refused before PyTorch is imported
    with human_output_to_stderr(args.json):
        from aekit.apps.detect import detect

        result = detect(cfg, args.out, args.model, args.contamination,
                        report=getattr(args, "report", True), novelty=args.novelty,
                        target_fpr=args.target_fpr)
        s = result.summary
        print(f"{s['n_outliers']} of {s['n_rows']} rows flagged ({s['outlier_share']:.1%}); "
              f"threshold {s['threshold']:.4g}: {s['threshold_rule']}")
        for row in s["most_anomalous"][:5]:
            features = ", ".join(f"{f['feature']} {f['share']:.0%}"
                                 for f in row["top_features"])
            print(f"  row {row['row']}: score {row['score']:.4g} ({features})")
        print(f"wrote {args.out}/scores.csv, summary.json"
              + ("" if args.model else ", and the detector (model.safetensors, config.json, "
                 "detector.json)"))
        if result.report is not None:
            print(f"report: {result.report}; open it in a browser")
    if args.json:
        print_json({"out": args.out, "report": None if result.report is None
                    else str(result.report), **s})
    return 0
