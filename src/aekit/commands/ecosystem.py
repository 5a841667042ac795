"""``aekit report RUN_DIR`` (a self-contained HTML report) and ``aekit export`` (ONNX)."""

from __future__ import annotations

import argparse

from aekit.commands.common import BooleanWithAlias


def register(sub: argparse._SubParsersAction) -> None:
    report_parser(sub)
    export_parser(sub)


def report_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("report", help="write a self-contained report.html for a run folder",
                       description="Write one HTML file (no network needed to open it) with the "
                       "loss curves, learning rate, gradient and activation diagnostics, the "
                       "doctor's findings, reconstructions, a map of the codes, the comparison "
                       "with PCA and the configuration. For a folder written by `aekit detect`: "
                       "the scores' histogram and threshold and the most anomalous rows.")
    p.add_argument("run_dir", metavar="RUN_DIR", help="run folder written by `aekit train` "
                   "(or `aekit detect`)")
    p.add_argument("--out", default=None, help="output file (default: RUN_DIR/report.html)")
    p.set_defaults(func=run_report)


def run_report(args: argparse.Namespace) -> int:
    from aekit.detect_report import is_detect_folder, write_detect_report
    from aekit.report import write_report

    write = write_detect_report if is_detect_folder(args.run_dir) else write_report
    path = write(args.run_dir, args.out)
    print(f"wrote {path} ({path.stat().st_size / 1024:.0f} KiB); open it in a browser")
    return 0


def export_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("export", help="export a model's encoder and decoder (ONNX)")
    p.add_argument("--model", required=True, help="model folder (a run folder)")
    p.add_argument("--format", default="onnx", help="export format: onnx (default: onnx)")
    p.add_argument("--out", required=True, help="output folder for encoder.onnx, decoder.onnx "
                   "and export.json")
    # not --scaling: for `aekit train` that option names a scaling mode (auto, standard...)
    p.add_argument("--include-scaling", "--scaling", dest="include_scaling",
                   action=BooleanWithAlias, default=True,
                   deprecated={"--scaling": "--include-scaling",
                               "--no-scaling": "--no-include-scaling"},
                   help="include the feature scaling in the graphs, so they take and return "
                   "data in its own units (default: on); --no-include-scaling: the scaled "
                   "space. --scaling/--no-scaling: deprecated spellings")
    p.set_defaults(func=run_export)


def run_export(args: argparse.Namespace) -> int:
    from aekit.export import export_model

    info = export_model(args.model, args.out, args.format, args.include_scaling)
    print(f"wrote {args.out}/encoder.onnx (x: (batch, {info['n_features']}) -> z: (batch, "
          f"{info['latent_dim']})), {args.out}/decoder.onnx (z -> x) and export.json; "
          f"scaling {'inside the graphs' if info['scaling_included'] else 'NOT included'}")
    return 0
